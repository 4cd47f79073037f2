"""RUNNER_API_TOKEN: every route but the probes needs `Authorization: Bearer <token>`.

A plain ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware).
The scheme is matched without regard to case (RFC 9110 11.1: `bearer` is `Bearer`); the
token is compared with hmac.compare_digest, in time that does not depend on where it differs.
The probes include the original service's /api/v1/health, which load balancers and the API
gateway poll without credentials; it says no more than /health.
"""
from __future__ import annotations

import hmac

import orjson

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/api/v1/health"})


class BearerToken:
    def __init__(self, app, token: str | None):
        self.app = app
        self.expected = None if token is None else token.encode("ascii")

    async def __call__(self, scope, receive, send):
        if self.expected is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credentials = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(b" "), self.expected):
            return await self.app(scope, receive, send)
        body = orjson.dumps({"error": "missing or wrong bearer token (Authorization: Bearer $RUNNER_API_TOKEN)",
                             "errors": []})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="runner"')]})
        await send({"type": "http.response.body", "body": body})
