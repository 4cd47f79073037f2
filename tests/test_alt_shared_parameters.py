"""Equal small parameter objects are kept once per ALT file (alt_parser.pxi ParameterTable):
what callers get is still each task's own dict, and what a caller does to it reaches no other
task, no result and not the model."""
from __future__ import annotations

import json

import orjson
import pytest

import runner
from runner.execution import execute
from runner.execution import task_types


@pytest.fixture(autouse=True)
def registry():
    before = set(task_types._REGISTRY)
    yield
    for name in set(task_types._REGISTRY) - before:
        task_types.unregister(name)


def parsed(*parameters, text=False):
    doc = {"id": "p", "title": "shared", "tasks": [
        {"id": f"t{i}", "description": "d", **({} if p is None else {"parameters": p})}
        for i, p in enumerate(parameters)]}
    return runner.parse_alt_file(json.dumps(doc) if text else orjson.dumps(doc))


GENERIC = {"task_type": "generic", "size": 3, "name": "x", "on": True, "off": None}


def test_a_caller_changing_the_parameters_it_got_changes_no_other_task_nor_the_model():
    alt = parsed(dict(GENERIC), dict(GENERIC), dict(GENERIC))
    first, second, third = alt.tasks
    got = first.parameters
    got["size"] = 99
    got["added"] = [1]
    del got["name"]
    second.parameters.clear()
    assert first.parameters == second.parameters == third.parameters == GENERIC
    assert first.parameters is not second.parameters and first.parameters is not first.parameters
    # to_dict hands out copies too: changing it changes nothing either.
    whole = alt.to_dict()
    whole["tasks"][0]["parameters"]["size"] = -1
    first.to_dict()["parameters"]["name"] = "changed"
    assert alt.to_dict()["tasks"][0]["parameters"] == GENERIC == first.to_dict()["parameters"]
    assert [t.task_type for t in alt.tasks] == ["generic"] * 3


def test_values_equal_in_python_but_not_in_json_are_never_merged():
    alt = parsed({"x": 1}, {"x": True}, {"x": 1.0}, {"x": "1"}, {"x": 0.0}, {"x": -0.0}, {"x": 1},
                 {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"x": None}, {"x": False}, {"x": 0})
    expected = [{"x": 1}, {"x": True}, {"x": 1.0}, {"x": "1"}, {"x": 0.0}, {"x": -0.0}, {"x": 1},
                {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"x": None}, {"x": False}, {"x": 0}]
    got = [t.parameters for t in alt.tasks]
    # The same JSON, type for type and key order for key order.
    assert [orjson.dumps(p) for p in got] == [orjson.dumps(p) for p in expected]
    assert [[type(v) for v in p.values()] for p in got] == [[type(v) for v in p.values()] for p in expected]
    assert [list(t.to_dict()["parameters"]) for t in alt.tasks] == [list(p) for p in expected]


def test_parameters_holding_containers_stay_each_tasks_own_object():
    nested = {"task_type": "generic", "list": [1, 2], "map": {"k": "v"}}
    alt = parsed(json.loads(json.dumps(nested)), json.loads(json.dumps(nested)), {"task_type": "generic", "t": "x" * 65})
    first, second, long_text = alt.tasks
    assert first.parameters is first.parameters and first.parameters == second.parameters == nested
    first.parameters["list"].append(3)          # its own, as before: it stays changed
    assert first.parameters["list"] == [1, 2, 3] and second.parameters["list"] == [1, 2]
    assert long_text.parameters is long_text.parameters


def test_many_distinct_small_objects_and_repeats_keep_every_tasks_values():
    parameters = [{"task_type": "generic", "n": i % 5000} for i in range(12_000)] + [None, {}, {}]
    alt = parsed(*parameters)
    assert [t.parameters for t in alt.tasks] == [p if p is not None else {} for p in parameters]
    assert parsed(*parameters, text=True).to_dict() == alt.to_dict()


def test_a_run_of_shared_parameters_gives_each_result_its_own_output(tmp_path):
    seen = []

    @runner.task_type("mutating")
    def mutating(t):
        seen.append(dict(t.parameters))
        t.parameters["n"] = -1           # what a careless handler does to what it got
        return {"n": t.parameters["n"]}

    doc = {"id": "run", "title": "shared", "tasks": [
        {"id": f"g{i}", "description": "d", "parameters": {"task_type": "generic", "n": 7}} for i in range(3)] + [
        {"id": f"m{i}", "description": "d", "parameters": {"task_type": "mutating", "n": 7}} for i in range(3)]}
    alt = runner.parse_alt_file(orjson.dumps(doc))
    outcome = execute(alt, tmp_path, environ={})
    assert seen == [{"n": 7}] * 3
    outputs = {task_id: result.output for task_id, result in outcome.results.items()}
    assert outputs["g0"] == outputs["g1"] == {"task_type": "generic", "n": 7}
    outputs["g0"]["n"] = 0
    assert outcome.results["g1"].output == {"task_type": "generic", "n": 7}
    assert [t.parameters for t in alt.tasks] == [task["parameters"] for task in doc["tasks"]]
    recorded = json.loads((outcome.directory / "last.json").read_text())
    found = {task_id: result["output"] for task_id, result in recorded["task_results"].items()}
    assert found["g2"] == {"task_type": "generic", "n": 7} and found["m2"] == {"n": -1}
