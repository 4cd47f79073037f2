"""resume: a result reused from an earlier run is recorded when the resume starts, before any
task runs, whatever happens later (a re-run dependency that now fails, SIGTERM, kill -9),
so no later resume repeats its command; replaying reused results takes no round of waits.
Real processes (`python -m runner`), real signals, real commands counted in log files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import wait_until
from runner.execution.journal import RunState, read_records
from test_durable_journal import ENABLED

ENV = {**os.environ, **ENABLED, "RUNNER_GRACE_SECONDS": "0.3"}


def cli(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=180, env={**ENV, **(env or {})})


def start(*argv, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**ENV, **(env or {})})


def append(task_id: str, log: Path, deps=(), extra: str = "") -> dict:
    """A command that appends its id to `log` (the side effect counted)."""
    return {"id": task_id, "description": task_id, "dependencies": list(deps), "parameters": {
        "task_type": "system_command", "command": ["sh", "-c", f"{extra}echo {task_id} >> {log}"]}}


def directory_of(completed: subprocess.CompletedProcess) -> Path:
    return Path(completed.stdout.strip().splitlines()[-1])


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_reused_command_is_not_repeated_when_its_re_run_dependency_now_fails(tmp_path):
    log, broken = tmp_path / "log", tmp_path / "broken"
    alt = {"id": "from", "title": "From", "tasks": [
        append("a", log, extra=f"test ! -f {broken} && "),
        append("x", log, ["a"]),
        append("y", log, ["x"])]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    first = cli("run", tmp_path / "alt.json", "--out", tmp_path / "out", "--quiet")
    assert first.returncode == 0, first.stderr
    assert lines(log) == ["a", "x", "y"]
    broken.touch()
    dry = cli("resume", directory_of(first), "--from", "a", "--dry-run")
    assert "reuse  x  (a completed system_command is not repeated without --force)" in dry.stdout.splitlines()
    again = cli("resume", directory_of(first), "--from", "a", "--quiet")
    assert again.returncode == 1, again.stderr          # a failed
    record = json.loads((directory_of(again) / "last.json").read_bytes())
    results = record["task_results"]
    assert results["a"]["status"] == "failed"
    # x and y completed in the first run: their commands' effects stand, recorded as reused.
    for task_id in ("x", "y"):
        assert results[task_id]["status"] == "completed", results[task_id]
        assert results[task_id]["metadata"]["reused_from"] == directory_of(first).name
    broken.unlink()
    last = cli("resume", directory_of(again), "--quiet")
    assert last.returncode == 0, last.stderr
    assert lines(log) == ["a", "x", "y", "a"]           # only a ran again, once


def test_the_skip_after_a_reused_task_names_the_dependency_that_failed(tmp_path):
    log, broken = tmp_path / "log", tmp_path / "broken"
    alt = {"id": "skip", "title": "Skip", "tasks": [
        append("a", log, extra=f"test ! -f {broken} && "),
        append("x", log, ["a"]),
        {"id": "new", "description": "n", "dependencies": ["x"], "parameters": {"task_type": "generic"}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    first = cli("run", tmp_path / "alt.json", "--out", tmp_path / "out", "--quiet")
    assert first.returncode == 0, first.stderr
    broken.touch()
    again = cli("resume", directory_of(first), "--from", "a", "--quiet")
    results = json.loads((directory_of(again) / "last.json").read_bytes())["task_results"]
    assert results["x"]["status"] == "completed"
    assert results["new"]["status"] == "cancelled" and results["new"]["skipped"] is True
    assert results["new"]["error"] == "dependency 'a' failed"


def gated(tmp_path: Path) -> str:
    """A shell prefix that records its process group and waits for the file `gate`."""
    return f"echo $$ >> {tmp_path / 'groups'}; while ! test -f {tmp_path / 'gate'}; do sleep 0.05; done; "


def kill(child: subprocess.Popen, tmp_path: Path) -> None:
    """kill -9 of a runner process, and of the gated commands it left running (kill -9 gives
    the runner no chance to stop them; the test stops them as a person would)."""
    child.kill()
    child.wait(30)
    for group in (tmp_path / "groups").read_text().split() if (tmp_path / "groups").exists() else ():
        try:
            os.killpg(int(group), signal.SIGKILL)
        except ProcessLookupError:
            pass


def resumable(tmp_path: Path, tasks: int) -> tuple[Path, Path, Path]:
    """A run of t0 (low priority) and t1 (critical, waits for a gate), then t2... in a chain
    after both: killed (SIGKILL) once t0 completed while t1 waits. A resume one task at a
    time runs t1 first, so the reused t0 waits behind it in the scheduler's queue.
    Returns (directory, log, gate)."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    chain = [{**append("t0", log), "priority": "low"},
             {**append("t1", log, extra=gated(tmp_path)), "priority": "critical"}]
    for i in range(2, tasks):
        chain.append(append(f"t{i}", log, ["t0", "t1"] if i == 2 else [f"t{i - 1}"]))
    (tmp_path / "alt.json").write_text(json.dumps({"id": "gate", "title": "Gate", "tasks": chain}))
    child = start("run", tmp_path / "alt.json", "--out", tmp_path / "out", "--quiet")
    try:
        assert wait_until(lambda: any((tmp_path / "out").glob("*/journal.jsonl")), 60)
        (directory,) = (tmp_path / "out").iterdir()
        assert wait_until(lambda: "t1" in RunState(directory).running and "t0" in RunState(directory).results, 60)
    finally:
        kill(child, tmp_path)
    return directory, log, gate


