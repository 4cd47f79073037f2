"""The journal starts before anything else: its first record (run_started) is on disk before
the first task starts, and before the cleaning of old runs in the output directory, which
goes on beside the run. Real processes; the first task itself looks for the record."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import wait_until
from runner.execution.journal import RunState
from test_durable_journal import ENABLED

ENV = {**os.environ, **ENABLED, "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,grep,sleep"}


def dead_runs(out: Path, count: int) -> list[Path]:
    """Directories as runs killed long ago leave them: a journal with its run_started record
    and a temporary file of a product they were writing."""
    made = []
    for _ in range(count):
        last_id = str(uuid.uuid4())
        directory = out / last_id
        directory.mkdir(parents=True)
        (directory / "journal.jsonl").write_text(json.dumps(
            {"type": "run_started", "last_id": last_id, "alt_id": "old", "pid": 0}) + "\n")
        (directory / ".last.json.abc.tmp").write_text("partial")
        made.append(directory)
    return made


def test_the_first_task_starts_after_the_journal_names_the_run_even_with_old_runs_to_clean(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    old = dead_runs(out, 400)
    check = (f'if grep -l \'"alt_id":"fresh"\' {out}/*/journal.jsonl >/dev/null 2>&1; '
             f'then echo journaled >> {log}; else echo not-journaled >> {log}; fi')
    alt = {"id": "fresh", "title": "Fresh", "tasks": [
        {"id": "look", "description": "l", "parameters": {"task_type": "system_command", "command": ["sh", "-c", check]}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    done = subprocess.run([sys.executable, "-m", "runner", "run", tmp_path / "alt.json", "--out", out, "--quiet"],
                          capture_output=True, text=True, timeout=180, env=ENV)
    assert done.returncode == 0, done.stderr
    assert log.read_text() == "journaled\n"
    # The cleaning still happened, beside the run, and was over when the command ended.
    assert not any((directory / ".last.json.abc.tmp").exists() for directory in old)


def test_kill_9_just_after_the_first_side_effect_leaves_a_journal_that_show_explains(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    dead_runs(out, 400)
    alt = {"id": "fresh", "title": "Fresh", "tasks": [
        {"id": "effect", "description": "e", "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"echo done >> {log}; sleep 30"]}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", tmp_path / "alt.json", "--out", out, "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        assert wait_until(lambda: log.exists(), 60)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    (directory,) = [d for d in out.iterdir() if RunState(d).start.get("alt_id") == "fresh"]
    shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                           capture_output=True, text=True, timeout=60, env=ENV)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "interrupted"
