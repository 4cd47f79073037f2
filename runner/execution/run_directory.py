"""A run's LAST directory from its first moment: created with its journal and alt.json before
any task starts, and the debris of dead runs in the same place cleared first.

A directory holding journal.jsonl but no last.json is a run in progress (its journal is
locked) or an interrupted one (unlocked: the process died). A dead run leaves at most
temporary files (.<name>.<random>.tmp) of products it was writing, artifacts it had begun
to copy, an archive's temporary file beside the directory and its temporary workspace;
the next run or resume in that output directory removes them. The journal, alt.json and a
workspace holding files stay: `show` explains the run and `resume` finishes it.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import orjson

from runner.execution import journal as journal_file, processes
from runner.workspace import remove_tree, remove_tree_quietly

log = logging.getLogger("runner")

WORKSPACE_PREFIX = "runner-workspace-"
# What tempfile.mkdtemp(prefix=WORKSPACE_PREFIX) makes (executor.default_workspace).
WORKSPACE_NAME = re.compile(re.escape(WORKSPACE_PREFIX) + r"[a-z0-9_]{8}")
# An empty directory younger than this may be another run's, between its mkdir and its journal.
EMPTY_DIRECTORY_AGE_SECONDS = 60.0
# The name of a run's directory: its LAST id (runner.core ids: a UUID).
RUN_DIRECTORY_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIRST_RECORD_BYTES = 1 << 20
# How much of a finished run's journal is read, from its end, for its run_ended record (only
# resumed_by lines, ~200 bytes a resume, follow it).
JOURNAL_TAIL_BYTES = 1 << 16
# At most what a start leaves (a temporary journal, alt.json and its temporary) and a little
# room: a directory holding more is not a dead start, and is not listed further.
MAX_START_LEFTOVERS = 8
# Names of LAST directories (last_<stamp>_<hex> or a UUID): only those are removed when empty.
LAST_DIRECTORY_NAME = re.compile(r"last_[0-9A-Za-z_]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# What a run killed during its start leaves before its journal has its name: the journal under
# a temporary name (locked from its creation on), alt.json or its temporary (mkstemp's names).
START_LEFTOVER = re.compile(rf"\.(?:{re.escape(journal_file.JOURNAL_NAME)}|{re.escape(journal_file.ALT_NAME)})"
                            rf"\.[a-z0-9_]{{8}}\.tmp|{re.escape(journal_file.ALT_NAME)}")


def open_run_directory(output_dir: Path, last_id: str, alt_json: bytes, workspace=None) -> journal_file.Journal:
    """Creates <output_dir>/<last_id>/ with an open, locked journal; alt.json follows on the
    journal's writer thread, and the dead runs in output_dir are cleaned on a thread of their
    own once it starts (but never the workspace this run works in: a resume adopts its dead
    run's)."""
    output_dir = Path(output_dir)
    directory = output_dir / last_id
    try:
        directory.mkdir()
    except FileNotFoundError:       # the output directory first (usually there: one system call)
        output_dir.mkdir(parents=True, exist_ok=True)
        directory.mkdir()
    try:
        return journal_file.Journal(directory, alt_json, before=lambda: clean_dead_runs(output_dir, workspace, directory))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def library_workspace(start) -> Path | None:
    """The temporary workspace a run's first journal record (`start`) names, when this library
    made it and so may work in it and remove it: a real directory (not a symlink) named
    runner-workspace-XXXXXXXX directly in the temporary folder, owned by this user. None for
    anything else a journal, which may have been edited, could name."""
    if not isinstance(start, dict) or start.get("temporary_workspace") is not True:
        return None
    named = start.get("workspace")
    if not isinstance(named, str):
        return None
    workspace = Path(named)
    if workspace.parent != Path(tempfile.gettempdir()) or not WORKSPACE_NAME.fullmatch(workspace.name):
        return None
    try:
        info = os.lstat(workspace)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    return workspace


def callers_workspace(directory: Path, start) -> Path | None:
    """The workspace the caller gave the run in `directory` (run --workspace W), when it still
    exists, for a resume to go on working there (it is never removed: it is the caller's).
    None when the journal names none or it is gone (a new temporary workspace, with a log
    line). A path that is there but is not a directory owned by this user (a symlink, a
    file, another user's directory: the journal may have been edited) is refused, with
    ValueError, not followed."""
    named = start.get("workspace") if isinstance(start, dict) else None
    if not isinstance(named, str) or not named or "\0" in named:
        return None
    workspace = Path(named)
    try:
        info = os.lstat(workspace)
    except FileNotFoundError:
        log.warning("resume works in a new temporary workspace: the earlier run's workspace %s is gone", named)
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{directory}: the run's workspace {named!r} cannot be used: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    if not workspace.is_absolute() or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        what = ("not an absolute path" if not workspace.is_absolute() else
                "a symbolic link" if stat.S_ISLNK(info.st_mode) else
                "not a directory" if not stat.S_ISDIR(info.st_mode) else "owned by another user")
        raise ValueError(f"{directory}: the run's journal names the workspace {named!r}, which is {what}: "
                         "refused (name a workspace with --workspace)")
    return workspace


