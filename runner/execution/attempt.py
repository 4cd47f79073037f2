"""What a task handler is given for one attempt, and how it says the attempt failed.

A handler is `run(ctx: AttemptContext) -> output` (any JSON value). It raises TaskFailure
for a failure it understands; `permanent=True` when another attempt cannot help (bad
parameters), so the executor does not retry. Long handlers check `ctx.cancel` (or
register a callback with `ctx.cancellation.on_cancel`) because the executor abandons an
attempt at its deadline and expects the work to stop.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class TaskFailure(Exception):
    """An attempt failed. permanent: retrying cannot help; retry_after: seconds to wait first."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class AttemptTimeout(TaskFailure):
    """The handler itself ran out of the attempt's time (e.g. the AI client's own deadline)."""


class Cancellation:
    """A cancel flag that also runs callbacks at once (kill a process group, close a socket).

    Callbacks run on the thread that cancels, so the work stops even if the attempt's own
    thread is blocked in a system call. The threading.Event a handler may wait on is made
    the first time it is asked for: most attempts end without anyone waiting on it, and an
    Event (a Condition and two locks) per attempt was a measurable part of a short task.
    """

    __slots__ = ("_set", "_event", "_lock", "_callbacks")

    def __init__(self):
        self._set = False
        self._event: threading.Event | None = None
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] | None = None

    @property
    def event(self) -> threading.Event:
        if self._event is None:
            with self._lock:
                if self._event is None:
                    event = threading.Event()
                    if self._set:
                        event.set()
                    self._event = event
        return self._event

    def on_cancel(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._set:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback()

    def cancel(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            if self._event is not None:
                self._event.set()
            callbacks, self._callbacks = self._callbacks or (), None
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a callback that fails must not stop the others
                pass

    def is_set(self) -> bool:
        return self._set


@dataclass(slots=True)
class AttemptContext:
    task: Any                       # runner.Task
    alt: Any                        # runner.AltFile
    parameters: dict                # the task's parameters
    number: int                     # attempt number, from 1
    deadline: float                 # time.monotonic() when the attempt is abandoned
    mode: str
    workspace: Path
    dependencies: dict              # dependency id -> {"status", "output", "error"}
    settings: Any                   # ExecutionSettings
    cancellation: Cancellation
    ai_client: Any = None           # runner.ai.AIClient, created on first use
    ai_client_factory: Callable[[], Any] | None = None
    preparation: Any = None         # runner.execution.preparation.Preparation of the run
    stream: bool = False            # AI answers streamed to on_text as they arrive
    on_text: Callable[..., None] | None = None     # on_text(text), or on_text(text, sample=N) in explore mode
    metadata: dict = field(default_factory=dict)   # merged into the task result's metadata
    seed: int | None = None         # the run's seed (chaos mode's faults), for user handlers
    # Told the process group of a command the attempt started (the journal records it).
    on_process: Callable[[int, int | None], None] | None = None    # (pgid, its leader's start ticks)
    # Told the address of the Dask worker an attempt placed on a cluster started on (journaled too).
    on_worker: Callable[[str], None] | None = None
    trace: Any = None               # runner.trace.ids.TraceIds of a traced run: AI calls carry it on

    @property
    def cancel(self) -> threading.Event:
        return self.cancellation.event

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def client(self):
        if self.ai_client is None and self.ai_client_factory is not None:
            self.ai_client = self.ai_client_factory()
        return self.ai_client
