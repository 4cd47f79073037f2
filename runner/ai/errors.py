"""The one error family of the AI client.

`retryable` tells the executor whether another attempt can succeed (it owns retries and
backoff); `retry_after` is the server's own wish, in seconds. Messages are scrubbed of
the API key before they are built, because servers sometimes quote the key they refused
(`scrub`). Shared by every transport: what a server's wish to wait means
(`retry_after_seconds`), and how an exception of the caller's own on_text callback is
kept apart from the transport's errors (`deliver`).
"""
from __future__ import annotations

import math
import time

from runner.errors import RunnerError

# What failed, for the executor's attempt record ("fault") and for tests.
KINDS = (
    "connect",     # could not connect (refused, DNS, connect timeout)
    "timeout",     # the server stopped sending for longer than the read timeout
    "deadline",    # the caller's overall timeout for this call passed
    "cancelled",   # the caller's cancel event was set
    "http",        # the server answered with an error status
    "grpc",        # the server answered with a gRPC error status (kserve)
    "stream",      # a streamed answer ended before its final event
    "protocol",    # the answer was not what the protocol promises (bad JSON, no text)
    "closed",      # the client was closed
    "service",     # anything else (the default for errors made outside this package)
)


class AIServiceError(RunnerError):
    """An AI request that did not produce a completion. (`kind` is the transport's failure,
    "http", "deadline"...; `category`, as for every RunnerError, the C ABI's code: a service
    that does not answer is I/O that failed.)"""

    category = "io"

    def __init__(self, message: str, *, retryable: bool, kind: str = "service",
                 retry_after: float | None = None, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind
        self.status = status        # the HTTP status
        self.code = code            # the gRPC status code's name, e.g. "UNAVAILABLE"

    def __repr__(self) -> str:
        return (f"AIServiceError({str(self)!r}, kind={self.kind!r}, retryable={self.retryable}, "
                f"retry_after={self.retry_after!r}, status={self.status!r}, code={self.code!r})")


def scrub(secret: str | None, text: str) -> str:
    """The text without the secret, raw or in the escaped form a %r quotation gives it."""
    if not secret:
        return text
    for form in (secret, repr(secret)[1:-1]):
        text = text.replace(form, "[redacted]")
    return text


def scrubbed(secret: str | None, error: AIServiceError) -> AIServiceError:
    """The error, rebuilt without the secret if the service quoted it (mid-stream errors can)."""
    message = str(error)
    clean = scrub(secret, message)
    if clean == message:
        return error
    return AIServiceError(clean, retryable=error.retryable, kind=error.kind,
                          retry_after=error.retry_after, status=error.status, code=error.code)


def retry_after_seconds(headers, now: float | None = None) -> float | None:
    """Seconds the server asks to wait: Retry-After as seconds or an HTTP date, or retry-after-ms."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime   # email is a large package: only for HTTP dates

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))




class CallbackFailed(Exception):
    """Carries an exception raised by the caller's on_text out of a transport's error handling:
    a BrokenPipeError from a closed stdout is the caller's, not a broken stream to retry."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def deliver(on_text, piece: str) -> None:
    try:
        on_text(piece)
    except Exception as error:
        raise CallbackFailed(error) from error
