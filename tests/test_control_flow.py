"""Control flow (issue 20): variables, conditions, branches, loops and functions, in the
native format (`variables`, `when`, `for_each`) and in the segmentation service's v2.0
dialect (`global_variables`, `variables`, `condition`, `loop`, `functions`,
`function_def`, `function_call`). Runs are real runs of generic tasks (no AI)."""
from __future__ import annotations

import json

import pytest

import runner
from runner.execution import execute

from tests.conftest import dumps


def native(tasks, variables=None, **header):
    doc = {"id": "flow", "title": "control flow", "tasks": tasks, **header}
    if variables is not None:
        doc["variables"] = variables
    return doc


def generic(task_id, deps=(), **fields):
    parameters = {"task_type": "generic", **fields.pop("parameters", {})}
    return {"id": task_id, "dependencies": list(deps), "parameters": parameters, **fields}


def segment(segment_id, deps=(), parameters=None, **fields):
    return {"id": segment_id, "task_type": "generic", "content": fields.pop("content", f"do {segment_id}"),
            "parameters": [{"name": k, "value": v} for k, v in (parameters or {}).items()],
            "dependencies": list(deps), **fields}


def v2(segments, global_variables=(), functions=()):
    return {"id": "v2-flow", "version": "2.0", "command": "control flow", "language": "en", "mode": "Normal",
            "segments": segments, "global_variables": list(global_variables), "functions": list(functions)}


def variable(name, value, kind):
    return {"name": name, "type": kind, "value": value}


def errors_of(doc) -> list[str]:
    with pytest.raises(runner.AltValidationError) as caught:
        runner.parse_alt_file(dumps(doc))
    return [str(issue) for issue in caught.value.issues]


def run(doc, tmp_path, **options):
    return execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", **options)


def outcome(done) -> dict:
    """task id -> (status, output without task_type, error)."""
    out = {}
    for task_id, result in done.results.items():
        output = result.output
        if isinstance(output, dict):
            output = {k: v for k, v in output.items() if k != "task_type"}
        out[task_id] = (result.status, output, result.error)
    return out


# ---- variables and substitution ------------------------------------------------------------

def test_dollar_names_keep_their_json_type_alone_and_become_text_inside_text(tmp_path):
    doc = native([generic("a", parameters={"n": "$limit", "all": "$items", "text": "at most $limit of $items",
                                           "deep": {"list": ["$mode", "$$mode"]}, "first": "$items.0"},
                          description="mode $mode")],
                 variables={"limit": 2, "items": [1, "b"], "mode": "fast"})
    done = run(doc, tmp_path)
    status, output, _ = outcome(done)["a"]
    assert status == "completed"
    assert output == {"n": 2, "all": [1, "b"], "text": 'at most 2 of [1,"b"]', "deep": {"list": ["fast", "$mode"]},
                      "first": 1}
    assert done.record["execution_graph"]["nodes"][0]["description"] == "mode fast"


def test_a_segment_output_is_a_value_and_a_path_into_it(tmp_path):
    doc = native([generic("a", parameters={"x": {"y": 5}}),
                  generic("b", parameters={"y": "$a.x.y", "whole": "$a.x"})], variables={})
    done = run(doc, tmp_path)
    assert outcome(done)["b"] == ("completed", {"y": 5, "whole": {"y": 5}}, None)
    # Reading a's output made b wait for a (an implied dependency, in the graph too).
    edges = [(e["source"], e["target"]) for e in done.record["execution_graph"]["edges"]]
    assert ("a", "b") in edges


def test_documents_without_control_flow_keep_dollar_text_as_it_is(tmp_path):
    doc = native([generic("a", parameters={"text": "$HOME and $5"})])
    done = run(doc, tmp_path)
    assert outcome(done)["a"][1] == {"text": "$HOME and $5"}


def test_an_undefined_name_is_a_validation_error_with_a_suggestion():
    doc = native([generic("a", parameters={"n": "$limt"}),
                  generic("b", when={"operator": "eq", "left": "mdoe", "right": 1})],
                 variables={"limit": 2, "mode": "x"})
    assert sorted(errors_of(doc)) == [
        "/tasks/0/parameters/n: undefined name 'limt': not a variable, loop variable, parameter, result_variable "
        "or segment id (did you mean 'limit'?)",
        "/tasks/1/when/left: undefined name 'mdoe': not a variable, loop variable, parameter, result_variable "
        "or segment id (did you mean 'mode'?)"]


