"""The offline provider: answers from the prompt alone, so demos and tests need no service.

The answer is the prompt itself, prefixed with "echo: ", cut before the first `stop`
sequence and to `max_tokens` pieces when sampling asks for them; one "token" is one
whitespace-delimited piece. Other sampling settings change nothing.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable

from runner.ai.completion import Completion
from runner.ai.errors import AIServiceError

MODEL = "echo"
_PIECE = re.compile(r"\S+\s*|\s+")


def _check(cancel: threading.Event | None, deadline: float | None) -> None:
    if cancel is not None and cancel.is_set():
        raise AIServiceError("echo: cancelled", retryable=False, kind="cancelled")
    if deadline is not None and time.monotonic() >= deadline:
        raise AIServiceError("echo: the call's timeout passed", retryable=True, kind="deadline")


def complete(prompt: str, *, sampling: dict, stream: bool,
             on_text: Callable[[str], None] | None,
             cancel: threading.Event | None, deadline: float | None) -> Completion:
    started = time.perf_counter()
    _check(cancel, deadline)
    text = "echo: " + prompt
    for stop in sampling.get("stop", ()):
        text = text.split(stop, 1)[0]
    pieces = _PIECE.findall(text)
    max_tokens = sampling.get("max_tokens")
    if max_tokens is not None:
        pieces = pieces[:max_tokens]
    first_token_ms = None
    if stream:
        for piece in pieces:
            _check(cancel, deadline)
            if first_token_ms is None:
                first_token_ms = (time.perf_counter() - started) * 1000.0
            if on_text is not None:
                on_text(piece)
    return Completion(
        text="".join(pieces),
        model=MODEL,
        provider="echo",
        prompt_tokens=len(prompt.split()),
        completion_tokens=len(pieces),
        latency_ms=(time.perf_counter() - started) * 1000.0,
        time_to_first_token_ms=first_token_ms,
    )
