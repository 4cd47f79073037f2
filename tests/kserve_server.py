"""A real KServe v2 inference server (gRPC) on 127.0.0.1 for the tests and the benchmark.

It is strict like Triton: an unknown model is NOT_FOUND, an input the model does not
declare, or one of the wrong data type or rank, is INVALID_ARGUMENT. Each model answers
"reply to: <prompt>", unary or streamed piece by piece (Triton's ModelStreamInfer, with
its final-response flag when asked). Tests queue failures with `plan`, read what arrived
in `seen`, and learn which calls the server saw cancelled in `cancelled`.

    python tests/kserve_server.py [--delay SECONDS]   # prints grpc://127.0.0.1:PORT, serves until stdin closes
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.ai.proto import grpc_service_pb2 as pb  # noqa: E402
from runner.ai.proto import grpc_service_pb2_grpc as pb_grpc  # noqa: E402
from runner.ai.proto import rpc_status_pb2  # noqa: E402

Code = grpc.StatusCode


@dataclass
class Model:
    """A model's declared tensors (name, datatype, shape) and how it answers."""
    name: str
    inputs: list
    outputs: list
    raw_output: bool = False        # answer in raw_output_contents instead of tensor contents
    ready: bool = True


# Triton's vLLM backend, as its model.json declares it.
VLLM = Model("vllm", inputs=[
    ("text_input", "BYTES", [1]), ("stream", "BOOL", [1]), ("sampling_parameters", "BYTES", [1]),
    ("exclude_input_in_output", "BOOL", [1]), ("return_num_input_tokens", "BOOL", [1]),
    ("return_num_output_tokens", "BOOL", [1])],
    outputs=[("text_output", "BYTES", [-1]), ("num_input_tokens", "UINT32", [1]),
             ("num_output_tokens", "UINT32", [1])])
# A minimal text model that answers in raw contents (as Triton's Python backends often do).
PLAIN = Model("plain", inputs=[("text_input", "BYTES", [-1])], outputs=[("text_output", "BYTES", [-1])],
              raw_output=True)
# TensorRT-LLM's ensemble: batched ([-1, 1]) inputs, one per sampling setting.
TRTLLM = Model("ensemble", inputs=[
    ("text_input", "BYTES", [-1, 1]), ("max_tokens", "INT32", [-1, 1]), ("temperature", "FP32", [-1, 1]),
    ("random_seed", "UINT64", [-1, 1]), ("stream", "BOOL", [-1, 1])],
    outputs=[("text_output", "BYTES", [-1, -1])])
# MLServer with a model-settings.json that lists no inputs or outputs (the common case for a
# custom runtime; KServe's Python Model does the same): ModelMetadata declares none.
UNDECLARED = Model("custom", inputs=[], outputs=[])
# Not a text model at all.
IMAGES = Model("resnet", inputs=[("input__0", "FP32", [3, 224, 224])], outputs=[("output__0", "FP32", [1000])])


@dataclass
class Abort:
    """The next call fails with `code`; retry_delay goes as google.rpc.RetryInfo, trailers as given."""
    code: Code
    details: str = "planned failure"
    retry_delay: float | None = None
    trailers: tuple = ()


@dataclass
class Seen:
    method: str
    request: object
    metadata: dict = field(default_factory=dict)


def _raw_bytes(elements) -> bytes:
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