def test_v2_global_and_segment_variables_with_their_types(tmp_path):
    doc = v2([segment("s", parameters={"q": "$query", "n": "$max_results"},
                      variables=[variable("query", "AI", "string")])],
             global_variables=[variable("max_results", 10, "number")])
    assert outcome(run(doc, tmp_path))["s"] == ("completed", {"q": "AI", "n": 10}, None)
    bad = v2([segment("s")], global_variables=[variable("n", "ten", "number")])
    assert errors_of(bad) == ['global_variables[0].value: variable \'n\' is of type number, its value is string "ten"']


# ---- conditions ----------------------------------------------------------------------------

@pytest.mark.parametrize("operator,left,right,expected", [
    ("eq", 3, 3, True), ("neq", 3, 4, True), ("gt", 3, 2, True), ("lt", 3, 2, False),
    ("gte", 2, 2, True), ("lte", "a", "b", True), ("contains", "tutorial list", "tutorial", True),
    ("contains", [1, 2], 2, True), ("contains", {"k": 1}, "k", True), ("not_contains", [1, 2], 3, True),
    ("starts_with", "python", "py", True), ("ends_with", "python", "on", True), ("eq", [1], [1], True),
    ("eq", 1, 1.0, True), ("contains", [True], 1, False),
])
def test_condition_operators(operator, left, right, expected):
    cond = runner.librunner.parse_condition({"operator": operator, "left": "x", "right": right})
    assert runner.librunner.evaluate_condition(cond, {"x": left}.__getitem__) is expected


def test_and_or_not_nest():
    cond = runner.librunner.parse_condition({
        "operator": "and",
        "left": {"operator": "gt", "left": "n", "right": 1},
        "right": {"operator": "not", "left": {"operator": "or", "left": {"operator": "eq", "left": "n", "right": 5},
                                               "right": {"operator": "eq", "left": "s", "right": "$t"}}}})
    values = {"n": 3, "s": "a", "t": "b"}
    assert runner.librunner.evaluate_condition(cond, values.__getitem__) is True
    values["t"] = "a"
    assert runner.librunner.evaluate_condition(cond, values.__getitem__) is False


@pytest.mark.parametrize("operator,left,right,message", [
    ("eq", 2, "2", "operator 'eq' compares number 2 with string \"2\": different types"),
    ("gt", True, False, "operator 'gt' orders numbers or strings, found two booleans"),
    ("contains", "abc", 1, "operator 'contains' compares string \"abc\" with number 1: different types"),
    ("starts_with", [1], "a", "operator 'starts_with' compares array [1] with string \"a\": different types"),
])
def test_comparing_different_types_is_an_error_naming_both(operator, left, right, message):
    cond = runner.librunner.parse_condition({"operator": operator, "left": "x", "right": right})
    with pytest.raises(runner.librunner.ControlFlowError) as caught:
        runner.librunner.evaluate_condition(cond, {"x": left}.__getitem__)
    assert str(caught.value) == message


def test_when_false_skips_the_task_and_its_dependants(tmp_path):
    doc = native([generic("d", when={"operator": "gt", "left": "limit", "right": 5}),
                  generic("e", ["d"]),
                  generic("t", when={"operator": "lte", "left": "limit", "right": 5})], variables={"limit": 2})
    done = run(doc, tmp_path)
    results = outcome(done)
    assert results["d"] == ("skipped", None, "condition false")
    assert results["e"] == ("skipped", None, "dependency 'd' was skipped")
    assert results["t"][0] == "completed"
    written = done.record["task_results"]["d"]
    assert written["status"] == "cancelled" and written["skipped"] is True
    assert written["metadata"]["skipped_reason"] == "condition false"


def test_a_type_mismatch_in_a_condition_fails_the_task_naming_both_types(tmp_path):
    doc = native([generic("f", when={"operator": "eq", "left": "limit", "right": "2"}), generic("g", ["f"])],
                 variables={"limit": 2})
    done = run(doc, tmp_path)
    results = outcome(done)
    assert results["f"] == ("failed", None, "operator 'eq' compares number 2 with string \"2\": different types")
    assert results["g"][0] == "skipped"
    assert (tmp_path / "out").is_dir()


# ---- branches ------------------------------------------------------------------------------

