"""`python -m runner run`: exit codes, the LAST directory as the last line, progress output."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from runner.execution.progress import ProgressDisplay


def cli(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "runner", "run", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def write(tmp_path, doc) -> Path:
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(doc))
    return path


def test_all_completed_exits_0_and_prints_the_last_directory_last(tmp_path):
    path = write(tmp_path, {"id": "ok", "title": "ok", "tasks": [
        {"id": "a", "description": "hello", "parameters": {"task_type": "generic"}},
        {"id": "b", "description": "Hi {{ deps.a.output.task_type }}", "dependencies": ["a"]}]})
    done = cli(path, "--out", tmp_path / "out", "--max-concurrency", "2")
    assert done.returncode == 0, done.stderr
    directory = Path(done.stdout.strip().splitlines()[-1])
    assert directory.parent == tmp_path / "out"
    record = json.loads((directory / "last.json").read_text())
    assert record["task_results"]["b"]["output"]["text"] == "echo: Hi generic"
    assert "[2/2]" in done.stderr          # plain progress lines: stderr is not a terminal


def test_a_task_not_completed_exits_1(tmp_path):
    path = write(tmp_path, {"id": "bad", "title": "bad", "tasks": [
        {"id": "sum", "description": "x", "parameters": {"task_type": "data_processing", "input": ["a"],
                                                          "operations": [{"op": "reduce", "function": "sum"}]}}]})
    done = cli(path, "--out", tmp_path / "out")
    assert done.returncode == 1
    assert "sum failed: operations[0] (reduce): sum needs numbers" in done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]).is_dir()


def test_invalid_input_exits_2(tmp_path):
    path = write(tmp_path, {"id": "cyc", "title": "c", "tasks": [
        {"id": "a", "description": "x", "dependencies": ["b"]}, {"id": "b", "description": "y", "dependencies": ["a"]}]})
    done = cli(path, "--out", tmp_path / "out")
    assert done.returncode == 2 and "invalid" in done.stderr and not (tmp_path / "out").exists()
    assert cli(tmp_path / "missing.json").returncode == 2
    assert cli(path, "--max-concurrency", "0").returncode == 2
    bad_env = cli(write(tmp_path, {"id": "g", "title": "g", "tasks": [{"id": "a", "description": "x"}]}), env={"RUNNER_DEFAULT_TIMEOUT_SECONDS": "-1"})
    assert bad_env.returncode == 2 and "RUNNER_DEFAULT_TIMEOUT_SECONDS" in bad_env.stderr


def test_chaos_seed_and_mode_options_are_recorded(tmp_path):
    path = write(tmp_path, {"id": "c", "title": "c", "tasks": [
        {"id": f"t{i}", "description": "x", "parameters": {"task_type": "generic"}} for i in range(5)]})
    done = cli(path, "--out", tmp_path / "out", "--mode", "chaos", "--seed", "7", env={"RUNNER_CHAOS_FAULT_RATE": "0"})
    assert done.returncode == 0, done.stderr
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    assert record["execution"]["mode"] == "chaos" and record["execution"]["seed"] == 7
    assert record["execution"]["faults"] == []


def test_the_progress_bar_shows_done_running_failed_elapsed_and_eta():
    stream = io.StringIO()
    display = ProgressDisplay(stream, terminal=True)
    event = {"event": "task_finished", "task_id": "a", "status": "completed", "total": 4, "done": 2, "running": 1,
             "failed": 1, "skipped": 0, "counts": {}, "elapsed_s": 10.0}
    display(event)
    display({**event, "event": "run_finished", "done": 4})
    display.close()
    text = stream.getvalue()
    assert "2/4 done, 1 running, 1 failed, 0:10 elapsed, ETA 0:10" in text
    assert "\r" in text and text.endswith("\n")


def test_on_a_terminal_the_cli_draws_a_progress_bar(tmp_path):
    import os
    import pty

    path = write(tmp_path, {"id": "tty", "title": "tty", "tasks": [
        {"id": f"t{i}", "description": f"question {i}"} for i in range(3)]})
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out")],
                              stdout=subprocess.PIPE, stderr=follower, text=True, timeout=120)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    text = drawn.decode()
    assert "\r" in text and "3/3 done, 0 running, 0 failed" in text and "ETA" in text
