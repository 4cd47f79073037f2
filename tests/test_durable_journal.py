"""The run's journal: the LAST directory exists from the start, results reach the disk as
tasks end, SIGTERM and kill -9 leave a directory that `show` explains and the next run
cleans. Real processes (`python -m runner run`), real signals, real commands."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import runner
from conftest import wait_until
from runner.execution import execute
from runner.execution.journal import RunState, read_records

ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep,sh"}


def slow_alt(counter: Path | None = None) -> dict:
    """quick (generic), count (a command that appends to a counter file), slow (sleep 30), after."""
    tasks = [{"id": "quick", "description": "q", "parameters": {"task_type": "generic", "n": 1}}]
    if counter is not None:
        tasks.append({"id": "count", "description": "c", "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"echo ran >> {counter}"]}})
    tasks += [
        {"id": "slow", "description": "s", "dependencies": [t["id"] for t in tasks],
         "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
        {"id": "after", "description": "a", "dependencies": ["slow"], "parameters": {"task_type": "generic"}}]
    return {"id": "durable", "title": "Durable", "tasks": tasks}


def start_cli(tmp_path: Path, alt: dict, *extra, env_extra=None) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(alt))
    out = tmp_path / "out"
    env = {**os.environ, **ENABLED, "RUNNER_GRACE_SECONDS": "0.3", **(env_extra or {})}
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", str(path), "--out", str(out), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return child, out


def run_directory(out: Path) -> Path:
    # The journal, not only the directory: it is created just after the directory, and a
    # loaded machine can run the test between the two.
    assert wait_until(lambda: out.is_dir() and any(out.glob("*/journal.jsonl")), 30)
    (directory,) = [p for p in out.iterdir() if p.is_dir()]
    return directory


def journal_results(directory: Path) -> dict:
    return RunState(directory).results


def show_json(directory: Path) -> dict:
    shown = subprocess.run([sys.executable, "-m", "runner", "show", str(directory), "--json"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_a_finished_run_holds_its_journal_alt_and_last_file(tmp_path):
    alt = {"id": "j", "title": "J", "tasks": [
        {"id": "a", "description": "a", "parameters": {"task_type": "generic"}},
        {"id": "b", "description": "b", "dependencies": ["a"],
         "parameters": {"task_type": "data_processing", "input": [3, 1, 2], "operations": [{"op": "map", "fields": ["x"]}]}},
        {"id": "c", "description": "c", "dependencies": ["b"]}]}
    outcome = execute(alt, tmp_path, environ={})
    directory = outcome.directory
    assert (directory / "journal.jsonl").is_file() and (directory / "alt.json").is_file()
    assert json.loads((directory / "alt.json").read_bytes())["id"] == "j"
    records = read_records(directory / "journal.jsonl")
    assert records[0]["type"] == "run_started" and records[0]["last_id"] == outcome.last_id
    assert records[0]["alt_sha256"] and records[-1]["type"] == "run_ended"
    assert {"attempt_started", "attempt_ended", "task_results"} <= {r["type"] for r in records}
    record = json.loads((directory / "last.json").read_bytes())
    # The journal holds each result as reported, which the LAST file records exactly (in the
    # original runner's words: README, "LAST files and the original runner").
    parsed = runner.parse_alt_file(json.dumps(alt).encode())
    assert {task_id: runner.recorded_task_result(runner.task_result_from_dict(result, parsed),
                                                 record["execution_id"], record["start_time"])
            for task_id, result in journal_results(directory).items()} == record["task_results"]
    state = RunState(directory)
    assert state.state == "complete" and not state.live and not state.running
    assert not list(directory.glob(".*.tmp"))


def test_the_journal_never_holds_the_api_key(tmp_path):
    from ai_server import AIServer

    key = "sk-journal-secret-0123456789"
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai", "RUNNER_AI_API_KEY": key}
        outcome = execute({"id": "k", "title": "K", "tasks": [{"id": "ask", "description": "hello"}]},
                          tmp_path, environ=env)
    assert outcome.all_completed
    text = (outcome.directory / "journal.jsonl").read_text()
    assert key not in text and server.base_url.split("//")[1] not in text
    assert json.loads(text.splitlines()[0])["ai"] == {"provider": "openai", "model": "gpt-4o-mini"}


def test_a_running_run_shows_its_progress_and_sigterm_stops_it_like_ctrl_c(tmp_path):
    child, out = start_cli(tmp_path, slow_alt(), "--quiet")
    try:
        directory = run_directory(out)
        # Before the run ends: the quick task's result is already in the journal on disk.
        assert wait_until(lambda: "slow" in RunState(directory).running, 30)
        assert not (directory / "last.json").exists()
        assert journal_results(directory)["quick"]["status"] == "completed"
        shown = show_json(directory)
        assert shown["state"] == "running" and shown["done"] == 1 and shown["running"] == ["slow"]
        assert shown["pending"] == 1 and shown["total"] == 3
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 143, stderr
    assert Path(stdout.strip().splitlines()[-1]) == directory
    record = json.loads((directory / "last.json").read_bytes())
    assert record["execution"]["interrupted"] is True
    assert record["execution"]["interrupted_by"] == "SIGTERM"
    assert {k: v["status"] for k, v in record["task_results"].items()} == {
        "quick": "completed", "slow": "cancelled", "after": "cancelled"}
    assert read_records(directory / "journal.jsonl")[-1]["type"] == "run_ended"


def test_kill_9_leaves_a_journal_that_show_explains_and_the_next_run_cleans(tmp_path):
    child, out = start_cli(tmp_path, slow_alt(), "--quiet")
    try:
        directory = run_directory(out)
        assert wait_until(lambda: "slow" in RunState(directory).running, 30)
        workspace = Path(RunState(directory).start["workspace"])
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    names = {p.name for p in directory.iterdir()}
    assert names == {"journal.jsonl", "alt.json"}, names
    shown = show_json(directory)
    assert shown["state"] == "interrupted" and shown["done"] == 1 and shown["running"] == ["slow"]
    human = subprocess.run([sys.executable, "-m", "runner", "show", str(directory)],
                           capture_output=True, text=True, timeout=60)
    assert human.returncode == 0 and "interrupted" in human.stdout and "1 of 3 done" in human.stdout
    # What a dead run can leave half-written: temporary files beside its products and its
    # archive, artifacts begun. The next run in the same place removes them.
    (directory / ".last.json.x1y2.tmp").write_text("{")
    (directory / "artifacts" / "quick").mkdir(parents=True)
    (directory / "artifacts" / "quick" / "half.txt").write_text("h")
    (out / f".{directory.name}.zip.a1.tmp").write_bytes(b"PK")
    assert workspace.is_dir() and not any(workspace.iterdir())
    execute({"id": "next", "title": "N", "tasks": [{"id": "x", "description": "x"}]}, out, environ={})
    assert {p.name for p in directory.iterdir()} == {"journal.jsonl", "alt.json"}
    assert not list(out.glob(".*.tmp"))
    assert not workspace.exists()
    assert json.loads(subprocess.run([sys.executable, "-m", "runner", "show", str(directory), "--json"],
                                     capture_output=True, text=True).stdout)["state"] == "interrupted"


def test_a_failed_product_write_keeps_the_journal(tmp_path, monkeypatch):
    from runner import LastFileError
    from runner.last import directory as last_directory

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(last_directory, "write_atomically", broken)
    with pytest.raises(LastFileError):
        execute({"id": "f", "title": "F", "tasks": [{"id": "x", "description": "x"}]}, tmp_path, environ={})
    (directory,) = list(tmp_path.iterdir())
    assert {p.name for p in directory.iterdir()} == {"journal.jsonl", "alt.json"}
    assert RunState(directory).results["x"]["status"] == "completed"


def test_chaos_faults_and_ai_accounting_are_journaled(tmp_path):
    alt = {"id": "chaos", "title": "Chaos", "mode": "chaos", "tasks": [
        {"id": f"ask{i}", "description": f"question {i}", "retry_count": 2} for i in range(6)]}
    outcome = execute(alt, tmp_path, seed=7, environ={"RUNNER_CHAOS_FAULT_RATE": "0.5", "RUNNER_RETRY_BASE_SECONDS": "0.01"})
    records = read_records(outcome.directory / "journal.jsonl")
    assert records[0]["mode"] == "chaos" and records[0]["seed"] == 7
    faults = [{"task_id": r["task_id"], "attempt": r["attempt"], **{k: r["fault"][k] for k in ("kind", "detail")}}
              for r in records if r["type"] == "attempt_started" and r["fault"]]
    order = lambda f: (f["task_id"], f["attempt"])  # noqa: E731
    assert faults and sorted(faults, key=order) == sorted(outcome.facts["faults"], key=order)
    ended = [r for r in records if r["type"] == "attempt_ended"]
    accounted = [r["ai"] for r in ended if r["outcome"] == "completed"]
    assert len(accounted) == sum(1 for r in outcome.results.values() if r.status == "completed")
    assert all(a["provider"] == "echo" and a["prompt_tokens"] == 2 for a in accounted)
