"""A resume never runs again a command that completed (review 29): not past a journal line
that was damaged, not when the journal's disk refused a write, not when the run was already
resumed. Real runs of real commands, each appending its id to a log in the test's folder;
an interrupted run is made by removing the LAST file, as a kill -9 leaves it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner.execution import execute
from runner.execution.journal import RunState
from test_durable_journal import ENABLED

ENV = {**os.environ, **ENABLED}


def chain(log: Path, count: int) -> dict:
    """count commands, each after the one before, each appending its id to `log`."""
    return {"id": "chain", "title": "Chain", "tasks": [
        {"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"] if i else [],
         "parameters": {"task_type": "system_command", "command": ["sh", "-c", f"echo t{i} >> {log}"]}}
        for i in range(count)]}


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def cli(*argv, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env=env)


def interrupted_run(tmp_path: Path, count: int = 4) -> tuple[Path, Path]:
    """A finished chain whose LAST file is removed: to a resume, a run killed at its end."""
    log = tmp_path / "log"
    first = execute(chain(log, count), tmp_path / "out", environ=ENV)
    assert first.all_completed and ran(log) == [f"t{i}" for i in range(count)]
    (first.directory / "last.json").unlink()
    return first.directory, log


def test_a_damaged_line_in_the_middle_of_the_journal_is_refused_naming_it_and_nothing_runs(tmp_path):
    directory, log = interrupted_run(tmp_path)
    journal = directory / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    number = next(n for n, line in enumerate(lines, 1) if b'"t1"' in line and b"task_results" in line)
    lines[number - 1] = lines[number - 1].replace(b'"t1"', b'"t1\xff', 1)
    journal.write_bytes(b"\n".join(lines))
    for argv in (("resume", directory, "--dry-run"), ("resume", directory), ("show", directory)):
        answer = cli(*argv)
        assert answer.returncode == 2, (argv, answer.stdout, answer.stderr)
        assert f"line {number} is damaged" in answer.stderr and "Traceback" not in answer.stderr, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]
    # A line that is JSON but not an object is damaged too.
    lines[number - 1] = b"[1, 2]"
    journal.write_bytes(b"\n".join(lines))
    answer = cli("resume", directory)
    assert answer.returncode == 2 and f"line {number} is damaged" in answer.stderr, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]


def test_a_last_line_cut_short_is_left_out_and_cut_off_before_the_resume_is_recorded(tmp_path):
    directory, log = interrupted_run(tmp_path)
    journal = directory / "journal.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"type": "task_results", "fie')       # a write cut short
    answer = cli("resume", directory, "--quiet")
    assert answer.returncode == 0, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]
    # The resume's record follows the whole lines, not glued to the cut one: show names it.
    after = journal.read_bytes()
    assert after.startswith(whole) and after.count(b"\n") == whole.count(b"\n") + 1
    (resume,) = RunState(directory).resumed_by
    assert Path(resume["directory"]).is_dir()
