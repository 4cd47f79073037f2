"""A system_command's executable is resolved (allowlist, PATH, executable bit) once per run
and name, not at each attempt: each run resolves afresh, and a refusal holds for every task
naming the program."""
from __future__ import annotations

import stat

import orjson

from runner import parse_alt_file
from runner.execution import execute
from runner.execution.preflight import problems

ENVIRON = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "tool"}


def tool(directory, says: str):
    directory.mkdir()
    path = directory / "tool"
    path.write_text(f"#!/bin/sh\necho {says}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def alt(count: int) -> dict:
    return {"id": "resolve", "title": "resolve", "tasks": [
        {"id": f"t{i}", "description": "t", "parameters": {"task_type": "system_command", "command": ["tool"]}}
        for i in range(count)]}


def test_each_run_resolves_the_name_afresh(tmp_path, monkeypatch):
    """The same PATH in both runs: a program put earlier on it after the first run is the
    one the second runs."""
    later, first = tmp_path / "later", tool(tmp_path / "first", "one")
    monkeypatch.setenv("PATH", f"{later}:{first.parent}:/usr/bin:/bin")
    outcome = execute(alt(3), write=False, workspace=tmp_path, environ=ENVIRON)
    assert {r.output["stdout"] for r in outcome.results.values()} == {"one\n"}
    second = tool(later, "two")
    outcome = execute(alt(3), write=False, workspace=tmp_path, environ=ENVIRON)
    assert {r.output["stdout"] for r in outcome.results.values()} == {"two\n"}
    assert {r.metadata["process"]["argv"][0] for r in outcome.results.values()} == {str(second)}


def test_a_program_that_is_not_executable_fails_every_task_naming_it(tmp_path, monkeypatch):
    path = tool(tmp_path / "bin", "never")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.setenv("PATH", f"{path.parent}:/usr/bin:/bin")
    outcome = execute(alt(4), write=False, workspace=tmp_path, environ=ENVIRON)
    assert [r.status for r in outcome.results.values()] == ["failed"] * 4
    assert all(r.error == "executable 'tool' not found" for r in outcome.results.values())
    found = problems(parse_alt_file(orjson.dumps(alt(4))), tmp_path / "out", ENVIRON)
    assert found == [f"task 't{i}': executable 'tool' not found" for i in range(4)]
