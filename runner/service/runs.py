"""One run the service accepted: where it is, what it produced, and its numbered events.

Events are the run's on_event stream as runner_run_events gives them (runner.execution.
background.published_event), numbered from 1 across the whole life of the run, restarts
included: they are appended to <out>/runs/<id>/events.jsonl as they come (written, not
fsynced: they are a view of the journal, which is the durable record), so a stream opened
after a restart replays them and goes on with the next numbers.
"""
from __future__ import annotations

import asyncio

import os
import threading
from pathlib import Path

import orjson

# Run statuses: the first three change, the rest are final. interrupted: stopped by the
# server's shutdown; the next start resumes it.
ACTIVE = ("queued", "running", "interrupted")
FINAL = ("success", "partialsuccess", "failure", "cancelled")
STATUSES = ACTIVE + FINAL
PRIORITY_RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}
EVENTS_NAME = "events.jsonl"


class ServiceRun:
    def __init__(self, state: dict, folder: Path):
        self.id: str = state["id"]
        self.seq: int = state["seq"]
        self.alt_id: str = state["alt_id"]
        self.priority: str = state.get("priority") or "medium"
        self.mode: str | None = state.get("mode")
        self.seed: int | None = state.get("seed")
        self.total: int = state.get("tasks") or 0
        self.key: str | None = state.get("key")
        self.digest: str | None = state.get("digest")
        self.origin: str = state.get("origin") or "api"
        self.metadata: dict = state.get("metadata") or {}
        self.alt_file: str | None = state.get("alt_file")
        self.traceparent: str | None = state.get("traceparent")    # the request's: the run joins its trace
        self.accepted_at: str = state.get("at")
        self.document: str | None = state.get("document")
        self.folder = folder
        self.alt = None                 # the parsed AltFile while the run waits or goes
        self.status = "queued"
        self.started_at: str | None = state.get("started_at")
        self.ended_at: str | None = None
        self.last_id: str | None = None
        self.directory: str | None = None
        self.error: str | None = None
        self.success_rate: float | None = None
        self.done = 0
        self.cancel_requested = bool(state.get("cancel"))
        self.execution = None           # the Execution going (on_execution), to interrupt it
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._events: list[dict] | None = None      # loaded from events.jsonl when first needed
        self._events_fd = -1
        self._listeners: set = set()                # (loop, asyncio.Event) of open streams
        self.recording = None           # a Future while its accepted record is being fsynced
        ended = state.get("ended")
        if ended is not None:
            self.end(ended, persist=False)

    async def recorded(self) -> bool:
        """True once the run's accepted record is on disk; False when recording it failed
        (the run does not exist). A second request with the same Idempotency-Key waits here,
        so it never answers with a run that a GET could not find yet, or ever."""
        if self.recording is None:
            return True
        return await asyncio.shield(self.recording)

    @property
    def rank(self) -> tuple:
        return (PRIORITY_RANKS.get(self.priority, 2), self.seq)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    # ---- lifecycle (called by the registry) -------------------------------------

    def end(self, facts: dict, persist: bool = True) -> None:
        with self._lock:
            self.status = facts.get("status") or "failure"
            self.ended_at = facts.get("at")
            self.last_id = facts.get("last_id")
            self.directory = facts.get("directory")
            self.error = facts.get("error")
            self.success_rate = facts.get("success_rate")
            if facts.get("done") is not None:
                self.done = facts["done"]
            self.document = None
            self.alt = None
            self.execution = None
            self._close_events()
        self.finished.set()
        self._notify()

    def stop_here(self, status: str) -> None:
        """The run stopped in this process without a final status (interrupted)."""
        with self._lock:
            self.status = status
            self.execution = None
            self._close_events()
        self.finished.set()
        self._notify()

    def _close_events(self) -> None:
        """The run stopped: its events are read back from events.jsonl when asked for, so a
        server that ran many runs does not keep them all in memory."""
        if self._events_fd >= 0:
            os.close(self._events_fd)
            self._events_fd = -1
        self._events = None

    def end_facts(self, status: str, outcome=None, error: str | None = None, at: str | None = None) -> dict:
        facts = {"status": status, "at": at, "error": error, "done": self.done, "total": self.total,
                 "last_id": None, "directory": None, "success_rate": None}
        if outcome is not None:
            facts.update(last_id=outcome.last_id, directory=str(outcome.directory),
                         success_rate=outcome.lean_record.get("success_rate"))
        return facts

    # ---- events -------------------------------------------------------------------

    def _loaded_events(self) -> list[dict]:
        """The events so far (the caller holds the lock), read from events.jsonl at first use."""
        if self._events is None:
            events = []
            try:
                data = (self.folder / EVENTS_NAME).read_bytes()
            except OSError:
                data = b""
            for line in data[:data.rfind(b"\n") + 1].splitlines():
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict) and type(event.get("seq")) is int:
                    events.append(event)
            self._events = events
        return self._events

    def record_event(self, event: dict) -> None:
        """on_event of the run's execution (its own thread)."""
        from runner.execution.background import published_event

        with self._lock:
            events = self._loaded_events()
            kept = published_event(event, (events[-1]["seq"] if events else 0) + 1)
            events.append(kept)
            if event.get("event") == "task_finished" or event.get("event") == "run_finished":
                self.done = event.get("done", self.done)
            if self._events_fd < 0:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._events_fd = os.open(self.folder / EVENTS_NAME,
                                          os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(self._events_fd, orjson.dumps(kept, option=orjson.OPT_APPEND_NEWLINE))
            except OSError:
                pass        # the stream in memory goes on; the journal is the durable record
        self._notify()

    def events_after(self, after: int) -> list[dict]:
        with self._lock:
            events = self._loaded_events()
            if not events or events[-1]["seq"] <= after:
                return []
            # seq grows by one from the first kept event: an index, not a search.
            start = max(0, after - events[0]["seq"] + 1)
            return events[start:]

    def listen(self, loop, wake) -> None:
        with self._lock:
            self._listeners.add((loop, wake))

    def unlisten(self, loop, wake) -> None:
        with self._lock:
            self._listeners.discard((loop, wake))

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, wake in listeners:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass        # that loop is closed

    # ---- what the API shows -------------------------------------------------------

    def view(self) -> dict:
        with self._lock:
            return {
                "id": self.id, "alt_id": self.alt_id, "status": self.status, "priority": self.priority,
                "progress": {"done": self.done, "total": self.total},
                "accepted_at": self.accepted_at, "started_at": self.started_at, "ended_at": self.ended_at,
                "last_id": self.last_id,
                "last_file_path": None if self.directory is None else str(Path(self.directory) / "last.json"),
                "success_rate": self.success_rate, "error": self.error,
            }
