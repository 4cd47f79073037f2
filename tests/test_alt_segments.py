"""ALT files of the segmentation service (a `segments` list, YAML or JSON, v1.0 and v2.0):
validated, converted into tasks, run on the echo provider; control-flow errors at the
segment (control flow itself: tests/test_control_flow.py); errors pointed at the segment.

tests/fixtures/segmentation/ holds the example files of krozenking/ALT_LAS
(proje_dosyalari/segmentation-service/benchmark_test_*.alt.yaml) as they are. The other
documents are written here the way that service's Pydantic models write them: the fields
of dsl_schema.AltFile / enhanced_dsl_schema.AltFile in their order, through yaml.dump
(sort_keys=False) or json.dumps(indent=2).
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import runner as api

EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "segmentation").glob("*.alt.yaml"))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def parameter(name, value, required=True, kind="string", description=None):
    return {"name": name, "value": value, "type": kind, "required": required, "description": description}


def v1_document() -> dict:
    """dsl_schema.AltFile(...).dict() of the service's own example: search, then create."""
    search = {"id": "3f1c2a9e-1b7d-4c55-9d0e-2a6f1e8b7c01", "task_type": "search",
              "content": "Search for information about AI",
              "parameters": [parameter("query", "information about AI")],
              "dependencies": [], "metadata": {"confidence": 0.95}}
    create = {"id": "8d2e4f60-7a1b-4e2c-b3d4-5f6a7b8c9d02", "task_type": "create", "content": "Create a report",
              "parameters": [parameter("format", "pdf"), parameter("title", "AI Report")],
              "dependencies": [search["id"]], "metadata": {"confidence": 0.9}}
    return {"id": "c0ffee00-1111-4222-8333-944455556666", "version": "1.0",
            "timestamp": "2025-04-28T00:28:21.922739",
            "command": "Search for information about AI and create a report", "language": "en",
            "mode": "Normal", "persona": "researcher", "chaos_level": None,
            "segments": [search, create], "metadata": {"source": "user_input", "priority": "high"}}


def v2_document() -> dict:
    """enhanced_dsl_schema.AltFile(...).model_dump() without control flow: every advanced
    field present, null or empty, as the model writes it."""
    doc = v1_document()
    doc["version"] = "2.0"
    for segment in doc["segments"]:
        segment.update(variables=[], condition=None, loop=None, function_def=None, function_call=None)
    doc.update(global_variables=[], functions=[])
    return doc


def as_yaml(doc) -> bytes:
    return yaml.dump(doc, sort_keys=False, default_flow_style=False).encode()


def as_json(doc) -> bytes:
    return json.dumps(doc, indent=2).encode()


def errors_of(data, **limits) -> list[str]:
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(data, limits=api.AltLimits(**limits) if limits else None)
    return [str(issue) for issue in caught.value.issues]


def results_by_task(record) -> dict:
    """task id -> result, whether the record lists results or maps them by id."""
    results = record["task_results"]
    return results if isinstance(results, dict) else {r["task_id"]: r for r in results}