def resume_until_running(directory: Path, task_id: str, *extra) -> tuple[subprocess.Popen, Path]:
    """A resume of `directory`, one task at a time, once its journal says `task_id` runs."""
    before = set(directory.parent.iterdir())
    child = start("resume", directory, "--quiet", *extra, env={"RUNNER_MAX_CONCURRENT_TASKS": "1"})
    assert wait_until(lambda: any((d / "journal.jsonl").exists() for d in set(directory.parent.iterdir()) - before),
                      60), child.stderr.read() if child.poll() is not None else ""
    (new,) = set(directory.parent.iterdir()) - before
    assert wait_until(lambda: task_id in RunState(new).running, 60)
    return child, new


def test_a_resume_killed_before_its_reused_task_is_reached_keeps_it(tmp_path):
    directory, log, gate = resumable(tmp_path, 4)
    assert lines(log) == ["t0"]
    # The resume reuses t0 and runs t1 (stuck at the gate): reused results are in its journal
    # from its first line, whatever the scheduler had reached.
    child, second = resume_until_running(directory, "t1")
    records = read_records(second / "journal.jsonl")
    assert records[0]["type"] == "run_started"
    assert records[1]["type"] == "task_results"
    assert RunState(second).results["t0"]["metadata"]["reused_from"] == directory.name
    kill(child, tmp_path)
    gate.touch()
    done = cli("resume", second, "--quiet")
    assert done.returncode == 0, done.stderr
    assert sorted(lines(log)) == ["t0", "t1", "t2", "t3"]


def test_sigterm_of_a_resume_records_its_reused_results_as_reused(tmp_path):
    directory, log, gate = resumable(tmp_path, 3)
    child, second = resume_until_running(directory, "t1")
    child.send_signal(signal.SIGTERM)
    child.wait(60)
    record = json.loads((second / "last.json").read_bytes())
    assert record["task_results"]["t0"]["status"] == "completed"
    assert record["task_results"]["t0"]["metadata"]["reused_from"] == directory.name
    gate.touch()
    done = cli("resume", second, "--quiet")
    assert done.returncode == 0, done.stderr
    assert sorted(lines(log)) == ["t0", "t1", "t2"]


def test_a_reused_task_behind_a_re_run_one_is_recorded_before_it_is_reached(tmp_path):
    """x and z completed and are reused by `resume --from a`, but wait in the scheduler behind
    a, which runs again; a kill -9 while a runs must not lose them."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    gate.touch()
    alt = {"id": "behind", "title": "Behind", "tasks": [
        append("a", log, extra=gated(tmp_path)), append("x", log, ["a"]), append("z", log, ["x"])]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    first = cli("run", tmp_path / "alt.json", "--out", tmp_path / "out", "--quiet")
    assert first.returncode == 0, first.stderr
    gate.unlink()
    child, second = resume_until_running(directory_of(first), "a", "--from", "a")
    assert {k: r["status"] for k, r in RunState(second).results.items()} == {"x": "completed", "z": "completed"}
    kill(child, tmp_path)
    gate.touch()
    done = cli("resume", second, "--quiet")
    assert done.returncode == 0, done.stderr
    assert lines(log) == ["a", "x", "z", "a"]


def test_a_resume_with_nothing_to_run_replays_every_result_before_its_first_round(tmp_path):
    """A 300-task chain resumed with every result but the last reused: all are recorded in the
    journal's first lines, in one pass (a scheduling round per task, each with its wait, made this a
    minute)."""
    tasks = [{"id": "t0", "description": "d", "parameters": {"task_type": "generic"}}]
    tasks += [{"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"],
               "parameters": {"task_type": "generic"}} for i in range(1, 300)]
    (tmp_path / "alt.json").write_text(json.dumps({"id": "chain", "title": "C", "tasks": tasks}))
    first = cli("run", tmp_path / "alt.json", "--out", tmp_path / "out", "--quiet")
    assert first.returncode == 0, first.stderr
    # A finished run with nothing to redo is not resumed at all (it writes nothing): the last
    # task is forced, so the other 299 are replayed.
    again = cli("resume", directory_of(first), "--force", "t299", "--quiet")
    assert again.returncode == 0, again.stderr
    records = read_records(directory_of(again) / "journal.jsonl")
    assert [r["type"] for r in records[:2]] == ["run_started", "task_results"]
    assert records[-1]["type"] == "run_ended"
    assert len(records[1]["rows"]) == 299
    record = json.loads((directory_of(again) / "last.json").read_bytes())
    reused = {task_id for task_id, r in record["task_results"].items() if r["metadata"].get("reused_from")}
    assert reused == {f"t{i}" for i in range(299)}
