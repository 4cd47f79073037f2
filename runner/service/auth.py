"""RUNNER_API_TOKEN: every route but the probes needs `Authorization: Bearer <token>`.

A plain ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware);
the header is compared with hmac.compare_digest, in time that does not depend on where
it differs.
"""
from __future__ import annotations

import hmac

import orjson

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})


class BearerToken:
    def __init__(self, app, token: str | None):
        self.app = app
        self.expected = None if token is None else b"Bearer " + token.encode("ascii")

    async def __call__(self, scope, receive, send):
        if self.expected is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if hmac.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        body = orjson.dumps({"error": "missing or wrong bearer token (Authorization: Bearer $RUNNER_API_TOKEN)",
                             "errors": []})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="runner"')]})
        await send({"type": "http.response.body", "body": body})
