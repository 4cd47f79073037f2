"""`validate` and the checks before a run, as a person meets them: every problem of every
family at once, in the order of the file, each naming its task; templates checked wherever a
prompt comes from; nothing spent before a mistake is reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**environ, **(env or {})}, cwd=cwd)


def alt(tasks, **fields) -> dict:
    doc = {"id": "second_hour", "title": "Second hour", "mode": "normal", "tasks": tasks}
    doc.update(fields)
    return {key: value for key, value in doc.items() if value is not None}


def write(tmp_path, doc, name="alt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def error_lines(completed) -> list[str]:
    return [line.strip() for line in completed.stdout.splitlines()[1:] if not line.strip().startswith("warning")]


def test_a_broken_template_in_a_description_without_parameters_is_an_error(tmp_path):
    path = write(tmp_path, alt([{"id": "ask", "description": "Hello {{ deps.ask.output.text "}]))
    checked = cli("validate", path)
    assert checked.returncode == 1, checked.stdout
    assert error_lines(checked) == [
        "/tasks/0/description (task 'ask'): prompt template syntax error at line 1, column 7 (the tag opened there "
        "is not closed: end it with '}}'): unexpected end of template, expected 'end of print statement'."]


def test_a_template_reading_a_task_that_is_not_a_dependency_is_an_error_with_its_place(tmp_path):
    path = write(tmp_path, alt([
        {"id": "fetch", "description": "get", "parameters": {"task_type": "generic"}},
        {"id": "summary", "description": "Summarise\n  {{ deps.fetc.output }}", "dependencies": ["fetch"]},
        {"id": "other", "description": "x", "parameters": {"prompt": "{{ deps['fetch'].output }}"}},
    ]))
    checked = cli("validate", path)
    assert checked.returncode == 1
    assert error_lines(checked) == [
        "/tasks/1/description (task 'summary'): prompt template at line 2, column 6: deps.fetc: 'fetc' is not a "
        "dependency of this task (did you mean 'fetch'?)",
        "/tasks/2/parameters/prompt (task 'other'): prompt template at line 1, column 4: deps.fetch: 'fetch' is "
        "not a dependency of this task (the task has no dependencies: add 'fetch' to its dependencies)"]


def test_run_refuses_a_template_reading_a_non_dependency_before_any_task(tmp_path):
    path = write(tmp_path, alt([
        {"id": "paid", "description": "an AI call that would be paid for"},
        {"id": "later", "description": "{{ deps.zz.output.text }}", "dependencies": ["paid"]},
    ]))
    ran = cli("run", path, "--out", tmp_path / "out", env={"RUNNER_AI_PROVIDER": "echo"})
    assert ran.returncode == 2
    assert "/tasks/1/description (task 'later'): prompt template at line 1, column 4: deps.zz" in ran.stderr
    assert not (tmp_path / "out").exists()


def test_every_family_is_reported_in_one_pass_sorted_by_position(tmp_path):
    # A duplicate id, a missing title, a self-dependency, a bad field and a cycle: all at once.
    path = write(tmp_path, alt([
        {"id": "a", "description": "x", "dependencies": ["b"]},
        {"id": "b", "description": "x", "dependencies": ["a", "b"], "retry_count": -1},
        {"id": "a", "description": "x", "priority": "hgh"},
    ], title=None))
    checked = cli("validate", path)
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0].endswith("invalid (6 errors)")
    assert error_lines(checked) == [
        "/tasks/0/dependencies (task 'a'): dependency cycle: a -> b -> a (each task waits for the next)",
        "/tasks/1/dependencies/1 (task 'b'): task 'b' depends on itself",
        "/tasks/1/retry_count (task 'b'): expected an integer in [0, 100], found -1",
        "/tasks/2/id (task 'a'): duplicate task id 'a' (first used by /tasks/0)",
        "/tasks/2/priority (task 'a'): expected one of low, medium, high, critical, found \"hgh\" "
        "(did you mean 'high'?)",
        "/title: an ALT file needs a 'title'",
    ]


def test_a_misspelt_mode_gets_a_suggestion_and_json_names_the_task(tmp_path):
    path = write(tmp_path, alt([{"id": "fetch", "description": "x", "priority": "lo"}], mode="dreem"))
    checked = cli("validate", path, "--json")
    errors = json.loads(checked.stdout)["files"][0]["errors"]
    assert errors == [
        {"path": "/mode", "message": "expected one of normal, dream, explore, chaos, found \"dreem\" "
                                     "(did you mean 'dream'?)"},
        {"path": "/tasks/0/priority", "task_id": "fetch",
         "message": "expected one of low, medium, high, critical, found \"lo\" (did you mean 'low'?)"}]


def test_errors_stop_at_the_limit_and_say_how_many_more(tmp_path):
    path = write(tmp_path, alt([{"id": f"t{i}", "description": "x", "retry_count": -1} for i in range(30)]))
    checked = cli("validate", path, "--max-errors", "5")
    lines = error_lines(checked)
    assert checked.stdout.splitlines()[0].endswith("invalid (30 errors)")
    assert lines[:5] == [f"/tasks/{i}/retry_count (task 't{i}'): expected an integer in [0, 100], found -1"
                         for i in range(5)]
    assert lines[5] == "... and 25 more"


def test_segment_errors_name_the_segment(tmp_path):
    doc = {"command": "c", "segments": [
        {"id": "first", "task_type": "ai_prompt", "content": "x", "dependencies": ["nope"]}]}
    path = write(tmp_path, doc)
    checked = cli("validate", path)
    assert error_lines(checked) == ["segments[0].dependencies[0] (task 'first'): unknown segment 'nope'"]


def test_the_checks_before_a_run_name_every_problem_in_one_message(tmp_path):
    path = write(tmp_path, alt([{"id": "say", "description": "x",
                                 "parameters": {"task_type": "system_command", "command": ["echo", "hi"]}}]))
    ran = cli("run", path, "--out", tmp_path / "out")
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [
        f"{path}: cannot start the run (2 problems):",
        "  - the file has 1 system_command task (say) but system commands are disabled "
        "(set RUNNER_ENABLE_SYSTEM_COMMANDS=true to enable them)",
        "  - task 'say': executable 'echo' is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST (empty)"]


def test_the_c_abi_reports_the_preflight_problems_in_one_message(tmp_path):
    from runner.execution import preflight
    from runner import PreflightError, parse_alt_file

    parsed = parse_alt_file(json.dumps(alt([{"id": "say", "description": "x", "parameters": {
        "task_type": "system_command", "command": ["echo", "hi"]}}])))
    with pytest.raises(PreflightError) as raised:
        preflight.check(parsed, tmp_path / "out", {"RUNNER_AI_PROVIDER": "echo"})
    assert str(raised.value).startswith("cannot start the run (2 problems): the file has 1 system_command task")
    assert "; task 'say': executable 'echo' is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST" in str(raised.value)
