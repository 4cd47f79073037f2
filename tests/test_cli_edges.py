"""Edges of the command line: a reader that closes the pipe early, standard input among
several files, and an empty --from."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "alt"


def cli(*args, **options):
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], text=True, timeout=60, **options)


@pytest.fixture(scope="module")
def last_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    done = cli("run", EXAMPLES / "generic.json", "--out", out, "--quiet", capture_output=True)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def test_show_into_a_closed_pipe_ends_quietly(last_dir):
    read_end, write_end = os.pipe()
    os.close(read_end)          # as `show DIR | head -2` once head has gone
    try:
        done = cli("show", last_dir, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


def test_standard_input_among_several_files_is_refused(tmp_path):
    done = cli("run", "-", EXAMPLES / "generic.json", "--out", tmp_path, capture_output=True, input="{}")
    assert done.returncode == 2
    assert "- (the ALT file on standard input) can only be run alone" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--from", "--force"])
def test_resume_refuses_an_empty_task_id(last_dir, tmp_path, option):
    done = cli("resume", last_dir, option, "", "--out", tmp_path, capture_output=True)
    assert done.returncode == 2, done.stderr
    assert f"resume: {option}: an empty task id names no task" in done.stderr
    assert list(tmp_path.iterdir()) == []
