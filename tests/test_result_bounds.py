"""Task results a LAST file can always record (issue 12, faults 2, 3 and 4).

A result is either refused at runner_add_task_result, with where and why, or it is written:
never accepted and then unwritable. Nesting, timestamps and durations are where results
were accepted that made every later LAST file of their ALT file fail with "internal error".
"""
from __future__ import annotations

import json

import pytest

import runner as api
from conftest import dumps
from runner import schemas

LIMIT = api.MAX_NESTING


def nested(depth: int, leaf=1):
    """A JSON value of `depth` nested arrays: [[...[leaf]...]]."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_objects(depth: int):
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def alt(runner):
    doc = {"id": "bounds", "title": "bounds", "tasks": [
        {"id": "t1", "description": "one", "dependencies": None},
        {"id": "t2", "description": "two", "dependencies": ["t1"]}]}
    assert runner.runner_parse_alt_file(dumps(doc)) == 1
    return runner


def add(runner, result: dict) -> str | None:
    """None when stored, else the thread's error."""
    if runner.runner_add_task_result(b"bounds", dumps(result)) == 1:
        return None
    return runner.last_error()


def generate(runner, tmp_path) -> dict:
    last_id = runner.take(runner.runner_generate_last_file(b"bounds", str(tmp_path).encode()))
    assert last_id, runner.last_error()
    record = json.loads((tmp_path / last_id / "last.json").read_bytes())
    errors = sorted(schemas.validator("last").iter_errors(record), key=str)
    assert not errors, errors[0]
    return record


def batch(runner, tmp_path) -> str:
    answer = json.loads(runner.take(runner.runner_batch_process(b'["bounds"]', str(tmp_path).encode())))
    return answer["bounds"]


def test_output_nested_past_the_limit_is_refused_with_its_path(alt, tmp_path):
    error = add(alt, {"task_id": "t1", "status": "completed", "output": {"x": nested(300)}})
    assert error is not None and "internal error" not in error
    assert "/output/x/0/0" in error and f"{LIMIT}" in error
    # Nothing was stored: the LAST file is still written, the task pending.
    assert generate(alt, tmp_path)["task_results"]["t1"]["status"] == "pending"
    assert not batch(alt, tmp_path).startswith("ERROR")


@pytest.mark.parametrize("field", ["output", "metadata", "extra"])
def test_results_nested_to_the_limit_are_written(alt, tmp_path, field):
    # The result document itself is the first level, the field's object the second.
    value = nested_objects(LIMIT - 1)
    result = {"task_id": "t1", "status": "completed", field: value}
    assert add(alt, result) is None
    record = generate(alt, tmp_path)
    stored = record["task_results"]["t1"][field]
    assert stored == value
    assert not batch(alt, tmp_path).startswith("ERROR")
    too_deep = {"task_id": "t1", "status": "completed", field: {"a": value}}
    error = add(alt, too_deep)
    assert error is not None and f"/{field}/" + "a/" * (LIMIT - 2) in error + "/"


def test_the_python_api_refuses_as_the_abi_does():
    alt = api.parse_alt_file(dumps({"id": "p", "title": "p", "tasks": [
        {"id": "t", "description": "t", "dependencies": None}]}))
    with pytest.raises(api.TaskResultError, match="/output/0/0"):
        api.task_result_from_dict({"task_id": "t", "status": "completed", "output": nested(5000)}, alt)


def test_the_alt_depth_cannot_be_set_past_what_a_last_file_holds(monkeypatch):
    monkeypatch.setenv("RUNNER_MAX_ALT_DEPTH", str(LIMIT + 1))
    with pytest.raises(api.ConfigurationError, match=f"at most {LIMIT}"):
        api.AltLimits()
    monkeypatch.setenv("RUNNER_MAX_ALT_DEPTH", str(LIMIT))
    assert api.AltLimits().max_depth == LIMIT


def test_a_generic_task_with_parameters_at_the_deepest_alt_nesting_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_MAX_ALT_DEPTH", str(LIMIT))
    # root object, tasks array, task object, parameters object: the value fills the rest.
    doc = {"id": "g", "title": "g", "tasks": [{"id": "t", "description": "t", "dependencies": None,
                                                "parameters": {"task_type": "generic", "v": nested(LIMIT - 4)}}]}
    written = api.run(doc, tmp_path, environ={})
    assert written["task_results"]["t"]["status"] == "completed"


def test_an_executor_output_too_deep_to_record_fails_the_task(tmp_path):
    # group_by without an aggregate nests the records two levels deeper at each step:
    # 130 steps are deeper than orjson writes (254), where the LAST file used to fail.
    doc = {"id": "d", "title": "d", "tasks": [
        {"id": "grow", "description": "grow", "dependencies": None,
         "parameters": {"task_type": "data_processing", "input": [{"k": 1}],
                        "operations": [{"op": "group_by", "by": "k"}] * 130}},
        {"id": "after", "description": "after", "dependencies": ["grow"]}]}
    record = api.run(doc, tmp_path, environ={})
    grow = record["task_results"]["grow"]
    assert grow["status"] == "failed" and grow["output"] is None
    assert f"nested deeper than {LIMIT} levels" in grow["error"] and "/output/result/0/items" in grow["error"]
    after = record["task_results"]["after"]        # skipped: cancelled in the original's words, marked
    assert after["status"] == "cancelled" and after["skipped"] is True


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("key", ["started_at", "completed_at"])
def test_a_timestamp_out_of_range_in_utc_is_refused(alt, tmp_path, stamp, key):
    error = add(alt, {"task_id": "t1", "status": "completed", key: stamp})
    assert error is not None and "internal error" not in error
    assert f"/{key}" in error and stamp in error and "UTC" in error
    generate(alt, tmp_path)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00-01:00"])
def test_the_extreme_timestamps_that_fit_are_written(alt, tmp_path, stamp):
    assert add(alt, {"task_id": "t1", "status": "completed", "started_at": stamp, "completed_at": stamp}) is None
    assert add(alt, {"task_id": "t2", "status": "completed", "started_at": "2024-01-01T00:00:00Z"}) is None
    generate(alt, tmp_path)
    assert not batch(alt, tmp_path).startswith("ERROR")


def test_a_duration_beyond_the_largest_exact_integer_is_refused(alt, tmp_path):
    result = {"task_id": "t1", "status": "completed", "duration_ms": 1e308}
    error = add(alt, result)
    assert error is not None and "/duration_ms" in error and "internal error" not in error
    assert not schemas.validator("task-result").is_valid(result)      # the published schema agrees


def test_the_largest_durations_accepted_give_a_schema_valid_last_file(alt, tmp_path):
    largest = 2 ** 53 - 1
    for task in ("t1", "t2"):
        assert add(alt, {"task_id": task, "status": "completed", "duration_ms": largest}) is None
    record = generate(alt, tmp_path)
    assert record["statistics"]["total_task_time_ms"] == 2 * largest
    assert "inf" not in record["summary"] and "nan" not in record["summary"]
