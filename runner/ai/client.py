"""AIClient: one attempt at one completion, within the client's shared limits.

The executor owns retries, backoff and each task's retry budget; this module makes a
single attempt and says, through AIServiceError.retryable and .retry_after, whether and
when another can succeed. One client is shared by every task of a run and of a batch:
its session pool, in-flight limit and rate limits are what make the limits real.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from runner.ai import anthropic, echo, openai_compat
from runner.ai.completion import Completion
from runner.ai.config import AIConfig
from runner.ai.errors import AIServiceError
from runner.ai.limits import InFlightLimit, RateLimit
from runner.ai.sampling import checked_sampling
from runner.ai.sse import EventStreamError, EventStreamParser
from runner.ai.transport import AbortHandle, Watchdog, WatchedRequest, pooled_session

log = logging.getLogger("runner.ai")

PROTOCOLS = {"openai": openai_compat, "anthropic": anthropic}
# An answer larger than this is refused rather than held in memory.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_READ_SIZE = 64 * 1024
_DRAIN_TIMEOUT = 0.25
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def sent_sampling(provider: str, sampling: dict | None) -> dict:
    """The sampling settings `provider` receives of `sampling`: checked (ValueError naming a bad
    one), then what its API takes, within its ranges; the echo provider gets them as checked."""
    checked = checked_sampling(sampling)
    protocol = PROTOCOLS.get(provider)
    return protocol.sendable(checked) if protocol is not None else checked


def _shown_url(url: str) -> str:
    """The URL as errors show it: without user:password@."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


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
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _root_cause(error: BaseException) -> str:
    """The innermost OS-level reason of a requests/urllib3 error, e.g. 'Connection refused'."""
    seen = set()
    cause, found = error, None
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            found = cause.strerror
        nxt = getattr(cause, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = nxt or cause.__cause__ or cause.__context__
    if found:
        return found
    if error.args and isinstance(error.args[0], str):
        return error.args[0][:200]
    return type(error).__name__


class _CallbackFailed(Exception):
    """Carries an exception raised by the caller's on_text out of the HTTP error handling:
    a BrokenPipeError from a closed stdout is the caller's, not a broken stream to retry."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def _deliver(on_text, piece: str) -> None:
    try:
        on_text(piece)
    except Exception as error:
        raise _CallbackFailed(error) from error


class AIClient:
    """Thread-safe AI client; one pooled requests.Session, limits shared by all callers."""

    def __init__(self, config: AIConfig | None = None):
        self.config = config = config or AIConfig()
        self._limit = InFlightLimit(config.max_concurrency)
        self._requests_per_minute = RateLimit(config.requests_per_minute) if config.requests_per_minute else None
        self._tokens_per_minute = RateLimit(config.tokens_per_minute) if config.tokens_per_minute else None
        self._protocol = PROTOCOLS.get(config.provider)
        self._closed = False
        self._watchdog = Watchdog()
        self._session = None
        if self._protocol is not None:
            self._url = config.base_url.rstrip("/") + self._protocol.PATH
            self._session = pooled_session(self._url, config.max_concurrency)
            self._headers = self._protocol.headers(config.api_key)
            self._shown = _shown_url(self._url)

    def __repr__(self) -> str:
        where = f", url={self._shown!r}" if self._protocol is not None else ""
        return f"AIClient(provider={self.provider!r}{where}, model={self.default_model!r})"

    @property
    def provider(self) -> str:
        return self.config.provider

    @property
    def default_model(self) -> str:
        return self.config.default_model

    def close(self) -> None:
        """Abort requests in flight (their connections are closed) and refuse new ones."""
        self._closed = True
        self._watchdog.close()
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> "AIClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def complete(self, prompt: str, *, model: str | None = None, sampling: dict | None = None,
                 stream: bool = False, on_text: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None, timeout: float | None = None) -> Completion:
        """One attempt at completing `prompt`; raises AIServiceError when it does not succeed.

        `timeout` bounds the whole call (queueing included); `cancel` aborts it at any point.
        With `stream`, each piece of text goes to `on_text` as it arrives; without, the
        whole text goes to it once.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a string, found {type(prompt).__name__}")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ValueError(f"model: expected a non-empty string, found {model!r}")
        sampling = checked_sampling(sampling)
        deadline = None
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
                raise ValueError(f"timeout: expected a positive number of seconds, found {timeout!r}")
            deadline = time.monotonic() + timeout
        if self._closed:
            raise AIServiceError("the AI client is closed", retryable=False, kind="closed")
        if self._protocol is None:
            return echo.complete(prompt, sampling=sampling, stream=stream, on_text=on_text,
                                 cancel=cancel, deadline=deadline)
        model = model.strip() if model else self.default_model
        try:
            body = json.dumps(self._protocol.body(prompt, model, sampling, stream), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"prompt: not valid Unicode text ({error.reason} at character {error.start})") from None

        self._limit.acquire(cancel, deadline)
        estimate = len(prompt) // 4 + 1 + sampling.get("max_tokens", 0)
        charged = False
        try:
            if self._requests_per_minute is not None:
                self._requests_per_minute.take(1, cancel, deadline)
            if self._tokens_per_minute is not None:
                self._tokens_per_minute.take(estimate, cancel, deadline)
                charged = True
            if self._closed:    # closed while this call waited for its turn
                raise AIServiceError("the AI client is closed", retryable=False, kind="closed")
            completion = self._attempt(body, model, stream, on_text, cancel, deadline, timeout)
        except BaseException as error:
            if charged:
                self._tokens_per_minute.settle(estimate, 0)
            log.debug("AI request to %s failed: %s", self._shown, error)
            raise
        finally:
            self._limit.release()
        if charged:
            used = (completion.prompt_tokens or 0) + (completion.completion_tokens or 0)
            self._tokens_per_minute.settle(estimate, used or estimate)
        log.debug("AI %s %s: %s+%s tokens in %.0f ms", completion.provider, completion.model,
                  completion.prompt_tokens, completion.completion_tokens, completion.latency_ms)
        return completion

    # -- one HTTP exchange -------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """The text without the key, raw or in the escaped form a %r quotation gives it."""
        key = self.config.api_key
        if not key:
            return text
        for form in (key, repr(key)[1:-1]):
            text = text.replace(form, "[redacted]")
        return text

    def _attempt(self, body: bytes, model: str, stream: bool, on_text, cancel, deadline, timeout) -> Completion:
        handle = AbortHandle(cancel, deadline)
        connect_timeout = self.config.connect_timeout
        if deadline is not None:
            # A connect in progress has no socket the watchdog can reach: bound it instead.
            connect_timeout = max(0.001, min(connect_timeout, deadline - time.monotonic()))
        started = time.perf_counter()
        in_body = False
        try:
            with WatchedRequest(self._watchdog, handle):
                # Never follow a redirect: the key travels in a header (x-api-key for
                # Anthropic) that requests keeps on a 307/308 to another host.
                response = self._session.post(
                    self._url, data=body, headers=self._headers, stream=True, allow_redirects=False,
                    timeout=(connect_timeout, self.config.read_timeout))
                with response:
                    in_body = True
                    if 300 <= response.status_code < 400:
                        raise self._redirect_error(response.status_code)
                    if response.status_code >= 400:
                        raise self._http_error(response)
                    if stream:
                        return self._read_stream(response, model, on_text, cancel, started)
                    return self._read_answer(response, model, on_text, started)
        except _CallbackFailed as failed:
            raise failed.error from None
        except AIServiceError as error:
            reason = handle.reason or handle.due(time.monotonic())
            if reason is not None and error.kind in ("stream", "protocol"):
                raise self._aborted(reason, timeout) from None
            raise self._scrubbed(error) from None
        except _READ_ERRORS as error:
            # The watchdog may not have looked yet when the deadline-bounded connect gave up.
            reason = handle.reason or handle.due(time.monotonic())
            if reason is not None:
                raise self._aborted(reason, timeout) from None
            raise self._transport_error(error, in_body, stream) from None

    def _scrubbed(self, error: AIServiceError) -> AIServiceError:
        """The error, rebuilt without the key if the service quoted it (mid-stream errors can)."""
        message = str(error)
        clean = self._scrub(message)
        if clean == message:
            return error
        return AIServiceError(clean, retryable=error.retryable, kind=error.kind,
                              retry_after=error.retry_after, status=error.status)

    def _aborted(self, reason: str, timeout) -> AIServiceError:
        if reason == "cancelled":
            return AIServiceError(f"POST {self._shown}: cancelled", retryable=False, kind="cancelled")
        if reason == "deadline":
            return AIServiceError(f"POST {self._shown}: no complete answer within the call's timeout of {timeout:g} s",
                                  retryable=True, kind="deadline")
        return AIServiceError(f"POST {self._shown}: the AI client was closed", retryable=False, kind="closed")

    def _transport_error(self, error: BaseException, in_body: bool, stream: bool) -> AIServiceError:
        cause = self._scrub(_root_cause(error))
        if isinstance(error, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
            return AIServiceError(f"POST {self._shown}: could not connect within {self.config.connect_timeout:g} s",
                                  retryable=True, kind="connect")
        if isinstance(error, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
            return AIServiceError(f"POST {self._shown}: the service sent nothing for {self.config.read_timeout:g} s (read timeout)",
                                  retryable=True, kind="timeout")
        if in_body and stream:
            return AIServiceError(f"POST {self._shown}: the stream broke off before its end ({cause})",
                                  retryable=True, kind="stream")
        if in_body:
            return AIServiceError(f"POST {self._shown}: the answer broke off before its end ({cause})",
                                  retryable=True, kind="connect")
        return AIServiceError(f"POST {self._shown}: connection failed ({cause})", retryable=True, kind="connect")

    def _read_body(self, response) -> bytes:
        pieces, size = [], 0
        while True:
            piece = response.raw.read(_READ_SIZE, decode_content=True)
            if not piece:
                return b"".join(pieces)
            size += len(piece)
            if size > MAX_ANSWER_BYTES:
                raise AIServiceError(f"POST {self._shown}: the answer is larger than {MAX_ANSWER_BYTES} bytes",
                                     retryable=False, kind="protocol")
            pieces.append(piece)

    @staticmethod
    def _drain(response) -> None:
        """Read what follows the final event (the chunked body's end), so the connection goes back to the pool.

        Briefly: a server that holds the body open after its final event costs its
        connection (closed instead of pooled), not the caller's time. urllib3 sets the
        socket's timeout again before the connection's next request.
        """
        sock = getattr(response.raw.connection, "sock", None)
        if sock is not None:
            sock.settimeout(_DRAIN_TIMEOUT)
        left = _READ_SIZE
        try:
            while left > 0:
                rest = response.raw.read1(left, decode_content=True)
                if not rest:
                    return
                left -= len(rest)
        except _READ_ERRORS:
            pass

    def _http_error(self, response) -> AIServiceError:
        status = response.status_code
        retryable = status == 429 or status >= 500
        try:
            raw = self._read_body(response)
        except (AIServiceError, *_READ_ERRORS):
            raw = b""
        message = None
        try:
            message = self._protocol.error_message(json.loads(raw))
        except ValueError:
            pass
        if message is None:
            message = raw[:500].decode("utf-8", "replace").strip() or response.reason or "no message"
        return AIServiceError(
            self._scrub(f"POST {self._shown}: HTTP {status}: {message}"),
            retryable=retryable, kind="http", status=status,
            retry_after=retry_after_seconds(response.headers) if retryable else None)

    def _redirect_error(self, status: int) -> AIServiceError:
        """A 3xx: the configured URL is not the service's. Not retryable, as the next attempt
        gets the same answer; the Location is left out, as it may carry credentials."""
        return AIServiceError(
            f"POST {self._shown}: HTTP {status}: the service answered with a redirect, which the "
            "AI client does not follow (the API key goes only to the configured URL); "
            "set RUNNER_AI_SERVICE_URL to the service's own address",
            retryable=False, kind="protocol", status=status)

    def _read_answer(self, response, model: str, on_text, started: float) -> Completion:
        raw = self._read_body(response)
        try:
            doc = json.loads(raw)
            text, served, prompt_tokens, completion_tokens = self._protocol.parse_answer(doc)
        except ValueError as error:
            reason = "not JSON" if isinstance(error, json.JSONDecodeError) else str(error)
            raise AIServiceError(self._scrub(f"POST {self._shown}: unexpected answer: {reason}"),
                                 retryable=False, kind="protocol") from None
        latency = (time.perf_counter() - started) * 1000.0
        if on_text is not None and text:
            _deliver(on_text, text)
        return Completion(text=text, model=served or model, provider=self.provider,
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          latency_ms=latency, time_to_first_token_ms=None)

    def _read_stream(self, response, model: str, on_text, cancel, started: float) -> Completion:
        reader = self._protocol.StreamReader()
        parser = EventStreamParser()
        pieces: list[str] = []
        size = 0
        first_token_ms = None
        read1 = response.raw.read1
        while not reader.finished:
            chunk = read1(_READ_SIZE, decode_content=True)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AIServiceError(f"POST {self._shown}: the stream is larger than {MAX_ANSWER_BYTES} bytes",
                                     retryable=False, kind="protocol")
            try:
                events = parser.feed(chunk) if chunk else parser.close()
            except EventStreamError as error:
                raise AIServiceError(f"POST {self._shown}: {error}", retryable=False, kind="protocol") from None
            for event in events:
                piece = reader.read(event)
                if piece:
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - started) * 1000.0
                    pieces.append(piece)
                    if on_text is not None:
                        _deliver(on_text, piece)
                if reader.finished:
                    break
            if cancel is not None and cancel.is_set():
                raise AIServiceError(f"POST {self._shown}: cancelled", retryable=False, kind="cancelled")
            if not chunk:
                break
        if reader.finished:
            self._drain(response)
        else:
            raise AIServiceError(
                f"POST {self._shown}: the stream ended without its final event ({reader.final_event!r})",
                retryable=True, kind="stream")
        return Completion(text="".join(pieces), model=reader.model or model, provider=self.provider,
                          prompt_tokens=reader.prompt_tokens, completion_tokens=reader.completion_tokens,
                          latency_ms=(time.perf_counter() - started) * 1000.0,
                          time_to_first_token_ms=first_token_ms)
