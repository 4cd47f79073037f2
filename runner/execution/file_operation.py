"""file_operation: read, write, append, delete or list a file inside the run's workspace.

parameters: operation, path (relative to the workspace), content (write, append).

Paths are untrusted: an absolute path, a '..' component or a symbolic link anywhere on
the way is refused. Checking a resolved path and then opening it would race with a
symlink swapped in between, so the path is walked one component at a time with
openat-style calls (dir_fd) and O_NOFOLLOW: what is checked is what is opened. Writes go
to a temporary file renamed into place, so a failed write leaves no partial file.
"""
from __future__ import annotations

import errno
import os
import stat
import uuid

from runner.execution.attempt import TaskFailure

OPERATIONS = ("read", "write", "append", "delete", "list")
MAX_FILE_BYTES = 16 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _refuse(message: str):
    return TaskFailure(message, permanent=True)


def split_path(path) -> list[str]:
    """The components of a workspace-relative path; TaskFailure if it could leave the workspace."""
    if not isinstance(path, str) or not path:
        raise _refuse(f"parameters.path must be a non-empty string, found {path!r}")
    if "\x00" in path:
        raise _refuse("parameters.path contains a NUL character")
    if path.startswith("/"):
        raise _refuse(f"parameters.path {path!r} is absolute; paths are relative to the run's workspace")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse(f"parameters.path {path!r} contains '..'; paths may not leave the run's workspace")
    return parts


def _open_directory(workspace_fd: int, parts: list[str], path: str, create: bool) -> int:
    """An fd of the directory parts name under the workspace, never through a symlink."""
    fd = os.dup(workspace_fd)
    try:
        for part in parts:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise _refuse(f"{path!r}: directory {part!r} does not exist") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    kind = "a symbolic link" if os.path.islink(f"/proc/self/fd/{fd}/{part}") else "not a directory"
                    raise _refuse(f"{path!r}: {part!r} is {kind} (refused: paths stay inside the workspace)") from None
                raise
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_file(dir_fd: int, name: str, flags: int, path: str) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(f"{path!r} is a symbolic link (refused: paths stay inside the workspace)") from None
        if error.errno == errno.ENOENT:
            raise _refuse(f"{path!r} does not exist in the workspace") from None
        if error.errno == errno.EISDIR:
            raise _refuse(f"{path!r} is a directory") from None
        raise


def _read(dir_fd, name, path, ctx):
    fd = _open_file(dir_fd, name, os.O_RDONLY, path)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(f"{path!r} is not a regular file")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(f"{path!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refuse(f"{path!r} is not UTF-8 text (byte {error.start})") from None
    return {"operation": "read", "path": path, "content": content, "size": len(data)}


def _content(ctx) -> bytes:
    content = ctx.parameters.get("content", "")
    if not isinstance(content, str):
        raise _refuse(f"parameters.content must be a string, found {type(content).__name__}")
    data = content.encode("utf-8", "surrogatepass")
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(f"parameters.content is larger than {MAX_FILE_BYTES} bytes")
    return data


def _write(dir_fd, name, path, ctx):
    data = _content(ctx)
    temporary = f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except IsADirectoryError:
            raise _refuse(f"{path!r} is a directory") from None
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    ctx.metadata.setdefault("files_written", []).append(path)
    return {"operation": "write", "path": path, "bytes_written": len(data)}


def _append(dir_fd, name, path, ctx):
    data = _content(ctx)
    fd = _open_file(dir_fd, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, path)
    with os.fdopen(fd, "wb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _refuse(f"{path!r} is not a regular file")
        handle.write(data)
    ctx.metadata.setdefault("files_written", []).append(path)
    return {"operation": "append", "path": path, "bytes_written": len(data)}


def _delete(dir_fd, name, path, ctx):
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise _refuse(f"{path!r} does not exist in the workspace") from None
    if stat.S_ISDIR(info.st_mode):
        raise _refuse(f"{path!r} is a directory; only files are deleted")
    os.unlink(name, dir_fd=dir_fd)
    return {"operation": "delete", "path": path}


def _entry_type(entry) -> str:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "directory"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


def _list(workspace_fd, parts, path):
    fd = _open_directory(workspace_fd, parts, path, create=False)
    try:
        entries = []
        with os.scandir(fd) as scan:
            for entry in scan:
                kind = _entry_type(entry)
                item = {"name": entry.name, "type": kind}
                if kind == "file":
                    item["size"] = entry.stat(follow_symlinks=False).st_size
                entries.append(item)
    finally:
        os.close(fd)
    entries.sort(key=lambda e: e["name"])
    return {"operation": "list", "path": path, "entries": entries}


def run(ctx) -> dict:
    operation = ctx.parameters.get("operation")
    if operation not in OPERATIONS:
        raise _refuse(f"parameters.operation must be one of {', '.join(OPERATIONS)}, found {operation!r}")
    path = ctx.parameters.get("path", "." if operation == "list" else None)
    parts = split_path(path)
    workspace_fd = os.open(ctx.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if operation == "list":
            return _list(workspace_fd, parts, path)
        if not parts:
            raise _refuse(f"parameters.path {path!r} names the workspace itself, not a file")
        dir_fd = _open_directory(workspace_fd, parts[:-1], path, create=operation in ("write", "append"))
        try:
            handler = {"read": _read, "write": _write, "append": _append, "delete": _delete}[operation]
            return handler(dir_fd, parts[-1], "/".join(parts), ctx)
        finally:
            os.close(dir_fd)
    except OSError as error:
        raise TaskFailure(f"file_operation {operation} {path!r}: {error.strerror or error}") from None
    finally:
        os.close(workspace_fd)
