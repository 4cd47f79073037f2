"""AIClient: one attempt at one completion, within the client's shared limits.

The executor owns retries, backoff and each task's retry budget; this module makes a
single attempt and says, through AIServiceError.retryable and .retry_after, whether and
when another can succeed. One client is shared by every task of a run and of a batch:
its in-flight limit, rate limits and connections are what make the limits real.

What travels on the wire is the transport's business, a part the client holds and can
swap: HTTP (runner.ai.http_transport, for the openai and anthropic protocols) or gRPC
(runner.ai.grpc_transport, the KServe v2 protocol, imported only when used). Limits,
accounting, cancellation and the record of a call are the same for every transport.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from runner.ai import anthropic, echo, openai_compat
from runner.ai.completion import Completion, utc_stamp
from runner.ai.settings import AISettings
from runner.ai.errors import AIServiceError
from runner.ai.limits import InFlightLimit, RateLimit
from runner.ai.sampling import checked_sampling
from runner.errors import ConfigurationError
from runner.ai.watchdog import Watchdog

log = logging.getLogger("runner.ai")

PROTOCOLS = {"openai": openai_compat, "anthropic": anthropic}


def sent_sampling(provider: str, sampling: dict | None) -> dict:
    """The sampling settings `provider` receives of `sampling`: checked (ParameterError naming a bad
    one), then what its API takes, within its ranges; the echo provider gets them as checked."""
    checked = checked_sampling(sampling)
    protocol = PROTOCOLS.get(provider)
    return protocol.sendable(checked) if protocol is not None else checked


class AIClient:
    """Thread-safe AI client: a transport (HTTP or gRPC), limits shared by all callers."""

    def __init__(self, config: AISettings | None = None):
        self.config = config = config or AISettings()
        self._limit = InFlightLimit(config.max_concurrency)
        self._requests_per_minute = RateLimit(config.requests_per_minute) if config.requests_per_minute else None
        self._tokens_per_minute = RateLimit(config.tokens_per_minute) if config.tokens_per_minute else None
        self._closed = False
        self._watchdog = Watchdog()
        self._transport = _transport_for(config, self._watchdog)

    def __repr__(self) -> str:
        where = f", url={self._transport.shown!r}" if self._transport is not None else ""
        return f"AIClient(provider={self.provider!r}{where}, model={self.default_model!r})"

    @property
    def provider(self) -> str:
        return self.config.provider

    @property
    def default_model(self) -> str | None:
        """The model of calls that name none; None for a provider without a default (kserve)."""
        return self.config.default_model

    def close(self) -> None:
        """Abort requests in flight (their connections or calls are closed) and refuse new ones."""
        self._closed = True
        self._watchdog.close()
        if self._transport is not None:
            self._transport.close()

    def check_ready(self, models, timeout: float) -> None:
        """Before a run: is the service ready, and each of `models`? AIServiceError saying
        what is not. Only a transport whose protocol can tell (gRPC's ServerReady and
        ModelReady) asks anything; for the others this returns at once."""
        check = getattr(self._transport, "check_ready", None)
        if check is not None:
            check(sorted(set(models)), time.monotonic() + timeout)

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
        transport = self._transport
        if transport is None:
            sent_at = utc_stamp()
            completion = echo.complete(prompt, sampling=sampling, stream=stream, on_text=on_text,
                                       cancel=cancel, deadline=deadline)
            completion.started_at = sent_at
            return completion
        model = model.strip() if model else self.default_model
        if model is None:
            raise AIServiceError(f"AI provider {self.provider!r} has no default model: name one (parameters.model, "
                                 "the ALT file's metadata.model or RUNNER_AI_MODEL)", retryable=False, kind="protocol")
        request = transport.prepare(prompt, model, sampling, stream)

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
            sent_at = utc_stamp()
            completion = transport.send(request, model, stream, on_text, cancel, deadline, timeout)
            completion.started_at = sent_at
        except BaseException as error:
            if charged:
                self._tokens_per_minute.settle(estimate, 0)
            log.debug("AI request to %s failed: %s", transport.shown, error)
            raise
        finally:
            self._limit.release()
        if charged:
            used = (completion.prompt_tokens or 0) + (completion.completion_tokens or 0)
            self._tokens_per_minute.settle(estimate, used or estimate)
        log.debug("AI %s %s: %s+%s tokens in %.0f ms", completion.provider, completion.model,
                  completion.prompt_tokens, completion.completion_tokens, completion.latency_ms)
        return completion



def _transport_for(config: AISettings, watchdog: Watchdog):
    """The transport of `config.provider`; None for the offline echo provider."""
    if config.provider == "kserve":
        try:
            from runner.ai.grpc_transport import GRPCTransport
        except ImportError as error:
            raise ConfigurationError(f"RUNNER_AI_PROVIDER='kserve' needs the grpcio and protobuf packages "
                             f"({error}): pip install 'librunner[grpc]'") from None
        return GRPCTransport(config, watchdog)
    protocol = PROTOCOLS.get(config.provider)
    if protocol is None:
        return None
    from runner.ai.http_transport import HTTPTransport
    return HTTPTransport(config, protocol, watchdog)
