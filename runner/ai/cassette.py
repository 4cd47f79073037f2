"""Record and replay of AI calls: a cassette is JSON Lines, one call per line.

    RUNNER_AI_RECORD=calls.jsonl    every call goes to the service and is written down
    RUNNER_AI_REPLAY=calls.jsonl    every call is answered from the cassette; no connection
    RUNNER_AI_REPLAY_SPEED          instant (default) or realtime (streamed pieces keep their pace)

Both wrap the client at the level of `complete`, so they cover any transport. A line is

    {"key": sha256 of the canonical request, "request": {provider, model, prompt, sampling},
     "stream": bool, "pieces": [[offset_ms, text], ...], "response": {text, model, provider,
     prompt_tokens, completion_tokens, latency_ms, time_to_first_token_ms}}
    or, for a call the service refused, "error": {message, kind, retryable, status, retry_after}

No header is recorded, and the writer refuses a line that contains the configured API key.
Calls with the same key are replayed in the order they were recorded (a failure, then the
retry's answer); past the last one, the last one answers again.
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import orjson

from runner.ai.completion import Completion
from runner.ai.errors import AIServiceError
from runner.ai.sampling import checked_sampling

REPLAY_SPEEDS = ("instant", "realtime")
# Failures that are the caller's or the moment's, not the service's answer: never recorded.
LOCAL_KINDS = frozenset({"cancelled", "closed", "deadline"})
REQUEST_FIELDS = ("provider", "model", "prompt", "sampling")


def canonical_request(provider: str, model: str, prompt: str, sampling: dict | None) -> dict:
    return {"provider": provider, "model": model, "prompt": prompt, "sampling": checked_sampling(sampling)}


def request_key(request: dict) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _model(client_default: str, model: str | None) -> str:
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ValueError(f"model: expected a non-empty string, found {model!r}")
    return model.strip() if model else client_default


class RecordingClient:
    """Forwards each call to `inner` and appends it, answer or refusal, to the cassette."""

    def __init__(self, inner, path, api_key: str | None = None):
        self.inner = inner
        self.path = Path(path)
        self._key = api_key
        self._lock = threading.Lock()
        self._handle = open(self.path, "ab")

    def __getattr__(self, name):
        # provider, default_model, config, check_ready, ...: the wrapped client's.
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()
        with self._lock:
            self._handle.close()

    def complete(self, prompt: str, *, model: str | None = None, sampling: dict | None = None,
                 stream: bool = False, on_text=None, cancel=None, timeout: float | None = None) -> Completion:
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a string, found {type(prompt).__name__}")
        request = canonical_request(self.provider, _model(self.default_model, model), prompt, sampling)
        pieces: list = []
        started = time.perf_counter()

        def keep(piece: str) -> None:
            pieces.append([round((time.perf_counter() - started) * 1000.0, 3), piece])
            if on_text is not None:
                on_text(piece)

        entry = {"key": request_key(request), "request": request, "stream": bool(stream)}
        try:
            completion = self.inner.complete(prompt, model=model, sampling=sampling, stream=stream,
                                             on_text=keep if stream else on_text, cancel=cancel, timeout=timeout)
        except AIServiceError as error:
            if error.kind not in LOCAL_KINDS:
                entry["error"] = {"message": str(error), "kind": error.kind, "retryable": error.retryable,
                                  "status": error.status, "retry_after": error.retry_after}
                self._write(entry)
            raise
        entry["pieces"] = pieces
        entry["response"] = {"text": completion.text, "model": completion.model, "provider": completion.provider,
                             "prompt_tokens": completion.prompt_tokens,
                             "completion_tokens": completion.completion_tokens,
                             "latency_ms": completion.latency_ms,
                             "time_to_first_token_ms": completion.time_to_first_token_ms}
        self._write(entry)
        return completion

    def _write(self, entry: dict) -> None:
        line = orjson.dumps(entry) + b"\n"
        key = self._key
        if key and (key.encode() in line or orjson.dumps(key)[1:-1] in line):
            raise AIServiceError(f"cassette {self.path}: refusing to record a call whose text contains the "
                                 "API key (RUNNER_AI_API_KEY)", retryable=False, kind="cassette")
        with self._lock:
            self._handle.write(line)
            self._handle.flush()


class ReplayClient:
    """Answers from a cassette only: it never opens a connection."""

    def __init__(self, path, *, provider: str, default_model: str, speed: str = "instant"):
        if speed not in REPLAY_SPEEDS:
            raise ValueError(f"RUNNER_AI_REPLAY_SPEED={speed!r}: expected one of {', '.join(REPLAY_SPEEDS)}")
        self.path = Path(path)
        self.provider = provider
        self.default_model = default_model
        self.speed = speed
        self._lock = threading.Lock()
        self._calls: dict[str, list] = {}
        self._served: dict[str, int] = {}
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError as error:
            raise ValueError(f"RUNNER_AI_REPLAY={self.path}: cannot read: {error.strerror or error}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
                self._calls.setdefault(entry["key"], []).append(entry)
                entry["request"]["prompt"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"RUNNER_AI_REPLAY={self.path}: line {number} is not a recorded call") from None

    def close(self) -> None:
        pass

    def complete(self, prompt: str, *, model: str | None = None, sampling: dict | None = None,
                 stream: bool = False, on_text=None, cancel=None, timeout: float | None = None) -> Completion:
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a string, found {type(prompt).__name__}")
        request = canonical_request(self.provider, _model(self.default_model, model), prompt, sampling)
        key = request_key(request)
        with self._lock:
            entries = self._calls.get(key)
            if not entries:
                raise AIServiceError(f"replay: no recorded call in {self.path} for this request; "
                                     f"{self._nearest(request)}", retryable=False, kind="replay")
            served = self._served.get(key, 0)
            self._served[key] = served + 1
            entry = entries[min(served, len(entries) - 1)]
        if "error" in entry:
            error = entry["error"]
            raise AIServiceError(f"{error.get('message')} (replayed)", retryable=bool(error.get("retryable")),
                                 kind=error.get("kind") or "http", status=error.get("status"),
                                 retry_after=error.get("retry_after"))
        answer = entry["response"]
        pieces = entry.get("pieces") or ([[0.0, answer["text"]]] if answer["text"] else [])
        started = time.perf_counter()
        if on_text is not None:
            for offset, piece in (pieces if stream else [[0.0, answer["text"]]] if answer["text"] else []):
                if self.speed == "realtime":
                    wait = offset / 1000.0 - (time.perf_counter() - started)
                    if wait > 0 and cancel is not None and cancel.wait(wait):
                        raise AIServiceError("replay: cancelled", retryable=False, kind="cancelled")
                    if wait > 0 and cancel is None:
                        time.sleep(wait)
                on_text(piece)
        if cancel is not None and cancel.is_set():
            raise AIServiceError("replay: cancelled", retryable=False, kind="cancelled")
        return Completion(text=answer["text"], model=answer["model"], provider=answer["provider"],
                          prompt_tokens=answer.get("prompt_tokens"), completion_tokens=answer.get("completion_tokens"),
                          latency_ms=answer.get("latency_ms") or 0.0,
                          time_to_first_token_ms=answer.get("time_to_first_token_ms"))

    def _nearest(self, request: dict) -> str:
        """How the request differs from the most similar recorded one."""
        if not self._calls:
            return "the cassette holds no calls"
        best, best_score = None, None
        for entries in self._calls.values():
            recorded = entries[0]["request"]
            differing = [f for f in REQUEST_FIELDS if recorded.get(f) != request.get(f)]
            score = (len(differing), -_common_prefix(str(recorded.get("prompt")), str(request.get("prompt"))))
            if best_score is None or score < best_score:
                best, best_score = (recorded, differing), score
        recorded, differing = best
        parts = []
        for field in differing:
            if field == "prompt":
                at = _common_prefix(recorded["prompt"], request["prompt"])
                parts.append(f"prompt (from character {at}: {_shown(request['prompt'][at:])} where the recording "
                             f"has {_shown(recorded['prompt'][at:])})")
            else:
                parts.append(f"{field} ({_shown(request.get(field))} where the recording has "
                             f"{_shown(recorded.get(field))})")
        return "the nearest recorded request differs in " + "; ".join(parts)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _shown(value) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
