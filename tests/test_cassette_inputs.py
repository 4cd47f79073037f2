"""Cassettes are untrusted input: every line is checked when the cassette is loaded (the
error names the file and the line), the file is bounded, replayed answers are bounded like
live ones, an unusable --record/--replay path is refused before the run (exit 2), and a
recording that fails fails its task, never the run's LAST file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runner.ai.cassette import MAX_CASSETTE_BYTES
from runner.ai.completion import MAX_ANSWER_BYTES

ALT = {"id": "tape", "title": "Tape", "tasks": [{"id": "ask", "description": "What is a cassette?"}]}
ENV = {"PATH": "/usr/bin:/bin", "RUNNER_AI_PROVIDER": "echo"}


def run(tmp_path, *options):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(ALT))
    return subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"),
                           "--quiet", *options], env=ENV, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def recorded_line(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("rec")
    cassette = tmp_path / "calls.jsonl"
    done = run(tmp_path, "--record", str(cassette))
    assert done.returncode == 0, done.stderr
    (line,) = cassette.read_text().splitlines()
    return json.loads(line)


def spoil(entry: dict, change: str) -> dict:
    entry = json.loads(json.dumps(entry))
    if change == "no response":
        del entry["response"]
    elif change == "response list":
        entry["response"] = [1]
    elif change == "error string":
        entry["error"] = "boom"
    elif change == "pieces numbers":
        entry["pieces"] = [1, 2]
    elif change == "prompt number":
        entry["request"]["prompt"] = 5
    elif change == "text number":
        entry["response"]["text"] = 5
    elif change == "tokens text":
        entry["response"]["prompt_tokens"] = "many"
    elif change == "tokens negative":
        entry["response"]["completion_tokens"] = -1
    elif change == "model number":
        entry["response"]["model"] = 5
    elif change == "not an object":
        entry = [entry]
    return entry


@pytest.mark.parametrize("change, where", [
    ("no response", "response: expected an object"), ("response list", "response: expected an object"),
    ("error string", "error: expected an object"), ("pieces numbers", "pieces[0]"),
    ("prompt number", "request.prompt: expected a string"), ("text number", "response.text: expected a string"),
    ("tokens text", "response.prompt_tokens"), ("tokens negative", "response.completion_tokens"),
    ("model number", "response.model: expected a string"), ("not an object", "expected an object, found list")])
def test_a_malformed_line_is_refused_before_the_run_naming_file_and_line(tmp_path, recorded_line, change, where):
    cassette = tmp_path / "calls.jsonl"
    cassette.write_text(json.dumps(recorded_line) + "\n\n" + json.dumps(spoil(recorded_line, change)) + "\n")
    done = run(tmp_path, "--replay", str(cassette))
    assert done.returncode == 2, done.stderr
    assert f"{cassette}: line 3: not a recorded call: {where}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_the_recorded_line_itself_replays(tmp_path, recorded_line):
    cassette = tmp_path / "calls.jsonl"
    cassette.write_text(json.dumps(recorded_line) + "\n")
    done = run(tmp_path, "--replay", str(cassette))
    assert done.returncode == 0, done.stderr


def test_a_replayed_answer_is_bounded_like_a_live_one(tmp_path, recorded_line):
    entry = json.loads(json.dumps(recorded_line))
    entry["response"]["text"] = "a" * (MAX_ANSWER_BYTES + 1)
    entry["pieces"] = []
    cassette = tmp_path / "calls.jsonl"
    cassette.write_text(json.dumps(entry) + "\n")
    done = run(tmp_path, "--replay", str(cassette))
    assert done.returncode == 2
    assert f"{cassette}: line 1: not a recorded call: response.text: more than {MAX_ANSWER_BYTES} bytes" in done.stderr


def test_a_device_or_an_oversized_cassette_is_refused_without_reading_it(tmp_path):
    done = run(tmp_path, "--replay", "/dev/zero")
    assert done.returncode == 2 and "RUNNER_AI_REPLAY=/dev/zero: not a regular file" in done.stderr, done.stderr
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_CASSETTE_BYTES + 1)     # sparse: nothing is written, nothing is read
    done = run(tmp_path, "--replay", str(huge))
    assert done.returncode == 2 and f"larger than {MAX_CASSETTE_BYTES} bytes" in done.stderr, done.stderr


@pytest.mark.parametrize("target", ["directory", "missing/calls.jsonl"])
def test_an_unusable_record_path_exits_2_before_the_run(tmp_path, target):
    (tmp_path / "directory").mkdir()
    done = run(tmp_path, "--record", str(tmp_path / target))
    assert done.returncode == 2, done.stderr
    assert f"RUNNER_AI_RECORD={tmp_path / target}: cannot open:" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failing_recording_fails_the_task_and_the_last_file_is_written(tmp_path):
    done = run(tmp_path, "--record", "/dev/full")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    record = json.loads((tmp_path / "out" / done.stdout.strip().rsplit("/", 1)[-1] / "last.json").read_bytes())
    error = record["task_results"]["ask"]["error"]
    assert "cassette /dev/full: cannot record the call: No space left on device" in error