class _Service(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, server: "KServeServer"):
        self.server = server

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.server.ready)

    def ModelReady(self, request, context):
        model = self.server.models.get(request.name)
        return pb.ModelReadyResponse(ready=model is not None and model.ready)

    def ModelMetadata(self, request, context):
        self.server.record("ModelMetadata", request, context)
        model = self._model(request.name, context)
        self.server.metadata_calls += 1
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=model.name, versions=["1"], platform="python",
            inputs=[tensor(name=n, datatype=d, shape=s) for n, d, s in model.inputs],
            outputs=[tensor(name=n, datatype=d, shape=s) for n, d, s in model.outputs])

    def ModelInfer(self, request, context):
        self.server.record("ModelInfer", request, context)
        model, prompt = self._admit(request, context)
        with self.server.counting():
            if not self._wait(context):
                return pb.ModelInferResponse()
        return self._answer(model, request, self.server.reply(prompt), prompt)

    def ModelStreamInfer(self, request_iterator, context):
        if not self.server.streaming:
            context.abort(Code.UNIMPLEMENTED, "Method not implemented!")
        for request in request_iterator:
            self.server.record("ModelStreamInfer", request, context)
            model, prompt = self._admit(request, context)
            text = self.server.reply(prompt)
            pieces = [piece + " " for piece in text.split(" ")]
            pieces[-1] = pieces[-1][:-1]
            for number, piece in enumerate(pieces):
                if number == 1 and not self._wait(context):
                    return
                yield pb.ModelStreamInferResponse(infer_response=self._answer(model, request, piece, prompt))
            if "triton_enable_empty_final_response" in request.parameters:
                final = pb.ModelInferResponse(model_name=model.name, id=request.id)
                final.parameters["triton_final_response"].bool_param = True
                yield pb.ModelStreamInferResponse(infer_response=final)

    # -- strictness, as Triton's ----------------------------------------------------------

    def _model(self, name, context) -> Model:
        model = self.server.models.get(name)
        if model is None:
            context.abort(Code.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
        return model

    def _admit(self, request, context):
        server = self.server
        if server.key is not None and server.metadata_of(context).get("authorization") != f"Bearer {server.key}":
            context.abort(Code.UNAUTHENTICATED, "a valid bearer token is required")
        action = server.next_action()
        if action is not None:
            trailers = list(action.trailers)
            if action.retry_delay is not None:
                delay = rpc_status_pb2.RetryInfo()
                delay.retry_delay.FromNanoseconds(int(action.retry_delay * 1e9))
                status = rpc_status_pb2.Status(code=action.code.value[0], message=action.details)
                status.details.add(type_url="type.googleapis.com/google.rpc.RetryInfo", value=delay.SerializeToString())
                trailers.append(("grpc-status-details-bin", status.SerializeToString()))
            if trailers:
                context.set_trailing_metadata(tuple(trailers))
            context.abort(action.code, action.details)
        model = self._model(request.model_name, context)
        declared = {n: (d, s) for n, d, s in model.inputs}
        prompt = None
        for tensor in request.inputs:
            if not declared:
                pass            # MLServer: a model that declares no inputs takes any it is sent
            elif tensor.name not in declared:
                context.abort(Code.INVALID_ARGUMENT,
                              f"[request id: <id_unknown>] unexpected inference input '{tensor.name}' for model '{model.name}'")
            datatype, shape = declared.get(tensor.name, (tensor.datatype, tensor.shape))
            if tensor.datatype != datatype or len(tensor.shape) != len(shape):
                context.abort(Code.INVALID_ARGUMENT, f"input '{tensor.name}': expected {datatype} of rank {len(shape)}")
            if tensor.name == "text_input":
                prompt = tensor.contents.bytes_contents[0].decode("utf-8")
        if prompt is None:
            context.abort(Code.INVALID_ARGUMENT, f"expected 1 inputs but got 0 inputs for model '{model.name}'")
        return model, prompt

    def _wait(self, context) -> bool:
        """Waits the server's delay; False (and the call recorded) when the client cancelled meanwhile."""
        delay = self.server.delay_for()
        if delay <= 0:
            return True
        ended = threading.Event()
        context.add_callback(ended.set)
        ended.wait(delay)
        if context.is_active():
            return True
        self.server.cancelled.append(context.peer())
        self.server.cancel_seen.set()
        return False

    def _answer(self, model: Model, request, text: str, prompt: str) -> pb.ModelInferResponse:
        answer = pb.ModelInferResponse(model_name=model.name, model_version="1", id=request.id)
        wanted = {t.name: t.contents.bool_contents[0] for t in request.inputs if t.contents.bool_contents}
        outputs = [("text_output", "BYTES", [1], [text.encode("utf-8")])]
        if wanted.get("return_num_input_tokens"):
            outputs.append(("num_input_tokens", "UINT32", [1], [len(prompt.split()) + 100]))
        if wanted.get("return_num_output_tokens"):
            outputs.append(("num_output_tokens", "UINT32", [1], [len(text.split()) + 200]))
        for name, datatype, shape, values in outputs:
            tensor = answer.outputs.add(name=name, datatype=datatype, shape=shape)
            if model.raw_output:
                answer.raw_output_contents.append(_raw_bytes(values) if datatype == "BYTES"
                                                  else b"".join(v.to_bytes(4, "little") for v in values))
            elif datatype == "BYTES":
                tensor.contents.bytes_contents.extend(values)
            else:
                tensor.contents.uint_contents.extend(values)
        return answer


class KServeServer:
    """A grpc.server on 127.0.0.1 serving `models`; `tls=(cert_pem, key_pem)` serves TLS."""

    def __init__(self, models=(VLLM, PLAIN, TRTLLM, IMAGES), *, delay: float = 0.0, streaming: bool = True,
                 key: str | None = None, tls: tuple[bytes, bytes] | None = None, port: int = 0, workers: int = 32):
        self.models = {m.name: m for m in models}
        self.delay = delay
        self.streaming = streaming
        self.key = key
        self.ready = True
        self.seen: list[Seen] = []
        self.cancelled: list[str] = []
        self.cancel_seen = threading.Event()
        self.request_seen = threading.Event()
        self.metadata_calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._plan: list = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                   options=(("grpc.so_reuseport", 0),))
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Service(self), self._server)
        address = f"127.0.0.1:{port}"
        if tls is None:
            self.port = self._server.add_insecure_port(address)
            self.url = f"grpc://127.0.0.1:{self.port}"
        else:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self._server.add_secure_port(address, credentials)
            self.url = f"grpcs://127.0.0.1:{self.port}"

    def __enter__(self) -> "KServeServer":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, grace: float | None = None) -> None:
        self._server.stop(grace).wait()

    def plan(self, *actions) -> None:
        """Actions for the next calls, one each: an Abort, or a float (seconds to wait before answering)."""
        with self._lock:
            self._plan.extend(actions)

    def next_action(self) -> Abort | None:
        with self._lock:
            if self._plan and isinstance(self._plan[0], Abort):
                return self._plan.pop(0)
        return None

    def delay_for(self) -> float:
        with self._lock:
            if self._plan and isinstance(self._plan[0], (int, float)):
                return float(self._plan.pop(0))
        return self.delay

    @contextlib.contextmanager
    def counting(self):
        """Counts inference calls in progress (most_in_flight: the highest count seen)."""
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    @staticmethod
    def metadata_of(context) -> dict:
        return {key: value for key, value in context.invocation_metadata()}

    @staticmethod
    def reply(prompt: str) -> str:
        return f"reply to: {prompt}"

    def record(self, method: str, request, context) -> None:
        with self._lock:
            self.seen.append(Seen(method, request, self.metadata_of(context)))
        self.request_seen.set()

    def inputs_of(self, number: int = -1) -> dict:
        """name -> (datatype, shape, value) of the inputs of the `number`th inference request seen."""
        request = [s for s in self.seen if s.method != "ModelMetadata"][number].request
        found = {}
        for tensor in request.inputs:
            contents = tensor.contents
            values = (list(contents.bytes_contents) or list(contents.bool_contents) or list(contents.int_contents)
                      or list(contents.uint64_contents) or list(contents.fp32_contents))
            value = values[0] if values else None
            if tensor.name == "sampling_parameters":
                value = json.loads(value)
            found[tensor.name] = (tensor.datatype, list(tensor.shape), value)
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description="KServe v2 test server on 127.0.0.1")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=256)
    args = parser.parse_args()
    with KServeServer(delay=args.delay, workers=args.workers) as server:
        print(server.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
