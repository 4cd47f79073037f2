"""A run the service's drain interrupts is resumed at its next start, even when the archive
refused the LAST file the drained run wrote (RUNNER_NATS_REQUIRED: a DeliveryError): that
refusal is not the run's end. The service's own registry, in this process (the archive's
refusal made at that moment, which a server started apart could not be made to do)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

import runner
from conftest import wait_until
from runner import DeliveryError, parse_alt_file
from runner.execution import run as run_module
from runner.execution.journal import RunState
from runner.service.registry import Registry
from runner.service.settings import ServiceSettings

pytestmark = pytest.mark.usefixtures("task_type_registry")     # the nap type is removed after the test

DOCUMENT = orjson.dumps({"id": "drained", "title": "Drained", "tasks": [
    {"id": "first", "description": "at once", "parameters": {"task_type": "generic"}},
    {"id": "nap", "description": "until the drain", "dependencies": ["first"], "parameters": {"task_type": "nap"}},
    {"id": "after", "description": "after the nap", "dependencies": ["nap"], "parameters": {"task_type": "generic"}}]})


def register_nap(until_cancelled: list) -> list:
    """The task type "nap": it waits for its cancellation while until_cancelled[0] holds;
    returns the list of the tasks it ran."""
    napping = []

    def nap(task):
        napping.append(task.id)
        if until_cancelled[0]:
            task.cancelled.wait(30)
        return "woke"

    runner.register_task_type("nap", nap)
    return napping


def refuse_last_files(monkeypatch):
    """From here on the archive refuses every LAST file (written, then a DeliveryError), as
    with RUNNER_NATS_REQUIRED and no archive; returns the real writer."""
    write_last_file = run_module.write_last_file

    def refused_by_the_archive(*args, **kwargs):
        raise DeliveryError("the archive refused it", write_last_file(*args, **kwargs))

    monkeypatch.setattr(run_module, "write_last_file", refused_by_the_archive)
    return write_last_file


def napping_run(registry: Registry, napping: list):
    """The run of DOCUMENT, accepted and running its nap."""
    run = asyncio.run(registry.accept(parse_alt_file(DOCUMENT), DOCUMENT))
    assert wait_until(lambda: napping, 30)
    return run


def service(tmp_path) -> Registry:
    registry = Registry(ServiceSettings(host="127.0.0.1", port=0, out=tmp_path, alt_dir=None), environ={})
    registry.open()
    return registry


def ended_after_a_restart(tmp_path, run_id: str):
    """The run `run_id` as the service's next start takes it up, once it has ended."""
    restarted = service(tmp_path)
    try:
        again = restarted.get(run_id)
        assert again.finished.wait(60)
    finally:
        restarted.close()
    return again


def test_a_drained_run_whose_last_file_the_archive_refused_is_resumed_at_the_next_start(tmp_path, monkeypatch):
    until_cancelled = [True]
    napping = register_nap(until_cancelled)
    write_last_file = refuse_last_files(monkeypatch)
    registry = service(tmp_path)
    try:
        run = napping_run(registry, napping)
        registry.begin_drain()
        assert run.finished.wait(60)
    finally:
        registry.close()
    assert run.status == "interrupted" and not run.is_final      # not ended: the next start resumes it
    # The next start, the archive taking LAST files again: the run resumes and ends.
    monkeypatch.setattr(run_module, "write_last_file", write_last_file)
    until_cancelled[0] = False
    napping.clear()
    again = ended_after_a_restart(tmp_path, run.id)
    assert napping == ["nap"] and again.status == "success", (again.status, again.error)


def test_a_run_cancelled_whose_last_file_the_archive_refused_leaves_no_kept_workspace(tmp_path, monkeypatch):
    """Cancelled by its user, it ends and is never resumed: the workspace it kept goes, as it
    does when the archive takes the file (its LAST file holds what the run made)."""
    napping = register_nap([True])
    refuse_last_files(monkeypatch)
    registry = service(tmp_path)
    try:
        run = napping_run(registry, napping)
        assert registry.cancel(run)
        assert run.finished.wait(60)
    finally:
        registry.close()
    assert run.status == "cancelled" and "the archive refused it" in run.error
    (directory,) = [path for path in run.folder.iterdir() if (path / "journal.jsonl").is_file()]
    start = RunState(directory).start
    assert start["temporary_workspace"] is True and not Path(start["workspace"]).exists()
