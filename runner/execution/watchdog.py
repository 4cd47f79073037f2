"""What this process must not leave behind if it dies: told to a watchdog process.

A process that starts a system_command, a Dask LocalCluster or a Dask worker's scratch
directory registers it here (`guard_group`, `guard_process`, `guard_path`) and withdraws it
when it has ended or been removed (`release_*`). The first registration starts the
process's watchdog (runner/execution/watchdog_process.py): when this process dies, however
it dies (kill -9 included), the watchdog kills the groups and processes still registered
and removes the directories. A clean exit has withdrawn everything, so nothing happens.
A group is withdrawn as soon as it has ended: a withdrawal held back (to save a send) left
it registered while its number was free for reuse, and a kill -9 of this process then got
an unrelated group that took the number killed. The watchdog reads what arrives together
(it naps between reads), so the lines cost it few wake-ups.

PR_SET_PDEATHSIG is not used: it fires when the *thread* that forked the child ends (the
attempt threads of an executor come and go), and kills one process, not a command's group.

The line to the watchdog is a Unix socket, written with MSG_NOSIGNAL: a C host keeps
SIGPIPE's default action, and a watchdog that died must be a warning, not the host killed.
The watchdog also watches this process itself (a pidfd), so a child a C host forks without
exec, holding a copy of the socket, cannot keep it waiting. `stop` (runner_cleanup) ends and
reaps it: a host that waits for its children is not kept waiting by a library that is done.

A watchdog that cannot start (no Python executable known, no process left) or dies is a
warning on the log once; the run goes on, and the journal's attempt_process records still
let `resume` and `show` find what a dead run left running.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from runner import librunner

log = logging.getLogger("runner.watchdog")

SCRIPT = Path(__file__).with_name("watchdog_process.py")

_lock = threading.Lock()
_state: dict = {"line": None, "owner": None, "process": None, "failed": False}


def _python() -> str | None:
    executable = sys.executable
    if executable and os.access(executable, os.X_OK):
        return executable
    return None


def _start_locked() -> socket.socket | None:
    """The line to this process's watchdog (started now if need be)."""
    if _state["owner"] == os.getpid() and _state["line"] is not None:
        return _state["line"]
    if _state["failed"] and _state["owner"] == os.getpid():
        return None
    if _state["line"] is not None:      # a copy made by a fork without exec (a C host): the parent's
        _state["line"].close()
    _state.update(line=None, owner=os.getpid(), process=None, failed=False)
    python = _python()
    if python is None:
        _state["failed"] = True
        log.warning("no watchdog: no Python executable is known (sys.executable), so a kill -9 of this "
                    "process would leave its commands running")
        return None
    # Not inheritable, either end: no child but the watchdog (its standard input) gets one.
    line, far_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = subprocess.Popen([python, "-I", "-S", str(SCRIPT), str(os.getpid())], stdin=far_end,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   close_fds=True, start_new_session=True, cwd="/")
    except OSError as error:
        line.close()
        _state["failed"] = True
        log.warning("no watchdog (%s): a kill -9 of this process would leave its commands running", error)
        return None
    finally:
        far_end.close()
    _state.update(line=line, process=process)
    return line


def _send(text: str) -> None:
    data = (text + "\n").encode("ascii")
    with _lock:
        line = _start_locked()
        if line is None:
            return
        try:
            # Most lines go at once: in one send that keeps the GIL (a line let go of it and
            # took it back, a hand-over among a run's busy attempt threads each time). What
            # the socket has no room for now goes the blocking way.
            sent = librunner.send_now(line.fileno(), data)
            if sent > 0:
                data = data[sent:]
            while data:
                data = data[line.send(data, socket.MSG_NOSIGNAL):]
        except OSError as error:       # the watchdog is gone
            line.close()
            _state.update(line=None, failed=True)
            log.warning("the watchdog process ended (%s): a kill -9 of this process would leave its "
                        "commands running", error)