def test_v2_branch_runs_its_own_task_then_the_taken_body(tmp_path):
    doc = v2([segment("check", condition={"condition": {"operator": "gte", "left": "count", "right": 3},
                                          "if_body": ["big", "bigger"], "else_body": ["small"]}),
              segment("big", parameters={"msg": "big $count"}),
              segment("bigger", ["big"]),
              segment("small"),
              segment("after", ["check"])],
             global_variables=[variable("count", 3, "number")])
    done = run(doc, tmp_path)
    results = outcome(done)
    assert results["big"] == ("completed", {"msg": "big 3"}, None)
    assert results["bigger"][0] == "completed"
    assert results["small"] == ("skipped", None, "branch not taken")
    assert results["check"][0] == "completed"
    assert done.results["check"].metadata["control"] == {"branch": "if"}
    # The branch's dependants waited for the whole branch.
    assert done.results["after"].started_at >= done.results["bigger"].completed_at
    assert done.record["task_results"]["small"]["skipped"] is True


def test_a_branch_written_on_each_of_its_members_guards_them(tmp_path):
    branch = {"condition": {"operator": "gt", "left": "n", "right": 0}, "if_body": ["yes"], "else_body": ["no"]}
    doc = v2([segment("yes", condition=branch), segment("no", condition=branch)],
             global_variables=[variable("n", 0, "number")])
    results = outcome(run(doc, tmp_path))
    assert results["yes"] == ("skipped", None, "branch not taken")
    assert results["no"][0] == "completed"


def test_bodies_naming_unknown_segments_and_segments_owned_twice_are_refused():
    doc = v2([segment("a", condition={"condition": {"operator": "eq", "left": "n", "right": 1},
                                      "if_body": ["bb"], "else_body": ["c"]}),
              segment("b"), segment("c"),
              segment("d", condition={"condition": {"operator": "eq", "left": "n", "right": 2},
                                      "if_body": ["c"]})],
             global_variables=[variable("n", 1, "number")])
    errors = errors_of(doc)
    assert "segments[0].condition.if_body[0]: unknown segment 'bb' (did you mean 'b'?)" in errors
    assert ("segments[3].condition.if_body[0]: segment 'c' is owned twice: by segment 'a' and by segment 'd' "
            "(a segment belongs to one body)") in errors


# ---- loops ---------------------------------------------------------------------------------

def test_native_for_each_maps_a_task_over_an_array(tmp_path):
    doc = native([generic("a"),
                  generic("b", ["a"], parameters={"n": "$x", "text": "item $x"},
                          for_each={"variable": "x", "iterable": "items"}),
                  generic("c", ["b"], parameters={"all": "$b"})],
                 variables={"items": [1, 2, 3]})
    done = run(doc, tmp_path, max_concurrency=2)
    results = outcome(done)
    assert [results[f"b[{i}]"] for i in range(3)] == [
        ("completed", {"n": i + 1, "text": f"item {i + 1}"}, None) for i in range(3)]
    assert done.results["b[1]"].metadata["control"] == {"loop": "b", "iteration": 1, "value": 2, "of": "b"}
    # Reading the mapped task gives its instances' outputs; the record keeps them once.
    assert results["b"] == ("completed", None, None)
    assert results["c"] == ("completed", {"all": [{"n": i + 1, "text": f"item {i + 1}", "task_type": "generic"}
                                                  for i in range(3)]}, None)
    ids = [node["id"] for node in done.record["execution_graph"]["nodes"]]
    assert {"b[0]", "b[1]", "b[2]"} <= set(ids)
    assert done.record["statistics"]["total_tasks"] == 6


def test_for_each_over_a_value_that_is_not_an_array_fails_the_loop_naming_the_type(tmp_path):
    doc = native([generic("b", parameters={"n": "$x"}, for_each={"variable": "x", "iterable": "items"})],
                 variables={"items": {"a": 1}})
    assert outcome(run(doc, tmp_path))["b"] == (
        "failed", None, "for_each over 'items': expected an array, found object {\"a\":1}")


def test_v2_loops_for_range_negative_step_and_while(tmp_path):
    doc = v2([segment("down", loop={"type": "for_range", "variable": "i", "start": 3, "end": 0, "step": -1,
                                    "body": ["d1", "d2"]}),
              segment("d1", parameters={"i": "$i"}),
              segment("d2", ["d1"], parameters={"prev": "$d1.i"}),
              segment("w", loop={"type": "while", "variable": "j",
                                 "condition": {"operator": "lt", "left": "j", "right": 2}, "body": ["w1"]}),
              segment("w1", parameters={"j": "$j"})])
    done = run(doc, tmp_path)
    results = outcome(done)
    assert [results[f"d1[{k}]"][1] for k in range(3)] == [{"i": 3}, {"i": 2}, {"i": 1}]
    assert [results[f"d2[{k}]"][1] for k in range(3)] == [{"prev": 3}, {"prev": 2}, {"prev": 1}]
    assert done.results["down"].metadata["control"] == {"loop": "for_range", "iterations": 3}
    assert [results[f"w1[{k}]"][1] for k in range(2)] == [{"j": 0}, {"j": 1}]
    assert "w1[2]" not in results
    assert done.results["w"].metadata["control"] == {"loop": "while", "iterations": 2}


