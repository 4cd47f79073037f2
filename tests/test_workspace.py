"""The run's workspace fence (runner/workspace.py), as artifacts and file_operation use it.

Real FIFOs, symlinks and a symlink swapped under a running copy: nothing outside the
workspace is ever read, and nothing that is not a regular file blocks the run.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

import runner
from conftest import dumps
from runner.last.artifacts import ArtifactRefused, Candidate, store_candidate
from runner.execution import execute

SECRET = "TOP SECRET: outside the workspace"


def finishes_within(seconds, function):
    """function()'s result, failing (not hanging) when it blocks longer than `seconds`."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("value", function()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still blocked after {seconds} s"
    return outcome["value"]


def artifact_errors(tmp_path, workspace, entries):
    alt = runner.parse_alt_file(dumps({"id": "ws", "title": "ws", "tasks": [
        {"id": "t", "description": "t", "dependencies": None}]}))
    results = {"t": runner.task_result_from_dict(
        {"task_id": "t", "status": "completed", "output": {"artifacts": entries}}, alt)}
    written = finishes_within(10, lambda: runner.write_last_file(
        alt, results, tmp_path / "out", workspace=workspace, graph=False, html_report=False))
    return written, {e["name"]: e["error"] for e in written.record["metadata"].get("artifact_errors", [])}


def file_operation(tmp_path, workspace, operation, path):
    alt = {"id": "fo", "title": "fo", "tasks": [{
        "id": "t", "description": "t", "dependencies": None, "timeout_seconds": 30,
        "parameters": {"task_type": "file_operation", "operation": operation, "path": path, "content": "x"}}]}
    outcome = finishes_within(10, lambda: execute(alt, write=False, workspace=workspace, environ={}))
    return outcome.results["t"]


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    (ws / "real").mkdir(parents=True)
    (ws / "real" / "f").write_text("inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_text(SECRET)
    return ws


def test_a_fifo_named_as_an_artifact_is_refused_without_blocking(tmp_path, workspace):
    os.mkfifo(workspace / "pipe")
    written, errors = artifact_errors(tmp_path, workspace, [
        {"name": "pipe", "path": "pipe"}, {"name": "good", "path": "real/f"}])
    assert "FIFO" in errors["pipe"] and "not a regular file" in errors["pipe"]
    assert [a["path"] for a in written.record["artifacts"]] == ["artifacts/t/good"]


@pytest.mark.parametrize("operation", ["read", "append"])
def test_file_operation_on_a_fifo_fails_at_once_and_leaves_no_thread_blocked(tmp_path, workspace, operation):
    os.mkfifo(workspace / "pipe")
    before = threading.active_count()
    result = file_operation(tmp_path, workspace, operation, "pipe")
    assert result.status == "failed"
    assert "'pipe' is a FIFO, not a regular file" in result.error
    assert len(result.metadata["attempts"]) == 1          # a refusal is not retried
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


def test_an_artifact_under_a_symlinked_directory_is_refused_even_inside(tmp_path, workspace):
    (workspace / "out_link").symlink_to(tmp_path / "outside")
    (workspace / "in_link").symlink_to("real")
    written, errors = artifact_errors(tmp_path, workspace, [
        {"name": "out", "path": "out_link/f"}, {"name": "in", "path": "in_link/f"}])
    assert written.record["artifacts"] == []
    assert "'out_link' is a symbolic link" in errors["out"]
    assert "'in_link' is a symbolic link" in errors["in"]


def test_a_parent_directory_swapped_to_a_symlink_mid_copy_never_exposes_an_outside_file(tmp_path, workspace):
    """The race of /tmp/review-py/race.py: 'd' flips between a link to real/ and one outside."""
    out = tmp_path / "last"
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            for target in (tmp_path / "outside", "real"):
                os.symlink(target, workspace / "tmp")
                os.rename(workspace / "tmp", workspace / "d")
                os.rename(workspace / "d", workspace / "tmp")
                os.unlink(workspace / "tmp")

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    leaks = copies = 0
    try:
        deadline = time.monotonic() + 4
        for number in range(6000):
            if time.monotonic() > deadline:
                break
            candidate = Candidate("t", "f", "explicit", workspace_path="d/f", safe_name=f"t/f{number}")
            try:
                store_candidate(candidate, out, workspace, 1 << 20)
            except (ArtifactRefused, OSError):
                continue
            copies += 1
            leaks += (out / "artifacts" / "t" / f"f{number}").read_text() == SECRET
    finally:
        stop.set()
        flipper.join(10)
    assert leaks == 0, f"{leaks} of {copies} copies read the file outside the workspace"
