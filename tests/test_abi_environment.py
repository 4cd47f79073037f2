"""The settings a C host changes with setenv() after runner_init reach the next call, from C
and through ctypes: CPython's os.environ is a copy made when it started, which each call of
the ABI brings up to date (runner/core/host_environment.pxi)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

import pytest

from conftest import REPO, run_clean

TWO_TASKS = (b'{"id":"env","title":"Env","tasks":[{"id":"a","dependencies":null},'
             b'{"id":"b","dependencies":["a"]}]}')


@pytest.fixture(scope="module")
def environment_host(cc, tmp_path_factory):
    return cc(REPO / "tests" / "c" / "environment.c", tmp_path_factory.mktemp("environment") / "environment")


def test_a_c_host_changes_a_setting_with_setenv_between_calls(environment_host):
    completed = run_clean([environment_host])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "environment: ok" in completed.stdout


def test_libc_setenv_after_runner_init_reaches_the_next_call_through_ctypes(runner):
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.setenv.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
    libc.unsetenv.argtypes = (ctypes.c_char_p,)
    assert "RUNNER_MAX_TASKS" not in os.environ
    assert runner.runner_parse_alt_file(TWO_TASKS) == 1
    try:
        assert libc.setenv(b"RUNNER_MAX_TASKS", b"1", 1) == 0
        assert runner.runner_parse_alt_file(TWO_TASKS) == 0
        assert "RUNNER_MAX_TASKS" in runner.last_error()
        assert os.environ.get("RUNNER_MAX_TASKS") == "1"        # this interpreter's copy follows
    finally:
        libc.unsetenv(b"RUNNER_MAX_TASKS")
    assert runner.runner_parse_alt_file(TWO_TASKS) == 1
    assert "RUNNER_MAX_TASKS" not in os.environ
