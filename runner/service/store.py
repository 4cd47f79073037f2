"""The durable record of the runs a service accepted: <out>/runs/accepted.jsonl.

One JSON object per line, each with "t":
    accepted  id, seq, at, alt_id, priority, mode, seed, tasks, key, digest, origin,
              metadata, alt_file, document (the ALT text as posted)
    started   id, at
    cancel    id
    ended     id, at, status, last_id, directory, error, success_rate, done, total
A run accepted and not ended is resumed (or started) by the next server on the same
--out. At that start the file is rewritten with what still matters (the documents of
ended runs go: their LAST directories keep alt.json), so it grows with the runs of one
server's life only.

Group commit: a writer thread writes whatever was appended since its last fsync and
fsyncs once for all of it; an `accepted` line is answered 202 only after its fsync. No
fixed window: while one fsync runs, the next batch gathers, so a lone POST waits one
fsync and a crowd shares them.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path
from typing import Callable

import orjson

from runner.last.atomic_files import write_atomically

LOG_NAME = "accepted.jsonl"
LOCK_NAME = ".lock"


class GroupCommitLog:
    """An append-only file whose appends become durable together, in order."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._pending: list[tuple[bytes, Callable | None]] = []
        self._ready = threading.Condition()
        self._closing = False
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._commit_loop, name="runner-service-log", daemon=True)
        self._thread.start()

    def append(self, record: dict, done: Callable[[OSError | None], None] | None = None) -> None:
        """Queues one record; done(error) is called on the writer thread once it is on disk."""
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        with self._ready:
            if self._closing:
                raise OSError("the log is closed")
            self._pending.append((line, done))
            self._ready.notify()

    async def append_durably(self, record: dict) -> None:
        """Appends `record` and returns once it is fsynced; OSError when it could not be."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(error):
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

        self.append(record, lambda error: loop.call_soon_threadsafe(settle, error))
        await future

    def _commit_loop(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closing:
                    self._ready.wait()
                batch, self._pending = self._pending, []
            if not batch:
                return          # closing, and everything is written
            error = None
            try:
                _write_all(self._fd, [line for line, _ in batch])
                os.fsync(self._fd)
            except OSError as failure:
                error = self.error = failure
            for _, done in batch:
                if done is not None:
                    try:
                        done(error)
                    except RuntimeError:
                        pass        # the event loop that waited is gone (shutdown)

    def close(self) -> None:
        """Writes what is queued, then closes the file."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, lines: list[bytes]) -> None:
    data = b"".join(lines)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class AcceptedRuns:
    """The service's log under <out>/runs: held by one server at a time (flock)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ValueError(f"{self.directory}: another runner service uses this output directory") from None
        self.path = self.directory / LOG_NAME
        self.states = _compacted(self.path)
        self.log = GroupCommitLog(self.path)

    def append(self, record: dict) -> None:
        self.log.append(record)

    async def append_durably(self, record: dict) -> None:
        await self.log.append_durably(record)

    def close(self) -> None:
        self.log.close()
        os.close(self._lock_fd)


def read_states(path: Path) -> dict[str, dict]:
    """Each run's state from the log, in order of acceptance: its accepted record with the
    later records folded in (started_at, cancel, ended). A last line cut short by a crash
    is left out (its run was never answered 202)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    states: dict[str, dict] = {}
    for line in data[:data.rfind(b"\n") + 1].splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            continue
        kind = record.pop("t", None)
        if kind == "accepted":
            states[record["id"]] = record
            continue
        state = states.get(record["id"])
        if state is None:
            continue
        if kind == "started":
            state["started_at"] = record.get("at")
        elif kind == "cancel":
            state["cancel"] = True
        elif kind == "ended":
            state["ended"] = {k: v for k, v in record.items() if k != "id"}
    return states


def _compacted(path: Path) -> dict[str, dict]:
    """The states, after rewriting the log with only what a later start needs."""
    states = read_states(path)
    lines = []
    for run_id, state in states.items():
        ended = state.get("ended")
        accepted = {k: v for k, v in state.items() if k not in ("started_at", "cancel", "ended")}
        if ended is not None:
            accepted.pop("document", None)
        lines.append(orjson.dumps({"t": "accepted", **accepted}))
        if state.get("started_at") is not None:
            lines.append(orjson.dumps({"t": "started", "id": run_id, "at": state["started_at"]}))
        if state.get("cancel"):
            lines.append(orjson.dumps({"t": "cancel", "id": run_id}))
        if ended is not None:
            lines.append(orjson.dumps({"t": "ended", "id": run_id, **ended}))
    if lines or path.exists():
        write_atomically(path, b"".join(line + b"\n" for line in lines))
    return states
