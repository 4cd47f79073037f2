"""An ALT file's bytes, as every command reads them (validate, run, run FILE..., resume --alt,
batch): from a regular file or standard input ("-") only, and never more than
RUNNER_MAX_ALT_BYTES + 1 bytes, so /dev/zero, a FIFO nobody writes to or a huge file is
refused at once instead of filling memory or blocking."""
from __future__ import annotations

import os
import stat
import sys

from runner.errors import RunnerError


class AltInputError(RunnerError):
    """Why an ALT file is not read; the message does not repeat the file's name.
    `too_large`: it could be read, but is over the limit (validate calls that invalid)."""

    category = "io"

    def __init__(self, message: str, too_large: bool = False, outside: bool = False):
        super().__init__(message)
        self.too_large = too_large
        self.outside = outside


def _check_inside(fd: int, name: str, root: str) -> None:
    """Refuses the opened file unless it really is inside directory `root` (resolved).

    Checked on the open file, not its name: a directory of the path swapped for a symlink
    after the caller resolved it cannot lead the read outside. /proc/self/fd names the file
    the descriptor holds; without /proc the name is resolved again and must be that file.
    """
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = os.path.realpath(name)
        opened, named = os.fstat(fd), os.stat(real)
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            raise AltInputError("cannot read: the file changed while it was opened") from None
    if os.path.commonpath([real, root]) != root:
        raise AltInputError("the file is outside the ALT files directory", outside=True)


def read_alt_input(name: str, max_bytes: int | None = None, inside: str | None = None) -> bytes:
    """The bytes of ALT file `name` ("-": standard input), at most `max_bytes`
    (default: RUNNER_MAX_ALT_BYTES, whose bad value is a ConfigurationError).
    `inside`: a resolved directory the opened file must be in (the service's --alt-dir)."""
    if max_bytes is None:
        from runner import AltLimits
        max_bytes = AltLimits().max_bytes
    if name == "-":
        data, size = sys.stdin.buffer.read(max_bytes + 1), None
    else:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise AltInputError(f"cannot read: {error.strerror or error}") from None
        with os.fdopen(fd, "rb") as stream:
            try:
                if inside is not None:
                    _check_inside(fd, name, inside)
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise AltInputError("cannot read: not a regular file (an ALT file is a file or -)")
                data, size = stream.read(max_bytes + 1), info.st_size
            except OSError as error:
                raise AltInputError(f"cannot read: {error.strerror or error}") from None
    if len(data) > max_bytes:
        amount = f"{size} bytes" if size is not None and size > max_bytes else f"over {max_bytes} bytes"
        raise AltInputError(f"document is {amount}, more than the limit of {max_bytes} (RUNNER_MAX_ALT_BYTES)",
                            too_large=True)
    return data
