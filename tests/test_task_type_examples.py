"""examples/alt/<task type>.json: one example per task type, run as a user would, and the
published parameter schema they follow."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "alt"
TYPES = ("ai_prompt", "data_processing", "file_operation", "system_command", "generic")


@pytest.mark.parametrize("task_type", TYPES)
def test_each_task_type_example_runs_to_completion(tmp_path, task_type):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    environ.update(RUNNER_ENABLE_SYSTEM_COMMANDS="true", RUNNER_SYSTEM_COMMAND_ALLOWLIST="echo", RUNNER_STRICT="true")
    done = subprocess.run([sys.executable, "-m", "runner", "run", EXAMPLES / f"{task_type}.json", "--out", tmp_path,
                           "--quiet", "--json"], capture_output=True, text=True, env=environ, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    record = json.loads((tmp_path / summary["last_id"] / "last.json").read_text())
    results = record["task_results"]
    types = {t["parameters"].get("task_type", "ai_prompt") for t in json.loads(
        (EXAMPLES / f"{task_type}.json").read_text())["tasks"]}
    assert task_type in types
    assert all(r["status"] == "completed" for r in results.values())
    if task_type == "data_processing":
        assert results["over_30"]["output"]["result"] == [{"name": "ann"}, {"name": "cid"}]
        assert results["count"]["output"]["result"] == 3
    if task_type == "system_command":
        assert results["hello"]["output"]["stdout"] == "hello world\n"


def test_the_parameter_schema_is_published_and_accepts_the_examples():
    from runner import schemas

    published = subprocess.run([sys.executable, "-m", "runner", "schema", "task-parameters"], capture_output=True,
                               text=True, timeout=60)
    assert json.loads(published.stdout)["$defs"].keys() >= {"ai_prompt", "data_processing", "file_operation",
                                                             "system_command"}
    validator = schemas.validator("alt")
    for task_type in TYPES:
        assert validator.is_valid(json.loads((EXAMPLES / f"{task_type}.json").read_text()))


def test_the_schema_and_the_validator_name_the_same_parameters():
    """The typed validator in runner/core/task_parameters.pxi and the published schema agree."""
    from runner import librunner, schemas

    defs = schemas.load("task-parameters")["$defs"]
    assert set(defs["ai_prompt"]["properties"]) | {"task_type"} == set(librunner.AI_PARAMETERS)
    assert set(defs["data_processing"]["properties"]) | {"task_type"} == set(librunner.DATA_PARAMETERS)
    assert set(defs["file_operation"]["properties"]) | {"task_type"} == set(librunner.FILE_PARAMETERS)
    assert set(defs["system_command"]["properties"]) | {"task_type"} == set(librunner.COMMAND_PARAMETERS)
    assert defs["data_operation"]["properties"]["op"]["enum"] == list(librunner.DATA_OPERATIONS)
    assert defs["file_operation"]["properties"]["operation"]["enum"] == list(librunner.FILE_OPERATIONS)
    from runner.execution import data_processing, file_operation, modes
    assert set(data_processing.OPERATIONS) == set(librunner.DATA_OPERATIONS)
    assert set(data_processing.COMPARISONS) | {"exists"} == set(librunner.COMPARISONS)
    assert tuple(file_operation.OPERATIONS) == librunner.FILE_OPERATIONS
    assert set(modes.SAMPLING_KEYS) == set(librunner.SAMPLING_PARAMETERS)


@pytest.mark.parametrize("parameters", [
    {"task_type": "file_operation", "operation": "read", "path": "a/../b"},
    {"task_type": "file_operation", "operation": "read", "path": "/abs"},
    {"task_type": "file_operation", "operation": "write"},
    {"task_type": "system_command", "command": ["./x"]},
    {"task_type": "system_command", "command": "ls"},
    {"task_type": "data_processing", "input": [], "operations": [{"op": "fliter"}]},
    {"task_type": "data_processing", "input": [], "operations": [{"op": "map"}]},
    {"task_type": "data_processing", "input": []},
    {"prompt": "p", "top_p": 2},
    {"prompt": "p", "stream": None},
])
def test_the_schema_and_the_validator_refuse_the_same_mistakes(parameters):
    from runner import schemas, validate_alt_document

    doc = {"id": "x", "title": "x", "tasks": [{"id": "t", "parameters": parameters}]}
    assert validate_alt_document(doc) != []
    assert not schemas.validator("alt").is_valid(doc)
