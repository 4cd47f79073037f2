"""The Anthropic Messages protocol: the wire format only (body, headers, answers, stream events)."""
from __future__ import annotations

import json

from runner.ai.errors import AIServiceError
from runner.ai.sse import ServerSentEvent

NAME = "anthropic"
PATH = "/messages"
API_VERSION = "2023-06-01"
# The Messages API requires max_tokens; this is what a task gets when it sets none.
DEFAULT_MAX_TOKENS = 1024
SAMPLING = ("temperature", "top_p", "top_k", "max_tokens", "stop")     # no seed in this API: it is dropped
TEMPERATURE_MAX = 1.0       # the Messages API refuses more (400)


def headers(api_key: str | None) -> dict:
    found = {"Content-Type": "application/json", "Accept": "application/json",
             "anthropic-version": API_VERSION}
    if api_key:
        found["x-api-key"] = api_key
    return found


def sendable(sampling: dict) -> dict:
    """The sampling settings this API receives of `sampling` (checked ones), within its ranges."""
    sent = {name: sampling[name] for name in SAMPLING if sampling.get(name) is not None}
    if "temperature" in sent:
        sent["temperature"] = min(sent["temperature"], TEMPERATURE_MAX)
        # Newer models refuse temperature and top_p together (400), and Anthropic advises
        # setting only one: the temperature, the setting modes and tasks steer with, wins.
        sent.pop("top_p", None)
    sent.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return sent


def body(prompt: str, model: str, sampling: dict, stream: bool) -> dict:
    sent = sendable(sampling)
    doc = {
        "model": model,
        "max_tokens": sent.pop("max_tokens"),
        "messages": [{"role": "user", "content": prompt}],
    }
    if "stop" in sent:
        doc["stop_sequences"] = sent.pop("stop")
    doc.update(sent)
    if stream:
        doc["stream"] = True
    return doc


def _int(value) -> int | None:
    return value if isinstance(value, int) else None


def parse_answer(doc) -> tuple[str, str | None, int | None, int | None]:
    """(text, model, input_tokens, output_tokens); the text is the answer's text blocks joined."""
    if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
        raise ValueError("expected a message with a content list in the answer")
    text = "".join(block.get("text", "") for block in doc["content"]
                   if isinstance(block, dict) and block.get("type") == "text")
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    model = doc.get("model")
    return (text, model if isinstance(model, str) else None,
            _int(usage.get("input_tokens")), _int(usage.get("output_tokens")))


def error_message(doc) -> str | None:
    """The message of {"type": "error", "error": {"type": ..., "message": ...}}."""
    if not isinstance(doc, dict):
        return None
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type")
        return f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]
    return None


class StreamReader:
    """Reads the events of a streamed message; `finished` once message_stop arrived."""

    final_event = "message_stop"

    def __init__(self):
        self.finished = False
        self.model: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, event: ServerSentEvent) -> str | None:
        if event.event == "ping":
            return None
        try:
            doc = json.loads(event.data)
        except ValueError:
            raise AIServiceError(f"stream event {event.event!r} is not JSON: {event.data[:200]!r}",
                                 retryable=False, kind="protocol") from None
        if not isinstance(doc, dict):
            raise AIServiceError("stream event is not a JSON object", retryable=False, kind="protocol")
        kind = doc.get("type", event.event)
        if kind == "error":
            # Mid-stream errors are overload or server errors: another attempt may succeed.
            raise AIServiceError(f"the service reported an error mid-stream: {error_message(doc)}",
                                 retryable=True, kind="stream")
        if kind == "message_start":
            message = doc.get("message") if isinstance(doc.get("message"), dict) else {}
            if isinstance(message.get("model"), str):
                self.model = message["model"]
            usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
            self.prompt_tokens = _int(usage.get("input_tokens"))
            self.completion_tokens = _int(usage.get("output_tokens"))
        elif kind == "content_block_delta":
            delta = doc.get("delta") if isinstance(doc.get("delta"), dict) else {}
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return delta["text"] or None
        elif kind == "message_delta":
            usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
            if _int(usage.get("output_tokens")) is not None:
                self.completion_tokens = usage["output_tokens"]
        elif kind == "message_stop":
            self.finished = True
        return None
