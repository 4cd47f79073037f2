"""Many threads at once: per-thread errors, concurrent and refused frees, memcheck, init/cleanup races."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_clean

C_TESTS = REPO / "tests" / "c"
SUMMARY = re.compile(r"stress: 8 threads, (\d+) iterations each, (\d+) checks, 0 mismatches\n")


@pytest.fixture(scope="module")
def stress(cc, tmp_path_factory) -> Path:
    return cc(C_TESTS / "stress.c", tmp_path_factory.mktemp("stress") / "stress", ["-lpthread"])


def test_eight_threads_each_see_only_their_own_errors(stress, tmp_path):
    completed = run_clean([stress, 4000, tmp_path])
    assert completed.returncode == 0, completed.stderr
    match = SUMMARY.fullmatch(completed.stdout)
    assert match and int(match[1]) == 4000, completed.stdout
    assert int(match[2]) > 8 * 4000  # every iteration checked something
    assert len(list(tmp_path.glob("*-*-*-*-*/last.json"))) == 8


def memcheck(argv, environment=()) -> subprocess.CompletedProcess:
    """Runs argv under valgrind memcheck, with the NAME=value settings of environment: any
    invalid access, or a block definitely lost, fails the run. CPython's own allocations
    are only "still reachable"/"possibly lost"."""
    return run_clean([
        *environment, shutil.which("valgrind"), "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
        "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
        f"--suppressions={C_TESTS / 'valgrind-python.supp'}", *argv,
    ], timeout=240)


def assert_memcheck_clean(completed: subprocess.CompletedProcess) -> None:
    report = completed.stderr
    assert completed.returncode == 0, report[-4000:]
    assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
    assert "definitely lost: 0 bytes in 0 blocks" in report or "All heap blocks were freed" in report


needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")


@needs_valgrind
def test_stress_is_clean_under_memcheck(stress, tmp_path):
    completed = memcheck([stress, 160, tmp_path])
    assert_memcheck_clean(completed)
    assert SUMMARY.search(completed.stdout), completed.stdout


@needs_valgrind
def test_cleanup_and_init_again_are_clean_under_memcheck(cc, tmp_path):
    # runner_cleanup releases outstanding strings; a later free of one is refused, not a double free.
    host = cc(C_TESTS / "host.c", tmp_path / "host")
    completed = memcheck([host, "reinit", tmp_path])
    assert_memcheck_clean(completed)
    assert completed.stdout == "reinit: ok\n"


@pytest.fixture(scope="module")
def init_race(cc, tmp_path_factory) -> Path:
    return cc(C_TESTS / "init_race.c", tmp_path_factory.mktemp("init_race") / "init_race", ["-lpthread"])


def test_init_and_cleanup_racing_with_calls_neither_crash_nor_hang(init_race, tmp_path):
    completed = run_clean([init_race, 3000, tmp_path], timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.splitlines() == ["cleanups: some", "calls: 24000, after the race: ok"]


@pytest.fixture(scope="module")
def cleanup_race(cc, tmp_path_factory) -> Path:
    return cc(C_TESTS / "cleanup_race.c", tmp_path_factory.mktemp("cleanup_race") / "cleanup_race", ["-lpthread"])


# A run of `sleep 3` that runner_cleanup interrupts, with a short grace period.
SLOW_RUN = ["RUNNER_ENABLE_SYSTEM_COMMANDS=true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST=sleep", "RUNNER_GRACE_SECONDS=0.5"]


def test_init_during_cleanup_waits_and_its_session_survives(cleanup_race, tmp_path):
    # Before the fix, runner_init re-initialised while runner_cleanup still waited for a
    # run; the cleanup then freed the new session's LAST id and discarded its ALT file.
    completed = run_clean([*SLOW_RUN, cleanup_race, tmp_path], timeout=60)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == "cleanup-race: ok\n"


@needs_valgrind
def test_init_during_cleanup_is_clean_under_memcheck(cleanup_race, tmp_path):
    # Before the fix: invalid reads of the new session's LAST id, freed by the old cleanup.
    completed = memcheck([cleanup_race, tmp_path], SLOW_RUN)
    assert_memcheck_clean(completed)
    assert completed.stdout == "cleanup-race: ok\n"


# One thread calls runner_init holding the GIL (ctypes.PyDLL) while another cleans up and
# initialises again without it (ctypes.CDLL). Before the fix, the first waited for the init
# lock holding the GIL and the second waited for the GIL holding the lock: a deadlock.
GIL_HOLDING_INIT = """
import ctypes, sys, threading
holds_gil, releases_gil = ctypes.PyDLL(sys.argv[1]), ctypes.CDLL(sys.argv[1])
assert releases_gil.runner_init() == 1
def cycle():
    for _ in range(2000):
        assert releases_gil.runner_cleanup() == 1
        releases_gil.runner_init()
cycler = threading.Thread(target=cycle)
cycler.start()
while cycler.is_alive():
    assert holds_gil.runner_init() == 1
cycler.join()
print("no deadlock")
"""


def test_runner_init_called_holding_the_gil_does_not_deadlock(library_path):
    completed = subprocess.run([sys.executable, "-c", GIL_HOLDING_INIT, str(library_path)], capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "no deadlock\n"
