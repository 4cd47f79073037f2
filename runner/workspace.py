"""Opening files inside the run's workspace, confined to it: one way, for every reader.

Paths come from ALT files and task outputs, so they are untrusted. Checking a resolved
path and then opening it races with a directory swapped for a symlink in between, so a
path is walked one component at a time with openat-style calls (dir_fd) and O_NOFOLLOW:
what is checked is what is opened, and a symlink anywhere on the way is refused (even
one pointing inside: it could be repointed at any moment). A hard link cannot be told
from the file it links to, so a regular file with a link count above 1 is refused too.

Files are opened with O_NONBLOCK and checked with fstat before use, so a FIFO, socket or
device is refused at once instead of blocking its reader forever; O_NONBLOCK is then
cleared so the regular file reads as usual.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat

from runner.errors import RefusedError

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


class WorkspaceRefused(RefusedError):
    """A path that could leave the workspace, does not exist, or is not a regular file."""


def split_path(path) -> list[str]:
    """The components of a workspace-relative path; WorkspaceRefused if it could leave the workspace."""
    if not isinstance(path, str) or not path:
        raise WorkspaceRefused(f"path must be a non-empty string, found {path!r}")
    if "\x00" in path:
        raise WorkspaceRefused("path contains a NUL character")
    if path.startswith("/"):
        raise WorkspaceRefused(f"path {path!r} is absolute; paths are relative to the run's workspace")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise WorkspaceRefused(f"path {path!r} contains '..', which leaves the workspace")
    return parts


def open_root(workspace) -> int:
    """An fd of the workspace directory itself (which the caller chose, so it may be a symlink)."""
    return os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _symlink_refused(path: str, part: str) -> WorkspaceRefused:
    where = f"{path!r}" if part == path else f"{path!r}: {part!r}"
    return WorkspaceRefused(f"{where} is a symbolic link (refused: it could lead outside the workspace)")


def open_directory(root_fd: int, parts: list[str], path: str, *, create: bool = False) -> int:
    """An fd of the directory `parts` name under the workspace, never through a symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                next_fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise WorkspaceRefused(f"{path!r}: no such directory {part!r} in the workspace") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    if _kind_at(fd, part) == "a symbolic link":
                        raise _symlink_refused(path, part) from None
                    raise WorkspaceRefused(f"{path!r}: {part!r} is not a directory") from None
                raise
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _kind_at(dir_fd: int, name: str) -> str:
    try:
        return _kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return "not a regular file"


def _not_regular(path: str, kind: str) -> WorkspaceRefused:
    return WorkspaceRefused(f"{path!r} is {kind}, not a regular file")


def open_regular_file(dir_fd: int, name: str, flags: int, path: str) -> int:
    """An fd of the regular file `name` in dir_fd, opened with `flags` (O_CREAT creates it).

    Never follows a symlink, never blocks on a FIFO or device: those are refused, and so
    is a file with more than one hard link, which may be a file outside the workspace.
    """
    try:
        fd = os.open(name, flags | _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _symlink_refused(path, name) from None
        if error.errno == errno.ENOENT:
            raise WorkspaceRefused(f"{path!r}: no such file in the workspace") from None
        if error.errno in (errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            # ENXIO: a FIFO without a reader opened for writing, or a socket.
            raise _not_regular(path, _kind_at(dir_fd, name)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, _kind(info.st_mode))
        if info.st_nlink > 1:
            raise WorkspaceRefused(f"{path!r} has {info.st_nlink} hard links (refused: another of its names "
                                   f"could be outside the workspace)")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_for_reading(workspace, path: str) -> int:
    """An fd, read-only, of the regular file at the workspace-relative `path`."""
    parts = split_path(path)
    if not parts:
        raise WorkspaceRefused(f"path {path!r} names the workspace itself, not a file")
    root_fd = open_root(workspace)
    try:
        dir_fd = open_directory(root_fd, parts[:-1], path)
    finally:
        os.close(root_fd)
    try:
        return open_regular_file(dir_fd, parts[-1], os.O_RDONLY, path)
    finally:
        os.close(dir_fd)


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _clear_files(fd: int) -> list[str]:
    """Unlinks everything in the directory fd except directories; returns the directories' names."""
    directories = []
    with os.scandir(fd) as scan:
        for entry in scan:
            try:
                if entry.is_dir(follow_symlinks=False):
                    directories.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:       # gone already: nothing to remove
                pass
    return directories


def remove_tree(path) -> None:
    """Removes the directory `path` and all it holds; a missing `path` is not an error.

    A task can nest directories thousands deep, deeper than any recursion (shutil.rmtree
    raised RecursionError). This walk keeps one directory fd open and, per level, the
    names still to visit. It climbs back with "..", checking that it reaches the very
    directory it came from (device and inode), so a directory moved meanwhile makes it
    stop with an OSError instead of deleting outside the tree. Symlinks are unlinked,
    never followed.
    """
    parent, name = os.path.split(os.path.abspath(path))
    try:
        parent_fd = os.open(parent, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        return
    fd = -1
    try:
        try:
            fd = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        _empty(fd, path)
        os.close(fd)
        fd = -1
        os.rmdir(name, dir_fd=parent_fd)
    finally:
        if fd >= 0:
            os.close(fd)
        os.close(parent_fd)



def remove_tree_quietly(path) -> None:
    """remove_tree for clean-up paths that must not fail their caller: an error is logged."""
    try:
        remove_tree(path)
    except OSError as error:
        logging.getLogger("runner").warning("could not remove %s: %s", path, error)

def _empty(fd: int, path) -> None:
    """Removes everything inside the directory fd; fd is that directory again on return."""
    stack = [(_identity(fd), "", _clear_files(fd))]     # (identity, name in parent, subdirectories left)
    cursor = os.dup(fd)
    try:
        while True:
            _, here, pending = stack[-1]
            if pending:
                child = pending.pop()
                try:
                    child_fd = os.open(child, _DIRECTORY_FLAGS, dir_fd=cursor)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    os.unlink(child, dir_fd=cursor)     # swapped for a link or a file since the scan
                    continue
                os.close(cursor)
                cursor = child_fd
                stack.append((_identity(cursor), child, _clear_files(cursor)))
                continue
            stack.pop()
            if not stack:
                return
            up = os.open("..", _DIRECTORY_FLAGS, dir_fd=cursor)
            os.close(cursor)
            cursor = up
            if _identity(cursor) != stack[-1][0]:
                raise OSError(errno.ESTALE, f"{path}: a directory moved while it was being removed")
            try:
                os.rmdir(here, dir_fd=cursor)
            except FileNotFoundError:
                pass
    finally:
        os.close(cursor)
