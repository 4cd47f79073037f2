"""Equal small parameter objects are kept once per ALT file (alt_parser.pxi ParameterTable):
what callers get is a copy of a task's parameters (nested values included), and what a caller
does to it reaches no other task, no result and not the model."""
from __future__ import annotations

import json

import orjson
import pytest

import runner
from runner.execution import execute


pytestmark = pytest.mark.usefixtures("task_type_registry")   # each test's registrations removed after it


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


def test_parameters_holding_containers_read_as_copies_nested_values_included():
    nested = {"task_type": "generic", "list": [1, 2], "map": {"k": "v"}}
    alt = parsed(json.loads(json.dumps(nested)), json.loads(json.dumps(nested)), {"task_type": "generic", "t": "x" * 65})
    first, second, long_text = alt.tasks
    assert first.parameters is not first.parameters and first.parameters == second.parameters == nested
    got = first.parameters
    got["list"].append(3)
    got["map"]["k"] = "changed"
    assert first.parameters == second.parameters == nested
    assert long_text.parameters == {"task_type": "generic", "t": "x" * 65}


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


def test_every_task_hands_out_a_copy_shared_or_not():
    # Kept-once or not, a change to what a caller got reaches no task: the same answer for
    # every task, rather than kept for some and dropped for others.
    alt = parsed({"task_type": "generic", "k": 1}, {"task_type": "generic", "k": 1},
                 {"task_type": "generic", "f": 1.5, "nested": {"a": [1]}})
    for task in alt.tasks:
        task.parameters["x"] = 2
    alt.tasks[2].parameters["nested"]["a"].append(2)
    assert [t.parameters.get("x") for t in alt.tasks] == [None, None, None]
    assert alt.tasks[2].parameters == {"task_type": "generic", "f": 1.5, "nested": {"a": [1]}}


def test_a_generic_output_is_what_the_task_had_when_it_ran(tmp_path):
    # A generic task's result is made from the task's parameters when first read: nothing a
    # caller does to the model afterwards, or while later tasks run, reaches its output,
    # its last.json entry or its journal row (what resume reads back).
    alt = runner.parse_alt_file(orjson.dumps({"id": "d", "title": "d", "tasks": [
        {"id": "own", "description": "d", "parameters": {"task_type": "generic", "f": 0.5}},
        {"id": "next", "description": "d", "dependencies": ["own"], "parameters": {"task_type": "generic"}}]}))

    def on_event(event):
        if event.get("task_id") == "own" and event.get("event") == "task_finished":
            alt.task("own").parameters["changed_later"] = True

    first = execute(alt, tmp_path / "one", on_event=on_event, environ={})
    alt.task("own").parameters["f"] = 99
    execute(alt, tmp_path / "two", environ={})
    want = {"task_type": "generic", "f": 0.5}
    assert first.results["own"].output == want
    assert first.record["task_results"]["own"]["output"] == want
    directory = next((tmp_path / "one").iterdir())
    assert orjson.loads((directory / "last.json").read_bytes())["task_results"]["own"]["output"] == want
    rows = [row for line in (directory / "journal.jsonl").read_bytes().splitlines()
            for row in orjson.loads(line).get("rows", ())]
    assert [row[2] for row in rows if row[0] == "own"] == [want]


def test_control_flow_instances_share_their_templates_parameters(tmp_path):
    # Instances of a loop body and the run's own copies of the file's tasks read the
    # template's parameters object (the core never changes it), not a copy each.
    alt = runner.parse_alt_file(orjson.dumps({"id": "cf", "title": "cf", "variables": {"xs": [1, 2, 3]},
                                              "tasks": [
        {"id": "plain", "description": "d", "parameters": {"task_type": "generic", "k": 1}},
        {"id": "each", "description": "d", "for_each": {"variable": "x", "iterable": "xs"},
         "parameters": {"task_type": "generic", "k": 1}},
        {"id": "named", "description": "d", "for_each": {"variable": "x", "iterable": "xs"},
         "parameters": {"task_type": "generic", "x": "$x"}}]}))
    outcome = execute(alt, tmp_path, environ={})
    assert outcome.all_completed
    outputs = {task_id: result.output for task_id, result in outcome.results.items()}
    assert outputs["plain"] == {"task_type": "generic", "k": 1}
    assert [outputs[f"named[{i}]"] for i in range(3)] == [{"task_type": "generic", "x": x} for x in (1, 2, 3)]
    assert [outputs[f"each[{i}]"] for i in range(3)] == [{"task_type": "generic", "k": 1}] * 3


def test_a_later_task_changing_a_generic_outputs_nested_values_changes_no_record(tmp_path):
    # A generic task's output is a copy of its parameters to their depth: a later task that
    # changes what it reads of it reaches neither the task's parameters nor last.json.
    seen = []

    @runner.task_type("meddling")
    def meddling(t):
        output = t.dependencies["a"]["output"]
        seen.append(orjson.loads(orjson.dumps(output)))
        output["nested"]["list"].append("changed by b")
        return {"ok": True}

    alt = runner.parse_alt_file(orjson.dumps({"id": "alias", "title": "alias", "tasks": [
        {"id": "a", "description": "d", "parameters": {"task_type": "generic", "nested": {"list": [1]}}},
        {"id": "b", "description": "d", "dependencies": ["a"], "parameters": {"task_type": "meddling"}}]}))
    outcome = execute(alt, tmp_path, environ={})
    assert outcome.all_completed and seen == [{"task_type": "generic", "nested": {"list": [1]}}]
    assert alt.task("a").parameters == {"task_type": "generic", "nested": {"list": [1]}}
    last = orjson.loads((outcome.directory / "last.json").read_bytes())
    assert last["task_results"]["a"]["output"] == {"task_type": "generic", "nested": {"list": [1]}}