def test_step_zero_is_refused_by_validate():
    doc = v2([segment("r", loop={"type": "for_range", "variable": "i", "start": 0, "end": 3, "step": 0,
                                 "body": ["b"]}), segment("b")])
    assert errors_of(doc) == ["segments[0].loop.step: step 0 never reaches the end: use a positive or negative step"]


def test_a_loop_stops_at_the_iteration_limit_and_the_run_still_writes_its_last_file(tmp_path, monkeypatch):
    doc = v2([segment("w", loop={"type": "while", "variable": "j",
                                 "condition": {"operator": "gte", "left": "j", "right": 0}, "body": ["w1"]}),
              segment("w1"),
              segment("e", loop={"type": "for_each", "variable": "x", "iterable": "many", "body": ["e"]}),
              segment("after", ["w"])],
             global_variables=[variable("many", list(range(6)), "array")])
    environ = {"RUNNER_MAX_LOOP_ITERATIONS": "5"}
    done = run(doc, tmp_path, environ=environ)
    results = outcome(done)
    assert results["w"] == ("failed", None, "while loop still true after 5 iterations: stopped at "
                                            "RUNNER_MAX_LOOP_ITERATIONS (5)")
    assert results["e"] == ("failed", None, "for_each loop of 6 iterations: more than RUNNER_MAX_LOOP_ITERATIONS (5)")
    assert results["after"][0] == "skipped"
    last = json.loads((done.directory / "last.json").read_bytes())
    assert last["task_results"]["w"]["status"] == "failed"


def test_nested_loops_stop_at_the_run_wide_instance_limit_and_the_run_still_writes_its_last_file(tmp_path):
    # Each loop is within RUNNER_MAX_LOOP_ITERATIONS; together they would make 10 + 100 + 1000.
    doc = v2([segment("a", loop={"type": "for_range", "variable": "i", "start": 0, "end": 10, "body": ["b"]}),
              segment("b", loop={"type": "for_range", "variable": "j", "start": 0, "end": 10, "body": ["c"]}),
              segment("c", loop={"type": "for_range", "variable": "k", "start": 0, "end": 10, "body": ["d"]}),
              segment("d")])
    done = run(doc, tmp_path, environ={"RUNNER_MAX_TASK_INSTANCES": "50"})
    results = outcome(done)
    made = [task_id for task_id in results if "[" in task_id]
    assert len(made) <= 50
    refused = {task_id: error for task_id, (status, _, error) in results.items()
               if status == "failed" and error and "RUNNER_MAX_TASK_INSTANCES (50)" in error}
    assert refused, results
    assert all(error.endswith("in this run: more than RUNNER_MAX_TASK_INSTANCES (50)") for error in refused.values())
    assert results["a"][0] == "failed"          # a loop fails when an iteration's body does not complete
    assert json.loads((done.directory / "last.json").read_bytes())["task_results"]["a"]["status"] == "failed"


def test_recursion_inside_loops_stops_at_the_run_wide_instance_limit(tmp_path):
    # Every call runs a loop of 5 that calls again: 5^depth instances long before depth 16.
    doc = v2([segment("start", function_call={"function_name": "fan", "arguments": {}}),
              segment("loop", loop={"type": "for_range", "variable": "i", "start": 0, "end": 5, "body": ["again"]}),
              segment("again", function_call={"function_name": "fan", "arguments": {}})],
             functions=[{"name": "fan", "parameters": [], "body": ["loop"]}])
    done = run(doc, tmp_path, environ={"RUNNER_MAX_TASK_INSTANCES": "200"})
    results = outcome(done)
    assert len(results) <= 200 + 3
    assert any(error and "more than RUNNER_MAX_TASK_INSTANCES (200)" in error for _, _, error in results.values())
    assert results["start"][0] == "failed"
    assert (done.directory / "last.json").is_file()


