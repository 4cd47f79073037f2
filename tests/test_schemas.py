"""The published JSON Schemas: valid Draft 2020-12, printed by the CLI, true to the code."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

import runner
from conftest import FIXTURES, SPEC_ALT, dumps
from runner import schemas


@pytest.mark.parametrize("name", schemas.NAMES)
def test_each_schema_is_valid_against_the_meta_schema(name):
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", schemas.NAMES)
def test_cli_prints_each_schema(name):
    done = subprocess.run([sys.executable, "-m", "runner", "schema", name], capture_output=True, text=True)
    assert done.returncode == 0
    assert json.loads(done.stdout) == schemas.load(name)


@pytest.mark.parametrize("name", schemas.NAMES)
def test_each_schema_stands_alone(name):
    """Every $ref points inside the published schema: to its own $defs, or to a schema
    embedded there under its $id (a Draft 2020-12 bundle), so a validator needs no other file."""
    schema = schemas.load(name)
    embedded = {d["$id"].rsplit("/", 1)[-1] for d in schema.get("$defs", {}).values() if "$id" in d}
    references = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                references.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert all(ref.startswith("#") or ref.split("#")[0] in embedded for ref in references), (references, embedded)


def test_the_alt_schema_checks_task_parameters_without_a_registry():
    validator = Draft202012Validator(json.loads(subprocess.run(
        [sys.executable, "-m", "runner", "schema", "alt"], capture_output=True, text=True, check=True).stdout))
    doc = json.loads((FIXTURES / "alt_las_example_alt_file.json").read_text())
    validator.validate(doc)
    doc["tasks"][0]["parameters"] = {"task_type": "data_processing", "operations": 5}
    assert not validator.is_valid(doc)


def test_cli_refuses_an_unknown_schema():
    done = subprocess.run([sys.executable, "-m", "runner", "schema", "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_fixture_and_spec_example_match_the_alt_schema():
    validator = schemas.validator("alt")
    validator.validate(json.loads((FIXTURES / "alt_las_example_alt_file.json").read_text()))
    validator.validate(SPEC_ALT)


def test_task_result_schema_matches_the_parser():
    alt = runner.parse_alt_file(dumps(SPEC_ALT))
    validator = schemas.validator("task-result")
    good = {"task_id": "task1", "status": "completed", "output": {"text": "ok"}, "error": None,
            "started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:01.5Z", "duration_ms": 1500,
            "metadata": {"ai": {"model": "m"}}, "x_extra": 1}
    validator.validate(good)
    runner.parse_task_result(dumps(good), alt)
    original = {"task_id": "task1", "execution_id": "5f0c7a4e-3b7f-4c55-9d3e-2a1b0c9d8e7f", "status": "timeout",
                "start_time": "2026-01-01T00:00:00Z", "end_time": None, "duration_ms": None, "output": None,
                "error": "late", "metadata": None}
    validator.validate(original)
    assert runner.parse_task_result(dumps(original), alt).execution_id == original["execution_id"]
    for change in ({"status": "done"}, {"duration_ms": -1}, {"started_at": "noon"}, {"metadata": []},
                   {"task_id": 5}, {"error": 3}, {"start_time": "noon"}, {"execution_id": 7}):
        bad = {**good, **change}
        assert not validator.is_valid(bad)
        with pytest.raises(runner.TaskResultError):
            runner.parse_task_result(dumps(bad), alt)


def last_record(alt_doc, results) -> dict:
    alt = runner.parse_alt_file(dumps(alt_doc))
    parsed = {r["task_id"]: runner.parse_task_result(dumps(r), alt) for r in results}
    return runner.build_last_record(alt, parsed, "0190a0b0-0000-7000-8000-000000000001", "0190a0b0-0000-7000-8000-000000000002", "2026-01-01T00:00:05.000Z")


def test_generated_last_record_matches_the_last_schema():
    validator = schemas.validator("last")
    doc = json.loads((FIXTURES / "alt_las_example_alt_file.json").read_text())
    doc["x_component"] = {"k": "v"}
    results = [
        {"task_id": "task_001", "status": "completed", "output": {"rows": 3}, "started_at": "2026-01-01T00:00:00.000Z",
         "completed_at": "2026-01-01T00:00:01.000Z", "duration_ms": 1000,
         "metadata": {"attempts": [{"n": 1}, {"n": 2}], "ai": {"model": "m", "prompt_tokens": 3}}},
        {"task_id": "task_002", "status": "failed", "error": "boom", "duration_ms": 5},
    ]
    record = json.loads(json.dumps(last_record(doc, results)))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
    assert errors == []
    assert record["task_results"]["task_003"]["status"] == "pending"
    # Not vacuous: the schema notices a broken record.
    for key, value in (("status", "great"), ("success_rate", 2), ("task_results", {"x": {"status": "ok"}})):
        assert not validator.is_valid({**record, key: value})
    broken = json.loads(json.dumps(record))
    del broken["statistics"]["total_tasks"]
    assert not validator.is_valid(broken)


def test_last_record_of_a_run_with_no_results_matches_the_schema():
    validator = schemas.validator("last")
    validator.validate(json.loads(json.dumps(last_record(SPEC_ALT, []))))


def test_last_schema_is_open_for_additions():
    schema = schemas.load("last")
    for part in (schema, schema["properties"]["statistics"], schema["properties"]["metadata"]):
        assert part.get("additionalProperties", True) is True
