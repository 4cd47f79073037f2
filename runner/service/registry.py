"""Registry: the runs of a service, from acceptance to their end, across restarts.

The one place where the service meets runner.execution: a queued run is executed with the
same execute() and resume() as the CLI's `run` and `resume`, into its own folder
<out>/runs/<id>/, which holds its LAST directories (one per start: the first, then each
resume) and events.jsonl. Progress, SSE and metrics listen to on_event; cancelling and
draining use the Execution that on_execution hands over.

After a crash (kill -9) or a drain (SIGTERM), the next start finds every accepted run
without an `ended` record: one whose latest LAST directory holds a journal is resumed
from it (completed work, side effects included, is not repeated), one never started is
started, one whose LAST file was written before the crash is adopted as it is.
"""
from __future__ import annotations

import asyncio

import logging
import os
import threading
import time
from pathlib import Path

import orjson

from runner.errors import ConfigurationError, RunnerError
from runner.service.settings import ServiceSettings
from runner.service.metrics import ServiceMetrics
from runner.service.queue import RunQueue
from runner.service.runs import ServiceRun
from runner.service.store import AcceptedRuns

log = logging.getLogger("runner")

RUNS_FOLDER = "runs"
# How long a drain waits, beyond the grace period, for interrupted runs to write their LAST files.
DRAIN_EXTRA_SECONDS = 5.0


def _stamp() -> str:
    from runner import librunner
    return librunner.utc_stamp()


def latest_run_directory(folder: Path) -> Path | None:
    """The run's newest LAST directory with a journal (LAST ids are UUIDv7: they sort by time)."""
    from runner.execution.run_directory import run_start

    try:
        entries = sorted((entry for entry in folder.iterdir() if entry.is_dir()), key=lambda p: p.name,
                         reverse=True)
    except OSError:
        return None
    return next((entry for entry in entries if run_start(entry) is not None), None)


