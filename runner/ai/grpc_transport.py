"""The gRPC transport of the AI client: the KServe v2 Open Inference Protocol (provider `kserve`).

Triton, KServe, Seldon MLServer and OpenVINO Model Server serve it. One channel per
client: one HTTP/2 connection carries every call of a run. A call is ModelInfer, or
Triton's ModelStreamInfer when streaming (a server without it answers UNIMPLEMENTED, and
the rest of the run goes unary). Each model's ModelMetadata is read once, so requests
carry only the inputs it declares (runner.ai.kserve). Every RPC's gRPC deadline is the
caller's remaining time; the client's Watchdog cancels it when the caller's cancel event
is set or the client closes, and the server sees the cancellation. Whether a failed call
may be retried follows its status code. This module imports grpc: the client loads it
only for the kserve provider.
"""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import DecodeError

from runner.ai import kserve
from runner.ai import completion
from runner.ai.completion import Completion
from runner.ai.errors import AIServiceError, CallbackFailed, deliver, retry_after_seconds, scrub
from runner.errors import ConfigurationError
from runner.ai.proto import grpc_service_pb2 as pb
from runner.ai.proto import grpc_service_pb2_grpc as pb_grpc
from runner.ai.proto import rpc_status_pb2
from runner.ai.watchdog import AbortHandle, Watchdog, WatchedRequest
from runner.trace.ids import trace_metadata

log = logging.getLogger("runner.ai")

Code = grpc.StatusCode
# Another attempt can succeed: the server is down or restarting, overloaded, or lost a race.
# INTERNAL and UNKNOWN are a server's 5xx; CANCELLED here is the server's (ours is caught first).
RETRYABLE = frozenset({Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED, Code.ABORTED, Code.INTERNAL, Code.UNKNOWN,
                       Code.CANCELLED})
# DEADLINE_EXCEEDED is retryable when the server's deadline, not ours, ran out (the task has time left).
OUR_DEADLINE_SLACK = 0.05
# After a streamed answer's final response, how long the server may take to end the call
# before it is cancelled (a server holding the stream open costs nothing more).
STREAM_END_WAIT = 0.25
# What grpc says, on either side, of a message over its size limit: the same message
# will be refused again, so RESOURCE_EXHAUSTED is then no reason to retry.
TOO_LARGE = "message larger than max"


