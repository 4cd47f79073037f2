"""An empty output_dir is refused by every ABI function that writes LAST files (issue 12,
fault 8): it named no directory, and was silently taken for NULL (the default)."""
from __future__ import annotations

import ctypes

import pytest

from conftest import dumps


@pytest.fixture
def stored(runner, spec_alt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_OUTPUT_DIR", raising=False)
    runner.lib.runner_execute_alt_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    runner.lib.runner_execute_alt_file.restype = ctypes.c_void_p
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    return runner


@pytest.mark.parametrize("function, first", [
    ("runner_generate_last_file", b"test_alt_file"),
    ("runner_batch_process", b'["test_alt_file"]'),
    ("runner_execute_alt_file", b"test_alt_file"),
])
def test_an_empty_output_dir_is_refused(stored, tmp_path, function, first):
    assert getattr(stored.lib, function)(first, b"") is None
    error = stored.last_error()
    assert error.startswith(f"{function}: ") and "output_dir" in error and "empty" in error
    assert not (tmp_path / "output").exists()
    # NULL still means the default, ./output here.
    assert stored.take(getattr(stored.lib, function)(first, None))
    assert (tmp_path / "output").is_dir()


def test_run_start_and_resume_refuse_an_empty_output_dir_too(stored, tmp_path):
    lib = stored.lib
    lib.runner_run_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.runner_run_start.restype = ctypes.c_void_p
    lib.runner_resume.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.runner_resume.restype = ctypes.c_void_p
    assert lib.runner_run_start(b"test_alt_file", b"") is None
    error = stored.last_error()
    assert error.startswith("runner_run_start: ") and "output_dir" in error and "empty" in error
    last_id = stored.take(lib.runner_execute_alt_file(b"test_alt_file", str(tmp_path / "runs").encode()))
    assert last_id
    assert lib.runner_resume(str(tmp_path / "runs" / last_id).encode(), None, b"") is None
    error = stored.last_error()
    assert error.startswith("runner_resume: ") and "output_dir" in error and "empty" in error
    assert not (tmp_path / "output").exists()