class Registry:
    def __init__(self, config: ServiceSettings, environ=os.environ, placement=None):
        self.config = config
        self.environ = environ
        self.placement = placement      # runner.cluster.placement.DaskPlacement with serve --dask
        self.folder = config.out / RUNS_FOLDER
        self.runs: dict[str, ServiceRun] = {}
        self.keys: dict[str, ServiceRun] = {}
        self.last_directories: dict[str, str] = {}     # LAST id -> directory, of ended runs
        self.preflight_cache: dict = {}                 # task kinds -> problems (accepting._preflight)
        self.draining = False
        self.started = time.monotonic()
        self._seq = 0
        self._lock = threading.Lock()
        self._ai_client = None
        self._client_lock = threading.Lock()
        self.store: AcceptedRuns | None = None
        self.queue = RunQueue(config.max_concurrent_runs, config.max_queued_runs, self._work)
        self.metrics = ServiceMetrics(lambda: self.queue.depth, lambda: self.queue.busy)

    # ---- start and stop -------------------------------------------------------------

    def open(self) -> None:
        """Takes the output directory (one server at a time), recovers its runs, starts the queue."""
        self.store = AcceptedRuns(self.folder)
        recovered = 0
        for state in self.store.states.values():
            run = ServiceRun(state, self.folder / state["id"])
            self.runs[run.id] = run
            self._seq = max(self._seq, run.seq)
            if run.key:
                self.keys[run.key] = run
            if run.is_final:
                if run.last_id and run.directory:
                    self.last_directories[run.last_id] = run.directory
            else:
                self.queue.push(run)
                recovered += 1
        self.store.states = {}
        if recovered:
            log.warning("runner service: %d run(s) accepted before the last stop resume or start now", recovered)
        self.queue.start()

    def begin_drain(self) -> None:
        """SIGTERM: refuse new runs (503), start none, interrupt the running ones (they resume
        at the next start)."""
        with self._lock:
            self.draining = True
            going = [run for run in self.runs.values() if run.execution is not None]
        self.queue.stop()
        for run in going:
            run.execution.interrupt()

    def wait_drained(self) -> bool:
        """Waits for the interrupted runs to write their LAST files (the grace period and a little more)."""
        from runner.execution import settings as execution_settings
        try:
            grace = execution_settings.load(self.environ).grace_seconds
        except ConfigurationError:
            grace = execution_settings.DEFAULT_GRACE_SECONDS
        return self.queue.wait_idle(grace + DRAIN_EXTRA_SECONDS)

    def close(self) -> None:
        if not self.draining:
            self.begin_drain()
        self.wait_drained()
        with self._client_lock:
            if self._ai_client is not None:
                self._ai_client.close()
        if self.store is not None:
            self.store.close()

    # ---- accepting --------------------------------------------------------------------

    def has_room(self) -> bool:
        return self.queue.has_room()

    async def accept(self, alt, document: bytes, *, mode: str | None = None, seed: int | None = None,
                     priority: str | None = None, key: str | None = None, digest: str | None = None,
                     origin: str = "api", metadata: dict | None = None, alt_file: str | None = None,
                     traceparent: str | None = None) -> ServiceRun:
        """Records the run durably (fsynced), then queues it. OSError when it cannot be recorded."""
        from runner import librunner

        self._seq += 1
        # A UUIDv7, as LAST ids: ids sort by acceptance.
        state = {"id": librunner.next_last_id(), "seq": self._seq, "at": _stamp(), "alt_id": alt.id,
                 "priority": priority or alt.priority or "medium", "mode": mode, "seed": seed,
                 "tasks": len(alt.tasks), "key": key, "digest": digest, "origin": origin,
                 "metadata": metadata or {}, "alt_file": alt_file, "traceparent": traceparent}
        try:
            state["document"] = document.decode("utf-8")
        except UnicodeDecodeError:      # the parser read it, so it is not text only in theory
            state["document"] = orjson.dumps(alt.to_dict()).decode()
        # The run keeps its document, not the parsed model: thousands of queued models would be
        # objects for every garbage collection to walk (long pauses of the event loop).
        run = ServiceRun(state, self.folder / state["id"])
        if key is not None:
            # Before the wait: a second POST with the key finds it, and waits for run.recorded().
            run.recording = asyncio.get_running_loop().create_future()
            self.keys[key] = run
        try:
            await self.store.append_durably({"t": "accepted", **state})
        except BaseException:
            if key is not None:
                self.keys.pop(key, None)
                run.recording.set_result(False)
            raise
        self.runs[run.id] = run
        if key is not None:
            run.recording.set_result(True)
            run.recording = None
        self.metrics.accepted.inc()
        self.queue.push(run)
        return run

    def cancel(self, run: ServiceRun) -> bool:
        """Cancels a queued or running run (it ends cancelled, its LAST directory written);
        False when it has ended already."""
        with self._lock:
            if run.is_final or run.cancel_requested:
                return not run.is_final
            run.cancel_requested = True
            execution = run.execution
        self.store.append({"t": "cancel", "id": run.id})
        if execution is not None:
            execution.interrupt()
        elif self.queue.remove(run):
            # It never started: it runs now, interrupted at once, so it too ends with a LAST file.
            threading.Thread(target=self._work, args=(run,), name="runner-service-cancel", daemon=True).start()
        return True

    # ---- running (a queue thread) ------------------------------------------------------

    def ai_client(self):
        """The one AI client of the service: its in-flight limit and rate limits hold across runs."""
        with self._client_lock:
            if self._ai_client is None:
                from runner.ai import client_from_environment
                self._ai_client = client_from_environment(self.environ)
            return self._ai_client

    def _attach(self, run: ServiceRun, execution) -> None:
        with self._lock:
            run.execution = execution
            stop = run.cancel_requested or self.draining
        if stop:
            execution.interrupt()

    def _work(self, run: ServiceRun) -> None:
        try:
            self._execute(run)
        except Exception as error:      # a bug: the run still ends, with what went wrong
            log.exception("runner service: run %s failed", run.id)
            self._end(run, run.end_facts("failure", error=f"internal error: {type(error).__name__}: {error}",
                                         at=_stamp()))

    def _execute(self, run: ServiceRun) -> None:
        from runner import DeliveryError, librunner
        from runner.execution.resume import resume
        from runner.execution.run import RunRequest, discard_kept_workspace, execute_request
        from runner.execution.run_directory import discard_kept_workspace_of

        with self._lock:
            run.status = "running"
        if run.started_at is None:
            run.started_at = _stamp()
            self.store.append({"t": "started", "id": run.id, "at": run.started_at})
        observe = self.metrics.observer()

        def on_event(event: dict) -> None:
            run.record_event(event)
            observe(event)

        options = {"on_event": on_event, "on_execution": lambda execution: self._attach(run, execution),
                   "environ": self.environ, "placement": self.placement, "traceparent": run.traceparent}
        outcome = None
        try:
            previous = latest_run_directory(run.folder)
            if previous is not None and self._adopt(run, previous):
                return
            alt = run.alt if run.alt is not None else librunner.parse_alt_file(run.document)
            if any(task.task_type == "ai_prompt" for task in alt.tasks):
                options["ai_client"] = self.ai_client()
            if previous is not None:
                outcome = resume(previous, None, run.folder, **options)
            else:
                run.folder.mkdir(parents=True, exist_ok=True)
                # Its journal required: a run the service cannot journal would be run again by
                # its next start (a resume requires its own).
                outcome = execute_request(RunRequest(alt, run.folder, mode=run.mode, seed=run.seed,
                                                     alt_file=run.alt_file, journal_required=True, **options))
        except DeliveryError as error:
            written = error.written
            if _interrupted(written.lean_record):
                if not run.cancel_requested:
                    # Drained (its LAST file written, its publication refused): not an end
                    # either; the next start resumes it, and publishes the LAST file of its resume.
                    run.stop_here("interrupted")
                    return
                # Cancelled by its user: never resumed. Its LAST file holds what it made.
                discard_kept_workspace_of(Path(written.directory), ended_here=True)
            facts = run.end_facts(self._status_of(run, written.lean_record), at=_stamp(), error=f"delivery: {error}")
            facts.update(last_id=written.last_id, directory=str(written.directory),
                         success_rate=written.lean_record.get("success_rate"))
            self._end(run, facts)
            return
        except RunnerError as error:        # ResumeError included; a bug goes to _work, with its traceback
            self._end(run, run.end_facts("cancelled" if run.cancel_requested else "failure", error=str(error),
                                         at=_stamp()))
            return
        if outcome.interrupted and not run.cancel_requested:
            # Drained: not an end. The next start resumes it from this LAST directory (and
            # its workspace, which the run kept).
            run.stop_here("interrupted")
            return
        discard_kept_workspace(outcome)     # cancelled by its user: never resumed
        self._end(run, run.end_facts(self._status_of(run, outcome.lean_record), outcome, at=_stamp()), outcome.results)

    def _adopt(self, run: ServiceRun, previous: Path) -> bool:
        """A run whose latest LAST file was written before the server stopped, and was not cut
        short by that stop, has ended: it is recorded as it is (True)."""
        from runner.execution.run_directory import discard_kept_workspace_of
        from runner.last.reader import loads_header

        try:
            record = loads_header((previous / "last.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        interrupted = _interrupted(record)
        if interrupted and not run.cancel_requested:
            return False
        if interrupted:     # cancelled while the server was down: never resumed
            discard_kept_workspace_of(previous)
        facts = run.end_facts(self._status_of(run, record), at=_stamp())
        facts.update(last_id=record.get("id") or previous.name, directory=str(previous),
                     success_rate=record.get("success_rate"), done=run.total)
        self._end(run, facts)
        return True

    @staticmethod
    def _status_of(run: ServiceRun, record: dict) -> str:
        return "cancelled" if run.cancel_requested else (record.get("status") or "failure")

    def _end(self, run: ServiceRun, facts: dict, results: dict | None = None) -> None:
        self.store.append({"t": "ended", "id": run.id, **facts})
        run.end(facts)
        if run.last_id and run.directory:
            self.last_directories[run.last_id] = run.directory
        self.metrics.run_ended(run.status, results)

    # ---- reading ------------------------------------------------------------------------

    def get(self, run_id: str) -> ServiceRun | None:
        return self.runs.get(run_id)

    def listed(self, status: str | None, limit: int) -> list[ServiceRun]:
        found = []
        for run in reversed(list(self.runs.values())):
            if status is None or run.status == status:
                found.append(run)
                if len(found) >= limit:
                    break
        return found

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for run in list(self.runs.values()):
            counts[run.status] = counts.get(run.status, 0) + 1
        return counts

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started


def _interrupted(record: dict) -> bool:
    """Whether a LAST record is of a run that was interrupted (it may be resumed)."""
    return bool((record.get("execution") or {}).get("interrupted"))
