"""The watchdog process: what a librunner process leaves behind if it dies without cleaning up.

Started by runner.execution.watchdog as `python -I -S <this file> <owner pid>` (it imports
nothing of librunner, so it starts in a few milliseconds) in a session of its own, its
standard input one end of a Unix socket whose other end only the process it watches holds
(close-on-exec: no command, worker or other child inherits it). That process tells it, one
line each, what must not outlive it:

    G <pgid> <start ticks>   a process group it leads (a system_command)   g <pgid>  ended
    P <pid> <start ticks>    a process (a Dask worker process)              p <pid>   ended
    D <hex of the path>      a directory of its own (cluster scratch)       d <hex>   removed

End of file, or the watched process's end seen on a pidfd of it, means it is gone, however
it went (kill -9 included: the kernel closes its descriptors; the pidfd also catches a
child a C host forked without exec, which holds a copy of the socket). Then every group and process still registered is killed
(SIGKILL), once it is certain it is the one registered: a process only while it has the
start time it was registered with; a group while its leader has that start time or, its
leader gone, while a process is still in it (Linux never gives a live group's id to a new
process). When they are gone, the directories still registered are removed. A clean exit
registers nothing at its end, so the watchdog has nothing to do.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

STOP_WAIT_SECONDS = 5.0
# After the lines that woke it, how long it waits before it reads again: lines arriving
# meanwhile are read together (a run of short commands sends thousands a second, and a
# wake-up of this process for each took CPU from the run on a busy machine). Its owner's end,
# or the line's, still wakes it at once: every millisecond a dead owner's commands run on is
# a chance for one to finish an effect its run never records, done again by the resume.
NAP_SECONDS = 0.02


def stat(pid) -> tuple[str, int, int] | None:
    """(state, process group, start ticks) of a process from /proc/<pid>/stat; None if gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)    # half open()'s cost
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)        # the whole line: the kernel makes it in one read
    except OSError:
        return None
    finally:
        os.close(fd)
    end = data.rfind(b")")
    fields = data[end + 2:].split() if end > 0 else []
    try:
        return fields[0].decode("ascii", "replace"), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


def groups_with_members() -> set:
    """The process groups that hold a live (not zombie) process, from one pass over /proc."""
    groups = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return groups
    for name in entries:
        if name.isdigit():
            found = stat(name)
            if found is not None and found[0] != "Z":
                groups.add(found[1])
    return groups


def group_is_alive(pgid: int, start_ticks, groups: set) -> bool:
    """Whether the group `pgid` whose leader started at `start_ticks` still runs."""
    leader = stat(pgid)
    if leader is not None and leader[2] != start_ticks:
        return False        # the pid is another process's now: the group it led is gone
    return pgid in groups


def process_is_alive(pid: int, start_ticks) -> bool:
    found = stat(pid)
    return found is not None and found[0] != "Z" and found[2] == start_ticks


def _ticks(text: bytes):
    return None if text == b"-" else int(text)


def _apply(line: bytes, groups: dict, pids: dict, paths: dict) -> None:
    parts = line.split()
    try:
        kind = parts[0]
        if kind == b"G":
            groups[int(parts[1])] = _ticks(parts[2])
        elif kind == b"g":
            groups.pop(int(parts[1]), None)
        elif kind == b"P":
            pids[int(parts[1])] = _ticks(parts[2])
        elif kind == b"p":
            pids.pop(int(parts[1]), None)
        elif kind == b"D":
            paths[bytes.fromhex(parts[1].decode("ascii"))] = True
        elif kind == b"d":
            paths.pop(bytes.fromhex(parts[1].decode("ascii")), None)
    except (IndexError, ValueError):
        pass        # not a line of ours: nothing to do with it


def _owner_handle(owner: int | None):
    """A pidfd of the watched process (our parent), or None (no pidfd here, or it is gone
    already: then its end is seen by getppid() no longer being it)."""
    if owner is None or not hasattr(os, "pidfd_open"):
        return None
    try:
        handle = os.pidfd_open(owner)
    except OSError:
        return None
    if os.getppid() != owner:       # it died before the pidfd was made: the pid may be another's
        os.close(handle)
        return None
    return handle


def _read(groups: dict, pids: dict, paths: dict, owner: int | None = None) -> None:
    """Applies the lines of standard input until end of file or the watched process's end."""
    handle = _owner_handle(owner)
    poller = select.poll()
    poller.register(0, select.POLLIN)
    # The nap's wait: the owner's end (its pidfd) or the line's (the socket closed: an exec
    # of the owner keeps the process, and the pidfd quiet), not the lines it sends.
    owner_only = select.poll()
    owner_only.register(0, select.POLLRDHUP)
    if handle is not None:
        poller.register(handle, select.POLLIN)
        owner_only.register(handle, select.POLLIN)
    pending = b""
    while True:
        try:
            ready = {fd for fd, _ in poller.poll(None if handle is not None else 1000)}
        except InterruptedError:
            continue
        owner_gone = (handle in ready) if handle is not None else (owner is not None and os.getppid() != owner)
        if owner_gone:
            os.set_blocking(0, False)       # what it wrote before it went is still read
            ready.add(0)
        if 0 not in ready:
            continue
        while True:
            try:
                chunk = os.read(0, 65536)
            except InterruptedError:
                continue
            except BlockingIOError:
                return          # the watched process is gone and all it wrote is read
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _apply(line, groups, pids, paths)
            if os.get_blocking(0):
                owner_only.poll(NAP_SECONDS * 1000)         # at once if the owner or the line ends
                break           # back to waiting for either


def _clean_up(groups: dict, pids: dict, paths: dict) -> None:
    members = groups_with_members() if groups else set()
    doomed_groups = [pgid for pgid, ticks in groups.items() if pgid > 1 and group_is_alive(pgid, ticks, members)]
    doomed_pids = [pid for pid, ticks in pids.items() if pid > 1 and process_is_alive(pid, ticks)]
    for pgid in doomed_groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    for pid in doomed_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    # The directories go once nothing that was killed can write in them any more.
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        members = groups_with_members() if doomed_groups else set()
        if not any(group_is_alive(pgid, groups[pgid], members) for pgid in doomed_groups) and \
                not any(process_is_alive(pid, pids[pid]) for pid in doomed_pids):
            break
        time.sleep(0.02)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(number, signal.SIG_IGN)
    groups: dict = {}
    pids: dict = {}
    paths: dict = {}
    owner = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else None
    _read(groups, pids, paths, owner)
    if groups or pids or paths:
        _clean_up(groups, pids, paths)


if __name__ == "__main__":
    main()
    sys.exit(0)
