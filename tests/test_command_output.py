"""A command's output is read on its attempt's own thread, until both pipes end: large and
interleaved output arrives whole, a child left in the command's group is killed when the
command exits, and a detached grandchild holding the pipes does not hold the task. The same
without pidfd_open (Linux before 5.3), where the reader asks whether the command exited."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from conftest import wait_until

from runner.execution import execute

ENVIRON = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": sys.executable}


@pytest.fixture(params=["pidfd", "no pidfd"])
def reader(request, monkeypatch):
    if request.param == "no pidfd":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    return request.param


def command(tmp_path, code: str, cap: int | None = None):
    environ = dict(ENVIRON, **({"RUNNER_COMMAND_OUTPUT_CAP_BYTES": str(cap)} if cap else {}))
    alt = {"id": "out", "title": "out", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "system_command", "command": [sys.executable, "-c", code]}}]}
    return execute(alt, write=False, workspace=tmp_path, environ=environ).results["t"]


def test_large_output_on_both_pipes_arrives_whole(tmp_path, reader):
    code = ("import sys\n"
            "for i in range(2000):\n"
            "    sys.stdout.write('o' * 99 + '\\n'); sys.stderr.write('e' * 49 + '\\n')\n")
    result = command(tmp_path, code)
    assert result.status == "completed"
    assert result.output["stdout"] == ("o" * 99 + "\n") * 2000
    assert result.output["stderr"] == ("e" * 49 + "\n") * 2000
    assert not result.output["stdout_truncated"] and not result.output["stderr_truncated"]


def test_output_beyond_the_cap_is_counted_not_kept(tmp_path, reader):
    result = command(tmp_path, "import sys; sys.stdout.write('x' * 300000)", cap=1000)
    assert result.output["stdout"] == "x" * 1000 and result.output["stdout_truncated"] is True


def test_a_child_left_in_the_group_holding_the_pipes_is_killed_when_the_command_exits(tmp_path, reader):
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    open('child.pid', 'w').write(str(os.getpid())); time.sleep(30); os._exit(0)\n"
            "while not os.path.exists('child.pid'): time.sleep(0.01)\n"
            "print('parent done')\n")
    result = command(tmp_path, code)
    assert result.status == "completed" and result.output["stdout"] == "parent done\n"
    child = int((tmp_path / "child.pid").read_text())
    assert wait_until(lambda: not _alive(child), 5)


def test_a_child_left_in_the_group_is_killed_as_soon_as_the_command_exits(tmp_path):
    """At the command's exit, not at some later look: a child that holds the pipes and acts
    30 ms after the command (a shell, out at once) exited never acts (with the process
    watched only once the command had run 50 ms, it acted 20 times in 20)."""
    alt = {"id": "out", "title": "out", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "system_command", "command": ["sh", "-c", "(sleep 0.03; touch acted) & echo early"]}}]}
    environ = dict(ENVIRON, RUNNER_SYSTEM_COMMAND_ALLOWLIST="sh")
    result = execute(alt, write=False, workspace=tmp_path, environ=environ).results["t"]
    assert result.status == "completed" and result.output["stdout"] == "early\n"
    time.sleep(0.3)
    assert not (tmp_path / "acted").exists()


def test_a_cancellation_after_the_commands_exit_signals_no_group(tmp_path, monkeypatch):
    """Once the command's leader is reaped its number is free for reuse: the attempt's
    deadline falling while a detached grandchild's output drains kills nothing (it sent
    SIGKILL to the old number's group, which an unrelated session may have taken)."""
    signalled = []
    real_killpg = os.killpg
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: (signalled.append(pgid), real_killpg(pgid, sig)))
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid(); open('grandchild.pid', 'w').write(str(os.getpid())); time.sleep(5); os._exit(0)\n"
            "while not os.path.exists('grandchild.pid'): time.sleep(0.01)\n")
    # The leader exits within the first second (its start); the drain lasts a second after
    # that: the deadline at 1 s falls in it.
    alt = {"id": "late", "title": "late", "tasks": [{"id": "t", "description": "t", "timeout_seconds": 1.0,
                                                      "parameters": {"task_type": "system_command",
                                                                     "command": [sys.executable, "-c", code]}}]}
    try:
        result = execute(alt, write=False, workspace=tmp_path, environ=ENVIRON).results["t"]
        assert result.status == "timeout", result.error      # the deadline fell during the drain
        # Once, at the leader's reap (whatever it left in its group); not again at the deadline.
        assert signalled.count(result.metadata["process"]["pid"]) == 1, signalled
    finally:
        pid_file = tmp_path / "grandchild.pid"
        if pid_file.exists() and pid_file.read_text():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_detached_grandchild_holding_the_pipes_does_not_hold_the_task(tmp_path, reader):
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid(); open('grandchild.pid', 'w').write(str(os.getpid())); time.sleep(30); os._exit(0)\n"
            "print('parent done')\n")
    before = set(threading.enumerate())
    try:
        result = command(tmp_path, code)
        assert result.status == "completed" and result.output["stdout"] == "parent done\n"
        assert wait_until(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()], 2)
    finally:
        pid_file = tmp_path / "grandchild.pid"
        if wait_until(pid_file.exists, 2) and pid_file.read_text():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
