"""The ALT model: what a valid file becomes, defaults, unknown fields kept."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import runner
from conftest import FIXTURES, SPEC_ALT, dumps

FIXTURE = FIXTURES / "alt_las_example_alt_file.json"


def test_fixture_validates_into_the_model():
    alt = runner.parse_alt_file(FIXTURE.read_bytes())
    assert alt.id == "alt_example_001"
    assert alt.title == "Example ALT File for Testing"
    assert alt.version == "1.0"
    assert alt.created_at == "2025-04-26T19:32:00Z"
    assert alt.persona == "technical_expert"
    assert [task.id for task in alt.tasks] == ["task_001", "task_002", "task_003"]
    first, second, _ = alt.tasks
    assert first.dependencies == []          # null means none
    assert second.dependencies == ["task_001"]
    assert first.timeout_seconds == 30 and first.retry_count == 3
    assert first.parameters["headers"]["Content-Type"] == "application/json"
    assert alt.metadata["expected_completion_time"] == 300
    assert alt.task("task_002") is second


def test_spec_examples_validate(spec_alt):
    alt = runner.parse_alt_file(dumps(spec_alt))
    assert alt.mode == "normal" and len(alt) == 2
    assert alt.tasks[1].dependencies == ["task1"]


def test_minimal_file_gets_the_documented_defaults():
    alt = runner.parse_alt_file(b'{"id": "a", "title": "t", "tasks": [{"id": "x"}]}')
    assert alt.mode == "normal"
    assert alt.description == "" and alt.tags == [] and alt.metadata == {}
    task = alt.tasks[0]
    assert task.description == "" and task.dependencies == [] and task.parameters == {}
    assert task.task_type == "ai_prompt"
    assert task.timeout_seconds is None and task.retry_count is None and task.extra == {}


def test_task_types_is_the_set_of_its_tasks_types_and_a_new_set_each_time():
    doc = {"id": "a", "title": "t", "tasks": [
        {"id": "x"}, {"id": "y", "parameters": {"task_type": "generic"}},
        {"id": "z", "parameters": {"task_type": "generic"}},
        {"id": "w", "parameters": {"task_type": "system_command", "command": ["true"]}}]}
    alt = runner.parse_alt_file(json.dumps(doc))
    types = alt.task_types()
    assert types == {task.task_type for task in alt.tasks} == {"ai_prompt", "generic", "system_command"}
    types.add("changed")        # the caller's own set: the next answer is made afresh
    assert "changed" not in alt.task_types()


def test_the_task_types_kept_follow_control_flows_changes_to_the_task_list():
    """task_types() is found once and kept (every run asked twice, a pass over every task
    each time); control flow's instances and replacements make it look again."""
    from runner import librunner

    alt = runner.parse_alt_file(json.dumps({"id": "a", "title": "t", "tasks": [
        {"id": "g", "parameters": {"task_type": "generic"}}]}))
    other = runner.parse_alt_file(json.dumps({"id": "b", "title": "t", "tasks": [
        {"id": "c", "parameters": {"task_type": "system_command", "command": ["true"]}},
        {"id": "f", "parameters": {"task_type": "file_operation", "operation": "list", "path": "."}}]}))
    assert alt.task_types() == {"generic"}
    librunner.append_tasks(alt, [librunner.task_instance(other.tasks[0], "c#1", [], "d", None, None, 1)])
    assert alt.task_types() == {"generic", "system_command"}
    librunner.replace_task(alt, 0, librunner.task_instance(other.tasks[1], "g", [], "d", None, None, 0))
    assert alt.task_types() == {"file_operation", "system_command"}


def test_a_null_task_type_is_an_ai_prompt_as_the_parser_checked_it_and_runs_as_one(tmp_path):
    from runner.execution import execute

    doc = {"id": "n", "title": "t", "tasks": [
        {"id": "asked", "description": "say hi", "parameters": {"task_type": None}},
        {"id": "g", "description": "g", "dependencies": ["asked"], "parameters": {"task_type": "generic"}}]}
    alt = runner.parse_alt_file(json.dumps(doc))
    assert alt.tasks[0].task_type == "ai_prompt" and alt.task_types() == {"ai_prompt", "generic"}
    outcome = execute(doc, tmp_path, environ={})        # the echo provider: offline
    assert outcome.all_completed
    assert outcome.results["asked"].to_dict()["metadata"]["task_type"] == "ai_prompt"
    assert b'"task_results"' in (outcome.directory / "journal.jsonl").read_bytes()


