"""Files of a LAST directory, written atomically: a crash never leaves a partial file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Writes data to a temporary file beside path, fsyncs it, then renames it into place."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def write_last_directory(output_dir: Path, last_id: str, last_json: bytes) -> Path:
    """Creates <output_dir>/<last_id>/ and writes last.json in it; returns the file's path."""
    directory = Path(output_dir) / last_id
    directory.mkdir(parents=True, exist_ok=False)
    path = directory / "last.json"
    write_atomically(path, last_json)
    return path
