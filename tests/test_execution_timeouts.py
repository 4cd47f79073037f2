"""Timeouts that really stop work, and interruption that still leaves a valid LAST file."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import wait_until
from runner.execution import execute

ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": f"sleep,{sys.executable}"}


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_30_second_command_with_a_1_second_timeout_is_killed_with_its_children(tmp_path):
    # The command starts a grandchild too: the whole process group must go.
    code = "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    tasks = [{"id": "slow", "description": "slow", "timeout_seconds": 1,
              "parameters": {"task_type": "system_command", "command": [sys.executable, "-c", code]}}]
    started = time.monotonic()
    outcome = execute({"id": "t", "title": "t", "tasks": tasks}, tmp_path, environ=ENABLED)
    elapsed = time.monotonic() - started
    result = outcome.results["slow"]
    assert result.status == "timeout" and "timed out after 1 s" in result.error
    assert elapsed < 10, f"the run took {elapsed:.1f} s for a 1 s timeout"
    assert 900 <= result.duration_ms < 10_000
    pgid = result.metadata["process"]["pid"]
    assert wait_until(lambda: not group_exists(pgid), 5), "the command's process group survived its timeout"


def test_a_timed_out_task_is_retried_and_each_attempt_recorded(tmp_path):
    tasks = [{"id": "slow", "description": "slow", "timeout_seconds": 0.3, "retry_count": 1,
              "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
             {"id": "after", "description": "after", "dependencies": ["slow"], "parameters": {"task_type": "generic"}}]
    env = {**ENABLED, "RUNNER_RETRY_BASE_SECONDS": "0.01"}
    outcome = execute({"id": "t", "title": "t", "tasks": tasks}, tmp_path, environ=env)
    slow = outcome.results["slow"]
    assert slow.status == "timeout"
    assert [a["outcome"] for a in slow.metadata["attempts"]] == ["timeout", "timeout"]
    assert outcome.results["after"].metadata["skipped_reason"] == "dependency 'slow' timed out"


class SlowAIServer:
    """An HTTP server on 127.0.0.1 that accepts a request and never answers; it records
    when the client closes the connection."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requested = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        connection, _ = self.listener.accept()
        with connection:
            connection.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            self.requested.set()
            try:
                while connection.recv(65536):      # b"" when the client closes
                    pass
            except OSError:
                pass
            self.closed.set()

    def stop(self):
        self.listener.close()


def test_a_slow_ai_call_times_out_and_its_connection_is_closed(tmp_path):
    server = SlowAIServer()
    env = {"RUNNER_AI_SERVICE_URL": f"http://127.0.0.1:{server.port}/v1", "RUNNER_AI_PROVIDER": "openai",
           "RUNNER_AI_READ_TIMEOUT": "60"}
    tasks = [{"id": "ask", "description": "take your time", "timeout_seconds": 1}]
    try:
        started = time.monotonic()
        outcome = execute({"id": "t", "title": "t", "tasks": tasks}, tmp_path, environ=env)
        elapsed = time.monotonic() - started
        result = outcome.results["ask"]
        assert server.requested.is_set()
        assert result.status == "timeout", result.error
        assert elapsed < 10
        assert server.closed.wait(5), "the HTTP connection stayed open after the timeout"
    finally:
        server.stop()


def test_interrupting_a_run_cancels_pending_tasks_and_writes_the_last_file(tmp_path):
    from runner.execution import cancel_active_runs

    tasks = [{"id": "quick", "description": "q", "parameters": {"task_type": "generic"}},
             {"id": "slow", "description": "s", "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
             {"id": "later", "description": "l", "dependencies": ["slow"], "parameters": {"task_type": "generic"}}]
    env = {**ENABLED, "RUNNER_GRACE_SECONDS": "0.2"}
    box = {}
    slow_started = threading.Event()

    def watch(event):
        if event["event"] == "task_started" and event["task_id"] == "slow":
            slow_started.set()

    thread = threading.Thread(target=lambda: box.setdefault(
        "outcome", execute({"id": "t", "title": "t", "tasks": tasks}, tmp_path, on_event=watch, environ=env)))
    thread.start()
    assert slow_started.wait(30)
    assert cancel_active_runs() == 1
    thread.join(10)
    outcome = box["outcome"]
    record = json.loads((outcome.directory / "last.json").read_bytes())
    statuses = {k: v["status"] for k, v in record["task_results"].items()}
    assert statuses == {"quick": "completed", "slow": "cancelled", "later": "cancelled"}
    assert record["execution"]["interrupted"] is True
    pgid = outcome.results["slow"].metadata["process"]["pid"]
    assert wait_until(lambda: not group_exists(pgid), 5)


def start_run_until_started(tmp_path, alt: dict, task_id: str) -> subprocess.Popen:
    """`python -m runner run` on alt, returned once task_id has started."""
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(alt))
    env = {**os.environ, **ENABLED, "RUNNER_GRACE_SECONDS": "0.3"}
    # A shell starts background jobs with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN: give the child the default disposition a terminal's Ctrl-C would meet.
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in child.stderr:
        if f"{task_id} started" in line:
            break
    return child


def test_ctrl_c_on_the_cli_still_leaves_a_valid_last_file(tmp_path):
    alt = {"id": "ctrl_c", "title": "Ctrl-C", "tasks": [
        {"id": "quick", "description": "q", "parameters": {"task_type": "generic"}},
        {"id": "slow", "description": "s", "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
        {"id": "after", "description": "a", "dependencies": ["slow"], "parameters": {"task_type": "generic"}}]}
    child = start_run_until_started(tmp_path, alt, "slow")
    try:
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=20)
    finally:
        child.kill()
    assert child.returncode == 130, stderr
    directory = Path(stdout.strip().splitlines()[-1])
    record = json.loads((directory / "last.json").read_bytes())
    assert record["task_results"]["quick"]["status"] == "completed"
    assert record["task_results"]["slow"]["status"] == "cancelled"
    assert record["task_results"]["after"]["status"] == "cancelled"
    assert record["execution"]["interrupted"] is True


def test_ctrl_c_caught_by_a_worker_thread_still_stops_the_run(tmp_path):
    """Linux may hand a process's SIGINT to any thread; the run must still stop promptly.

    tgkill sends it to a worker thread on purpose: Python runs signal handlers only in the
    main thread, which must therefore never sleep until the next deadline (300 s here)."""
    alt = {"id": "ctrl_c_worker", "title": "Ctrl-C", "tasks": [
        {"id": "slow", "description": "s", "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}}]}
    child = start_run_until_started(tmp_path, alt, "slow")
    try:
        workers = sorted(int(tid) for tid in os.listdir(f"/proc/{child.pid}/task") if int(tid) != child.pid)
        assert workers, "the run has no worker thread"
        libc = ctypes.CDLL(None, use_errno=True)
        SYS_tgkill = 234  # x86-64
        assert libc.syscall(SYS_tgkill, child.pid, workers[0], signal.SIGINT) == 0
        stdout, stderr = child.communicate(timeout=20)
    finally:
        child.kill()
    assert child.returncode == 130, stderr
    record = json.loads((Path(stdout.strip().splitlines()[-1]) / "last.json").read_bytes())
    assert record["task_results"]["slow"]["status"] == "cancelled"