def run_start(directory: Path) -> dict | None:
    """The run_started record of the run in `directory` when a run of this library made it:
    named by a LAST id (a UUID), its journal a regular file whose first line is a run_started
    record with that id. None for any other directory, which cleaning never touches (a
    tool's own journal.jsonl in the output directory is not a dead run)."""
    directory = Path(directory)
    if not RUN_DIRECTORY_NAME.fullmatch(directory.name):
        return None
    try:
        fd = os.open(directory / journal_file.JOURNAL_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            first = handle.readline(FIRST_RECORD_BYTES)
        start = orjson.loads(first)
    except (OSError, ValueError):       # orjson's JSONDecodeError, and a path with a NUL byte (a journal's record)
        return None
    if not isinstance(start, dict) or start.get("type") != "run_started" or start.get("last_id") != directory.name:
        return None
    return start


def _named_workspace(start: dict) -> str | None:
    """The workspace a run_started record names, as library_workspace reads it (a journal may
    hold anything there: "/tmp//runner-workspace-x" is the same folder)."""
    workspace = start.get("workspace")
    return str(Path(workspace)) if isinstance(workspace, str) else None


def _dead_run_workspace(directory: Path) -> Path | None:
    """The temporary workspace the dead run in `directory` recorded, if this library made it."""
    return library_workspace(run_start(directory))


def clean_dead_run(directory: Path, *, keep_workspace: bool = False) -> None:
    """Removes what a dead run left half-done in `directory` (a journal directory whose journal
    nobody holds): temporary files, partial artifacts, an empty temporary workspace, the
    archive's temporary file. keep_workspace: a resume is about to use the workspace."""
    for stray in directory.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stray.unlink()
    if not (directory / "last.json").exists():
        shutil.rmtree(directory / "artifacts", ignore_errors=True)
    for stray in directory.parent.glob(f".{directory.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stray.unlink()
    workspace = _dead_run_workspace(directory)
    if workspace is not None and not keep_workspace and workspace.is_dir():
        with contextlib.suppress(OSError):
            workspace.rmdir()       # only when empty: files in it are what a resume needs


def _clean_finished_run(directory: Path, start: dict, in_use) -> None:
    """The temporary workspace of a finished run whose process died before removing it (killed
    just after last.json): the files its tasks wrote are artifacts of the LAST directory
    already, so it goes, as at the end of any run. Not while that process lives: abandoned
    attempts may still work in it, and it removes it when they end. Not when the run was
    interrupted either: it kept it for its resume (runner.execution.run)."""
    workspace = library_workspace(start)
    if workspace is None or (in_use is not None and workspace == Path(in_use)) or _alive(start.get("pid")):
        return
    if not _ended_whole(directory):
        return
    remove_tree(workspace)


def discard_kept_workspace_of(directory: Path, *, ended_here: bool = False) -> None:
    """Removes the temporary workspace the interrupted run in `directory` kept for its resume,
    for a caller that will not resume it (the service, for a run cancelled while it was down).
    Never while the process that ran it lives, unless that is this one and the caller saw
    the run end (ended_here: the service, for a run cancelled whose LAST file the archive
    refused)."""
    start = run_start(directory)
    workspace = library_workspace(start)
    pid = start.get("pid") if isinstance(start, dict) else None
    if workspace is not None and (not _alive(pid) or (ended_here and pid == os.getpid())):
        remove_tree_quietly(workspace)      # a clean-up: never the caller's failure


def _ended_whole(directory: Path) -> bool:
    """Whether the journal's last run_ended record (read from its end: JOURNAL_TAIL_BYTES)
    says the run was not interrupted. One not found, or unreadable, is not taken for it."""
    try:
        fd = os.open(directory / journal_file.JOURNAL_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        start = max(0, info.st_size - JOURNAL_TAIL_BYTES)
        tail = os.pread(fd, info.st_size - start, start)
    except OSError:
        return False
    finally:
        os.close(fd)
    for line in reversed(tail.split(b"\n")):
        if b'"run_ended"' not in line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("type") == "run_ended":
            return record.get("interrupted") is False
    return False


def _alive(pid) -> bool:
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True         # another user's process
    return True


def _remove_dead_start(directory: Path) -> None:
    """A directory no journal.jsonl proves a run's: removed when it is empty, or, when it is
    named by a LAST id, when it holds only what a run killed during its start leaves
    (START_LEFTOVER, regular files) and its temporary journal's lock can be taken (its run
    is dead: a start holds that lock from the file's creation). It recorded nothing: no
    run_started line was written. Anything else in it, anything that cannot be opened or
    locked, and it stays. Worked on through a descriptor of the directory opened without
    following a symlink, its entries never followed either: what is swapped in meanwhile
    is not touched, and a FIFO is never waited on."""
    with contextlib.suppress(OSError):
        directory.rmdir()          # only when empty
        return
    if not RUN_DIRECTORY_NAME.fullmatch(directory.name):
        return
    try:
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    held = []
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for _, entry in zip(range(MAX_START_LEFTOVERS + 1), entries)]
        if len(names) > MAX_START_LEFTOVERS or not all(START_LEFTOVER.fullmatch(name) for name in names):
            return
        journals = [name for name in names if name.startswith(f".{journal_file.JOURNAL_NAME}.")]
        if not journals:
            return
        for name in names:
            if not stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                return
        for name in journals:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            held.append(fd)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)      # BlockingIOError: a live start's
        # Held while the leftovers go: a run never reopens its temporary journal, so no start
        # can be under way in this directory now.
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)
    except OSError:
        return
    finally:
        for fd in held:
            os.close(fd)
        os.close(folder)
    with contextlib.suppress(OSError):
        directory.rmdir()          # only when empty: a symlink put in its place is not removed


