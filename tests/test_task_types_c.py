"""Task types written in C: examples/c/task_type.c registers three types and runs a file that
uses them, 8 handlers at a time without the GIL; compiled by the test, also under valgrind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_clean
from test_c_stress import assert_memcheck_clean, memcheck, needs_valgrind


@pytest.fixture(scope="module")
def task_type_host(cc, tmp_path_factory) -> Path:
    return cc(REPO / "examples" / "c" / "task_type.c", tmp_path_factory.mktemp("task_type") / "task_type",
              ["-lpthread"])


def check_run(completed, output_dir: Path, count: int) -> None:
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "refusals: ok"
    last_id = lines[1].removeprefix("LAST file: ")
    # count word tasks, flaky twice, patient once
    assert lines[2] == f"handler calls: {count + 3}"
    record = json.loads((output_dir / last_id / "last.json").read_text())
    results = record["task_results"]
    for i in range(count):
        assert results[f"w{i}"]["status"] == "completed"
        assert results[f"w{i}"]["output"] == {"words": 5 if i % 2 else 7, "parallel": True}
    flaky = results["flaky"]
    assert flaky["status"] == "completed" and flaky["output"] == "second time lucky"
    assert [a["error"] for a in flaky["metadata"]["attempts"]] == ["handler returned 3", None]
    assert results["patient"]["status"] == "timeout"
    assert results["patient"]["metadata"]["task_type"] == "patient"


def test_a_c_host_registers_task_types_and_runs_them_in_parallel(task_type_host, tmp_path):
    check_run(run_clean([task_type_host, tmp_path, 32]), tmp_path, 32)


@needs_valgrind
def test_eight_threads_of_c_handlers_are_clean_under_memcheck(task_type_host, tmp_path):
    completed = memcheck([task_type_host, tmp_path, 16])
    assert_memcheck_clean(completed)
    check_run(completed, tmp_path, 16)


HOST = r'''
import json, sys
from pathlib import Path
from runner import abi

lib = abi.load(sys.argv[1])
out = Path(sys.argv[2])
assert lib.runner_init() == 1
calls = []

@abi.TASK_HANDLER
def square(task, user_data):
    seen = json.loads(lib.runner_task_json(task))
    calls.append(seen["id"])
    n = seen["parameters"]["n"] + sum(seen["deps"].values())
    if n < 0:
        lib.runner_task_set_error(task, b"negative")
        return 1
    return 0 if lib.runner_task_set_output(task, str(n * n).encode()) else 1

assert lib.runner_register_task_type(b"square", square, None) == 1
alt = {"id": "sq", "title": "Squares", "tasks": [
    {"id": "a", "description": "a", "parameters": {"task_type": "square", "n": 2}},
    {"id": "b", "description": "b", "dependencies": ["a"], "parameters": {"task_type": "square", "n": 1}},
    {"id": "c", "description": "c", "parameters": {"task_type": "square", "n": -1}}]}
assert lib.runner_parse_alt_file(json.dumps(alt).encode()) == 1
run_id = abi.take_string(lib, lib.runner_run_start(b"sq", str(out).encode()))
last_id = abi.take_string(lib, lib.runner_run_wait(run_id.encode(), -1))
record = json.loads(abi.take_string(lib, lib.runner_get_last_file_json(last_id.encode())))
print(json.dumps({k: [r["status"], r["output"], r["error"]] for k, r in record["task_results"].items()}))
resumed = abi.take_string(lib, lib.runner_resume(str(out / last_id).encode(), None, None))
record = json.loads((out / resumed / "last.json").read_text())
print(json.dumps(sorted(calls)))
print(json.dumps({k: r["metadata"].get("reused_from") == last_id for k, r in record["task_results"].items()}))
assert lib.runner_cleanup() == 1
'''


def test_c_types_run_through_run_start_and_resume_from_a_ctypes_host(library_path, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "host.py"
    script.write_text(HOST)
    completed = subprocess.run([sys.executable, str(script), str(library_path), str(tmp_path / "out")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    results, calls, reused = map(json.loads, completed.stdout.splitlines())
    assert results == {"a": ["completed", 4, None], "b": ["completed", 25, None], "c": ["failed", None, "negative"]}
    # The resume reuses a and b, and runs the failed c again.
    assert calls == ["a", "b", "c", "c"]
    assert reused == {"a": True, "b": True, "c": False}
