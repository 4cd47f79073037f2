"""Runs that go on in the library's own thread while their caller watches or stops them:
the C ABI's runner_run_start / _status / _events / _cancel / _wait.

Each run gets an id ("run_<hex>") and a thread that calls execute(); its progress events
are numbered from 1 and kept, so any number of readers can ask for "the events after n".
Every method may be called from any thread.
"""
from __future__ import annotations

import threading
import uuid

from runner.errors import RunnerError, UnknownIdError, internal_error
from runner.execution.run import RunRequest, execute_request

STATES = ("starting", "running", "completed", "interrupted", "failed")
# Events kept per run; older ones are dropped (a reader that falls this far behind sees a
# gap in "seq"), so a run of a million tasks does not hold millions of events.
MAX_EVENTS = 65536


def published_event(event: dict, seq: int) -> dict:
    """An on_event event as runner_run_events and the service's event streams give it:
    numbered, without the running counts and clock a progress display uses."""
    kept = {k: v for k, v in event.items() if k not in ("counts", "elapsed_s")}
    kept["seq"] = seq
    return kept


class BackgroundRun:
    def __init__(self, alt, output_dir, environ=None):
        self.id = f"run_{uuid.uuid4().hex}"
        self.alt_id = alt.id
        self.alt = alt
        self.outcome = None             # the RunOutcome once it ended
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._dropped = 0                       # events dropped from the front
        self._tasks = dict.fromkeys((t.id for t in alt.tasks), "pending")
        self._counts: dict = {}
        self._cancelled = False
        self._execution = None
        self.state = "starting"
        self.last_id: str | None = None
        self.directory: str | None = None
        self.error: str | None = None
        self.error_category: str | None = None  # runner.errors' category of the failure
        self.done = threading.Event()
        options = {} if environ is None else {"environ": environ}
        self._thread = threading.Thread(target=self._run, args=(alt, output_dir, options),
                                        name=f"runner-{self.id}", daemon=True)

    def start(self) -> "BackgroundRun":
        self._thread.start()
        return self

    def _run(self, alt, output_dir, options) -> None:
        try:
            outcome = execute_request(RunRequest(alt, output_dir, on_event=self._event, on_execution=self._started,
                                                 **options))
        except RunnerError as error:
            with self._lock:
                self.state, self.error, self.error_category = "failed", str(error), error.category
        except Exception as error:     # a bug: the run's caller still gets an answer, the log its traceback
            with self._lock:
                self.state, self.error = "failed", str(internal_error(error, f"run {self.id}"))
                self.error_category = "internal"
        else:
            with self._lock:
                self.outcome = outcome
                self.last_id, self.directory = outcome.last_id, str(outcome.directory)
                self.state = "interrupted" if outcome.interrupted else "completed"
        finally:
            self.done.set()

    def _started(self, execution) -> None:
        with self._lock:
            self._execution = execution
            self.state = "running"
            cancelled = self._cancelled
        if cancelled:
            execution.interrupt()

    def _event(self, event: dict) -> None:
        kind, task_id = event.get("event"), event.get("task_id")
        with self._lock:
            if kind == "task_started":
                self._tasks[task_id] = "running"
            elif kind == "task_finished":
                self._tasks[task_id] = event.get("status")
            self._counts = event.get("counts") or self._counts
            self._events.append(published_event(event, self._dropped + len(self._events) + 1))
            if len(self._events) > MAX_EVENTS:
                drop = len(self._events) // 2
                del self._events[:drop]
                self._dropped += drop

    # ---- what the C ABI asks -----------------------------------------------------

    def status(self) -> dict:
        with self._lock:
            counts = dict.fromkeys(("pending", "running", "completed", "failed", "timeout", "cancelled", "skipped"), 0)
            for status in self._tasks.values():
                counts[status] = counts.get(status, 0) + 1
            return {"run_id": self.id, "alt_id": self.alt_id, "state": self.state, "counts": counts,
                    "tasks": dict(self._tasks), "events": self._dropped + len(self._events), "last_id": self.last_id,
                    "directory": self.directory, "error": self.error}

    def events_after(self, after: int) -> list[dict]:
        with self._lock:
            return self._events[max(0, after - self._dropped):]

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            execution = self._execution
        if execution is not None:
            execution.interrupt()

    def wait(self, timeout: float | None) -> bool:
        return self.done.wait(timeout)


class Runs:
    """The runs of this process by id (the C ABI's registry; emptied by runner_cleanup)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[str, BackgroundRun] = {}

    def start(self, alt, output_dir=None, environ=None) -> BackgroundRun:
        run = BackgroundRun(alt, output_dir, environ)
        with self._lock:
            self._runs[run.id] = run
        return run.start()

    def get(self, run_id: str) -> BackgroundRun:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise UnknownIdError(f"unknown run '{run_id}'")
        return run

    def cancel_all(self, wait_seconds: float) -> int:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel()
        for run in runs:
            run.wait(wait_seconds)
        return len(runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()


RUNS = Runs()
