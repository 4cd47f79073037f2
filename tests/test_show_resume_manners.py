"""show and resume as a person meets them after an interruption: the command to type, the
old directory pointing at the run that finished it, one word for an attempt cut short, and
a finished run that is left alone. Real runs killed with SIGKILL."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

from conftest import wait_until
from runner.execution.journal import RunState
from test_durable_journal import ENABLED, run_directory, start_cli


def cli(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **ENABLED, **(env or {})})


def killed_run(tmp_path) -> tuple[Path, Path]:
    """A run killed while its task 'nap' runs; (its directory, the file that lets nap end)."""
    release = tmp_path / "release"
    alt = {"id": "killed", "title": "Killed", "tasks": [
        {"id": "first", "description": "f", "parameters": {"task_type": "generic"}},
        {"id": "nap", "description": "n", "dependencies": ["first"], "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"test -f {release} || sleep 30"]}},
        {"id": "after", "description": "a", "dependencies": ["nap"], "parameters": {"task_type": "generic"}}]}
    child, out = start_cli(tmp_path, alt, "--quiet")
    try:
        directory = run_directory(out)
        assert wait_until(lambda: "nap" in RunState(directory).running, 30)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    return directory, release


def test_show_and_resume_agree_on_an_interrupted_attempt_and_name_the_command(tmp_path):
    directory, release = killed_run(tmp_path)
    shown = cli("show", directory)
    assert shown.returncode == 0, shown.stderr
    assert f"python -m runner resume {directory} finishes it" in shown.stdout
    assert "runner resume`" not in shown.stdout
    assert "  interrupted nap: attempt 1 started, never finished" in shown.stdout
    assert "running        nap" not in shown.stdout
    dry = cli("resume", directory, "--dry-run")
    assert "run    nap  (interrupted: attempt 1 started, never finished)" in dry.stdout.splitlines()
    assert "run    after  (never started)" in dry.stdout.splitlines()


def test_the_old_directory_points_at_the_run_that_resumed_it(tmp_path):
    directory, release = killed_run(tmp_path)
    release.touch()
    resumed = cli("resume", directory, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    new = Path(resumed.stdout.strip().splitlines()[-1])
    shown = cli("show", directory)
    assert f"resumed by {new.name}: python -m runner show {new}" in shown.stdout
    assert "finishes it" not in shown.stdout
    summary = json.loads(cli("show", directory, "--json").stdout)
    assert [r["last_id"] for r in summary["resumed_by"]] == [new.name]
    assert summary["resumed_by"][0]["directory"] == str(new)
    # The record is one more line of the old journal; nothing else is added to the directory.
    assert {p.name for p in directory.iterdir()} == {"journal.jsonl", "alt.json"}


def test_resuming_a_finished_run_does_nothing_unless_forced(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps({"id": "done", "title": "Done", "tasks": [
        {"id": "a", "description": "a", "parameters": {"task_type": "generic"}}]}))
    ran = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert ran.returncode == 0
    directory = Path(ran.stdout.strip().splitlines()[-1])
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    journal = (directory / "journal.jsonl").read_bytes()
    again = cli("resume", directory)
    assert again.returncode == 0
    assert again.stdout == ""
    assert "nothing to do" in again.stderr and "--force" in again.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    assert (directory / "journal.jsonl").read_bytes() == journal
    forced = cli("resume", directory, "--force", "a", "--quiet")
    assert forced.returncode == 0, forced.stderr
    assert len(list((tmp_path / "out").iterdir())) == len(before) + 1
    # The finished run's `show` now points at the forced one.
    forced_run = Path(forced.stdout.strip())
    assert re.search(rf"^resumed by +{forced_run.name}: python -m runner show {re.escape(str(forced_run))}$",
                     cli("show", directory).stdout, re.M)


def test_the_journal_follows_the_umask_like_every_other_file(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps({"id": "mask", "title": "Mask", "tasks": [
        {"id": "a", "description": "a", "parameters": {"task_type": "generic"}}]}))
    ran = subprocess.run(["sh", "-c", f"umask 022 && exec {sys.executable} -m runner run {path} "
                                      f"--out {tmp_path / 'out'} --quiet"], capture_output=True, text=True, timeout=120)
    directory = Path(ran.stdout.strip().splitlines()[-1])
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir() if p.is_file()}
    assert modes["journal.jsonl"] == modes["last.json"] == 0o644, modes