class _CallAbort(AbortHandle):
    """An AbortHandle whose abort cancels a gRPC call (a Future or a streaming call)."""

    __slots__ = ()

    def attach(self, call) -> None:
        with self._lock:
            self._conn = call
            aborted = self.reason is not None
        if aborted:
            call.cancel()

    def abort(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            call = self._conn
        if call is not None:
            call.cancel()


class _StreamUnimplemented(Exception):
    pass


def _target(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"


def _retry_delay(error: grpc.RpcError) -> float | None:
    """The wait the server asks for: google.rpc.RetryInfo in the status details, or a
    retry-after / retry-after-ms trailer."""
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:       # a call that never reached the server has no trailers to give
        return None
    texts, details = {}, None
    for key, value in trailers:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            details = value
        elif isinstance(value, str):
            texts[key.lower()] = value
    if details is not None:
        try:
            status = rpc_status_pb2.Status.FromString(details)
            for detail in status.details:
                if detail.type_url.rsplit("/", 1)[-1] == "google.rpc.RetryInfo":
                    delay = rpc_status_pb2.RetryInfo.FromString(detail.value).retry_delay
                    return max(0.0, delay.seconds + delay.nanos / 1e9)
        except DecodeError:
            pass
    return retry_after_seconds(texts)


class GRPCTransport:
    """KServe v2 calls over one channel to `config.base_url` (grpc://host:port or grpcs://host:port)."""

    def __init__(self, config, watchdog: Watchdog):
        self.config = config
        self.shown = config.base_url
        self._watchdog = watchdog
        target = _target(config.base_url)
        options = (("grpc.max_receive_message_length", completion.MAX_ANSWER_BYTES),
                   ("grpc.max_send_message_length", -1),
                   ("grpc.enable_retries", 0))      # the executor retries, within each task's budget
        if urlsplit(config.base_url).scheme == "grpcs":
            roots = None
            if config.ca_file:
                try:
                    with open(config.ca_file, "rb") as file:
                        roots = file.read()
                except OSError as error:
                    raise ConfigurationError(f"RUNNER_AI_CA_FILE={config.ca_file!r}: cannot read: "
                                     f"{error.strerror or error}") from None
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots),
                                                options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {config.api_key}"),) if config.api_key else None
        self._signatures: dict[str, kserve.ModelSignature] = {}
        self._signature_lock = threading.Lock()
        self._streaming = True       # until a server answers ModelStreamInfer with UNIMPLEMENTED
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._channel.close()        # cancels every call still in flight

    def prepare(self, prompt: str, model: str, sampling: dict, stream: bool):
        """The prompt's bytes and the sampling; ValueError when the prompt cannot be encoded."""
        try:
            return prompt.encode("utf-8"), sampling
        except UnicodeEncodeError as error:
            raise ValueError(f"prompt: not valid Unicode text ({error.reason} at character {error.start})") from None

    # -- calls --------------------------------------------------------------------------

    def send(self, request, model: str, stream: bool, on_text, cancel, deadline, timeout) -> Completion:
        """One completion: ModelStreamInfer when streaming (while the server has it), else ModelInfer."""
        prompt, sampling = request
        handle = _CallAbort(cancel, None)      # grpc enforces the deadline itself
        started = time.perf_counter()
        try:
            with WatchedRequest(self._watchdog, handle):
                signature = self._signature(model, handle, deadline, timeout)
                if stream and self._streaming:
                    try:
                        return self._streamed(signature, prompt, sampling, model, on_text, handle, deadline,
                                              timeout, started)
                    except _StreamUnimplemented as unimplemented:
                        self._stop_streaming(str(unimplemented))
                return self._unary(signature, prompt, sampling, model, on_text, handle, deadline, timeout, started)
        except CallbackFailed as failed:
            raise failed.error from None

    def check_ready(self, models: list[str], deadline: float) -> None:
        """ServerReady, then ModelReady and ModelMetadata of each model; AIServiceError naming what is not ready."""
        handle = _CallAbort(None, None)
        limit = max(0.0, round(deadline - time.monotonic(), 3))     # what a timeout message names
        try:
            self._check_ready(models, handle, deadline, limit)
        except AIServiceError as error:
            if error.kind != "deadline":
                raise
            raise AIServiceError(f"{error} (RUNNER_AI_CONNECT_TIMEOUT, the limit of the check before a run)",
                                 retryable=error.retryable, kind=error.kind) from None

    def _check_ready(self, models: list[str], handle, deadline: float, limit: float) -> None:
        with WatchedRequest(self._watchdog, handle):
            answer = self._call(self._stub.ServerReady, pb.ServerReadyRequest(), handle, deadline, limit,
                                "ServerReady", None)
            if not answer.ready:
                raise AIServiceError(f"{self.shown} ServerReady: the inference server is not ready",
                                     retryable=False, kind="grpc")
            for model in models:
                answer = self._call(self._stub.ModelReady, pb.ModelReadyRequest(name=model), handle, deadline,
                                    limit, "ModelReady", model)
                if not answer.ready:
                    raise AIServiceError(f"{self.shown} ModelReady: model {model!r} is not ready (the server "
                                         "does not serve a model of that name, or it is still loading)",
                                         retryable=False, kind="grpc", code="NOT_FOUND")
                self._signature(model, handle, deadline, limit)

    def _stop_streaming(self, details: str) -> None:
        if self._streaming:
            self._streaming = False
            log.warning("%s answers ModelStreamInfer with UNIMPLEMENTED (%s): the rest of the run uses unary "
                        "ModelInfer, each answer arriving whole", self.shown, details)

    def _signature(self, model: str, handle, deadline, timeout) -> kserve.ModelSignature:
        """The model's declared tensors, read once per client (one ModelMetadata call per model)."""
        found = self._signatures.get(model)
        if found is not None:
            return found
        if not self._signature_lock.acquire(timeout=self._time_left(deadline, handle, timeout, "ModelMetadata")):
            raise self._aborted("deadline", "ModelMetadata", timeout)
        try:
            found = self._signatures.get(model)
            if found is None:
                answer = self._call(self._stub.ModelMetadata, pb.ModelMetadataRequest(name=model), handle,
                                    deadline, timeout, "ModelMetadata", model)
                try:
                    found = kserve.ModelSignature(model, answer)
                except kserve.WireError as error:
                    raise AIServiceError(scrub(self.config.api_key, f"{self.shown} ModelMetadata: {error}"),
                                         retryable=False, kind="protocol") from None
                self._signatures[model] = found
            return found
        finally:
            self._signature_lock.release()

    def _time_left(self, deadline, handle, timeout, what: str) -> float:
        if deadline is None:
            return self.config.read_timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._aborted(handle.reason or "deadline", what, timeout)
        return left

    def _call(self, method, request, handle, deadline, timeout, what: str, model: str | None):
        """One unary RPC; its answer, else AIServiceError.

        A call with a cancel event goes through grpc's Future, which the watchdog can
        cancel; one without blocks in grpc's cheaper direct path (a third less CPU per
        call), which closing the channel still cancels, and grpc ends at its deadline.
        """
        time_left = self._time_left(deadline, handle, timeout, what)
        try:
            if handle.cancel is None:
                return method(request, timeout=time_left, metadata=trace_metadata(self._metadata))
            future = method.future(request, timeout=time_left, metadata=trace_metadata(self._metadata))
            handle.attach(future)
            return future.result()
        except grpc.FutureCancelledError:
            raise self._aborted(handle.reason or "cancelled", what, timeout) from None
        except grpc.RpcError as error:
            raise self._rpc_error(error, what, model, handle, deadline, timeout) from None
        except ValueError:
            if self._closed:        # "Cannot invoke RPC on closed channel!"
                raise self._aborted("closed", what, timeout) from None
            raise

    def _unary(self, signature, prompt: bytes, sampling, model, on_text, handle, deadline, timeout,
               started) -> Completion:
        answer = self._call(self._stub.ModelInfer, signature.request(prompt, sampling, False), handle, deadline,
                            timeout, "ModelInfer", model)
        try:
            text = kserve.text_of(answer)
        except kserve.WireError as error:
            raise AIServiceError(scrub(self.config.api_key, f"{self.shown} ModelInfer: unexpected answer: {error}"),
                                 retryable=False, kind="protocol") from None
        latency = (time.perf_counter() - started) * 1000.0
        if on_text is not None and text:
            deliver(on_text, text)
        prompt_tokens = kserve.count_of(answer, "prompt")
        completion_tokens = kserve.count_of(answer, "completion")
        return Completion(
            text=text, model=answer.model_name or model, provider="kserve",
            prompt_tokens=kserve.counted_pieces(prompt.decode("utf-8")) if prompt_tokens is None else prompt_tokens,
            completion_tokens=kserve.counted_pieces(text) if completion_tokens is None else completion_tokens,
            latency_ms=latency, time_to_first_token_ms=None)

    def _streamed(self, signature, prompt: bytes, sampling, model, on_text, handle, deadline, timeout,
                  started) -> Completion:
        what = "ModelStreamInfer"
        request = signature.request(prompt, sampling, True)
        call = self._stub.ModelStreamInfer(iter((request,)), timeout=self._time_left(deadline, handle, timeout, what),
                                           metadata=trace_metadata(self._metadata))
        handle.attach(call)
        pieces: list[str] = []
        first_token_ms = None
        served = None
        prompt_tokens = completion_tokens = None
        responses = size = 0
        finished = False
        try:
            for item in call:
                if item.error_message:
                    raise AIServiceError(scrub(self.config.api_key, f"{self.shown} {what}: the server reported "
                                               f"an error: {item.error_message}"), retryable=False, kind="stream")
                answer = item.infer_response
                responses += 1
                served = answer.model_name or served
                try:
                    piece = kserve.text_of(answer) if answer.outputs else ""
                except kserve.WireError as error:
                    raise AIServiceError(scrub(self.config.api_key, f"{self.shown} {what}: unexpected answer: "
                                               f"{error}"), retryable=False, kind="protocol") from None
                counted = kserve.count_of(answer, "prompt")
                if counted is not None and prompt_tokens is None:
                    prompt_tokens = counted
                counted = kserve.count_of(answer, "completion")
                if counted is not None:
                    completion_tokens = (completion_tokens or 0) + counted
                size += answer.ByteSize()
                if size > completion.MAX_ANSWER_BYTES:
                    raise AIServiceError(f"{self.shown} {what}: the stream is larger than "
                                         f"{completion.MAX_ANSWER_BYTES} bytes", retryable=False, kind="protocol")
                if piece:
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - started) * 1000.0
                    pieces.append(piece)
                    if on_text is not None:
                        deliver(on_text, piece)
                if kserve.is_final(answer):
                    finished = True
                    break
        except grpc.RpcError as error:
            if handle.reason is None and error.code() == Code.UNIMPLEMENTED and not responses:
                raise _StreamUnimplemented(error.details() or "no details") from None
            raise self._rpc_error(error, what, model, handle, deadline, timeout) from None
        finally:
            if not call.done():
                if finished:
                    ended = threading.Event()
                    call.add_done_callback(lambda _: ended.set())
                    ended.wait(STREAM_END_WAIT)
                call.cancel()
        if handle.reason is not None:
            raise self._aborted(handle.reason, what, timeout)
        if not responses:
            raise AIServiceError(f"{self.shown} {what}: the stream ended without an answer",
                                 retryable=True, kind="stream")
        text = "".join(pieces)
        return Completion(
            text=text, model=served or model, provider="kserve",
            prompt_tokens=kserve.counted_pieces(prompt.decode("utf-8")) if prompt_tokens is None else prompt_tokens,
            completion_tokens=len(pieces) if completion_tokens is None else completion_tokens,
            latency_ms=(time.perf_counter() - started) * 1000.0, time_to_first_token_ms=first_token_ms)

    # -- what a failure means -----------------------------------------------------------

    def _aborted(self, reason: str, what: str, timeout) -> AIServiceError:
        if reason == "cancelled":
            return AIServiceError(f"{self.shown} {what}: cancelled", retryable=False, kind="cancelled")
        if reason == "deadline":
            limit = self.config.read_timeout if timeout is None else timeout
            return AIServiceError(f"{self.shown} {what}: no complete answer within the call's timeout of {limit:g} s",
                                  retryable=True, kind="deadline")
        return AIServiceError(f"{self.shown} {what}: the AI client was closed", retryable=False, kind="closed")

    def _rpc_error(self, error: grpc.RpcError, what: str, model, handle, deadline, timeout) -> AIServiceError:
        if handle.reason is not None:
            return self._aborted(handle.reason, what, timeout)
        code = error.code()
        details = (error.details() or "no details").strip()
        if code == Code.DEADLINE_EXCEEDED and (deadline is None or deadline - time.monotonic() < OUR_DEADLINE_SLACK):
            return self._aborted("deadline", what, timeout)
        name = code.name if code is not None else "UNKNOWN"
        subject = f"model {model!r}: " if code == Code.NOT_FOUND and model is not None else ""
        retryable = code in RETRYABLE or code == Code.DEADLINE_EXCEEDED
        if code == Code.RESOURCE_EXHAUSTED and TOO_LARGE in details.lower():
            retryable = False
        return AIServiceError(scrub(self.config.api_key, f"{self.shown} {what}: {name}: {subject}{details}"),
                              retryable=retryable, kind="grpc", code=name,
                              retry_after=_retry_delay(error) if retryable else None)