def test_nested_loops_name_their_instances_with_both_iterations(tmp_path):
    doc = v2([segment("outer", loop={"type": "for_range", "variable": "i", "start": 0, "end": 2,
                                     "body": ["inner"]}),
              segment("inner", loop={"type": "for_range", "variable": "j", "start": 0, "end": 2, "body": ["leaf"]}),
              segment("leaf", parameters={"at": "$i.$j"})])
    results = outcome(run(doc, tmp_path))
    assert {k: v[1] for k, v in results.items() if k.startswith("leaf")} == {
        f"leaf[{i}][{j}]": {"at": f"{i}.{j}"} for i in range(2) for j in range(2)}
    assert results["inner[1]"][0] == "completed"


# ---- functions -----------------------------------------------------------------------------

def double_function():
    return {"name": "pair", "parameters": [{"name": "n", "type": "number", "required": True},
                                           {"name": "k", "type": "number", "default_value": 2, "required": False}],
            "body": ["f1", "f2"]}


def test_a_call_binds_arguments_runs_the_body_and_returns_its_last_output(tmp_path):
    doc = v2([segment("call", function_call={"function_name": "pair", "arguments": {"n": 21},
                                             "result_variable": "got"}),
              segment("f1", parameters={"n": "$n"}),
              segment("f2", ["f1"], parameters={"r": "$f1.n", "k": "$k"}),
              segment("use", parameters={"got": "$got"})],
             functions=[double_function()])
    done = run(doc, tmp_path)
    results = outcome(done)
    assert results["call/f1"] == ("completed", {"n": 21}, None)
    assert results["call/f2"] == ("completed", {"r": 21, "k": 2}, None)
    assert results["call"][1] == {"r": 21, "k": 2}
    assert results["use"] == ("completed", {"got": {"r": 21, "k": 2, "task_type": "generic"}}, None)
    assert done.results["call/f1"].metadata["control"] == {"call": "call", "function": "pair", "of": "f1"}
    assert "f1" not in results          # a function body runs only as instances


def test_calls_of_unknown_functions_and_missing_arguments_are_refused():
    doc = v2([segment("c1", function_call={"function_name": "piar", "arguments": {}}),
              segment("c2", function_call={"function_name": "pair", "arguments": {"kk": 1}}),
              segment("f1"), segment("f2")],
             functions=[double_function()])
    assert errors_of(doc) == [
        "segments[0].function_call.function_name: unknown function 'piar' (did you mean 'pair'?)",
        "segments[1].function_call.arguments: function 'pair' needs its argument 'n'",
        "segments[1].function_call.arguments.kk: function 'pair' has no parameter 'kk' (did you mean 'k'?)",
    ]


def test_recursion_stops_at_the_call_depth_limit(tmp_path):
    doc = v2([segment("start", function_call={"function_name": "again", "arguments": {}}),
              segment("inner", function_call={"function_name": "again", "arguments": {}})],
             functions=[{"name": "again", "parameters": [], "body": ["inner"]}])
    done = run(doc, tmp_path, environ={"RUNNER_MAX_CALL_DEPTH": "3"})
    results = outcome(done)
    assert results["start/inner/inner/inner"] == (
        "failed", None, "call of 'again' at depth 4: more than RUNNER_MAX_CALL_DEPTH (3)")
    assert results["start"][0] == "failed"


# ---- resume --------------------------------------------------------------------------------

def test_resume_reuses_completed_instances_and_reruns_the_failed_one(tmp_path):
    from runner.execution.resume import resume

    counter, flag = tmp_path / "counter.txt", tmp_path / "flag"
    doc = native([{"id": "m", "for_each": {"variable": "x", "iterable": "items"}, "parameters": {
                      "task_type": "system_command",
                      "command": ["sh", "-c", f"echo $x >> {counter}; test $x != 2 || test -e {flag}"]}},
                  generic("after", ["m"])],
                 variables={"items": [1, 2, 3]})
    env = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh"}
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", environ=env)
    assert outcome(first)["m[1]"][0] == "failed" and outcome(first)["m"][0] == "failed"
    assert outcome(first)["after"][0] == "skipped"
    flag.write_text("")
    again = resume(first.directory, environ=env)
    results = outcome(again)
    assert [results[f"m[{i}]"][0] for i in range(3)] == ["completed"] * 3
    assert again.results["m[0]"].metadata["reused_from"] == first.last_id
    assert "reused_from" not in again.results["m[1]"].metadata
    assert results["m"][0] == "completed" and results["after"][0] == "completed"
    assert sorted(counter.read_text().split()) == ["1", "2", "2", "3"]      # 1 and 3 ran once


