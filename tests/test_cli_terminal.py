"""What a person sees on a terminal: a line for each task that failed, timed out or is
retried (above the bar, as a pipe shows them), and colour through runner.colour, which
honours NO_COLOR, FORCE_COLOR and --color. The CLI runs in a real pseudo-terminal."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest

GREEN, RED, YELLOW = "\x1b[32m", "\x1b[31m", "\x1b[33m"


def on_terminal(*args, env=None, cwd=None) -> tuple[int, str]:
    """Runs `python -m runner ARGS` with stderr (and stdout) on a pseudo-terminal; returns its
    exit code and everything drawn, read while it runs so a full buffer cannot block it."""
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("RUNNER_") and key not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update({"TERM": "xterm", "RUNNER_AI_PROVIDER": "echo", **(env or {})})
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "runner", *map(str, args)], stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, env=environ, cwd=cwd)
    os.close(follower)
    drawn = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:         # EIO: every writer has gone
                    break
                if not chunk:
                    break
                drawn += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=120)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return code, drawn.decode("utf-8", "replace")


def write(tmp_path, tasks, name="alt.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"id": "terminal", "title": "Terminal", "tasks": tasks}))
    return path


FAILING = [
    {"id": "fine", "description": "a question"},
    {"id": "broken", "description": "x", "parameters": {"prompt": "{{ task.nope }}"}},
]


def test_a_failed_task_is_named_with_its_error_on_a_terminal(tmp_path):
    code, drawn = on_terminal("run", write(tmp_path, FAILING), "--out", tmp_path / "out", "--color", "never")
    assert code == 1
    lines = [line.split("\r")[-1].replace("\x1b[2K", "") for line in drawn.splitlines()]
    assert any(line.endswith("broken failed: prompt template: 'dict object' has no attribute 'nope'")
               for line in lines), drawn
    assert not any(" fine completed" in line for line in lines)        # a success is only counted
    assert "\x1b[3" not in drawn                                         # --color never


def test_a_retried_and_timed_out_task_is_named_on_a_terminal(tmp_path):
    tasks = [{"id": "slow", "description": "x", "timeout_seconds": 0.2, "retry_count": 1,
              "parameters": {"task_type": "system_command", "command": ["sleep", "5"]}}]
    env = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep",
           "RUNNER_RETRY_BASE_SECONDS": "0.01"}
    code, drawn = on_terminal("run", write(tmp_path, tasks), "--out", tmp_path / "out", env=env)
    assert code == 1
    plain = drawn.replace(RED, "").replace(YELLOW, "").replace(GREEN, "").replace("\x1b[0m", "")
    assert "slow attempt 1 timeout: " in plain and "retrying in" in plain
    assert "slow timeout: " in plain
    assert f"{RED}timeout\x1b[0m" in drawn and f"{YELLOW}retrying in" in drawn


@pytest.mark.parametrize("env, options, coloured", [
    ({}, (), True),                                    # a terminal: colour
    ({"NO_COLOR": "1"}, (), False),
    ({"NO_COLOR": "1"}, ("--color", "always"), True),  # the command line wins
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, (), True),
    ({}, ("--color", "never"), False),
    ({"TERM": "dumb"}, (), False),
])
def test_colour_on_a_terminal_follows_no_color_force_color_and_the_option(tmp_path, env, options, coloured):
    code, drawn = on_terminal("run", write(tmp_path, FAILING), "--out", tmp_path / "out", *options, env=env)
    assert code == 1
    assert (f"{RED}failed" in drawn) == coloured, drawn
    assert (f"{YELLOW}Terminal: 1 of 2 tasks completed" in drawn) == coloured     # a partial success


def test_colour_reaches_a_pipe_only_when_forced(tmp_path):
    path = write(tmp_path, FAILING)
    environ = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    environ["RUNNER_AI_PROVIDER"] = "echo"
    piped = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=120, env=environ)
    assert "\x1b[" not in piped.stderr and "broken failed: prompt template" in piped.stderr
    forced = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, env={**environ, "FORCE_COLOR": "1"})
    assert f"broken {RED}failed\x1b[0m: prompt template" in forced.stderr
    assert "\x1b[" not in forced.stdout                 # the directory, for programs, stays plain


def test_validate_marks_its_verdicts_in_colour_on_a_terminal(tmp_path):
    good = write(tmp_path, [{"id": "a", "description": "x"}], "good.json")
    bad = write(tmp_path, [{"id": "a", "description": "x", "retry_count": -1}], "bad.json")
    code, drawn = on_terminal("validate", good, bad)
    assert code == 1
    assert f"{GREEN}valid" in drawn and f"{RED}invalid" in drawn
