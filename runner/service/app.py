"""create_app(registry): the service's ASGI application (Starlette)."""
from __future__ import annotations

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from runner.service import aliases, events, routes
from runner.service.answers import Refusal, problem
from runner.service.auth import BearerToken


async def _refused(request, refusal: Refusal):
    return refusal.answer()


async def _http_error(request, error: HTTPException):
    return problem(error.status_code, error.detail or "error", headers=getattr(error, "headers", None))


def create_app(registry) -> Starlette:
    """The application over an opened Registry; its shutdown drains and closes the registry."""

    @asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(registry.close)

    app = Starlette(routes=routes.ROUTES + events.ROUTES + aliases.ROUTES, lifespan=lifespan,
                    middleware=[Middleware(BearerToken, token=registry.config.token)],
                    exception_handlers={Refusal: _refused, HTTPException: _http_error})
    app.state.registry = registry
    app.state.version = routes.version()
    return app
