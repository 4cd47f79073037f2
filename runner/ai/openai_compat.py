"""The OpenAI-compatible Chat Completions protocol (OpenAI, Mistral, vLLM, Ollama, llama.cpp).

Only the wire format lives here: the request body and headers, and how answers, streamed
chunks and error bodies are read. Sending is the client's job.
"""
from __future__ import annotations

import json

from runner.ai.errors import AIServiceError
from runner.ai.sse import ServerSentEvent

NAME = "openai"
PATH = "/chat/completions"
# top_k is not OpenAI's own, but vLLM, Ollama and llama.cpp take it; OpenAI answers 400.
SAMPLING = ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop")
TEMPERATURE_MAX = 2.0       # OpenAI refuses more (400)


def headers(api_key: str | None) -> dict:
    found = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        found["Authorization"] = f"Bearer {api_key}"
    return found


def sendable(sampling: dict) -> dict:
    """The sampling settings this API receives of `sampling` (checked ones), within its ranges."""
    sent = {name: sampling[name] for name in SAMPLING if sampling.get(name) is not None}
    if "temperature" in sent:
        sent["temperature"] = min(sent["temperature"], TEMPERATURE_MAX)
    return sent


def body(prompt: str, model: str, sampling: dict, stream: bool) -> dict:
    doc = {"model": model, "messages": [{"role": "user", "content": prompt}], **sendable(sampling)}
    if stream:
        doc["stream"] = True
        # Without this the stream carries no usage, and token accounting would be lost.
        doc["stream_options"] = {"include_usage": True}
    return doc


def _usage(doc: dict) -> tuple[int | None, int | None]:
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None,
            completion if isinstance(completion, int) else None)


def parse_answer(doc) -> tuple[str, str | None, int | None, int | None]:
    """(text, model, prompt_tokens, completion_tokens) of a non-streamed answer; ValueError if it has no text."""
    try:
        text = doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("expected choices[0].message.content in the answer") from None
    if text is None:
        text = ""       # a refusal or a tool call: no text, which is still an answer
    if not isinstance(text, str):
        raise ValueError(f"choices[0].message.content: expected a string, found {type(text).__name__}")
    model = doc.get("model")
    return (text, model if isinstance(model, str) else None, *_usage(doc))


def error_message(doc) -> str | None:
    """The server's own message from an error body ({"error": {"message": ...}} or {"error": "..."})."""
    if not isinstance(doc, dict):
        return None
    error = doc.get("error", doc)
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail")
        if isinstance(message, str):
            return message
    return None


class StreamReader:
    """Reads the chunks of a streamed answer; `finished` once "[DONE]" arrived."""

    final_event = "[DONE]"

    def __init__(self):
        self.finished = False
        self.model: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, event: ServerSentEvent) -> str | None:
        """The text piece an event carries, if any."""
        if event.data == "[DONE]":
            self.finished = True
            return None
        try:
            chunk = json.loads(event.data)
        except ValueError:
            raise AIServiceError(f"stream chunk is not JSON: {event.data[:200]!r}",
                                 retryable=False, kind="protocol") from None
        if not isinstance(chunk, dict):
            raise AIServiceError("stream chunk is not a JSON object", retryable=False, kind="protocol")
        if "error" in chunk:
            raise AIServiceError(f"the service reported an error mid-stream: {error_message(chunk)}",
                                 retryable=True, kind="stream")
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.prompt_tokens, self.completion_tokens = _usage(chunk)
        choices = chunk.get("choices") or ()
        if not choices:
            return None
        try:
            piece = choices[0]["delta"].get("content")
        except (KeyError, TypeError, AttributeError):
            raise AIServiceError("stream chunk: expected choices[0].delta", retryable=False, kind="protocol") from None
        return piece if isinstance(piece, str) and piece else None
