"""The one error family of the AI client.

`retryable` tells the executor whether another attempt can succeed (it owns retries and
backoff); `retry_after` is the server's own wish, in seconds. Messages are scrubbed of
the API key before they are built, because servers sometimes quote the key they refused.
"""
from __future__ import annotations

# What failed, for the executor's attempt record ("fault") and for tests.
KINDS = (
    "connect",     # could not connect (refused, DNS, connect timeout)
    "timeout",     # the server stopped sending for longer than the read timeout
    "deadline",    # the caller's overall timeout for this call passed
    "cancelled",   # the caller's cancel event was set
    "http",        # the server answered with an error status
    "stream",      # a streamed answer ended before its final event
    "protocol",    # the answer was not what the protocol promises (bad JSON, no text)
    "closed",      # the client was closed
    "service",     # anything else (the default for errors made outside this package)
)


class AIServiceError(Exception):
    """An AI request that did not produce a completion."""

    def __init__(self, message: str, *, retryable: bool, kind: str = "service",
                 retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind
        self.status = status

    def __repr__(self) -> str:
        return (f"AIServiceError({str(self)!r}, kind={self.kind!r}, retryable={self.retryable}, "
                f"retry_after={self.retry_after!r}, status={self.status!r})")
