"""A last.json whose parts have the wrong shape is refused by show and report with one
clear error, "malformed LAST file: <path>: <what>", exit 2, never a traceback: the shape
is checked once where the record is loaded (runner.last.reader)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import runner

ALT = {"id": "shape", "title": "Shape", "tasks": [{"id": "a", "description": "A"},
                                                  {"id": "b", "description": "B", "dependencies": ["a"]}]}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    alt = runner.parse_alt_file(json.dumps(ALT).encode())
    return runner.write_last_file(alt, {}, tmp_path_factory.mktemp("last"), html_report=False, graph=False)


def spoilt(record: dict, change: str) -> tuple[dict, str]:
    record = json.loads(json.dumps(record))
    if change == "result list":
        record["task_results"]["a"] = [1]
        return record, "task_results.a: expected an object, found a list"
    if change == "status object":
        record["task_results"]["a"]["status"] = {"x": 1}
        return record, "task_results.a.status: expected a string, found an object"
    if change == "metadata list":
        record["task_results"]["a"]["metadata"] = [1]
        return record, "task_results.a.metadata: expected an object, found a list"
    if change == "nodes numbers":
        record["execution_graph"]["nodes"] = [1]
        return record, "execution_graph.nodes: expected a list of objects"
    if change == "statistics list":
        record["statistics"] = [1]
        return record, "statistics: expected an object, found a list"
    if change == "success rate null":
        record["success_rate"] = None
        return record, "success_rate: expected a number, found null"
    if change == "graph list":
        record["execution_graph"] = []
        return record, "execution_graph: expected an object, found a list"
    if change == "node without id":
        record["execution_graph"]["nodes"].append({})
        return record, "execution_graph.nodes[2].id: expected a string, found null"
    if change == "tokens number":
        record["statistics"]["tokens"] = {"m": 5}
        return record, "statistics.tokens.m: expected an object, found a number"
    if change == "critical ids number":
        record["statistics"]["critical_path"] = {"task_ids": 5}
        return record, "statistics.critical_path.task_ids: expected a list of strings"
    if change == "task time text":
        record["statistics"]["total_task_time_ms"] = "long"
        return record, "statistics.total_task_time_ms: expected a number, found a string"
    if change == "retried tasks number":
        record["statistics"]["retries"] = {"total": 1, "tasks": 5}
        return record, "statistics.retries.tasks: expected a list, found a number"
    record["success_rate"] = "high"
    return record, "success_rate: expected a number, found a string"


@pytest.mark.parametrize("change", ["result list", "status object", "metadata list", "nodes numbers",
                                    "statistics list", "success rate text", "success rate null", "graph list",
                                    "node without id", "tokens number", "critical ids number", "task time text",
                                    "retried tasks number"])
@pytest.mark.parametrize("command", [("show",), ("show", "--json"), ("report",)])
def test_show_and_report_refuse_a_malformed_last_file(tmp_path, written, change, command):
    record, what = spoilt(written.record, change)
    path = tmp_path / "last.json"
    path.write_text(json.dumps(record))
    done = cli(command[0], tmp_path, *command[1:])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"malformed LAST file: {path}: {what}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "report.html").exists()


def test_the_written_record_itself_is_shown_and_reported(written):
    assert cli("show", written.directory).returncode == 0
    done = cli("report", written.directory)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("part", ["statistics", "status_counts", "critical_path", "retries", "total_task_time_ms",
                                  "parallelism", "duration_ms"])
def test_parts_written_as_null_are_shown_as_absent(tmp_path, written, part):
    # null is a shape the reader lets through: show and report treat it as not there.
    record = json.loads(json.dumps(written.record))
    statistics = record["statistics"]
    if part == "statistics":
        record["statistics"] = None
    elif part == "duration_ms":
        statistics["critical_path"] = {"task_ids": ["a", "b"], "duration_ms": None}
    elif part == "retries":
        statistics["retries"] = {"total": 2, "tasks": None}
    else:
        statistics[part] = None
    (tmp_path / "last.json").write_text(json.dumps(record))
    for command in (("show",), ("show", "--json"), ("report",)):
        done = cli(command[0], tmp_path, *command[1:])
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr
