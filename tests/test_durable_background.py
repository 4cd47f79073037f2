"""Background runs (what runner_run_* drive) from Python: events numbered and bounded, a run
cancelled at once still writes its LAST file, unknown ids are refused by name."""
from __future__ import annotations

import json

import pytest

from runner import UnknownIdError, parse_alt_file
from runner.execution import background
from test_durable_journal import ENABLED


def chain(n: int) -> object:
    return parse_alt_file(json.dumps({"id": "bg", "title": "bg", "tasks": [
        {"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"] if i else [],
         "parameters": {"task_type": "generic"}} for i in range(n)]}))


def test_events_are_numbered_and_the_oldest_dropped_past_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(background, "MAX_EVENTS", 10)
    run = background.RUNS.start(chain(30), tmp_path)
    assert run.wait(60)
    status = run.status()
    assert status["state"] == "completed" and status["counts"]["completed"] == 30
    assert (tmp_path / status["last_id"] / "last.json").is_file()
    events = run.events_after(0)
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], status["events"] + 1)) and len(events) <= 10
    assert events[-1]["event"] == "run_finished"
    assert [e["seq"] for e in run.events_after(status["events"] - 2)] == seqs[-2:]


def test_a_run_cancelled_before_it_starts_is_interrupted_with_its_last_file(tmp_path, monkeypatch):
    for name, value in ENABLED.items():
        monkeypatch.setenv(name, value)
    alt = parse_alt_file(json.dumps({"id": "c", "title": "c", "tasks": [
        {"id": "s", "description": "s", "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}}]}))
    run = background.RUNS.start(alt, tmp_path)
    run.cancel()
    assert run.wait(30)
    status = run.status()
    assert status["state"] == "interrupted" and status["tasks"] == {"s": "cancelled"}
    record = json.loads((tmp_path / status["last_id"] / "last.json").read_bytes())
    assert record["execution"]["interrupted"] is True


def test_unknown_runs_are_refused_by_name():
    with pytest.raises(UnknownIdError, match="unknown run 'run_x'"):
        background.RUNS.get("run_x")
