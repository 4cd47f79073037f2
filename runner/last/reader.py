"""Reading a LAST file back: last.json or last.json.gz, or the directory holding them."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import orjson

GZIP_MAGIC = b"\x1f\x8b"
# Largest LAST document read, after decompression: a few KiB of gzip can expand to
# gigabytes, so last.json.gz is decompressed as a stream and stopped at this size.
MAX_LAST_BYTES = 1 << 30


def load_last(path: str | os.PathLike) -> dict:
    """The LAST record at `path`: a last.json, a last.json.gz, or a LAST directory.

    Raises LastFileError (from runner) naming the path and what is wrong with it.
    """
    from runner import LastFileError

    path = Path(path)
    if path.is_dir():
        candidates = [path / "last.json", path / "last.json.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise LastFileError(f"{path}: no last.json or last.json.gz in this directory")
        path = found
    raw = _read_capped(path, MAX_LAST_BYTES)
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise LastFileError(f"{path}: not JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("task_results"), dict) \
            or not isinstance(record.get("id"), str):
        raise LastFileError(f"{path}: not a LAST file (expected an object with 'id' and 'task_results')")
    return record


def _read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, gunzipped when it is gzip; LastFileError past `limit` bytes."""
    from runner import LastFileError

    try:
        handle = open(path, "rb")
    except OSError as error:
        raise LastFileError(f"{path}: cannot read: {error.strerror or error}") from None
    with handle:
        try:
            compressed = handle.read(2) == GZIP_MAGIC
            handle.seek(0)
            if not compressed:
                data = handle.read(limit + 1)
        except OSError as error:
            raise LastFileError(f"{path}: cannot read: {error.strerror or error}") from None
        if compressed:
            try:
                data = gzip.GzipFile(fileobj=handle).read(limit + 1)
            except (OSError, EOFError, zlib.error) as error:
                raise LastFileError(f"{path}: not a valid gzip file: {error}") from None
    if len(data) > limit:
        what = "decompresses to" if compressed else "is"
        raise LastFileError(f"{path}: {what} more than {limit} bytes, the largest LAST file read")
    return data


def run_mode(record: dict):
    """The mode the run used. execution.mode first: records written before the top-level
    mode followed it carry the ALT file's mode there."""
    execution = record.get("execution")
    mode = execution.get("mode") if isinstance(execution, dict) else None
    return mode if isinstance(mode, str) else record.get("mode")


def task_status(entry: dict):
    """librunner's status of a task result or graph node. The file holds the original
    runner's status (a skipped task is "cancelled" there) and marks skips with "skipped"."""
    return "skipped" if entry.get("skipped") is True else entry.get("status")


def skip_reason(entry: dict):
    """Why a skipped task was skipped (the executor's reason, else its error), or None."""
    if entry.get("skipped") is not True:
        return None
    metadata = entry.get("metadata")
    reason = metadata.get("skipped_reason") if isinstance(metadata, dict) else None
    return reason if isinstance(reason, str) else entry.get("error")
