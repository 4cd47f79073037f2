"""The KServe v2 Open Inference Protocol's text-generation conventions: the tensors of a prompt and its answer.

Triton's LLM backends (vLLM, TensorRT-LLM) and the servers that follow them take the prompt
as `text_input` (BYTES, one element), optional `stream` (BOOL), `sampling_parameters`
(BYTES, a JSON object) or one input per setting (`max_tokens`, `temperature`, ...), and
answer in `text_output` (BYTES). A strict server refuses an input its model does not
declare, so a request carries only inputs the model's metadata declares, with the declared
data type and a shape of ones in the declared rank. Only the wire format lives here:
sending is runner.ai.grpc_transport's job.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from runner.ai.proto import grpc_service_pb2 as pb

log = logging.getLogger("runner.ai")

TEXT_INPUT = "text_input"
TEXT_OUTPUT = "text_output"
STREAM_INPUT = "stream"
SAMPLING_INPUT = "sampling_parameters"
# vLLM's backend: without it, a non-streamed answer starts with the prompt.
EXCLUDE_INPUT = "exclude_input_in_output"
# vLLM's backend counts tokens when asked: (the BOOL input that asks, the output that answers).
TOKEN_COUNTS = {"prompt": ("return_num_input_tokens", "num_input_tokens"),
                "completion": ("return_num_output_tokens", "num_output_tokens")}
# A sampling setting sent as an input of its own (TensorRT-LLM's names) where the model declares one.
OWN_INPUTS = {"max_tokens": ("max_tokens",), "temperature": ("temperature",), "top_p": ("top_p",),
              "top_k": ("top_k",), "seed": ("seed", "random_seed")}
# Triton marks the last response of a streamed request when asked to.
FINAL_FLAG_REQUEST = "triton_enable_empty_final_response"
FINAL_FLAG = "triton_final_response"

# Each data type's field of InferTensorContents and whether it holds whole numbers.
_CONTENTS = {
    "BOOL": ("bool_contents", None), "BYTES": ("bytes_contents", None),
    "INT8": ("int_contents", int), "INT16": ("int_contents", int), "INT32": ("int_contents", int),
    "INT64": ("int64_contents", int),
    "UINT8": ("uint_contents", int), "UINT16": ("uint_contents", int), "UINT32": ("uint_contents", int),
    "UINT64": ("uint64_contents", int),
    "FP32": ("fp32_contents", float), "FP64": ("fp64_contents", float),
}
_RAW_INT_SIZES = {"INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8}


class WireError(ValueError):
    """An answer or a model that does not follow the conventions; the message says how."""


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def one_element_shape(self) -> list[int] | None:
        """The shape of one element in the declared rank ([1] when undeclared); None when the
        model fixes a dimension above 1 (it wants more than one element)."""
        if not self.shape:
            return [1]
        if any(size > 1 for size in self.shape):
            return None
        return [1] * len(self.shape)


class ModelSignature:
    """A model's declared inputs and outputs (from ModelMetadata), and the requests they allow."""

    def __init__(self, model: str, metadata: pb.ModelMetadataResponse):
        self.model = model
        self.inputs = {t.name: Tensor(t.name, t.datatype.upper(), tuple(t.shape)) for t in metadata.inputs}
        self.outputs = {t.name: Tensor(t.name, t.datatype.upper(), tuple(t.shape)) for t in metadata.outputs}
        if not self.inputs:
            # A model that declares no inputs (MLServer's model-settings.json without them, a
            # KServe Python Model) takes what it is sent: the conventional text model's.
            self.inputs = {TEXT_INPUT: Tensor(TEXT_INPUT, "BYTES", (1,))}
            if not self.outputs:
                self.outputs = {TEXT_OUTPUT: Tensor(TEXT_OUTPUT, "BYTES", (1,))}
        text = self.inputs.get(TEXT_INPUT)
        if text is None or text.datatype != "BYTES" or text.one_element_shape() is None:
            raise WireError(f"model {model!r} is not a text-generation model: it declares no {TEXT_INPUT} "
                            f"input of data type BYTES and one element (inputs: {self._listed(self.inputs)})")
        if self.outputs and TEXT_OUTPUT not in self.outputs:
            raise WireError(f"model {model!r} is not a text-generation model: it declares no {TEXT_OUTPUT} "
                            f"output (outputs: {self._listed(self.outputs)})")

    @staticmethod
    def _listed(tensors: dict) -> str:
        return ", ".join(f"{t.name} {t.datatype}" for t in tensors.values()) or "none"

    def can_stream(self) -> bool:
        return STREAM_INPUT in self.inputs

    def request(self, prompt: bytes, sampling: dict, stream: bool) -> pb.ModelInferRequest:
        """A ModelInferRequest carrying `prompt` and, where declared, the sampling and flags."""
        request = pb.ModelInferRequest(model_name=self.model)
        self._add(request, self.inputs[TEXT_INPUT], prompt)
        sent_alone = set()
        for setting, names in OWN_INPUTS.items():
            if setting in sampling:
                for name in names:
                    if name in self.inputs and self._add(request, self.inputs[name], sampling[setting]):
                        sent_alone.add(setting)
                        break
        if SAMPLING_INPUT in self.inputs and sampling:
            self._add(request, self.inputs[SAMPLING_INPUT], json.dumps(sampling).encode())
        elif sampling.keys() - sent_alone:
            log.debug("model %r declares no input for sampling settings %s: not sent", self.model,
                      ", ".join(sorted(sampling.keys() - sent_alone)))
        if STREAM_INPUT in self.inputs:
            self._add(request, self.inputs[STREAM_INPUT], stream)
        if EXCLUDE_INPUT in self.inputs:
            self._add(request, self.inputs[EXCLUDE_INPUT], True)
        for asks, answers in TOKEN_COUNTS.values():
            if asks in self.inputs and answers in self.outputs:
                self._add(request, self.inputs[asks], True)
        if stream:
            request.parameters[FINAL_FLAG_REQUEST].bool_param = True
        return request

    @staticmethod
    def _add(request: pb.ModelInferRequest, tensor: Tensor, value) -> bool:
        """Appends `value` as one element of `tensor`; False (nothing added) when its declared
        data type or shape cannot hold it."""
        field, number = _CONTENTS.get(tensor.datatype, (None, None))
        shape = tensor.one_element_shape()
        if field is None or shape is None:
            return False
        if tensor.datatype == "BOOL":
            if not isinstance(value, bool):
                return False
        elif tensor.datatype == "BYTES":
            if not isinstance(value, bytes):
                return False
        elif number is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return False
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        entry = request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=shape)
        getattr(entry.contents, field).append(value if number is None else number(value))
        return True


