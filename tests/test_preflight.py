"""Check before spending: the output directory, the AI configuration and commands are checked
before the first task; a failure is one message and exit 2, nothing runs, no AI call is made."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ai_server import AIServer
from conftest import dumps

ONE_AI_TASK = {"id": "one", "title": "one", "tasks": [{"id": "ask", "description": "hello"}]}


def run_cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "runner", "run", *map(str, args)], capture_output=True, text=True,
                          env=environ, timeout=120)


def write(tmp_path, doc, name="alt.json"):
    path = tmp_path / name
    path.write_bytes(dumps(doc))
    return path


def test_an_output_file_instead_of_a_directory_stops_the_run_before_any_ai_call(tmp_path):
    not_a_directory = tmp_path / "some_file"
    not_a_directory.write_text("x")
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai"}
        done = run_cli(write(tmp_path, ONE_AI_TASK), "--out", not_a_directory, env=env)
        assert server.seen == []                       # no request reached the AI service
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"{tmp_path / 'alt.json'}: cannot start the run: output directory '{not_a_directory}' is not a directory"]
    assert done.stdout == "" and not_a_directory.read_text() == "x"


@pytest.mark.parametrize("variables, message", [
    ({"RUNNER_AI_SERVICE_URL": "localhost:8000/v1"}, "AI configuration: RUNNER_AI_SERVICE_URL: expected an http://"),
    ({"RUNNER_AI_SERVICE_URL": "http://127.0.0.1:port/v1"}, "AI configuration: RUNNER_AI_SERVICE_URL: Port"),
    ({"RUNNER_AI_SERVICE_URL": "http://127.0.0.1:1/v1", "RUNNER_AI_PROVIDER": "gemini"},
     "AI configuration: RUNNER_AI_PROVIDER='gemini'"),
    ({"RUNNER_AI_SERVICE_URL": "http://127.0.0.1:1/v1", "RUNNER_AI_API_KEY": "sk-abc def"},
     "AI configuration: RUNNER_AI_API_KEY contains a blank at position 7"),
])
def test_a_malformed_ai_configuration_is_one_message_up_front(tmp_path, variables, message):
    tasks = [{"id": f"t{i}", "description": "hello"} for i in range(5)]
    done = run_cli(write(tmp_path, {"id": "five", "title": "f", "tasks": tasks}), "--out", tmp_path / "out",
                   env=variables)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "sk-abc" not in done.stderr                          # never the key itself
    assert not (tmp_path / "out").exists()


def test_system_command_tasks_need_commands_enabled_and_allowed(tmp_path):
    doc = {"id": "cmd", "title": "c", "tasks": [
        {"id": "hello", "parameters": {"task_type": "system_command", "command": ["echo", "hi"]}},
        {"id": "list", "parameters": {"task_type": "system_command", "command": ["ls"]}}]}
    path = write(tmp_path, doc)
    disabled = run_cli(path, "--out", tmp_path / "out")
    assert disabled.returncode == 2
    assert "the file has 2 system_command tasks (hello, list) but system commands are disabled" in disabled.stderr
    refused = run_cli(path, "--out", tmp_path / "out",
                      env={"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "echo"})
    assert refused.returncode == 2
    assert "task 'list': executable 'ls' is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST (echo)" in refused.stderr
    assert not (tmp_path / "out").exists()           # nothing created, nothing run
    allowed = run_cli(path, "--out", tmp_path / "out", "--quiet",
                      env={"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "echo,ls"})
    assert allowed.returncode == 0, allowed.stderr


def test_a_file_without_ai_tasks_is_not_held_to_the_ai_configuration(tmp_path):
    doc = {"id": "g", "title": "g", "tasks": [{"id": "g", "parameters": {"task_type": "generic"}}]}
    done = run_cli(write(tmp_path, doc), "--out", tmp_path / "out", "--quiet",
                   env={"RUNNER_AI_SERVICE_URL": "not a url"})
    assert done.returncode == 0, done.stderr


def test_a_last_file_that_cannot_be_written_at_the_end_exits_4(tmp_path):
    """The output directory was fine before the run; a task replaces it with a file."""
    out = tmp_path / "out"
    doc = {"id": "late", "title": "late", "tasks": [
        {"id": "break_out", "parameters": {"task_type": "system_command",
                                           "command": ["sh", "-c", f"rm -rf '{out}' && : > '{out}'"]}}]}
    done = run_cli(write(tmp_path, doc), "--out", out, "--quiet",
                   env={"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh"})
    assert done.returncode == 4, done.stderr
    assert "run failed: cannot write the LAST file of 'late'" in done.stderr


def test_a_c_host_gets_the_preflight_error_and_no_ai_call(runner, tmp_path, monkeypatch):
    not_a_directory = tmp_path / "some_file"
    not_a_directory.write_text("x")
    with AIServer() as server:
        monkeypatch.setenv("RUNNER_AI_SERVICE_URL", server.base_url)
        monkeypatch.setenv("RUNNER_AI_PROVIDER", "openai")
        assert runner.runner_parse_alt_file(dumps(ONE_AI_TASK)) == 1
        assert runner.runner_execute_alt_file(b"one", str(not_a_directory).encode()) is None
        assert server.seen == []
    assert runner.last_error() == (f"runner_execute_alt_file: cannot start the run: output directory "
                                   f"'{not_a_directory}' is not a directory")


def test_other_checks_can_be_added_to_the_preflight(tmp_path, monkeypatch):
    """CHECKS is the place for more (an inference server's readiness, a client warm-up)."""
    from runner import PreflightError, parse_alt_file
    from runner.execution import preflight

    monkeypatch.setattr(preflight, "CHECKS", [*preflight.CHECKS, lambda p: [f"model not ready for {p.alt.id}"]])
    with pytest.raises(PreflightError, match="cannot start the run: model not ready for one"):
        preflight.check(parse_alt_file(json.dumps(ONE_AI_TASK)), tmp_path / "out", {})
