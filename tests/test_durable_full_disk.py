"""Full disks: a journal or alt.json that cannot be written is said (stderr, the LAST file) and
the exit code tells what is on disk; a cassette line is whole or not at all, and a line cut
short by a crash is ignored on replay with a warning. The full disk is a real one: a small
tmpfs mounted in a user namespace (`unshare -rm`) for the command's life, its content copied
out for the test to read."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ai_server import AIServer
from runner.execution.journal import RunState

SMALL_DISK = """
mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97
disk="$2"; copy="$3"; fill="$4"; shift 4
if [ "$fill" = fill ]; then head -c 100000000 /dev/zero > "$disk/filler" 2>/dev/null; fi
"$@"
code=$?
cp -a "$disk/." "$copy/"
exit $code
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="needs unshare -rm (user and mount namespaces)")


def on_small_disk(tmp_path: Path, size: str, *argv, fill: bool = False, env=None) -> tuple[subprocess.CompletedProcess, Path]:
    """Runs argv with tmp_path/disk a tmpfs of `size` (full if fill); returns the outcome and
    tmp_path/copy, what the disk held at the end."""
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    copy.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", SMALL_DISK, "sh", size, str(disk), str(copy),
                           "fill" if fill else "-", *map(str, argv)],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})
    assert done.returncode != 97, done.stderr
    return done, copy


def generic(count: int, big: int = 0) -> dict:
    tasks = [{"id": f"t{i}", "description": "d", "parameters": {"task_type": "generic", "n": i}}
             for i in range(count)]
    if big:
        tasks.append({"id": "big", "description": "x" * big, "parameters": {"task_type": "generic"}})
    return {"id": "disk", "title": "Disk", "tasks": tasks}


def test_alt_json_that_does_not_fit_leaves_the_journal_whole_and_is_said(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(generic(40, big=200_000)))
    done, copy = on_small_disk(tmp_path, "96k", sys.executable, "-m", "runner", "run", path,
                               "--out", tmp_path / "disk" / "out", "--quiet")
    assert "alt.json cannot be written" in done.stderr, done.stderr
    (directory,) = (copy / "out").iterdir()
    state = RunState(directory)
    assert len(state.results) == 41 and state.start["alt_id"] == "disk"
    if (directory / "last.json").exists():
        assert done.returncode == 0, done.stderr
        record = json.loads((directory / "last.json").read_bytes())
        assert any("alt.json cannot be written" in w for w in record["execution"]["journal_warnings"])
    else:
        # The LAST file did not fit either: exit 4 says the results are in the journal, and they are.
        assert done.returncode == 4, done.stderr
    shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                           capture_output=True, text=True, timeout=60)
    assert "killed before" not in shown.stdout + shown.stderr


def test_a_full_disk_from_the_start_is_said_and_exit_5_says_nothing_is_kept(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(generic(40)))
    done, copy = on_small_disk(tmp_path, "64k", sys.executable, "-m", "runner", "run", path,
                               "--out", tmp_path / "disk" / "out", "--quiet", fill=True)
    assert "journal.jsonl cannot be written" in done.stderr, done.stderr
    assert done.returncode == 5, done.stderr
    assert "results are not on disk" in done.stderr
    # No journal under its name that would claim a run killed before its first record.
    assert not list((copy / "out").glob("*/journal.jsonl"))


def cassette_alt(big: int) -> dict:
    return {"id": "tape", "title": "Tape", "tasks": [
        {"id": "small", "description": "What is a cassette?"},
        {"id": "large", "description": "Repeat: " + "y" * big, "dependencies": ["small"]}]}


def test_a_cassette_line_that_does_not_fit_is_not_written_and_the_rest_replays(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(cassette_alt(120_000)))
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai"}
        done, copy = on_small_disk(tmp_path, "64k", sys.executable, "-m", "runner", "run", path,
                                   "--out", tmp_path / "out", "--quiet", "--record", tmp_path / "disk" / "calls.jsonl",
                                   env=env)
    assert done.returncode == 1, done.stderr            # "large" could not be recorded: its task failed
    cassette = copy / "calls.jsonl"
    data = cassette.read_bytes()
    assert data.endswith(b"\n") and len(data.splitlines()) == 1
    replay = subprocess.run([sys.executable, "-m", "runner", "run", path, "--out", tmp_path / "replayed", "--quiet",
                             "--replay", cassette], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert replay.returncode == 1, replay.stderr
    (directory,) = (tmp_path / "replayed").iterdir()
    results = json.loads((directory / "last.json").read_bytes())["task_results"]
    assert results["small"]["status"] == "completed"
    assert "no recorded" in results["large"]["error"] or "not recorded" in results["large"]["error"] \
        or "recording" in results["large"]["error"]


def test_a_cassette_whose_last_line_a_crash_cut_short_replays_the_rest_with_a_warning(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(cassette_alt(10)))
    cassette = tmp_path / "calls.jsonl"
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai"}
        recorded = subprocess.run([sys.executable, "-m", "runner", "run", path, "--out", tmp_path / "rec", "--quiet",
                                   "--record", cassette], capture_output=True, text=True, timeout=120,
                                  env={**os.environ, **env})
    assert recorded.returncode == 0, recorded.stderr
    whole = cassette.read_bytes()
    first, second = whole.splitlines(keepends=True)
    cassette.write_bytes(first + second[: len(second) // 2])       # as a crash in the middle of the write
    replay = subprocess.run([sys.executable, "-m", "runner", "run", path, "--out", tmp_path / "replayed", "--quiet",
                             "--replay", cassette], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert "line 2 is cut short" in replay.stderr, replay.stderr
    (directory,) = (tmp_path / "replayed").iterdir()
    results = json.loads((directory / "last.json").read_bytes())["task_results"]
    assert results["small"]["status"] == "completed"
    assert results["large"]["status"] == "failed"
    # Recording again into it removes the cut line first: every line is whole.
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai"}
        again = subprocess.run([sys.executable, "-m", "runner", "run", path, "--out", tmp_path / "rec2", "--quiet",
                                "--record", cassette], capture_output=True, text=True, timeout=120,
                               env={**os.environ, **env})
    assert again.returncode == 0, again.stderr
    assert all(json.loads(line) for line in cassette.read_bytes().splitlines())