def _bytes_elements(raw: bytes) -> list[bytes]:
    """The elements of a raw BYTES tensor: each a 4-byte little-endian length and its bytes."""
    elements, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise WireError("a raw BYTES tensor ends inside an element's length")
        size = int.from_bytes(raw[at:at + 4], "little")
        at += 4
        if at + size > len(raw):
            raise WireError(f"a raw BYTES tensor's element of {size} bytes runs past its end")
        elements.append(raw[at:at + size])
        at += size
    return elements


def _output(response: pb.ModelInferResponse, name: str):
    """(tensor, raw contents or None) of the output `name`, or (None, None)."""
    for index, tensor in enumerate(response.outputs):
        if tensor.name == name:
            raw = response.raw_output_contents[index] if index < len(response.raw_output_contents) else None
            return tensor, raw
    return None, None


def text_of(response: pb.ModelInferResponse) -> str:
    """The answer's text: every element of text_output, as tensor contents or raw contents."""
    tensor, raw = _output(response, TEXT_OUTPUT)
    if tensor is None:
        names = ", ".join(t.name for t in response.outputs) or "none"
        raise WireError(f"the answer has no {TEXT_OUTPUT} tensor (outputs: {names})")
    elements = _bytes_elements(raw) if raw is not None else list(tensor.contents.bytes_contents)
    try:
        return "".join(element.decode("utf-8") for element in elements)
    except UnicodeDecodeError as error:
        raise WireError(f"{TEXT_OUTPUT} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def count_of(response: pb.ModelInferResponse, which: str) -> int | None:
    """The server's token count `which` ("prompt" or "completion") when the answer carries it."""
    tensor, raw = _output(response, TOKEN_COUNTS[which][1])
    if tensor is None:
        return None
    datatype = tensor.datatype.upper()
    if raw is not None:
        size = _RAW_INT_SIZES.get(datatype)
        if size is None or len(raw) < size:
            return None
        return int.from_bytes(raw[:size], "little", signed=datatype.startswith("INT"))
    field, number = _CONTENTS.get(datatype, (None, None))
    values = getattr(tensor.contents, field) if number is int else ()
    return int(values[0]) if values else None


def is_final(response: pb.ModelInferResponse) -> bool:
    """Whether Triton marked this streamed response as the request's last."""
    if FINAL_FLAG not in response.parameters:
        return False
    flag = response.parameters[FINAL_FLAG]
    return flag.WhichOneof("parameter_choice") == "bool_param" and flag.bool_param


def counted_pieces(text: str) -> int:
    """A token count where the server gives none: whitespace-delimited pieces (as the echo provider counts)."""
    return len(text.split())