def test_every_documented_field_is_read():
    doc = {
        "id": "full", "version": "2", "created_at": "2026-01-02T03:04:05.123+02:00", "title": "All",
        "description": "d", "mode": "chaos", "persona": "p", "priority": "critical", "tags": ["x"],
        "metadata": {"k": 1}, "expected_completion_time": 12.5,
        "tasks": [{"id": "t", "description": "td", "dependencies": None,
                   "parameters": {"task_type": "system_command", "command": ["echo", "hi"]},
                   "timeout_seconds": 1.5, "retry_count": 2.0, "priority": "low", "tags": ["a", "b"],
                   "status": "pending"}],
    }
    alt = runner.parse_alt_file(json.dumps(doc))
    assert (alt.mode, alt.priority, alt.expected_completion_time) == ("chaos", "critical", 12.5)
    task = alt.tasks[0]
    assert task.task_type == "system_command"
    assert task.retry_count == 2 and type(task.retry_count) is int   # 2.0 is JSON Schema's integer 2
    assert (task.priority, task.tags, task.status) == ("low", ["a", "b"], "pending")
    assert alt.header()["persona"] == "p"


def test_unknown_fields_are_kept_and_reach_the_last_metadata(spec_alt):
    spec_alt["x_planner"] = {"budget": 3}
    spec_alt["tasks"][1]["x_owner"] = "team-a"
    alt = runner.parse_alt_file(dumps(spec_alt))
    assert alt.extra == {"x_planner": {"budget": 3}}
    assert alt.tasks[1].extra == {"x_owner": "team-a"} and alt.tasks[0].extra == {}
    assert alt.to_dict()["x_planner"] == {"budget": 3}
    assert alt.tasks[1].to_dict()["x_owner"] == "team-a"
    record = runner.build_last_record(alt, {}, "0190a0b0-0000-7000-8000-000000000001", "0190a0b0-0000-7000-8000-000000000002", "2026-01-01T00:00:00.000Z")
    assert record["metadata"]["alt_extra_fields"] == {"x_planner": {"budget": 3}}
    assert record["metadata"]["task_extra_fields"] == {"task2": {"x_owner": "team-a"}}


def test_to_dict_round_trips():
    alt = runner.parse_alt_file(FIXTURE.read_bytes())
    again = runner.parse_alt_file(json.dumps(alt.to_dict()))
    assert again.to_dict() == alt.to_dict()
    assert [t.dependencies for t in again.tasks] == [[], ["task_001"], ["task_002"]]


def test_str_bytes_bytearray_and_memoryview_are_accepted(spec_alt):
    text = json.dumps(spec_alt)
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert runner.parse_alt_file(data).id == "test_alt_file"


def test_unknown_task_is_an_unknown_id_error(spec_alt):
    alt = runner.parse_alt_file(dumps(spec_alt))
    with pytest.raises(runner.UnknownIdError, match="unknown task 'nope'"):
        alt.task("nope")


def test_the_c_abi_accepts_the_fixture(runner):
    assert runner.runner_parse_alt_file(FIXTURE.read_bytes()) == 1


def test_cli_accepts_the_fixture():
    done = subprocess.run([sys.executable, "-m", "runner", "validate", str(FIXTURE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid ALT file 'alt_example_001' (3 tasks, mode normal)" in done.stdout


def test_every_shared_fixture_validates():
    """Every ALT file the wider ALT_LAS system ships (shared/fixtures) must keep validating."""
    files = sorted(FIXTURES.glob("*.json"))
    assert files, f"no fixtures in {FIXTURES}"
    for path in files:
        assert runner.parse_alt_file(path.read_bytes()).tasks, path
