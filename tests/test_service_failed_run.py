"""A run the service ends as failed is never resumed: the temporary workspace it kept for a
resume goes with its end, not left in the temporary directory for ever. The service's own
registry, in this process (its disk made to refuse the LAST file, which a server started
apart could not be made to do at that moment)."""
from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import orjson

from runner import parse_alt_file
from runner.execution.journal import RunState
from runner.last import directory as last_directory
from runner.service.registry import Registry
from runner.service.settings import ServiceSettings

DOCUMENT = orjson.dumps({"id": "kept", "title": "Kept", "tasks": [
    {"id": "write", "description": "a file in the workspace", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "note.txt", "content": "kept"}}]})


def test_a_run_the_service_ends_as_failed_leaves_no_kept_workspace(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(last_directory, "write_atomically", refused)
    registry = Registry(ServiceSettings(host="127.0.0.1", port=0, out=tmp_path, alt_dir=None), environ={})
    registry.open()
    try:
        run = asyncio.run(registry.accept(parse_alt_file(DOCUMENT), DOCUMENT))
        assert run.finished.wait(60)
    finally:
        registry.close()
    assert run.status == "failure" and "No space left on device" in run.error
    (directory,) = [path for path in run.folder.iterdir() if (path / "journal.jsonl").is_file()]
    state = RunState(directory)
    assert state.results["write"]["status"] == "completed" and state.start["temporary_workspace"] is True
    # The run wrote its file there, and kept it for a resume until the service ended it.
    assert not Path(state.start["workspace"]).exists()
