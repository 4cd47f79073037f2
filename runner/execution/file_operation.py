"""file_operation: read, write, append, delete or list a file inside the run's workspace.

parameters: operation, path (relative to the workspace), content (write, append).

Paths are untrusted: runner.workspace opens them confined to the workspace (a dir_fd
walk with O_NOFOLLOW, so a symbolic link anywhere on the way is refused; FIFOs and
devices are refused instead of blocking the task). Writes go to a temporary file renamed
into place, so a failed write leaves no partial file.
"""
from __future__ import annotations

import os
import stat
import uuid

from runner.execution.attempt import TaskFailure
from runner.workspace import WorkspaceRefused, open_directory, open_regular_file, open_root, split_path

OPERATIONS = ("read", "write", "append", "delete", "list")
MAX_FILE_BYTES = 16 << 20


def _refuse(message: str):
    return TaskFailure(message, permanent=True)


def _read(dir_fd, name, path, ctx):
    with os.fdopen(open_regular_file(dir_fd, name, os.O_RDONLY, path), "rb") as handle:
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
    fd = open_regular_file(dir_fd, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, path)
    with os.fdopen(fd, "wb") as handle:
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
    fd = open_directory(workspace_fd, parts, path)
    try:
        entries = []
        with os.scandir(fd) as scan:
            for entry in scan:
                try:
                    kind = _entry_type(entry)
                    item = {"name": entry.name, "type": kind}
                    if kind == "file":
                        item["size"] = entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue    # deleted (by another task) between the scan and its stat: not listed
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
    try:
        parts = split_path(path)
    except WorkspaceRefused as refused:   # its messages begin "path ...": name the parameter
        raise _refuse(f"parameters.{refused}") from None
    workspace_fd = open_root(ctx.workspace)
    try:
        if operation == "list":
            return _list(workspace_fd, parts, path)
        if not parts:
            raise _refuse(f"parameters.path {path!r} names the workspace itself, not a file")
        dir_fd = open_directory(workspace_fd, parts[:-1], path, create=operation in ("write", "append"))
        try:
            handler = {"read": _read, "write": _write, "append": _append, "delete": _delete}[operation]
            return handler(dir_fd, parts[-1], "/".join(parts), ctx)
        finally:
            os.close(dir_fd)
    except WorkspaceRefused as refused:
        raise _refuse(str(refused)) from None
    except OSError as error:
        raise TaskFailure(f"file_operation {operation} {path!r}: {error.strerror or error}") from None
    finally:
        os.close(workspace_fd)