def clean_dead_runs(output_dir: Path, in_use=None, running: Path | None = None) -> None:
    """clean_dead_run for every unfinished, unlocked run directory in output_dir (run_start:
    only directories a run of this library made), and directories left by a run killed
    before its journal existed or had its name (_remove_dead_start). in_use: a workspace that
    stays whatever run it came from. running: the directory of the run that cleans, not
    looked into (its journal is locked; reading it cost a busy run's loop a wait for the
    GIL at each of the ~9 system calls)."""
    try:
        entries = list(os.scandir(output_dir))
    except OSError:
        return
    now = time.time()
    skipped = None if running is None else os.fspath(running)
    finished, latest = [], {}
    for entry in entries:
        try:
            if entry.path == skipped or not entry.is_dir(follow_symlinks=False):
                continue
            directory = Path(entry.path)
            journal = directory / journal_file.JOURNAL_NAME
            if journal.is_file():
                start = run_start(directory)
                if start is None:
                    continue
                key = _named_workspace(start)
                if key is not None and directory.name > latest.get(key, ""):
                    latest[key] = directory.name
                if journal_file.is_locked(journal):
                    continue
                if (directory / "last.json").exists():
                    finished.append((directory, start))
                    continue
                keep = in_use is not None and _dead_run_workspace(directory) == Path(in_use)
                for record in processes.live(processes.recorded(directory)):
                    # kill -9 could not stop it: said here, and `resume` waits for it.
                    log.warning("the interrupted run %s still has %s running (python -m runner resume waits for it)",
                                directory, processes.describe(record))
                clean_dead_run(directory, keep_workspace=keep)
            elif LAST_DIRECTORY_NAME.fullmatch(entry.name) and \
                    now - entry.stat(follow_symlinks=False).st_mtime > EMPTY_DIRECTORY_AGE_SECONDS:
                _remove_dead_start(directory)
        except OSError:
            log.debug("cleaning %s failed", entry.path, exc_info=True)
    for directory, start in finished:
        # A workspace several runs here name (a run and its resumes, which took it over) is
        # the latest one's (LAST ids grow with time): removed only when that run ended whole.
        if latest.get(_named_workspace(start)) != directory.name:
            continue
        try:
            _clean_finished_run(directory, start, in_use)
        except OSError:
            log.debug("cleaning %s failed", directory, exc_info=True)
