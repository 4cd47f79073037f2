"""Reading a LAST file back: last.json or last.json.gz, or the directory holding them."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import orjson


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
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LastFileError(f"{path}: cannot read: {error.strerror or error}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise LastFileError(f"{path}: not a valid gzip file: {error}") from None
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise LastFileError(f"{path}: not JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("task_results"), dict) \
            or not isinstance(record.get("id"), str):
        raise LastFileError(f"{path}: not a LAST file (expected an object with 'id' and 'task_results')")
    return record
