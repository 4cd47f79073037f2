"""Runs a C host drives (runner_run_*) and runner_resume, from a real C program, also under valgrind."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_clean
from test_c_stress import assert_memcheck_clean, memcheck, needs_valgrind

ENVIRONMENT = ["RUNNER_ENABLE_SYSTEM_COMMANDS=true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST=sleep", "RUNNER_GRACE_SECONDS=0.5"]


@pytest.fixture(scope="module")
def runs(cc, tmp_path_factory) -> Path:
    return cc(REPO / "tests" / "c" / "runs.c", tmp_path_factory.mktemp("runs") / "runs")


def test_two_runs_watched_one_cancelled_one_waited_for_then_resumed(runs, tmp_path):
    completed = run_clean([*ENVIRONMENT, runs, tmp_path], timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == "runs: ok\n"
    # quick, slow (cancelled), its resume, and the slow run cleanup cancelled: four LAST files.
    assert len(list(tmp_path.glob("*/last.json"))) == 4


@needs_valgrind
def test_the_run_functions_are_clean_under_memcheck(runs, tmp_path):
    completed = memcheck([runs, tmp_path], ENVIRONMENT)
    assert_memcheck_clean(completed)
    assert completed.stdout == "runs: ok\n"
