"""The workspace files a run's LAST directory needs, carried from a worker to the submitter.

No file system is shared: the worker reads the files that task results name as artifacts
(`metadata.files_written`, explicit `path` entries) through the confined reader of
runner.workspace, and the submitter recreates them in a temporary workspace of its own,
again confined, from which the LAST writer copies them as it does for a local run.
"""
from __future__ import annotations

import os
from pathlib import Path

from runner.workspace import (WorkspaceRefused, open_directory, open_for_reading, open_regular_file, open_root,
                              split_path)


def pack(results: dict, workspace: Path, limit: int) -> tuple[dict[str, bytes], list[dict]]:
    """({path: bytes} of every workspace file the results name, [refusals]) on the worker."""
    from runner.last.artifacts import collect_candidates

    candidates, _ = collect_candidates(results)
    files: dict[str, bytes] = {}
    refused: list[dict] = []
    for candidate in candidates:
        path = candidate.workspace_path
        if path is None or path in files:
            continue
        try:
            fd = open_for_reading(workspace, path.replace("\\", "/"))
        except (WorkspaceRefused, OSError) as error:
            refused.append({"task_id": candidate.task_id, "path": path, "error": str(error)})
            continue
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            refused.append({"task_id": candidate.task_id, "path": path,
                            "error": f"over the {limit}-byte artifact limit"})
            continue
        files[path] = data
    return files, refused


def unpack(files: dict[str, bytes], workspace: Path) -> None:
    """Recreates the shipped files under `workspace` (submitter side); paths stay confined."""
    root = open_root(workspace)
    try:
        for path, data in files.items():
            parts = split_path(path.replace("\\", "/"))
            if not parts or not isinstance(data, bytes):
                raise WorkspaceRefused(f"shipped file {path!r}: not a file path with bytes")
            directory = open_directory(root, parts[:-1], path, create=True)
            try:
                fd = open_regular_file(directory, parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, path)
            finally:
                os.close(directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    finally:
        os.close(root)