def start_ticks(pid: int) -> int | None:
    """When the process `pid` started (clock ticks since boot); None if it is gone."""
    from runner.execution.watchdog_process import stat

    found = stat(pid)
    return None if found is None else found[2]


# /proc/<pid>/stat's start time is the moment of the fork on CLOCK_BOOTTIME, in whole clock
# ticks (floor(ns / (1e9 / CLK_TCK))), as this process reads that clock (time namespaces
# included). None: a tick that is not a whole number of ns, or no such clock here.
_CLOCK_TICK_NS = (10 ** 9 // os.sysconf("SC_CLK_TCK")
                  if hasattr(time, "CLOCK_BOOTTIME") and 10 ** 9 % os.sysconf("SC_CLK_TCK") == 0 else None)


def spawn_clock() -> int | None:
    """CLOCK_BOOTTIME now, read just before a child is forked (spawned_ticks)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) if _CLOCK_TICK_NS else None


def spawned_ticks(pid: int, before: int | None) -> int | None:
    """start_ticks(pid) of a child this process forked after spawn_clock() gave `before` and
    has not reaped. When the clock is still in the tick it was in then, the fork happened in
    that tick, which is the child's start: no read of /proc, whose first look at a new pid
    cost 24-59 us a command (~6% of a `true` command's wall time at concurrency 8). Otherwise
    (a fork across a tick's end: ~2% of them) it is read."""
    if before is not None:
        tick = time.clock_gettime_ns(time.CLOCK_BOOTTIME) // _CLOCK_TICK_NS
        if tick == before // _CLOCK_TICK_NS:
            return tick
    return start_ticks(pid)


def _ticks(ticks: int | None) -> str:
    return "-" if ticks is None else str(ticks)


def start() -> None:
    """Starts the watchdog now (before a command's fork, so its first registration does not wait)."""
    if _state["owner"] == os.getpid() and _state["line"] is not None:
        return      # started: the common case, without the lock
    with _lock:
        _start_locked()


def guard_group(pgid: int, ticks: int | None) -> None:
    """The process group `pgid`, whose leader just started at `ticks` (start_ticks), dies if
    this process dies."""
    _send(f"G {pgid} {_ticks(ticks)}")


def release_group(pgid: int) -> None:
    """The group `pgid` has ended (its leader reaped, the group killed): withdrawn at once."""
    _send(f"g {pgid}")


def guard_process(pid: int) -> None:
    _send(f"P {pid} {_ticks(start_ticks(pid))}")


def release_process(pid: int) -> None:
    _send(f"p {pid}")


def guard_path(path) -> None:
    """The directory `path` is removed if this process dies before it does."""
    _send(f"D {os.fsencode(os.path.abspath(path)).hex()}")


def release_path(path) -> None:
    _send(f"d {os.fsencode(os.path.abspath(path)).hex()}")


def stop(timeout: float = 10.0) -> None:
    """Ends this process's watchdog and reaps it (runner_cleanup). What is still registered
    then (nothing, after runs that ended) is killed or removed by it, as at this process's
    death; the next registration starts a new watchdog."""
    with _lock:
        line, process = _state["line"], _state["process"]
        owner = _state["owner"]
        _state.update(line=None, owner=None, process=None, failed=False)
    if line is not None:
        # Shut down, not only closed: a child forked without exec (a C host's) holds a copy
        # of this socket, and the watchdog would see no end of its line while that lives.
        with contextlib.suppress(OSError):
            line.shutdown(socket.SHUT_RDWR)
        line.close()
    if process is not None and owner == os.getpid():
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the watchdog process %d did not end within %s s", process.pid, timeout)


def _forget_in_child() -> None:
    """A child forked without exec has a copy of the line: it is the parent's."""
    global _lock
    _lock = threading.Lock()        # another thread may have held it at the fork
    line = _state["line"]
    _state.update(line=None, owner=None, process=None, failed=False)
    if line is not None:
        line.close()


os.register_at_fork(after_in_child=_forget_in_child)
