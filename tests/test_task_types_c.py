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
