"""What a user's task handler is given: one attempt of one task (`task` in the docs).

    @runner.task_type("translate")
    def translate(task):
        task.log.info("translating %d words", len(task.parameters["text"].split()))
        return {"text": ...}

A plain function runs on one of the run's worker threads; an `async def` one on the run's
event loop. Its return value (any JSON value) is the task's output; raising fails the
attempt, and the task's retry_count and timeout_seconds apply as to any task. At the
deadline the attempt is recorded as timeout and `task.cancelled` is set; a thread cannot
be killed, so a function that ignores `cancelled` runs on, and what it returns is dropped.
An async handler is cancelled (asyncio.CancelledError) at its deadline as well.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace

_log = logging.getLogger("runner.task")
MAX_LOG_LINES = 1000            # per attempt; the record says how many were left out


class TaskLog:
    """A logger whose lines land in the task's record (metadata.log) and in the runner's log."""

    def __init__(self, task_id: str, metadata: dict):
        self._task_id = task_id
        self._metadata = metadata
        self._lock = threading.Lock()

    def _line(self, level: int, message, args) -> None:
        try:
            text = str(message) % args if args else str(message)
        except (TypeError, ValueError):
            text = f"{message} {args!r}"
        _log.log(level, "task %s: %s", self._task_id, text)
        with self._lock:
            lines = self._metadata.setdefault("log", [])
            if len(lines) < MAX_LOG_LINES:
                lines.append(f"{logging.getLevelName(level)} {text}")
            else:
                self._metadata["log_lines_dropped"] = self._metadata.get("log_lines_dropped", 0) + 1

    def debug(self, message, *args):
        self._line(logging.DEBUG, message, args)

    def info(self, message, *args):
        self._line(logging.INFO, message, args)

    def warning(self, message, *args):
        self._line(logging.WARNING, message, args)

    def error(self, message, *args):
        self._line(logging.ERROR, message, args)


class TaskWorkspace:
    """The run's workspace, with file_operation's rules: relative paths only, no symbolic
    link on the way, no FIFO or device, writes atomic, files written become artifacts."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.path = Path(ctx.workspace)

    def _do(self, operation: str, path: str, content: str | None = None):
        from runner.execution import file_operation
        parameters = {"operation": operation, "path": path}
        if content is not None:
            parameters["content"] = content
        return file_operation.run(SimpleNamespace(parameters=parameters, workspace=self.path,
                                                  metadata=self._ctx.metadata))

    def read_text(self, path: str) -> str:
        return self._do("read", path)["content"]

    def write_text(self, path: str, content: str) -> int:
        return self._do("write", path, content)["bytes_written"]

    def append_text(self, path: str, content: str) -> int:
        return self._do("append", path, content)["bytes_written"]

    def delete(self, path: str) -> None:
        self._do("delete", path)

    def list(self, path: str = ".") -> list:
        return self._do("list", path)["entries"]

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"TaskWorkspace({str(self.path)!r})"


class TaskAI:
    """The run's AI service, as an ai_prompt task uses it: RUNNER_AI_* configuration, rate
    limits, the attempt's deadline and cancellation, and --record / --replay cassettes."""

    def __init__(self, ctx):
        self._ctx = ctx

    def complete(self, prompt: str, *, model: str | None = None, **sampling) -> str:
        """The answer's text. Sampling: temperature, top_p, max_tokens, top_k, seed, stop.
        A failure fails the attempt (retried if it may pass, as an ai_prompt task's)."""
        from runner.execution.ai_prompt import _call
        from runner.execution.attempt import TaskFailure
        try:
            client = self._ctx.client()
        except ValueError as error:     # a RUNNER_AI_* variable with an unusable value
            raise TaskFailure(f"AI configuration: {error}", permanent=True) from None
        if client is None:      # an attempt placed on a Dask worker: the AI service is the submitter's
            raise TaskFailure("task.ai is not available to a task run on a Dask worker (its AI calls, limits and "
                              "cassettes are the submitting process's); run the file without --dask", permanent=True)
        completion = _call(self._ctx, client, prompt, model, sampling, False)
        self._account(completion.accounting())
        return completion.text

    def _account(self, call: dict) -> None:
        """metadata.ai of the task: the last call's model and provider, the calls' tokens summed."""
        metadata = self._ctx.metadata
        total = metadata.get("ai")
        if total is not None:
            for key in ("prompt_tokens", "completion_tokens", "latency_ms"):
                if total.get(key) is not None and call.get(key) is not None:
                    call[key] += total[key]
        metadata["ai"] = call


class UserTask:
    """One attempt of a task, as its handler sees it.

    id, parameters (without task_type), deps (dependency id -> its output), attempt (from
    1), workspace (TaskWorkspace), cancelled (threading.Event set when the attempt should
    stop: timeout, cancel, Ctrl-C), log (TaskLog), mode and seed (the run's), ai (TaskAI).
    """

    __slots__ = ("_ctx", "id", "attempt", "mode", "seed", "_parameters", "_deps", "_workspace", "_log", "_ai")

    def __init__(self, ctx):
        # What costs anything (parameters without task_type, deps, the logger...) is made
        # when the handler first asks: a short handler should not pay for what it never reads.
        self._ctx = ctx
        self.id = ctx.task.id if ctx.task is not None else None
        self.attempt = ctx.number
        self.mode = ctx.mode
        self.seed = ctx.seed
        self._parameters = self._deps = self._workspace = self._log = self._ai = None

    @property
    def parameters(self) -> dict:
        if self._parameters is None:
            parameters = self._ctx.parameters
            if "task_type" in parameters:
                parameters = {k: v for k, v in parameters.items() if k != "task_type"}
            self._parameters = parameters
        return self._parameters

    @property
    def deps(self) -> dict:
        if self._deps is None:
            self._deps = {k: v.get("output") for k, v in self._ctx.dependencies.items()}
        return self._deps

    @property
    def cancelled(self) -> threading.Event:
        return self._ctx.cancellation.event

    @property
    def workspace(self) -> TaskWorkspace:
        if self._workspace is None:
            self._workspace = TaskWorkspace(self._ctx)
        return self._workspace

    @property
    def log(self) -> TaskLog:
        if self._log is None:
            self._log = TaskLog(self.id, self._ctx.metadata)
        return self._log

    @property
    def ai(self) -> TaskAI:
        """The run's AI service: task.ai.complete(prompt) -> text (recorded and replayed by
        --record / --replay like an ai_prompt task's calls)."""
        if self._ai is None:
            self._ai = TaskAI(self._ctx)
        return self._ai

    @property
    def dependencies(self) -> dict:
        """dependency id -> {status, output, error}."""
        return self._ctx.dependencies

    def remaining(self) -> float:
        """Seconds left before the attempt's deadline."""
        return self._ctx.remaining()

    def __repr__(self) -> str:
        return f"UserTask(id={self.id!r}, attempt={self.attempt})"


def handler_of(kind):
    """The executor's run(ctx) for a user's TaskType: sync, or a coroutine for async ones."""
    function = kind.function
    if kind.is_async:
        async def run_async(ctx):
            return await function(UserTask(ctx))
        return run_async

    def run(ctx):
        return function(UserTask(ctx))
    return run
