"""A workspace nested thousands of directories deep (issue 12, fault 1).

ALT files are untrusted and file_operation writes are on by default, so a task can build
`a/a/.../f.txt` thousands of levels deep. Removing the temporary workspace must not recurse on
the interpreter's stack: the CLI exits by the tasks' outcome and leaves no
runner-workspace-* directory, and runner_execute_alt_file hands out its LAST id.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile

import pytest

from conftest import dumps

# Deeper than the interpreter's default recursion limit (1000), which shutil.rmtree hit.
DEPTH = 1200


@pytest.fixture(autouse=True)
def _no_deep_tree_left(tmp_path):
    """pytest empties old temporary directories with shutil.rmtree, which a tree this deep
    crashes (for every later pytest run on the machine): whatever a test left goes now."""
    yield
    from runner.workspace import remove_tree
    for child in tmp_path.iterdir():
        if child.is_dir() and not child.is_symlink():
            remove_tree(child)


def deep_alt(alt_id: str = "deep") -> dict:
    return {"id": alt_id, "title": "deep", "tasks": [{
        "id": "t", "description": "t", "dependencies": None,
        "parameters": {"task_type": "file_operation", "operation": "write",
                       "path": "a/" * DEPTH + "f.txt", "content": "x"}}]}


def test_the_cli_removes_a_deep_workspace_and_exits_by_the_outcome(tmp_path):
    (tmp_path / "deep.json").write_bytes(dumps(deep_alt()))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(tmp_path / "deep.json"),
                           "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(temporary)})
    assert done.returncode == 0, done.stderr
    assert "RecursionError" not in done.stderr
    assert list(temporary.iterdir()) == []          # no runner-workspace-* left behind
    assert (tmp_path / "out" / done.stdout.strip().splitlines()[-1].rsplit("/", 1)[-1] / "last.json").is_file()


def test_the_abi_hands_out_the_last_id_after_a_deep_workspace(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    runner.lib.runner_execute_alt_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    runner.lib.runner_execute_alt_file.restype = ctypes.c_void_p
    assert runner.runner_parse_alt_file(dumps(deep_alt("deep_abi"))) == 1
    last_id = runner.take(runner.lib.runner_execute_alt_file(b"deep_abi", str(tmp_path / "out").encode()))
    assert last_id, runner.last_error()
    assert (tmp_path / "out" / last_id / "last.json").is_file()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_remove_tree_needs_no_stack_for_depth(tmp_path):
    from runner.workspace import remove_tree
    top = tmp_path / "top"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.symlink(tmp_path, "escape", dir_fd=fd)       # a link is removed, never followed
    os.close(fd)
    (tmp_path / "keep").write_text("outside")
    before = sys.getrecursionlimit()
    remove_tree(top)
    assert not top.exists()
    assert (tmp_path / "keep").read_text() == "outside"
    assert sys.getrecursionlimit() == before


def test_remove_tree_of_a_missing_directory_is_quiet(tmp_path):
    from runner.workspace import remove_tree
    remove_tree(tmp_path / "never-made")
