"""The HTTP transport of the AI client: one POST per attempt, JSON or a server-sent event stream.

The client (runner.ai.client) owns limits and accounting; the protocol module
(openai_compat, anthropic) owns the wire format; this module sends, reads, aborts and
says what a failure means (AIServiceError.retryable, .retry_after). Requests are aborted
by the client's Watchdog, which shuts the request's socket down (runner.ai.watchdog).
"""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
import urllib3

from runner.ai.answer_memory import release_large_garbage
from runner.ai.completion import MAX_ANSWER_BYTES, Completion
from runner.ai.errors import AIServiceError, CallbackFailed, deliver, retry_after_seconds, scrub, scrubbed
from runner.ai.sse import EventStreamError, EventStreamParser
from runner.ai.transport import pooled_session
from runner.ai.watchdog import AbortHandle, Watchdog, WatchedRequest
from runner.trace.ids import with_trace_context

_READ_SIZE = 64 * 1024
_DRAIN_TIMEOUT = 0.25
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def _shown_url(url: str) -> str:
    """The URL as errors show it: without user:password@."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


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


class HTTPTransport:
    """POSTs to `config.base_url` + the protocol's path through one pooled session."""

    def __init__(self, config, protocol, watchdog: Watchdog):
        self.config = config
        self._protocol = protocol
        self._watchdog = watchdog
        self._url = config.base_url.rstrip("/") + protocol.PATH
        self._session = pooled_session(self._url, config.max_concurrency, config.ca_file)
        self._headers = protocol.headers(config.api_key)
        self.shown = _shown_url(self._url)

    def close(self) -> None:
        self._session.close()

    def prepare(self, prompt: str, model: str, sampling: dict, stream: bool) -> bytes:
        """The request body; ValueError when the prompt cannot be encoded."""
        try:
            return json.dumps(self._protocol.body(prompt, model, sampling, stream), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"prompt: not valid Unicode text ({error.reason} at character {error.start})") from None

    def send(self, body: bytes, model: str, stream: bool, on_text, cancel, deadline, timeout) -> Completion:
        """One POST of `body` (from `prepare`); the answer as a Completion, else AIServiceError."""
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
                    self._url, data=body, headers=with_trace_context(self._headers), stream=True, allow_redirects=False,
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
        except CallbackFailed as failed:
            raise failed.error from None
        except AIServiceError as error:
            reason = handle.reason or handle.due(time.monotonic())
            if reason is not None and error.kind in ("stream", "protocol"):
                raise self._aborted(reason, timeout) from None
            raise scrubbed(self.config.api_key, error) from None
        except _READ_ERRORS as error:
            # The watchdog may not have looked yet when the deadline-bounded connect gave up.
            reason = handle.reason or handle.due(time.monotonic())
            if reason is not None:
                raise self._aborted(reason, timeout) from None
            raise self._transport_error(error, in_body, stream) from None

    def _aborted(self, reason: str, timeout) -> AIServiceError:
        if reason == "cancelled":
            return AIServiceError(f"POST {self.shown}: cancelled", retryable=False, kind="cancelled")
        if reason == "deadline":
            return AIServiceError(f"POST {self.shown}: no complete answer within the call's timeout of {timeout:g} s",
                                  retryable=True, kind="deadline")
        return AIServiceError(f"POST {self.shown}: the AI client was closed", retryable=False, kind="closed")

    def _transport_error(self, error: BaseException, in_body: bool, stream: bool) -> AIServiceError:
        cause = scrub(self.config.api_key, _root_cause(error))
        if isinstance(error, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
            return AIServiceError(f"POST {self.shown}: could not connect within {self.config.connect_timeout:g} s",
                                  retryable=True, kind="connect")
        if isinstance(error, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
            return AIServiceError(f"POST {self.shown}: the service sent nothing for {self.config.read_timeout:g} s (read timeout)",
                                  retryable=True, kind="timeout")
        if in_body and stream:
            return AIServiceError(f"POST {self.shown}: the stream broke off before its end ({cause})",
                                  retryable=True, kind="stream")
        if in_body:
            return AIServiceError(f"POST {self.shown}: the answer broke off before its end ({cause})",
                                  retryable=True, kind="connect")
        return AIServiceError(f"POST {self.shown}: connection failed ({cause})", retryable=True, kind="connect")

    def _read_body(self, response) -> bytearray:
        # One growing buffer, not a list of pieces joined at the end: the join held the
        # answer twice (a 30 MB answer peaked at 4x its size by the end of the run).
        body = bytearray()
        while True:
            piece = response.raw.read(_READ_SIZE, decode_content=True)
            if not piece:
                return body
            if len(body) + len(piece) > MAX_ANSWER_BYTES:
                raise AIServiceError(f"POST {self.shown}: the answer is larger than {MAX_ANSWER_BYTES} bytes",
                                     retryable=False, kind="protocol")
            body += piece

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
            scrub(self.config.api_key, f"POST {self.shown}: HTTP {status}: {message}"),
            retryable=retryable, kind="http", status=status,
            retry_after=retry_after_seconds(response.headers) if retryable else None)

    def _redirect_error(self, status: int) -> AIServiceError:
        """A 3xx: the configured URL is not the service's. Not retryable, as the next attempt
        gets the same answer; the Location is left out, as it may carry credentials."""
        return AIServiceError(
            f"POST {self.shown}: HTTP {status}: the service answered with a redirect, which the "
            "AI client does not follow (the API key goes only to the configured URL); "
            "set RUNNER_AI_SERVICE_URL to the service's own address",
            retryable=False, kind="protocol", status=status)

    def _read_answer(self, response, model: str, on_text, started: float) -> Completion:
        raw = self._read_body(response)
        try:
            doc = orjson.loads(raw)     # straight from the bytes: json.loads decoded them to a str first
            del raw
            text, served, prompt_tokens, completion_tokens = self._protocol.parse_answer(doc)
        except ValueError as error:
            reason = "not JSON" if isinstance(error, orjson.JSONDecodeError) else str(error)
            raise AIServiceError(scrub(self.config.api_key, f"POST {self.shown}: unexpected answer: {reason}"),
                                 retryable=False, kind="protocol") from None
        release_large_garbage(len(text))
        latency = (time.perf_counter() - started) * 1000.0
        if on_text is not None and text:
            deliver(on_text, text)
        return Completion(text=text, model=served or model, provider=self.config.provider,
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
                raise AIServiceError(f"POST {self.shown}: the stream is larger than {MAX_ANSWER_BYTES} bytes",
                                     retryable=False, kind="protocol")
            try:
                events = parser.feed(chunk) if chunk else parser.close()
            except EventStreamError as error:
                raise AIServiceError(f"POST {self.shown}: {error}", retryable=False, kind="protocol") from None
            for event in events:
                piece = reader.read(event)
                if piece:
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - started) * 1000.0
                    pieces.append(piece)
                    if on_text is not None:
                        deliver(on_text, piece)
                if reader.finished:
                    break
            if cancel is not None and cancel.is_set():
                raise AIServiceError(f"POST {self.shown}: cancelled", retryable=False, kind="cancelled")
            if not chunk:
                break
        if reader.finished:
            self._drain(response)
        else:
            raise AIServiceError(
                f"POST {self.shown}: the stream ended without its final event ({reader.final_event!r})",
                retryable=True, kind="stream")
        text = "".join(pieces)
        del pieces
        release_large_garbage(len(text))
        return Completion(text=text, model=reader.model or model, provider=self.config.provider,
                          prompt_tokens=reader.prompt_tokens, completion_tokens=reader.completion_tokens,
                          latency_ms=(time.perf_counter() - started) * 1000.0,
                          time_to_first_token_ms=first_token_ms)