def test_a_mapped_task_s_when_is_evaluated_per_item(tmp_path):
    doc = native([generic("m", parameters={"x": "$x"}, for_each={"variable": "x", "iterable": "items"},
                          when={"operator": "gt", "left": "x", "right": 1}),
                  generic("after", ["m"], parameters={"all": "$m"})],
                 variables={"items": [1, 2, 3]})
    done = run(doc, tmp_path)
    results = outcome(done)
    assert results["m[0]"] == ("skipped", None, "condition false")
    assert results["m[1]"][0] == results["m[2]"][0] == "completed"
    assert results["m"][0] == "completed" and results["after"][0] == "completed"
    assert results["after"][1]["all"] == [None, {"x": 2, "task_type": "generic"}, {"x": 3, "task_type": "generic"}]
    assert done.all_completed


def test_an_interrupted_run_cancels_the_constructs_under_way(tmp_path):
    doc = v2([segment("w", loop={"type": "while", "variable": "j",
                                 "condition": {"operator": "lt", "left": "j", "right": 3}, "body": ["nap"]}),
              {"id": "nap", "task_type": "system_command", "content": "nap",
               "parameters": [{"name": "command", "value": ["sleep", "30"]}]}])
    env = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep",
           "RUNNER_GRACE_SECONDS": "0.1"}
    runs = []

    def on_event(event):
        if event["event"] == "task_started" and event["task_id"] == "nap[0]":
            runs[0].interrupt()
    done = run(doc, tmp_path, environ=env, on_execution=runs.append, on_event=on_event)
    results = outcome(done)
    assert results["nap[0]"][0] == "cancelled"
    assert results["w"] == ("cancelled", None, "the run was interrupted while its construct ran")
    assert done.record["task_results"]["w"]["status"] == "cancelled"


def test_a_function_defined_by_a_segment_s_function_def(tmp_path):
    doc = v2([segment("define", function_def={"name": "shout", "parameters": [{"name": "word", "required": True}],
                                              "body": ["loud"]}),
              segment("loud", parameters={"text": "$word!"}),
              segment("call", function_call={"function_name": "shout", "arguments": {"word": "$greeting"}},
                      dependencies=["define"])],
             global_variables=[variable("greeting", "hey", "string")])
    results = outcome(run(doc, tmp_path))
    assert results["define"][0] == "completed"          # its own task runs like any segment
    assert results["call/loud"] == ("completed", {"text": "hey!"}, None)
    assert results["call"] == ("completed", {"text": "hey!"}, None)
    missing = v2([segment("define", function_def={"name": "shout", "parameters": [{"name": "word"}],
                                                  "body": ["loud"]}),
                  segment("loud"), segment("call", function_call={"function_name": "shout"})])
    assert errors_of(missing) == ["segments[2].function_call.arguments: function 'shout' needs its argument 'word'"]


def test_for_each_iterations_run_concurrently_within_the_cap_and_while_ones_in_turn(tmp_path):
    from ai_server import AIServer

    from runner.ai import AIClient, AISettings as AIConfig

    doc = native([{"id": "ask", "description": "describe $city", "for_each": {"variable": "city", "iterable": "cities"},
                   "parameters": {"task_type": "ai_prompt"}}],
                 variables={"cities": ["Ankara", "Izmir", "Bursa", "Konya", "Adana", "Kayseri"]})
    with AIServer(delay=0.2) as server, \
            AIClient(AIConfig(provider="openai", base_url=server.base_url, max_concurrency=8)) as client:
        done = run(doc, tmp_path / "each", max_concurrency=3, ai_client=client, environ={})
        assert all(r.status == "completed" for r in done.results.values())
        prompts = sorted(seen.body["messages"][-1]["content"] for seen in server.seen)
        assert prompts == sorted(f"describe {c}" for c in doc["variables"]["cities"])
        assert 2 <= server.max_in_flight <= 3
    loop = v2([segment("w", loop={"type": "while", "variable": "n",
                                  "condition": {"operator": "lt", "left": "n", "right": 3}, "body": ["q"]}),
               {"id": "q", "task_type": "ask", "content": "question $n"}])
    with AIServer(delay=0.1) as server, \
            AIClient(AIConfig(provider="openai", base_url=server.base_url, max_concurrency=8)) as client:
        done = run(loop, tmp_path / "while", max_concurrency=3, ai_client=client, environ={})
        assert [seen.body["messages"][-1]["content"] for seen in server.seen] == [
            "question 0", "question 1", "question 2"]
        assert server.max_in_flight == 1
