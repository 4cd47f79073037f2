"""LAST files load with the original ALT_LAS runner's serde model (tests/rust_wire, built
offline by cargo against Debian's librust-*-dev crates), and keep what librunner knows."""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import runner
from runner import abi
from conftest import REPO, bind, dumps, library_path  # noqa: F401 (fixture)
from runner import schemas
from runner.execution import execute

CRATE = REPO / "tests" / "rust_wire"
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep"}

# Completed (with artifacts: explicit text, JSON, a fenced code block), failed, timed out,
# skipped (directly and through a skipped task).
WIRE_ALT = {
    "id": "wire", "title": "Wire format", "tags": ["wire", "check"], "priority": "high",
    "tasks": [
        {"id": "ok", "description": "fine", "parameters": {
            "task_type": "generic", "text": "Here:\n```python\nprint(1)\n```\n",
            "artifacts": [{"name": "notes.md", "text": "# notes"}, {"name": "data.json", "text": "{\"a\": 1}"}]}},
        {"id": "broken", "description": "fails",
         "parameters": {"task_type": "data_processing", "input": [{"k": 1}, {"k": "a"}],
                        "operations": [{"op": "sort", "by": "k"}]}},      # int < str: fails at run time
        {"id": "slow", "description": "times out", "timeout_seconds": 0.3,
         "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
        {"id": "after", "description": "needs broken", "dependencies": ["broken", "ok"],
         "parameters": {"task_type": "generic"}},
        {"id": "later", "description": "needs after", "dependencies": ["after"]},
    ],
}


@pytest.fixture(scope="session")
def rust_wire():
    """Path of the built checker. Skips only when cargo itself is absent."""
    cargo = shutil.which("cargo") or next(
        (str(p) for p in [Path.home() / ".cargo" / "bin" / "cargo"] if p.is_file()), None)
    if cargo is None:
        pytest.skip("cargo is not installed: the original's serde model cannot be built")
    built = subprocess.run([cargo, "build", "--offline", "--quiet"], cwd=CRATE, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, (
        "building tests/rust_wire offline failed (scripts/install-system-deps installs the Debian "
        "librust-serde-dev, librust-serde-json-dev, librust-chrono-dev and librust-uuid-dev it needs):\n"
        + built.stderr)
    return CRATE / "target" / "debug" / "rust_wire"


def load_with_original(checker: Path, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(checker), *map(str, paths)], capture_output=True, text=True, timeout=60)


def assert_loads(checker: Path, *paths: Path) -> None:
    done = load_with_original(checker, *paths)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == len(paths), done.stdout


@pytest.fixture(scope="module")
def wire_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("wire")
    return execute(WIRE_ALT, out, environ={**os.environ, **ENABLED})


def test_a_run_with_every_outcome_and_artifacts_loads_with_the_original_model(wire_run, rust_wire):
    assert_loads(rust_wire, wire_run.directory / "last.json")
    schemas.validator("last").validate(wire_run.record)


def test_the_run_is_written_in_the_original_s_words(wire_run):
    record = json.loads((wire_run.directory / "last.json").read_bytes())
    results = record["task_results"]
    assert {k: r["status"] for k, r in results.items()} == {
        "ok": "completed", "broken": "failed", "slow": "timeout", "after": "cancelled", "later": "cancelled"}
    assert record["status"] == "partialsuccess"
    assert record["tags"] == ["wire", "check"] and record["priority"] == "high"
    assert isinstance(record["execution_time_ms"], int)
    for result in results.values():
        assert isinstance(result["duration_ms"], int) and result["execution_id"] == record["execution_id"]
        assert isinstance(result["start_time"], str) and result["start_time"].endswith("Z")
    slow = results["slow"]
    assert 250 <= slow["duration_ms"] < 10_000 and slow["exact_duration_ms"] == pytest.approx(slow["duration_ms"], abs=0.5)
    edges = record["execution_graph"]["edges"]
    assert {"source": "broken", "target": "after", "dependency_type": "required"} in edges
    nodes = {n["task_id"]: n for n in record["execution_graph"]["nodes"]}
    assert nodes["after"]["status"] == "cancelled" and nodes["after"]["skipped"] is True
    assert nodes["slow"]["duration_ms"] == slow["duration_ms"] and nodes["slow"]["start_time"] == slow["start_time"]
    kinds = {a["name"]: (a["artifact_type"], a["metadata"]) for a in record["artifacts"]}
    assert kinds == {"notes.md": ("text", None), "data.json": ("json", None),
                     "code_1.py": ("text", {"language": "python"})}


def test_librunner_still_knows_which_tasks_were_skipped_and_why(wire_run):
    record = runner.load_last(wire_run.directory)
    from runner.last.reader import skip_reason, task_status

    results = record["task_results"]
    assert [t for t, r in results.items() if task_status(r) == "skipped"] == ["after", "later"]
    assert skip_reason(results["after"]) == "dependency 'broken' failed"
    assert skip_reason(results["later"]) == "dependency 'after' was skipped"
    assert task_status(results["slow"]) == "timeout" and skip_reason(results["slow"]) is None
    counts = record["statistics"]["status_counts"]
    assert counts["skipped"] == 2 and counts["cancelled"] == 0 and counts["timeout"] == 1
    shown = subprocess.run([sys.executable, "-m", "runner", "show", str(wire_run.directory)],
                           capture_output=True, text=True, check=True).stdout
    assert "2 skipped" in shown and "after: dependency 'broken' failed" in shown
    page = (wire_run.directory / "report.html").read_text()
    assert "Skipped: dependency &#39;broken&#39; failed" in page and "partial success" in page


def test_ids_are_time_ordered_uuids_that_fit_varchar_36(tmp_path):
    alt = runner.parse_alt_file(dumps({"id": "ids", "title": "ids", "tasks": [{"id": "a", "description": "a"}]}))
    written = [runner.write_last_file(alt, {}, tmp_path, html_report=False, graph=False) for _ in range(5)]
    ids = [w.last_id for w in written]
    for w in written:
        assert UUID7.match(w.record["id"]) and UUID7.match(w.record["execution_id"])
        assert len(w.record["id"]) == 36 and w.directory.name == w.record["id"]
        assert runner.load_last(w.directory)["id"] == w.last_id
    assert sorted(ids) == ids and len(set(ids)) == 5      # directories list in creation order
    many = [runner.librunner.new_uuid7() for _ in range(10_000)]   # many within one millisecond
    assert sorted(many) == many and len(set(many)) == len(many) and all(UUID7.match(u) for u in many)


ORIGINAL_ALT = {"id": "orig", "title": "Original results", "tasks": [
    {"id": "first", "description": "a"}, {"id": "second", "description": "b", "dependencies": ["first"]},
    {"id": "third", "description": "c", "dependencies": ["second"]}, {"id": "never", "description": "d"}]}


def test_the_original_s_task_results_through_the_c_abi_keep_their_times(library_path, tmp_path, rust_wire):
    lib = bind(ctypes.CDLL(str(library_path)))
    assert lib.runner_init() == 1
    try:
        take = lambda pointer: abi.take_string(lib, pointer)  # noqa: E731
        assert lib.runner_parse_alt_file(dumps(ORIGINAL_ALT)) == 1
        first_exec = "5f0c7a4e-3b7f-4c55-9d3e-2a1b0c9d8e7f"
        sent = [
            {"task_id": "first", "execution_id": first_exec, "status": "completed",
             "start_time": "2026-03-01T10:00:00Z", "end_time": "2026-03-01T10:00:01.500Z", "duration_ms": 1500,
             "output": {"text": "one"}, "error": None, "metadata": None},
            # An offset, and no duration: it comes from the two times.
            {"task_id": "second", "execution_id": "6a1d8b5f-4c80-4d66-8e4f-3b2c1d0e9f80", "status": "timeout",
             "start_time": "2026-03-01T12:00:02+02:00", "end_time": "2026-03-01T12:00:04.250+02:00",
             "output": None, "error": "too slow", "metadata": {}},
            {"task_id": "third", "execution_id": first_exec, "status": "cancelled",
             "start_time": "2026-03-01T10:00:04.250Z", "end_time": None, "duration_ms": None,
             "output": None, "error": "stopped", "metadata": None},
        ]
        for result in sent:
            assert lib.runner_add_task_result(b"orig", dumps(result)) == 1, take(lib.runner_get_last_error())
        last_id = take(lib.runner_generate_last_file(b"orig", str(tmp_path).encode()))
        assert last_id and UUID7.match(last_id), take(lib.runner_get_last_error())
        record = json.loads(take(lib.runner_get_last_file_json(last_id.encode())))
    finally:
        assert lib.runner_cleanup() == 1
    assert_loads(rust_wire, tmp_path / last_id / "last.json")
    results = record["task_results"]
    assert results["first"]["execution_id"] == first_exec
    assert (results["first"]["start_time"], results["first"]["end_time"], results["first"]["duration_ms"]) == \
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:01.500Z", 1500)
    assert (results["second"]["start_time"], results["second"]["end_time"], results["second"]["duration_ms"]) == \
        ("2026-03-01T10:00:02.000Z", "2026-03-01T10:00:04.250Z", 2250)
    assert results["third"]["end_time"] is None and results["third"]["duration_ms"] is None
    # The run spans the results' times; a task nobody reported on starts with the run.
    assert (record["start_time"], record["end_time"]) == ("2026-03-01T10:00:00.000Z", "2026-03-01T10:00:04.250Z")
    assert record["execution_time_ms"] == 4250
    never = results["never"]
    assert never["status"] == "pending" and never["start_time"] == record["start_time"] and never["end_time"] is None


def test_a_batch_and_extreme_values_load_with_the_original_model(library_path, tmp_path, rust_wire):
    alt = runner.parse_alt_file(dumps({"id": "x", "title": "x", "tasks": [
        {"id": "a", "description": "a"}, {"id": "b", "description": "b"}, {"id": "c", "description": "c"}]}))
    results = {
        "a": {"task_id": "a", "status": "completed", "started_at": "0001-01-01T00:00:00Z",
              "completed_at": "9999-12-31T23:59:59.999999Z", "duration_ms": 2 ** 51 + 0.5},
        "b": {"task_id": "b", "status": "skipped", "error": "dependency 'a' failed", "duration_ms": 2 ** 53 - 1},
        "c": {"task_id": "c", "status": "running", "started_at": "2026-01-01 00:00:00.123456789z"},
    }
    written = runner.write_last_file(alt, results, tmp_path, html_report=False, graph=False,
                                     execution={"wall_time_ms": 1e300})
    schemas.validator("last").validate(written.record)
    task_results = written.record["task_results"]
    assert task_results["a"]["duration_ms"] == 2 ** 51 + 1 and task_results["a"]["exact_duration_ms"] == 2 ** 51 + 0.5
    assert task_results["b"]["duration_ms"] == 2 ** 53 - 1 and task_results["b"]["skipped"] is True
    # A wall time beyond u64 (the execution facts are the caller's) is written as its largest value.
    assert written.record["execution_time_ms"] == 2 ** 64 - 1
    assert task_results["c"]["start_time"] == "2026-01-01T00:00:00.123456Z"
    lib = bind(ctypes.CDLL(str(library_path)))
    assert lib.runner_init() == 1
    try:
        take = lambda pointer: abi.take_string(lib, pointer)  # noqa: E731
        for n in range(3):
            assert lib.runner_parse_alt_file(dumps({"id": f"batch{n}", "title": "b", "tasks": [
                {"id": "t", "description": "t"}]})) == 1
            assert lib.runner_add_task_result(f"batch{n}".encode(), b'{"task_id":"t","status":"skipped"}') == 1
        mapping = json.loads(take(lib.runner_batch_process(b'["batch0","batch1","batch2"]', str(tmp_path).encode())))
    finally:
        assert lib.runner_cleanup() == 1
    assert all(UUID7.match(v) for v in mapping.values()), mapping
    assert_loads(rust_wire, written.directory / "last.json", *(tmp_path / v / "last.json" for v in mapping.values()))


@pytest.mark.parametrize("change", [
    ("status", "partial_success"), ("execution_time_ms", 12.5), ("id", "last_20260101T000000_0123456789abcdef"),
    ("task", "status", "skipped"), ("task", "duration_ms", 3.5), ("task", "start_time", None),
    ("edge", "dependency_type", "dependency"), ("artifact", "artifact_type", "code"),
])
def test_the_checker_refuses_what_the_original_refuses(wire_run, rust_wire, tmp_path, change):
    """The checker is not a rubber stamp: each of librunner's former spellings fails it."""
    record = json.loads((wire_run.directory / "last.json").read_bytes())
    where, *rest = change
    if where == "task":
        record["task_results"]["ok"][rest[0]] = rest[1]
    elif where == "edge":
        record["execution_graph"]["edges"][0][rest[0]] = rest[1]
    elif where == "artifact":
        record["artifacts"][0][rest[0]] = rest[1]
    else:
        record[where] = rest[0]
    path = tmp_path / "last.json"
    path.write_text(json.dumps(record))
    done = load_with_original(rust_wire, path)
    assert done.returncode == 1 and done.stdout.startswith("error "), done.stdout


@pytest.mark.parametrize("fields, message", [
    ({"start_time": "2026-13-01T00:00:00Z"}, "/start_time: expected an RFC 3339 date-time"),
    ({"end_time": "2026-06-30T23:59:60Z"}, "/end_time: expected an RFC 3339 date-time"),
    ({"started_at": "0000-01-01T00:00:00Z"}, "/started_at: expected an RFC 3339 date-time"),
    ({"started_at": "2026-01-01T00:00:00Z", "start_time": "2026-01-01T00:00:01Z"},
     "'started_at' and 'start_time' name different times"),
])
def test_times_no_reader_can_take_are_refused_with_their_place(fields, message):
    alt = runner.parse_alt_file(dumps(ORIGINAL_ALT))
    with pytest.raises(runner.TaskResultError, match=re.escape(message)):
        runner.parse_task_result(dumps({"task_id": "first", "status": "completed", **fields}), alt)


def test_both_spellings_of_one_instant_are_one_time():
    alt = runner.parse_alt_file(dumps(ORIGINAL_ALT))
    result = runner.parse_task_result(dumps({"task_id": "first", "status": "completed",
                                             "started_at": "2026-01-01T02:00:00+02:00",
                                             "start_time": "2026-01-01T00:00:00Z"}), alt)
    assert result.started_at == "2026-01-01T00:00:00Z"
