"""The service's JSON answers: orjson bodies, and errors as {"error", "errors": [{path, message}]}."""
from __future__ import annotations

import orjson
from starlette.responses import Response


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


class Refusal(Exception):
    """A request the service does not carry out: its status, message and the issues behind it."""

    def __init__(self, status: int, message: str, errors: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers

    def answer(self) -> JSONAnswer:
        return problem(self.status, self.message, self.errors, self.headers)


def problem(status: int, message: str, errors: list | None = None, headers: dict | None = None) -> JSONAnswer:
    return JSONAnswer({"error": message, "errors": errors or []}, status_code=status, headers=headers)
