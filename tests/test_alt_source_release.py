"""A run may let go of its ALT file's bytes once alt.json is written (RunRequest.release_source,
as `runner run` does): alt.json is still the file's bytes, the run resumable, and an AltFile
run again afterwards writes alt.json from its model."""
from __future__ import annotations

import json
import subprocess
import sys

import orjson

import runner
from runner.execution import execute

DOC = {"id": "keep", "title": "source", "tasks": [
    {"id": "a", "description": "first", "parameters": {"task_type": "generic", "n": 1}},
    {"id": "b", "description": "second", "dependencies": ["a"], "parameters": {"task_type": "generic", "n": 2},
     "x_owner": "team"}]}
# Written as a person would: indented, keys in their own order. alt.json keeps these bytes.
TEXT = json.dumps(DOC, indent=3).encode()


def test_a_run_that_releases_the_source_writes_it_first_and_keeps_the_model(tmp_path):
    alt = runner.parse_alt_file(TEXT)
    assert alt.source is TEXT
    outcome = execute(alt, tmp_path / "one", environ={}, release_source=True)
    assert outcome.all_completed and alt.source is None
    assert (outcome.directory / "alt.json").read_bytes() == TEXT
    # The model is whole: run again, alt.json is made from it (the same document).
    again = execute(alt, tmp_path / "two", environ={})
    assert again.all_completed
    assert orjson.loads((again.directory / "alt.json").read_bytes()) == alt.to_dict()
    assert runner.parse_alt_file((again.directory / "alt.json").read_bytes()).to_dict() == alt.to_dict()


def test_a_run_that_does_not_release_keeps_the_callers_bytes(tmp_path):
    alt = runner.parse_alt_file(TEXT)
    execute(alt, tmp_path, environ={})
    assert alt.source is TEXT


def test_the_cli_run_writes_the_files_bytes_as_alt_json(tmp_path):
    path = tmp_path / "alt.json"
    path.write_bytes(TEXT)
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    directory = done.stdout.strip().splitlines()[-1]
    assert (tmp_path / "out" / directory.rsplit("/", 1)[-1] / "alt.json").read_bytes() == TEXT
