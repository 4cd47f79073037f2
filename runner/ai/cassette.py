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
retry's answer); past the last one, the last one answers again. Every line is checked when
the cassette is loaded (a regular file of at most MAX_CASSETTE_BYTES; answers bounded like
live ones), so a bad one is refused before the run, naming the file and the line.
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from pathlib import Path

import orjson

from runner.ai.completion import MAX_ANSWER_BYTES, Completion, utc_stamp
from runner.ai.errors import AIServiceError
from runner.ai.sampling import checked_sampling
from runner.errors import ConfigurationError
from runner.settings import shown

log = logging.getLogger("runner")

REPLAY_SPEEDS = ("instant", "realtime")
# Failures that are the caller's or the moment's, not the service's answer: never recorded.
LOCAL_KINDS = frozenset({"cancelled", "closed", "deadline"})
REQUEST_FIELDS = ("provider", "model", "prompt", "sampling")
# Largest cassette loaded: it is read whole into memory before the run.
MAX_CASSETTE_BYTES = 256 * 1024 * 1024
MAX_TOKENS = 2 ** 53 - 1


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
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            _drop_partial_line(self._fd, self.path)
        except BaseException:
            os.close(self._fd)
            raise

    def __getattr__(self, name):
        # provider, default_model, config, check_ready, ...: the wrapped client's.
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

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
            # A line is whole or not there: what a full disk let through of it is cut off
            # again, so the calls before it (and after, if room comes back) replay.
            before = os.fstat(self._fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as error:
                try:
                    os.ftruncate(self._fd, before)
                except OSError:
                    pass        # replay ignores a last line cut short, with a warning
                raise AIServiceError(f"cassette {self.path}: cannot record the call: {error.strerror or error}",
                                     retryable=False, kind="cassette") from None


class ReplayClient:
    """Answers from a cassette only: it never opens a connection."""

    def __init__(self, path, *, provider: str, default_model: str, speed: str = "instant"):
        if speed not in REPLAY_SPEEDS:
            raise ConfigurationError(f"RUNNER_AI_REPLAY_SPEED={shown(speed)}: expected one of {', '.join(REPLAY_SPEEDS)}")
        self.path = Path(path)
        self.provider = provider
        self.default_model = default_model
        self.speed = speed
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._calls = load_cassette(self.path)

    def close(self) -> None:
        pass

    def complete(self, prompt: str, *, model: str | None = None, sampling: dict | None = None,
                 stream: bool = False, on_text=None, cancel=None, timeout: float | None = None) -> Completion:
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a string, found {type(prompt).__name__}")
        request = canonical_request(self.provider, _model(self.default_model, model), prompt, sampling)
        key = request_key(request)
        replayed_at = utc_stamp()
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
            raise AIServiceError(f"{error['message']} (replayed)", retryable=error.get("retryable") is True,
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
                          time_to_first_token_ms=answer.get("time_to_first_token_ms"), started_at=replayed_at)

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


def _drop_partial_line(fd: int, path: Path) -> None:
    """A recording appends to a cassette whose last line a crash cut short (no newline): that
    part is removed first, or the next call's line would be glued to it."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - (1 << 20))
    while True:
        chunk = os.pread(fd, size - start, start)
        end = chunk.rfind(b"\n")
        if end >= 0 or start == 0:
            keep = start + end + 1
            break
        start = max(0, start - (1 << 20))
    log.warning("cassette %s: its last line was cut short (%d bytes, a crash while recording): removed",
                path, size - keep)
    os.ftruncate(fd, keep)


def load_cassette(path: Path) -> dict[str, list]:
    """The cassette's calls by request key; ConfigurationError naming the file, and the line when one
    is not a well-formed recorded call."""
    where = f"RUNNER_AI_REPLAY={path}"
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise ConfigurationError(f"{where}: not a regular file")
            too_large = status.st_size > MAX_CASSETTE_BYTES
            data = b"" if too_large else handle.read(MAX_CASSETTE_BYTES + 1)
    except OSError as error:
        raise ConfigurationError(f"{where}: cannot read: {error.strerror or error}") from None
    if too_large or len(data) > MAX_CASSETTE_BYTES:
        raise ConfigurationError(f"{where}: larger than {MAX_CASSETTE_BYTES} bytes, the largest cassette loaded")
    calls: dict[str, list] = {}
    lines = data.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            if number == len(lines) and not data.endswith((b"\n", b"\r")):
                # A recording stopped in the middle of its last line (a crash, a full disk):
                # that call was never recorded whole; every one before it is used.
                log.warning("%s: line %d is cut short (no end of line: a recording that stopped while "
                            "writing it): ignored", where, number)
                break
            raise ConfigurationError(f"{where}: line {number}: not JSON: {error}") from None
        problem = _entry_problem(entry)
        if problem is not None:
            raise ConfigurationError(f"{where}: line {number}: not a recorded call: {problem}")
        calls.setdefault(entry["key"], []).append(entry)
    return calls


def _entry_problem(entry) -> str | None:
    """What is wrong with one cassette line, or None: the shape RecordingClient writes."""
    if not isinstance(entry, dict):
        return f"expected an object, found {_type(entry)}"
    if not isinstance(entry.get("key"), str):
        return f"key: expected a string, found {_type(entry.get('key'))}"
    request = entry.get("request")
    if not isinstance(request, dict):
        return f"request: expected an object, found {_type(request)}"
    for field in ("provider", "model", "prompt"):
        if not isinstance(request.get(field), str):
            return f"request.{field}: expected a string, found {_type(request.get(field))}"
    if request.get("sampling") is not None and not isinstance(request["sampling"], dict):
        return f"request.sampling: expected an object or null, found {_type(request['sampling'])}"
    if "stream" in entry and not isinstance(entry["stream"], bool):
        return f"stream: expected true or false, found {_type(entry['stream'])}"
    if "error" in entry:
        return _error_problem(entry["error"])
    response = entry.get("response")
    if not isinstance(response, dict):
        return f"response: expected an object (or an 'error' object), found {_type(response)}"
    for field in ("text", "model", "provider"):
        if not isinstance(response.get(field), str):
            return f"response.{field}: expected a string, found {_type(response.get(field))}"
    if len(response["text"].encode("utf-8", "surrogatepass")) > MAX_ANSWER_BYTES:
        return f"response.text: more than {MAX_ANSWER_BYTES} bytes, the largest answer accepted"
    for field in ("prompt_tokens", "completion_tokens"):
        value = response.get(field)
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_TOKENS):
            return f"response.{field}: expected an integer from 0 to 2^53-1 or null, found {_shown(value)}"
    for field in ("latency_ms", "time_to_first_token_ms"):
        value = response.get(field)
        if value is not None and not _non_negative(value):
            return f"response.{field}: expected a number >= 0 or null, found {_shown(value)}"
    pieces = entry.get("pieces")
    if pieces is not None:
        if not isinstance(pieces, list):
            return f"pieces: expected a list of [offset_ms, text], found {_type(pieces)}"
        for index, piece in enumerate(pieces):
            if not (isinstance(piece, list) and len(piece) == 2 and _non_negative(piece[0])
                    and isinstance(piece[1], str)):
                return f"pieces[{index}]: expected [offset_ms >= 0, text], found {_shown(piece)}"
    return None


def _error_problem(error) -> str | None:
    if not isinstance(error, dict):
        return f"error: expected an object, found {_type(error)}"
    if not isinstance(error.get("message"), str):
        return f"error.message: expected a string, found {_type(error.get('message'))}"
    if error.get("kind") is not None and not isinstance(error["kind"], str):
        return f"error.kind: expected a string, found {_type(error['kind'])}"
    if "retryable" in error and not isinstance(error["retryable"], bool):
        return f"error.retryable: expected true or false, found {_type(error['retryable'])}"
    if error.get("status") is not None and type(error["status"]) is not int:
        return f"error.status: expected an integer or null, found {_shown(error['status'])}"
    if error.get("retry_after") is not None and not _non_negative(error["retry_after"]):
        return f"error.retry_after: expected a number >= 0 or null, found {_shown(error['retry_after'])}"
    return None


def _non_negative(value) -> bool:
    return type(value) in (int, float) and 0 <= value < float("inf")


def _type(value) -> str:
    return "null" if value is None else type(value).__name__


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