def find_key(value, key):
    """The first value under `key` anywhere in a JSON record (its place may move)."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find_key(item, key)
            if found is not None:
                return found
    return None


# ---- the service's own files and documents --------------------------------------------

def test_the_public_examples_are_all_here():
    assert [p.name for p in EXAMPLES] == [f"benchmark_test_{n}.alt.yaml" for n in range(5)]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_public_examples_validate_and_convert(path):
    source = yaml.safe_load(path.read_bytes())
    alt = api.parse_alt_file(path.read_bytes())
    assert alt.id == source["id"]
    assert alt.mode == source["mode"].lower()
    assert alt.persona == source["persona"]
    assert alt.version == "1.0"
    assert [t.id for t in alt.tasks] == [s["id"] for s in source["segments"]]
    for task, segment in zip(alt.tasks, source["segments"]):
        assert task.description == segment["content"]
        assert task.task_type == "ai_prompt"            # execute: a natural-language task for the AI
        assert task.parameters == {**{p["name"]: p["value"] for p in segment["parameters"]},
                                   "task_type": "ai_prompt"}
        assert task.dependencies == segment["dependencies"]
        assert task.extra == {"segment_task_type": segment["task_type"], "metadata": segment["metadata"]}
    assert alt.extra["command"] == source["command"] and alt.extra["language"] == "tr"
    assert alt.extra["source_document"] == source
    assert alt.chaos_fault_rate == (source["chaos_level"] / 10 if source["chaos_level"] else None)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_public_examples_validate_and_run_from_the_command_line(path, tmp_path):
    checked = cli("validate", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid ALT file" in checked.stdout
    done = cli("run", path, "--out", tmp_path, "--seed", "7")
    source = yaml.safe_load(path.read_bytes())
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    results = results_by_task(record)
    assert set(results) == {s["id"] for s in source["segments"]}
    if source["mode"] == "Chaos":
        assert done.returncode in (0, 1), done.stderr
        assert record["execution"]["fault_rate"] == source["chaos_level"] / 10
    else:
        assert done.returncode == 0, done.stderr
        for segment in source["segments"]:
            assert results[segment["id"]]["output"]["text"] == "echo: " + segment["content"]
    assert find_key(record, "source_document") == source
    assert find_key(record, "persona") == source["persona"]


@pytest.mark.parametrize("write", [as_yaml, as_json], ids=["yaml", "json"])
@pytest.mark.parametrize("make", [v1_document, v2_document], ids=["v1.0", "v2.0"])
def test_documents_written_by_the_services_models_run_on_the_echo_provider(make, write, tmp_path):
    doc = make()
    path = tmp_path / ("task.alt.yaml" if write is as_yaml else "task.alt.json")
    path.write_bytes(write(doc))
    assert cli("validate", path).returncode == 0
    done = cli("run", path, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    results = results_by_task(record)
    search, create = doc["segments"]
    assert results[search["id"]]["output"]["text"] == "echo: Search for information about AI"
    assert results[create["id"]]["output"]["text"] == "echo: Create a report"
    assert find_key(record, "command") == doc["command"]
    assert find_key(record, "language") == "en"


def test_documents_run_through_the_python_api_and_the_c_abi(runner, tmp_path):
    data = as_yaml(v2_document())
    record = api.run(data, tmp_path)
    assert record["status"] == "success"
    alt_id = v2_document()["id"].encode()
    assert runner.runner_parse_alt_file(data) == 1, runner.last_error()
    assert runner.runner_parse_alt_file(as_json(v1_document())) == 1, runner.last_error()
    last_id = runner.take(runner.runner_generate_last_file(alt_id, str(tmp_path / "c").encode()))
    assert last_id, runner.last_error()


def test_dependencies_order_the_segments():
    alt = api.parse_alt_file(as_yaml(v1_document()))
    assert [alt.tasks[i].id for i in alt.graph.topological_order()] == [s["id"] for s in v1_document()["segments"]]


@pytest.mark.parametrize("mode", ["Normal", "normal", "DREAM", "Explore", "cHaOs"])
def test_mode_names_are_case_insensitive(mode):
    doc = v1_document()
    doc["mode"] = mode
    assert api.parse_alt_file(as_yaml(doc)).mode == mode.lower()


def test_chaos_level_sets_the_fault_rate_of_the_run(tmp_path):
    doc = v1_document()
    doc.update(mode="Chaos", chaos_level=10)
    from runner.execution import execute
    outcome = execute(as_yaml(doc), tmp_path, seed=3)
    assert outcome.facts["fault_rate"] == 1.0
    # Every first attempt gets a fault at rate 1.0.
    assert {f["attempt"] for f in outcome.facts["faults"]} >= {1}
    assert {f["task_id"] for f in outcome.facts["faults"]} == {doc["segments"][0]["id"]} | (
        {doc["segments"][1]["id"]} if outcome.results[doc["segments"][0]["id"]].status == "completed" else set())


@pytest.mark.parametrize("level", [0, 11, -1, 2.5, True, "5"])
def test_chaos_level_outside_1_to_10_is_refused(level):
    doc = v1_document()
    doc.update(mode="Chaos", chaos_level=level)
    assert any(e.startswith("chaos_level: expected an integer from 1 to 10") for e in errors_of(as_json(doc)))


def test_task_types_map_to_librunner_types():
    doc = v1_document()
    doc["segments"][0]["task_type"] = "generic"
    doc["segments"][1]["task_type"] = "Data_Processing"
    doc["segments"][1]["parameters"] = [parameter("operations", [{"op": "sort", "by": "n"}], kind="array"),
                                        parameter("input", [{"n": 3}, {"n": 1}], kind="array")]
    alt = api.parse_alt_file(as_yaml(doc))
    assert [t.task_type for t in alt.tasks] == ["generic", "data_processing"]
    assert alt.tasks[1].extra["segment_task_type"] == "Data_Processing"
    # The parameters of a librunner type are checked as such, and errors point into the list.
    del doc["segments"][1]["parameters"][0]["value"][0]["by"]
    [error] = errors_of(as_yaml(doc))
    assert error.startswith("segments[1].parameters[0].value[0].by: ")


def test_a_native_alt_file_may_be_written_in_yaml(spec_alt):
    alt = api.parse_alt_file(as_yaml(spec_alt))
    assert alt.to_dict() == api.parse_alt_file(json.dumps(spec_alt)).to_dict()


def test_a_document_without_ids_gets_stable_ones():
    doc = v1_document()
    del doc["id"]
    for segment in doc["segments"]:
        del segment["id"]
    doc["segments"][1]["dependencies"] = ["segment_1"]
    first, second = api.parse_alt_file(as_yaml(doc)), api.parse_alt_file(as_json(doc))
    assert first.id == second.id and len(first.id) <= 36
    assert [t.id for t in first.tasks] == ["segment_1", "segment_2"]


# ---- v2.0 control flow -------------------------------------------------------------------

def enhanced_example() -> dict:
    """The control-flow document of enhanced_dsl_schema.py's own example (loop, condition,
    function call, global variables, functions)."""
    doc = v2_document()
    doc["global_variables"] = [{"name": "search_query", "type": "string", "value": "python tutorials"}]
    doc["functions"] = [{"name": "save_result", "parameters": [], "body": ["save"]}]
    doc["segments"] = [
        {"id": "search", "task_type": "search_web", "content": "Search for python tutorials", "parameters": []},
        {"id": "loop_segment", "task_type": "control_flow", "content": "Loop through search results",
         "loop": {"type": "for_each", "variable": "result", "iterable": "search.results", "body": ["check"]},
         "dependencies": ["search"]},
        {"id": "check", "task_type": "control_flow", "content": "Check if result is relevant",
         "condition": {"condition": {"operator": "contains", "left": "result.title", "right": "tutorial"},
                       "if_body": ["call"], "else_body": []}, "dependencies": ["loop_segment"]},
        {"id": "call", "task_type": "function_call", "content": "Save relevant result",
         "function_call": {"function_name": "save_result", "arguments": {}}, "dependencies": ["check"]},
        {"id": "define", "task_type": "function", "content": "Define",
         "function_def": {"name": "f", "body": []}},
        {"id": "assign", "task_type": "variable_assignment", "content": "Let x be 1",
         "variables": [{"name": "x", "type": "number", "value": 1}]},
    ]
    return doc


def test_control_flow_is_checked_in_its_own_terms():
    """v2.0 control flow runs (tests/test_control_flow.py); this document's one problem is a
    function body naming a segment it does not have."""
    errors = errors_of(as_yaml(enhanced_example()))
    assert errors == ["functions[0].body[0]: function 'save_result': unknown segment 'save'"]
    doc = enhanced_example()
    doc["segments"].append({"id": "save", "task_type": "generic", "content": "Save it"})
    assert [t.id for t in api.parse_alt_file(as_yaml(doc)).tasks][:2] == ["search", "loop_segment"]


def test_control_flow_errors_reach_the_command_line_and_the_c_abi(runner, tmp_path):
    path = tmp_path / "flow.alt.yaml"
    path.write_bytes(as_yaml(enhanced_example()))
    checked = cli("validate", path)
    assert checked.returncode == 1 and "functions[0].body[0]: function 'save_result': unknown segment" in checked.stdout
    done = cli("run", path, "--out", tmp_path / "out")
    assert done.returncode == 2 and not (tmp_path / "out").exists()
    assert runner.runner_parse_alt_file(path.read_bytes()) == 0
    assert runner.last_error().startswith("runner_parse_alt_file: functions[0].body[0]: function 'save_result'")


# ---- errors point at the segment ---------------------------------------------------------

def altered(change) -> bytes:
    doc = copy.deepcopy(v1_document())
    change(doc)
    return as_yaml(doc)


def test_unknown_dependency_is_reported_at_the_segment():
    segments = v1_document()["segments"]
    errors = errors_of(altered(lambda d: d["segments"][1].update(dependencies=["x"])))
    assert errors == ["segments[1].dependencies[0]: unknown segment 'x'"]
    misspelt = segments[0]["id"][:-1] + "9"
    errors = errors_of(altered(lambda d: d["segments"][1].update(dependencies=[misspelt])))
    assert errors == [f"segments[1].dependencies[0]: unknown segment '{misspelt}' (did you mean '{segments[0]['id']}'?)"]


def test_self_repeated_and_cyclic_dependencies_name_segments():
    def cycle(doc):
        first, second = doc["segments"]
        first["dependencies"] = [second["id"]]
    [error] = errors_of(altered(cycle))
    assert error.startswith("segments[0].dependencies: dependency cycle: ")
    assert error.endswith("(each segment waits for the next)")

    def itself(doc):
        doc["segments"][0]["dependencies"] = [doc["segments"][0]["id"]]
    assert errors_of(altered(itself)) == [
        f"segments[0].dependencies[0]: segment '{v1_document()['segments'][0]['id']}' depends on itself"]


def test_duplicate_segment_ids_point_at_the_first_use():
    def duplicate(doc):
        doc["segments"][1]["id"] = doc["segments"][0]["id"]
        doc["segments"][1]["dependencies"] = []
    [error] = errors_of(altered(duplicate))
    assert error == f"segments[1].id: duplicate segment id '{v1_document()['segments'][0]['id']}' (first used by segments[0])"


def test_segment_structure_errors():
    def broken(doc):
        first, second = doc["segments"]
        del first["content"]
        first["task_type"] = 3
        second["parameters"] = [{"value": 1}, {"name": "a", "value": 1}, {"name": "a", "value": 2},
                                {"name": "task_type", "value": "x"}, {"name": "b"}, "c",
                                {"name": "d", "value": 1, "required": "yes"}]
        second["metadata"] = []
        doc["mode"] = "Sleepy"
        doc["segments"].append("not a segment")
        doc["segments"].append({"id": "bad id", "task_type": "x", "content": "y"})
    assert errors_of(altered(broken)) == [      # in the order of the document
        'mode: expected one of Normal, Dream, Explore, Chaos (any case), found "Sleepy"',
        "segments[0]: a segment needs a 'content', the text of its task",
        "segments[0].task_type: expected string, found integer 3",
        "segments[1].parameters[0]: a parameter needs a 'name'",
        "segments[1].parameters[2].name: parameter 'a' is given twice (first at segments[1].parameters[1])",
        "segments[1].parameters[3].name: the parameter name 'task_type' is reserved: the segment's task_type "
        "chooses the task type",
        "segments[1].parameters[4]: parameter 'b' needs a 'value'",
        'segments[1].parameters[5]: expected a parameter object {name, value, ...}, found string "c"',
        'segments[1].parameters[6].required: expected boolean, found string "yes"',
        "segments[1].metadata: expected object, found array []",
        'segments[2]: a segment is a JSON object, found string "not a segment"',
        'segments[3].id: invalid id "bad id": use 1-128 characters from A-Z a-z 0-9 _ . : -, '
        "not starting with . : or -",
    ]


def test_document_level_errors():
    assert errors_of(b"segments: []\ncommand: x\nid: a") == ["segments: an ALT file needs at least one segment"]
    assert errors_of(b"segments: 3\ncommand: x\nid: a") == ["segments: expected an array of segments, found integer 3"]
    assert errors_of(b"segments: [{task_type: a, content: b}]\nid: a") == [
        "command: an ALT file of segments needs a 'command', the command it was made from"]
    assert errors_of(b'{"segments": [{"task_type": "a", "content": "b"}], "command": 5}') == [
        "command: expected string, found integer 5"]


def test_the_task_limit_counts_segments():
    assert errors_of(as_yaml(v1_document()), max_tasks=1) == [
        "segments: 2 segments, more than the limit of 1 (RUNNER_MAX_TASKS)"]


def test_validate_alt_document_reads_segments_too():
    assert api.validate_alt_document(v2_document()) == []
    [issue] = api.validate_alt_document(enhanced_example() | {"segments": [{"task_type": "a"}],
                                                              "global_variables": [], "functions": []})
    assert str(issue) == "segments[0]: a segment needs a 'content', the text of its task"


# ---- hostile YAML ------------------------------------------------------------------------

def test_an_alias_bomb_is_refused_without_being_expanded():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):      # 9**10 (3.4 billion) strings once expanded
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    lines.append("segments: *a9")
    [error] = errors_of("\n".join(lines).encode())
    assert error.startswith("/: more than 8000000 values, aliases counted as expanded (RUNNER_MAX_JSON_VALUES)")


def test_moderate_aliases_are_fine():
    data = (b"id: a\ncommand: c\nsegments:\n- &s {id: s1, task_type: t, content: c}\n"
            b"- {id: s2, task_type: t, content: c, metadata: {copy: *s}}\n")
    alt = api.parse_alt_file(data)
    assert alt.tasks[1].extra["metadata"]["copy"]["id"] == "s1"


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!set {{a: null}}",
    "!custom thing",
])
def test_object_building_tags_are_refused_before_anything_is_built(tag, tmp_path):
    marker = tmp_path / "marker"
    data = f"id: a\ncommand: c\nsegments:\n- id: s\n  task_type: t\n  content: {tag.format(marker=marker)}\n"
    [error] = errors_of(data.encode())
    assert "is not allowed: an ALT file holds only strings, numbers, booleans, null, lists and mappings" in error
    assert "(line 6, column 12)" in error
    assert not marker.exists()


def test_deep_nesting_is_refused():
    # libyaml's scanner reads a run of [ ahead of its first event and stops at its own
    # limit (1000); either way the document is refused before anything is built.
    assert "nesting" in errors_of(b"a: " + b"[" * 100_000)[0]
    assert "nesting deeper than the limit of 64" in errors_of(b"a: " + b"[" * 500)[0]
    nested = "".join(f"{'  ' * i}k:\n" for i in range(100)).encode()
    assert "nesting deeper than the limit of 64" in errors_of(nested)[0]
    assert "nesting deeper than the limit of 4" in errors_of(b"a: [[[[[1]]]]]", max_depth=4)[0]


def test_huge_documents_and_strings_are_refused():
    data = as_yaml(v1_document()) + b"# " + b"x" * 5000 + b"\n"
    assert errors_of(data, max_bytes=4096) == [f"/: document is {len(data)} bytes, more than the limit of 4096 "
                                               "(RUNNER_MAX_ALT_BYTES)"]
    doc = v1_document()
    doc["segments"][0]["content"] = "y" * 5000
    assert "string of 5000 bytes, more than the limit of 4096" in errors_of(as_yaml(doc), max_string_bytes=4096)[0]
    many = b"id: a\ncommand: c\nsegments: [" + b"1, " * 200 + b"1]"
    assert "more than 100 values" in errors_of(many, max_values=100)[0]


@pytest.mark.parametrize("data, words", [
    (b"a: 1\na: 2\n", "key 'a' appears twice in this mapping"),
    (b"a: .nan\n", "is not a finite number"),
    (b"a: -.inf\n", "is not a finite number"),
    (b"a: 9007199254740992\n", "integer 9007199254740992 is out of range"),
    (b"a: " + b"9" * 5000 + b"\n", "is out of range"),
    (b"a: 1\n---\nb: 2\n", "more than one YAML document"),
    (b"base: &b {x: 1}\nc:\n  <<: *b\n", "merge keys (<<) are not supported"),
    (b"? [1, 2]\n: x\n", "a mapping key must be a string"),
    (b"a: {1: x}\n", "a mapping key must be a string"),
    (b"a: *nowhere\n", "alias *nowhere refers to no anchor defined before it"),
    (b"a: [1, 2\n", "invalid YAML"),
    (b"a: \"x\\0y\"\n", "NUL character"),
    (b"a: \xff\n", "invalid YAML: not valid UTF-8 (byte 3)"),
    (b"just text", "an ALT file is a JSON object, found string"),
])
def test_hostile_or_invalid_yaml_is_a_clear_document_error(data, words, runner):
    assert words in errors_of(data)[0]
    assert runner.runner_parse_alt_file(data) == 0
    assert words in runner.last_error()


def test_yaml_timestamps_stay_the_text_written():
    doc = as_yaml(v1_document()).replace(b"'2025-04-28T00:28:21.922739'", b"2025-04-28T00:28:21.922739")
    assert b"timestamp: 2025-04-28T00:28:21.922739\n" in doc
    assert api.parse_alt_file(doc).extra["timestamp"] == "2025-04-28T00:28:21.922739"


def test_json_documents_are_never_read_as_yaml():
    # YAML would take the last duplicate key and accept NaN; JSON rules still apply.
    data = as_json(v1_document()).replace(b'"language": "en"', b'"language": "en", "language": "tr"')
    assert "key 'language' appears twice" in errors_of(data)[0]
    assert "invalid JSON" in errors_of(b'{"segments": NaN}')[0]


# ---- unknown fields ----------------------------------------------------------------------

def test_documents_of_the_service_have_no_warnings():
    for data in [p.read_bytes() for p in EXAMPLES] + [as_yaml(v1_document()), as_json(v2_document())]:
        assert api.parse_alt_file(data).warnings == []


def test_unknown_fields_of_the_dialect_are_warnings_at_their_segment():
    doc = v1_document()
    doc["segments"][1]["depends_on"] = []
    doc["segments"][0]["parameters"][0]["requird"] = True
    doc["comand"] = "x"
    warnings = [str(w) for w in api.parse_alt_file(as_yaml(doc)).warnings]
    assert warnings == [      # in the order of the document: "comand" was added last
        "segments[0].parameters[0].requird: unknown field (did you mean 'required'?)",
        "segments[1].depends_on: unknown field (did you mean 'dependencies'?)",
        "comand: unknown field (did you mean 'command'?)",
    ]
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(as_yaml(doc), strict=True)
    assert [str(i) for i in caught.value.issues] == warnings


def test_unused_parameters_of_a_librunner_type_are_warnings():
    doc = v1_document()
    doc["segments"][0]["task_type"] = "generic"
    doc["segments"][1]["task_type"] = "ai_prompt"
    doc["segments"][1]["parameters"] = [parameter("promt", "x")]
    [warning] = api.parse_alt_file(as_yaml(doc)).warnings
    assert str(warning) == "segments[1].parameters[0]: unknown parameter (did you mean 'prompt'?)"


def test_the_example_in_examples_alt_runs(tmp_path):
    path = Path(__file__).resolve().parent.parent / "examples" / "alt" / "segmentation.alt.yaml"
    done = cli("run", path, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    assert record["priority"] == "high"          # metadata.priority, copied to the top as the original does
    assert all(r["status"] == "completed" for r in results_by_task(record).values())


# ---- the YAML reader against PyYAML ------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# JSON's data model, as yaml.dump writes it; NUL is the one character the reader refuses.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
              st.floats(allow_nan=False, allow_infinity=False), TEXT,
              st.sampled_from(["null", "yes", "~", "<<", "1e3", "0x1F", "2026-01-01", "12:30:00", "- a", "&a", "*a"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(value=VALUES, flow=st.sampled_from([False, None]), unicode=st.booleans())
def test_the_yaml_reader_reads_what_pyyaml_writes(value, flow, unicode):
    # default_flow_style None writes leaf collections in flow style; True would start the
    # document with "{", which is read as JSON (README).
    doc = v1_document()
    doc["segments"][0]["metadata"] = {"value": value}
    data = yaml.dump(doc, sort_keys=False, default_flow_style=flow, allow_unicode=unicode).encode()
    # What the service itself reads back (PyYAML loses some characters, e.g. a key '\x85').
    read_by_pyyaml = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert api.parse_alt_file(data).tasks[0].extra["metadata"] == read_by_pyyaml["segments"][0]["metadata"]


PIECES = st.sampled_from([
    "a: ", "- ", "&x ", "*x ", "!!python/object ", "!!str ", "{", "}", "[", "]", ", ", "\n", "  ", "segments:",
    "id: s", "? ", ": ", "'q'", '"\\0"', "<<: ", "---\n", "...\n", "%YAML 1.1\n", "!t ", "|\n  x\n", "1e400",
    ".nan", "0x10", "99999999999999999999", "\t", "#c\n", "é"])


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=30))
def test_any_yaml_text_is_an_alt_file_or_a_document_error(pieces):
    try:
        api.parse_alt_file(("x: 1\n" + "".join(pieces)).encode())
    except api.AltValidationError as error:
        assert error.issues and "internal" not in str(error)
