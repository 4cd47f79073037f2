"""examples/alt/flow_*: one example per control-flow construct, run as a user would; the
v2.0 example of enhanced_dsl_schema.py's __main__ (tests/fixtures/control_flow/) validates
and runs as the README says."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "alt"
MAIN_EXAMPLE = REPO / "tests" / "fixtures" / "control_flow" / "enhanced_dsl_main.alt.yaml"


def run_cli(path, tmp_path, *extra):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    environ["RUNNER_STRICT"] = "true"
    done = subprocess.run([sys.executable, "-m", "runner", "run", path, "--out", tmp_path, "--quiet", "--json",
                           *extra], capture_output=True, text=True, env=environ, timeout=120)
    summary = json.loads(done.stdout) if done.stdout.strip() else None
    record = json.loads((tmp_path / summary["last_id"] / "last.json").read_text()) if summary else None
    return done, record


def outputs(record) -> dict:
    return {task_id: result.get("output") for task_id, result in record["task_results"].items()}


def statuses(record) -> dict:
    return {task_id: ("skipped" if result.get("skipped") else result["status"])
            for task_id, result in record["task_results"].items()}


def test_the_examples_are_one_per_construct():
    names = sorted(p.name for p in EXAMPLES.glob("flow_*"))
    assert names == ["flow_branch.alt.yaml", "flow_for_each.json", "flow_for_range.alt.yaml",
                     "flow_function.alt.yaml", "flow_when.json", "flow_while.alt.yaml"]


def test_when_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_when.json", tmp_path)
    assert done.returncode == 0, done.stderr
    assert statuses(record) == {"plan": "completed", "notify_production": "skipped", "scale_up": "completed"}
    assert record["task_results"]["notify_production"]["metadata"]["skipped_reason"] == "condition false"
    assert outputs(record)["plan"] == {"task_type": "generic", "replicas": 3, "note": "deploy to staging"}
    assert outputs(record)["scale_up"]["replicas"] == 3


def test_for_each_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_for_each.json", tmp_path)
    assert done.returncode == 0, done.stderr
    results = outputs(record)
    assert [results[f"greet[{i}]"]["greeting"] for i in range(3)] == [
        "Merhaba, Ankara", "Merhaba, Izmir", "Merhaba, Bursa"]
    assert results["summary"]["result"] == 3
    assert record["task_results"]["greet[2]"]["metadata"]["control"] == {
        "loop": "greet", "iteration": 2, "value": "Bursa", "of": "greet"}


def test_branch_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_branch.alt.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    assert statuses(record) == {"check_disk": "completed", "clean": "completed", "report_cleaned": "completed",
                                "report_fine": "skipped", "done": "completed"}
    assert record["task_results"]["report_fine"]["metadata"]["skipped_reason"] == "branch not taken"


def test_for_range_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_for_range.alt.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    results = outputs(record)
    assert [results[f"parse[{i}]"]["parsed"] for i in range(3)] == [1, 3, 5]
    assert "fetch" not in results and "parse" not in results
    edges = {(e["source"], e["target"]) for e in record["execution_graph"]["edges"]}
    assert ("fetch[1]", "parse[1]") in edges


def test_while_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_while.alt.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    results = outputs(record)
    assert [results[f"ask[{i}]"]["attempt"] for i in range(3)] == [0, 1, 2]
    assert record["task_results"]["poll"]["metadata"]["control"] == {"loop": "while", "iterations": 3}


def test_function_example(tmp_path):
    done, record = run_cli(EXAMPLES / "flow_function.alt.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    results = outputs(record)
    assert results["both"]["first"] == "Hello Ada!" and results["both"]["second"] == "Hello Alan?"
    assert results["greet_ada/polish"]["text"] == "Hello Ada!"
    assert "compose" not in results


def test_the_v2_example_of_the_segmentation_service_validates_and_runs(tmp_path):
    checked = subprocess.run([sys.executable, "-m", "runner", "validate", MAIN_EXAMPLE], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done, record = run_cli(MAIN_EXAMPLE, tmp_path)
    assert done.returncode == 1          # a task failed: the call's return type (README)
    assert statuses(record) == {
        "segment1": "completed", "segment2": "failed", "segment2/segment3": "completed",
        "segment2/segment4": "completed", "segment5": "skipped", "segment6": "completed", "segment7": "skipped"}
    results = record["task_results"]
    assert results["segment2"]["error"].startswith(
        "function 'perform_search' returns array (its return_type), its body's last segment gave object")
    assert results["segment5"]["metadata"]["skipped_reason"] == "branch not taken"
    assert results["segment7"]["metadata"]["skipped_reason"] == "dependency 'segment2' failed"
    assert results["segment2/segment3"]["metadata"]["control"] == {
        "call": "segment2", "function": "perform_search", "of": "segment3"}


@pytest.mark.parametrize("name", ["flow_when.json", "flow_for_each.json"])
def test_the_published_alt_schema_accepts_the_native_examples(name):
    from runner import schemas

    assert schemas.validator("alt").is_valid(json.loads((EXAMPLES / name).read_text()))
    published = subprocess.run([sys.executable, "-m", "runner", "schema", "alt"], capture_output=True, text=True,
                               timeout=60)
    schema = json.loads(published.stdout)
    assert {"when", "for_each"} <= schema["$defs"]["task"]["properties"].keys()
    assert "variables" in schema["properties"]
