"""Process groups a run started, as its journal records them, and whether they still live.

A system_command leads a process group of its own (its pgid is its pid). When it starts,
the journal records an `attempt_process` line: the group, the start time of its leader
(field 22 of /proc/<pid>/stat, clock ticks since boot) and the boot id, so a pid the
kernel has given to another process since is never taken for it. A group is the run's
while its leader lives with that start time, or, once the leader has exited, while a
process is still in the group (Linux never gives a live group's id to a new process).

A run killed with SIGKILL cannot stop its commands, but its watchdog does (runner.execution.
watchdog); if the watchdog was killed too, `resume` waits for the live groups of
the run it resumes (RUNNER_RESUME_WAIT_SECONDS), then kills them and says so; `show`
lists them; the next run in the output directory names them on the log.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson

from runner.errors import JournalError
from runner.execution.watchdog_process import group_is_alive, groups_with_members

RECORD_TYPE = "attempt_process"
ENDED_TYPE = "attempt_ended"      # written once an attempt is over, its command's group gone
# An attempt placed on a Dask worker: the worker's address, journaled when it starts there.
WORKER_RECORD_TYPE = "attempt_worker"
_BOOT_ID: list = []


def boot_id() -> str | None:
    if not _BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id") as handle:
                _BOOT_ID.append(handle.read().strip())
        except OSError:
            _BOOT_ID.append(None)
    return _BOOT_ID[0]


def started(pgid: int, start_ticks: int | None) -> dict:
    """What the journal records of a process group that has just started, its leader at
    `start_ticks` (read by its starter: watchdog.start_ticks)."""
    return {"pgid": pgid, "start_ticks": start_ticks, "boot_id": boot_id()}


def live(records) -> list:
    """The records (journal attempt_process lines) whose process group still runs."""
    candidates = [r for r in records if isinstance(r, dict) and type(r.get("pgid")) is int and r["pgid"] > 1
                  and (r.get("boot_id") is None or r.get("boot_id") == boot_id())]
    if not candidates:
        return []
    groups = groups_with_members()
    return [record for record in candidates if group_is_alive(record["pgid"], record.get("start_ticks"), groups)]


class Unended:
    """The attempt_process records of attempts that never ended, from a journal's records. An
    attempt ends (attempt_ended) once its command has, or has been killed: its group's number
    is free for reuse from then, and a group that took it must never be taken for the run's
    (by the "leader gone, a member lives" rule of `live`). The order of the two lines does not
    matter: an attempt abandoned at its deadline before its command started is journaled as
    ended first, and its command, killed as it starts, after."""

    def __init__(self):
        self._started: list = []
        self._ended: set = set()

    def add(self, record: dict) -> None:
        kind = record.get("type")
        if kind == RECORD_TYPE:
            self._started.append(record)
        elif kind == ENDED_TYPE:
            key = _attempt_key(record)
            if key is not None:
                self._ended.add(key)

    def records(self) -> list:
        return [record for record in self._started if _attempt_key(record) not in self._ended]


def _attempt_key(record: dict):
    """(task id, attempt number) of a well-formed record, else None (such a record is never
    matched: a process record of a damaged line still counts)."""
    task_id, attempt = record.get("task_id"), record.get("attempt")
    return (task_id, attempt) if isinstance(task_id, str) and type(attempt) is int else None


def recorded(directory: Path) -> list:
    """The attempt_process records of the journal in `directory` whose attempt never ended
    (Unended), read without parsing the other lines: cleaning asks this of each dead run."""
    from runner.execution.journal import JOURNAL_NAME, read_regular_file

    try:
        data = read_regular_file(Path(directory) / JOURNAL_NAME)
    except (OSError, JournalError):
        return []
    markers = [f'"type":"{kind}"'.encode() for kind in (RECORD_TYPE, ENDED_TYPE)]
    unended = Unended()
    # Lines end at "\n" only, as the journal's readers count them (a "\r" an edit left in a
    # line does not cut a record in two); a last line a crash left without its end still
    # counts if it is a whole record: a process it names may run.
    for line in data.split(b"\n"):
        if any(marker in line for marker in markers):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                unended.add(record)
    return unended.records()


def describe(record: dict) -> str:
    return f"task {record.get('task_id')!r} (attempt {record.get('attempt')}, process group {record.get('pgid')})"


def kill(records) -> None:
    """SIGKILL to each group that is still the run's."""
    for record in live(records):
        try:
            os.killpg(record["pgid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_for(records, seconds: float, step: float = 0.05) -> list:
    """Waits until every group has ended or `seconds` passed; returns those still alive."""
    deadline = time.monotonic() + seconds
    remaining = live(records)
    while remaining and time.monotonic() < deadline:
        time.sleep(min(step, max(0.0, deadline - time.monotonic())))
        remaining = live(remaining)
    return remaining
