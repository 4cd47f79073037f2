"""Files of a LAST directory, written atomically: a crash never leaves a partial file.

Each file is written to a temporary name beside its place, fsynced, then renamed over
it, and the directory is fsynced so the rename itself survives a crash. A writer of
several files in one directory may fsync the directory once, after the last rename
(sync_directory=False, then fsync_directory(directory)): each fsync costs milliseconds.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path


def process_umask() -> int:
    """The process's umask, read without changing it (os.umask can only set it, which would
    race with other threads creating files); from /proc on Linux."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(directory: Path) -> None:
    """Makes the renames done in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, sync_directory: bool = True):
    """A binary handle whose content appears at `path` only if the block completes.
    sync_directory=False leaves the directory's fsync to the caller."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; a LAST file gets the mode any tool gives a new file
        # (0666 less the umask), so a web server running as another user can serve the report.
        os.fchmod(fd, 0o666 & ~process_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if sync_directory:
        fsync_directory(path.parent)


def write_atomically(path: Path, data: bytes, *, sync_directory: bool = True) -> None:
    """Writes data to a temporary file beside path, fsyncs it, then renames it into place."""
    with atomic_file(path, sync_directory=sync_directory) as handle:
        handle.write(data)


class EarlyWriteback:
    """A large file's disk writes started while it is still being made: every `step` bytes
    written, a thread of its own fdatasyncs the file (the GIL released meanwhile), so the
    fsync that makes it durable at its end finds little left to write (last.json of a 1M-task
    run, ~850 MB: ~0.4 s less at the end). write() is the handle's; finish() (or stop(), on
    failure) must be called before the handle is closed. The kernel reports a failed
    write-back once per open file: an error of the early syncs is raised by finish()."""

    def __init__(self, handle, step: int = 64 << 20):
        self.handle, self.step = handle, step
        self.unsynced = 0
        self.error: OSError | None = None
        self.wanted = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None

    def write(self, chunk) -> None:
        self.handle.write(chunk)
        self.unsynced += len(chunk)
        if self.unsynced >= self.step:
            self.unsynced = 0
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, args=(self.handle.fileno(),),
                                               name="last-writer-sync", daemon=True)
                self.thread.start()
            self.wanted.set()

    def _run(self, fd: int) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.stopping:
                return
            try:
                os.fdatasync(fd)
            except OSError as error:
                self.error = error
                return

    def stop(self) -> None:
        """Waits for the thread (the file is about to be closed)."""
        if self.thread is not None:
            self.stopping = True
            self.wanted.set()
            self.thread.join()
            self.thread = None

    def finish(self) -> None:
        """stop(), then the early syncs' error, if there was one."""
        self.stop()
        if self.error is not None:
            raise self.error
