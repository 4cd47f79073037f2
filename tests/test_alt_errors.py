"""Every class of ALT error is caught with its JSON-pointer path: API, CLI and C ABI."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

import runner as api
from conftest import SPEC_ALT, dumps


def issues_of(doc) -> list[tuple[str, str]]:
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(dumps(doc))
    return [(issue.path, issue.message) for issue in caught.value.issues]


def altered(change) -> dict:
    doc = copy.deepcopy(SPEC_ALT)
    change(doc)
    return doc


CASES = [
    # (change, path, words in the message)
    (lambda d: d.pop("id"), "/id", "needs an 'id'"),
    (lambda d: d.update(id="has space"), "/id", "invalid id \"has space\""),
    (lambda d: d.update(id="-dash"), "/id", "not starting with"),
    (lambda d: d.update(id="x" * 129), "/id", "invalid id"),
    (lambda d: d.pop("title"), "/title", "needs a 'title'"),
    (lambda d: d.update(title=5), "/title", "expected string, found integer 5"),
    (lambda d: d.update(mode="turbo"), "/mode", "expected one of normal, dream, explore, chaos, found \"turbo\""),
    (lambda d: d.update(priority="urgent"), "/priority", "expected one of low, medium, high, critical"),
    (lambda d: d.update(created_at="yesterday"), "/created_at", "RFC 3339"),
    (lambda d: d.update(tags=["a", 1]), "/tags/1", "expected string, found integer 1"),
    (lambda d: d.update(metadata=[]), "/metadata", "expected object, found array"),
    (lambda d: d.update(expected_completion_time=-1), "/expected_completion_time", ">= 0"),
    (lambda d: d.pop("tasks"), "/tasks", "needs 'tasks'"),
    (lambda d: d.update(tasks=[]), "/tasks", "at least one task"),
    (lambda d: d.update(tasks={}), "/tasks", "expected an array of tasks, found object"),
    (lambda d: d["tasks"].append("t3"), "/tasks/2", "a task is a JSON object, found string"),
    (lambda d: d["tasks"][0].pop("id"), "/tasks/0/id", "a task needs an 'id'"),
    (lambda d: d["tasks"][1].update(id="task1"), "/tasks/1/id", "duplicate task id 'task1' (first used by /tasks/0)"),
    (lambda d: d["tasks"][0].update(description=["x"]), "/tasks/0/description", "expected string, found array"),
    (lambda d: d["tasks"][1].update(dependencies="task1"), "/tasks/1/dependencies", "array of task ids or null"),
    (lambda d: d["tasks"][1].update(dependencies=[1]), "/tasks/1/dependencies/0", "task id (string), found integer"),
    (lambda d: d["tasks"][1].update(dependencies=["task2"]), "/tasks/1/dependencies/0", "'task2' depends on itself"),
    (lambda d: d["tasks"][1].update(dependencies=["task1", "task1"]), "/tasks/1/dependencies/1", "listed twice"),
    (lambda d: d["tasks"][1].update(dependencies=["tsak1"]), "/tasks/1/dependencies/0",
     "unknown task 'tsak1' (did you mean 'task1'?)"),
    (lambda d: d["tasks"][0].update(parameters="x"), "/tasks/0/parameters", "expected object, found string"),
    (lambda d: d["tasks"][0].update(parameters={"task_type": "magic"}), "/tasks/0/parameters/task_type",
     "expected one of ai_prompt, data_processing"),
    (lambda d: d["tasks"][0].update(timeout_seconds=0), "/tasks/0/timeout_seconds", "in (0, 604800]"),
    (lambda d: d["tasks"][0].update(timeout_seconds=True), "/tasks/0/timeout_seconds", "found boolean"),
    (lambda d: d["tasks"][0].update(retry_count=101), "/tasks/0/retry_count", "in [0, 100]"),
    (lambda d: d["tasks"][0].update(retry_count=1.5), "/tasks/0/retry_count", "expected integer, found number 1.5"),
    (lambda d: d["tasks"][0].update(priority=1), "/tasks/0/priority", "expected string, found integer"),
    (lambda d: d["tasks"][0].update(tags="x"), "/tasks/0/tags", "expected array, found string"),
    (lambda d: d["tasks"][0].update(status="done"), "/tasks/0/status", "expected one of pending"),
    (lambda d: d["tasks"][0].update(dependencies=["task2"]), "/tasks/0/dependencies",
     "dependency cycle: task1 -> task2 -> task1"),
]


@pytest.mark.parametrize("change, path, words", CASES, ids=[c[1] + ":" + c[2][:20] for c in CASES])
def test_each_error_has_its_path_and_says_what_was_found(change, path, words):
    found = issues_of(altered(change))
    assert any(p == path and words in message for p, message in found), found


def test_cycle_is_reported_with_its_path():
    doc = {"id": "c", "title": "t", "tasks": [
        {"id": "a", "dependencies": ["c"]}, {"id": "b", "dependencies": ["a"]},
        {"id": "c", "dependencies": ["b"]}, {"id": "d", "dependencies": ["a"]}]}
    [(path, message)] = issues_of(doc)
    assert path == "/tasks/0/dependencies"
    assert "dependency cycle: a -> c -> b -> a" in message


def test_all_errors_are_collected_and_counted():
    doc = {"id": "x y", "title": 1, "tasks": [{"id": f"t{i}", "retry_count": -1} for i in range(150)]}
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(dumps(doc), 10)
    error = caught.value
    assert error.total == 152 and len(error.issues) == 10
    assert str(error).endswith("(152 errors in ALT file)")
    assert error.issues[0].to_dict() == {"path": "/id", "message": error.issues[0].message, "value": '"x y"'}


def test_offending_values_are_shortened_in_messages():
    [(_, message)] = issues_of(altered(lambda d: d.update(title=["long" * 100])))
    assert message.endswith("...") and len(message) < 120


def test_malformed_json_is_a_document_error():
    with pytest.raises(api.AltValidationError, match=r"^/: invalid JSON: .*line 1"):
        api.parse_alt_file(b'{"id": "x",')


def test_validate_alt_document_lists_issues_of_parsed_data():
    assert api.validate_alt_document(copy.deepcopy(SPEC_ALT)) == []
    [issue] = api.validate_alt_document(altered(lambda d: d["tasks"][1].update(dependencies=["nope"])))
    assert issue.path == "/tasks/1/dependencies/0"


def test_c_abi_reports_first_error_and_count(runner):
    doc = altered(lambda d: d["tasks"].__setitem__(0, {"id": "fetch_data"}))
    doc["tasks"][1]["dependencies"] = ["fetch_dta"]
    assert runner.runner_parse_alt_file(dumps(doc)) == 0
    assert runner.last_error() == ("runner_parse_alt_file: /tasks/1/dependencies/0: unknown task 'fetch_dta' "
                                   "(did you mean 'fetch_data'?) (1 error in ALT file)")
    doc["title"] = None
    assert runner.runner_parse_alt_file(dumps(doc)) == 0
    assert runner.last_error().endswith("(2 errors in ALT file)")
    assert runner.runner_parse_alt_file(None) == 0
    assert "NULL" in runner.last_error()


def test_cli_prints_every_error_with_exit_codes(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SPEC_ALT))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "b", "title": "t", "tasks": [{"id": f"t{i}", "status": "?"} for i in range(30)]}))
    cli = [sys.executable, "-m", "runner", "validate"]
    done = subprocess.run([*cli, str(good)], capture_output=True, text=True)
    assert done.returncode == 0 and "valid ALT file 'test_alt_file'" in done.stdout
    done = subprocess.run([*cli, str(good), str(bad), "--max-errors", "5"], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"{bad}: invalid (30 errors)" in done.stdout
    assert "  /tasks/4/status (task 't4'): expected one of pending" in done.stdout
    assert "/tasks/5/status" not in done.stdout and "... and 25 more" in done.stdout
    done = subprocess.run([*cli, str(bad), str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert done.returncode == 2 and "missing.json: cannot read" in done.stderr


@pytest.mark.parametrize("change, path, words", CASES, ids=[c[1] + ":" + c[2][:20] for c in CASES])
def test_each_error_through_the_c_abi(runner, change, path, words):
    assert runner.runner_parse_alt_file(dumps(altered(change))) == 0
    error = runner.last_error()
    assert error.startswith(f"runner_parse_alt_file: {path}: ") and words in error
    assert error.endswith(" in ALT file)")


def test_each_error_through_the_cli(tmp_path):
    files = []
    for number, (change, _, _) in enumerate(CASES):
        files.append(tmp_path / f"case{number:02d}.json")
        files[-1].write_bytes(dumps(altered(change)))
    done = subprocess.run([sys.executable, "-m", "runner", "validate", *map(str, files)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    sections = done.stdout.split(str(tmp_path) + "/")[1:]
    assert len(sections) == len(CASES)
    for section, (change, path, words) in zip(sections, CASES):
        assert ": invalid (" in section.splitlines()[0]
        # An error inside a task names the task when it has an id.
        doc, parts = altered(change), path.split("/")
        task = doc["tasks"][int(parts[2])] if len(parts) > 3 and parts[1] == "tasks" else None
        label = f" (task '{task['id']}')" if isinstance(task, dict) and "id" in task else ""
        assert f"  {path}{label}: " in section and words in section, section


def test_many_unknown_dependencies_are_counted_with_few_suggestions():
    # Suggestions cost a scan of every id: only the first few unknown ids get one, so a
    # file full of them is still checked quickly.
    tasks = [{"id": f"task_{i:05d}", "dependencies": [f"task_{i:05d}x"]} for i in range(3000)]
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(dumps({"id": "u", "title": "t", "tasks": tasks}))
    error = caught.value
    assert error.total == 3000 and len(error.issues) == 100
    suggested = [issue for issue in error.issues if "did you mean" in issue.message]
    assert len(suggested) == 5 and "(did you mean 'task_00000'?)" in suggested[0].message


def test_deeply_nested_python_values_are_reported_not_crashed_on():
    deep = []
    for _ in range(5000):
        deep = [deep]
    doc = altered(lambda d: d.update(title=deep))
    [issue] = api.validate_alt_document(doc)
    assert issue.path == "/title" and "expected string, found array [[[[" in issue.message
    doc = altered(lambda d: d["tasks"][0].update(parameters={"task_type": deep}))
    [issue] = api.validate_alt_document(doc)
    assert issue.path == "/tasks/0/parameters/task_type"
