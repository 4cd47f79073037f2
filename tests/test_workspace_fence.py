"""The workspace fence against what other tasks and other links do (issue 12, faults 5, 6, 8).

- a listing while other tasks delete files: an entry gone between the scan and its stat is
  not an error of the listing;
- a hard link (link count above 1) in the workspace may name a file outside it: refused
  like a symlink for reads, appends and artifacts;
- `..` is refused as a path component only: `..\\escape5.txt` is a legal file name.
"""
from __future__ import annotations

import os
import threading

import runner
from conftest import dumps
from runner.execution import execute

SECRET = "TOP SECRET: outside the workspace"


def run_tasks(workspace, tasks, **options):
    alt = {"id": "fence", "title": "fence", "tasks": [
        {"id": task_id, "description": task_id, "dependencies": None, "timeout_seconds": 60,
         "parameters": {"task_type": "file_operation", **parameters}} for task_id, parameters in tasks]}
    return execute(alt, write=False, workspace=workspace, environ={}, **options).results


def test_a_listing_tolerates_entries_deleted_during_it(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    stop = threading.Event()

    def churn():
        names = [workspace / f"f{i:03}" for i in range(200)]
        while not stop.is_set():
            for name in names:
                name.write_bytes(b"x")
            for name in names:
                name.unlink()

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        results = run_tasks(workspace, [(f"list{i}", {"operation": "list", "path": "."}) for i in range(150)],
                            max_concurrency=4)
    finally:
        stop.set()
        churner.join()
    errors = [r.error for r in results.values() if r.status != "completed"]
    assert errors == []
    for result in results.values():
        for entry in result.output["entries"]:
            assert entry["type"] == "file" and set(entry) <= {"name", "type", "size"}


def hard_linked_workspace(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    os.link(outside, workspace / "linked.txt")
    return workspace, outside


def test_a_hard_link_is_not_read_or_appended_to(tmp_path):
    workspace, outside = hard_linked_workspace(tmp_path)
    results = run_tasks(workspace, [("read", {"operation": "read", "path": "linked.txt"}),
                                    ("append", {"operation": "append", "path": "linked.txt", "content": "!"})])
    for name in ("read", "append"):
        assert results[name].status == "failed"
        assert "hard link" in results[name].error
    assert SECRET not in str(results["read"].output)
    assert outside.read_text() == SECRET


def test_a_hard_link_is_not_copied_as_an_artifact(tmp_path):
    workspace, _ = hard_linked_workspace(tmp_path)
    alt = runner.parse_alt_file(dumps({"id": "a", "title": "a", "tasks": [
        {"id": "t", "description": "t", "dependencies": None}]}))
    results = {"t": runner.task_result_from_dict({
        "task_id": "t", "status": "completed", "output": {"artifacts": [{"name": "x", "path": "linked.txt"}]},
        "metadata": {"files_written": ["linked.txt"]}}, alt)}
    written = runner.write_last_file(alt, results, tmp_path / "out", workspace=workspace,
                                     graph=False, html_report=False)
    errors = written.record["metadata"]["artifact_errors"]
    assert len(errors) == 2 and all("hard link" in e["error"] for e in errors)
    everything = b"".join(p.read_bytes() for p in written.directory.rglob("*") if p.is_file())
    assert SECRET.encode() not in everything


def test_a_file_name_containing_two_dots_is_an_artifact(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    alt = {"id": "dots", "title": "dots", "tasks": [{
        "id": "w", "description": "w", "dependencies": None,
        "parameters": {"task_type": "file_operation", "operation": "write", "path": "..\\escape5.txt",
                       "content": "legal"}}]}
    outcome = execute(alt, tmp_path / "out", workspace=workspace, environ={})
    assert outcome.results["w"].status == "completed"
    assert (workspace / "..\\escape5.txt").read_text() == "legal"
    assert not (tmp_path / "escape5.txt").exists()
    artifacts = outcome.record["artifacts"]
    assert [a["name"] for a in artifacts] == ["..\\escape5.txt"]
    assert (outcome.directory / artifacts[0]["path"]).read_text() == "legal"
    assert "artifact_errors" not in outcome.record["metadata"]
