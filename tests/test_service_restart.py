"""The service's promise across stops: kill -9 in the middle of a run whose tasks have side
effects, then a restart that finishes it under the same id without repeating them; queued
runs start after a restart; SIGTERM refuses new runs (503) and the next start resumes
what it interrupted."""
from __future__ import annotations

import json
import shutil
import time

import requests

from runner_service import RunnerService

SLEEP = shutil.which("sleep")
SH = shutil.which("sh")


def side_effects(marker, nap_seconds: int) -> dict:
    """A appends to a marker file (a command) and to a workspace file, then a long nap, then B
    does the same: after any stop, each letter must appear once."""
    def append(letter):
        return {"task_type": "system_command", "command": [SH, "-c", f"echo {letter} >> {marker}"]}
    return {"id": "effects", "title": "side effects", "mode": "normal", "tasks": [
        {"id": "a", "description": "A", "parameters": append("A")},
        {"id": "a_file", "description": "A in the workspace", "dependencies": ["a"],
         "parameters": {"task_type": "file_operation", "operation": "append", "path": "log.txt", "content": "A\n"}},
        {"id": "nap", "description": "nap", "dependencies": ["a_file"], "timeout_seconds": 600,
         "parameters": {"task_type": "system_command", "command": [SLEEP, str(nap_seconds)]}},
        {"id": "b", "description": "B", "dependencies": ["nap"], "parameters": append("B")},
        {"id": "b_file", "description": "B in the workspace", "dependencies": ["b"],
         "parameters": {"task_type": "file_operation", "operation": "append", "path": "log.txt", "content": "B\n"}},
    ]}


def environ(**extra) -> dict:
    return {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": f"{SLEEP},{SH}", **extra}


def wait_until_task_runs(service, run_id: str, task_id: str, timeout: float = 60.0) -> None:
    with service.http.get(f"{service.url}/api/v1/runs/{run_id}/events", stream=True, timeout=timeout) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event["event"] == "task_started" and event["task_id"] == task_id:
                    return
    raise AssertionError(f"task {task_id} never started")


def wait_until_journaled(service, run_id: str, task_id: str, timeout: float = 60.0) -> None:
    """Until the run's journal holds the task's result on disk (a line of task_results naming it)."""
    needle = json.dumps(task_id).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in (service.out / "runs" / run_id).glob("*/journal.jsonl"):
            for line in journal.read_bytes().splitlines():
                if b'"task_results"' in line and needle in line:
                    return
        time.sleep(0.02)
    raise AssertionError(f"the result of {task_id} never reached the journal")


def workspace_log(view) -> str:
    """log.txt as the final LAST directory's artifacts hold it."""
    from pathlib import Path
    found = sorted(Path(view["last_file_path"]).parent.glob("artifacts/**/log.txt"))
    return found[-1].read_text() if found else ""


def test_kill_9_mid_run_then_a_restart_finishes_it_without_repeating_side_effects(tmp_path):
    marker = tmp_path / "marker.txt"
    service = RunnerService(tmp_path / "out", environ=environ()).start()
    try:
        run_id = service.post("/api/v1/runs", data=json.dumps(side_effects(marker, 5))).json()["id"]
        wait_until_task_runs(service, run_id, "nap")
        wait_until_journaled(service, run_id, "a_file")
        service.kill()
        assert marker.read_text() == "A\n"
        restarted = RunnerService(tmp_path / "out", environ=environ()).start()
        service = restarted
        view = restarted.wait_for(run_id, timeout=120)
        assert view["status"] == "success", view
        assert view["id"] == run_id
        assert marker.read_text() == "A\nB\n"
        assert workspace_log(view) == "A\nB\n"
        last = restarted.get(f"/api/v1/runs/{run_id}/last").json()
        assert last["execution"]["resumed_from"]
        assert last["task_results"]["a"]["metadata"]["reused_from"] == last["execution"]["resumed_from"]
        # The events go on numbered after the ones seen before the kill.
        with restarted.http.get(f"{restarted.url}/api/v1/runs/{run_id}/events", stream=True, timeout=60) as stream:
            ids = [int(line[3:]) for line in stream.iter_lines(decode_unicode=True) if line.startswith("id:")]
        assert ids == list(range(1, len(ids) + 1))
    finally:
        service.stop()


def test_queued_runs_start_after_a_restart(tmp_path):
    service = RunnerService(tmp_path / "out", environ=environ(RUNNER_MAX_CONCURRENT_RUNS="1")).start()
    try:
        blocker = {"id": "blocker", "title": "b", "tasks": [
            {"id": "nap", "description": "nap", "timeout_seconds": 600,
             "parameters": {"task_type": "system_command", "command": [SLEEP, "3"]}}]}
        first = service.post("/api/v1/runs", data=json.dumps(blocker)).json()["id"]
        service.wait_for(first, ("running",))
        queued = [service.post("/api/v1/runs", data=json.dumps(
            {"id": f"q{n}", "title": "q", "tasks": [{"id": "t", "description": "Say hi"}]})).json()["id"]
            for n in range(3)]
        assert all(service.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued" for run_id in queued)
        service.kill()
        service = RunnerService(tmp_path / "out", environ=environ(RUNNER_MAX_CONCURRENT_RUNS="1")).start()
        for run_id in [first, *queued]:
            assert service.wait_for(run_id, timeout=120)["status"] == "success"
        listed = service.get("/api/v1/runs").json()["runs"]
        assert sorted(run["id"] for run in listed) == sorted([first, *queued])
    finally:
        service.stop()


def test_sigterm_refuses_new_runs_and_the_next_start_resumes_the_interrupted_one(tmp_path):
    marker = tmp_path / "marker.txt"
    settings = environ(RUNNER_GRACE_SECONDS="3")
    service = RunnerService(tmp_path / "out", environ=settings).start()
    try:
        run_id = service.post("/api/v1/runs", data=json.dumps(side_effects(marker, 6))).json()["id"]
        wait_until_task_runs(service, run_id, "nap")
        wait_until_journaled(service, run_id, "a_file")
        service.process.send_signal(15)
        refused = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and service.process.poll() is None:
            try:
                answer = requests.post(service.url + "/api/v1/runs", timeout=10, data=json.dumps(
                    {"id": "late", "title": "late", "tasks": [{"id": "t", "description": "Say hi"}]}))
            except requests.ConnectionError:
                break
            if answer.status_code == 503:
                refused = answer
                break
        assert refused is not None and "Retry-After" in refused.headers
        service.process.wait(60)
        assert marker.read_text() == "A\n"
        service._log.close()
        service = RunnerService(tmp_path / "out", environ=settings).start()
        view = service.wait_for(run_id, timeout=120)
        assert view["status"] == "success", view
        assert marker.read_text() == "A\nB\n"
        # The drained run kept its workspace: B was appended to the A the first part wrote
        # (it was removed at the drain, and the resume's log.txt held B alone).
        assert workspace_log(view) == "A\nB\n"
    finally:
        service.stop()
