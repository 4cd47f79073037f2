"""What a command imports: only what it uses (requests for HTTP providers, Jinja2 for
templates and the report, gRPC for kserve), checked on sys.modules of a real CLI process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Runs `python -m runner ARGS` and, at exit, writes the names of the loaded modules to a file.
PROBE = """
import atexit, json, runpy, sys
RECORD = sys.argv[1]
def _write_modules():
    with open(RECORD, "w") as stream:
        json.dump(sorted(sys.modules), stream)
atexit.register(_write_modules)
sys.argv = ["runner"] + sys.argv[2:]
runpy.run_module("runner", run_name="__main__", alter_sys=True)
"""
HTTP = {"requests", "urllib3"}
TEMPLATES = {"jinja2"}
GRPC = {"grpc"}
SERVER = {"starlette", "uvicorn", "sse_starlette", "prometheus_client", "anyio", "httptools", "uvloop"}


def loaded_modules(tmp_path, *args, environ=None, exit_codes=(0,), packages=True) -> set[str]:
    record = tmp_path / "modules.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNNER_")}
    env.update(environ or {})
    completed = subprocess.run([sys.executable, "-c", PROBE, str(record), *args], env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode in exit_codes, completed.stderr
    names = json.loads(record.read_text())
    return {name.split(".")[0] for name in names} if packages else set(names)


def one_task_file(tmp_path, prompt: str):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "one", "title": "one", "mode": "normal",
                                "tasks": [{"id": "hello", "description": "Say hello",
                                           "parameters": {"prompt": prompt}}]}))
    return path


def test_version_imports_neither_requests_nor_jinja2(tmp_path):
    modules = loaded_modules(tmp_path, "version")
    assert not modules & (HTTP | TEMPLATES | GRPC)


def test_validate_imports_neither_requests_nor_jinja2(tmp_path):
    modules = loaded_modules(tmp_path, "validate", str(one_task_file(tmp_path, "Say hello")), "--plan")
    assert not modules & (HTTP | TEMPLATES | GRPC)


def test_validate_loads_the_template_engine_only_to_check_a_template(tmp_path):
    # A prompt template is compiled by validation (a syntax error is reported before a run).
    modules = loaded_modules(tmp_path, "validate", str(one_task_file(tmp_path, "Say {{ task.id }}")))
    assert "jinja2" in modules
    assert not modules & (HTTP | GRPC)


def test_a_run_on_the_echo_provider_imports_no_http_library(tmp_path):
    modules = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say hello")),
                             "--out", str(tmp_path / "out"), "--quiet")
    assert not modules & (HTTP | GRPC)
    assert "jinja2" in modules          # report.html is a Jinja2 page
    assert (next((tmp_path / "out").iterdir()) / "report.html").is_file()


def test_a_run_imports_nothing_of_the_service(tmp_path):
    modules = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say hello")),
                             "--out", str(tmp_path / "out"), "--quiet")
    assert not modules & SERVER
    names = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say hello")),
                           "--out", str(tmp_path / "out2"), "--quiet", packages=False)
    assert not {name for name in names if name.startswith("runner.service")}


def test_a_plain_prompt_without_a_report_loads_no_template_engine(tmp_path):
    modules = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say hello")),
                             "--out", str(tmp_path / "out"), "--quiet", environ={"RUNNER_HTML_REPORT": "false"})
    assert not modules & (HTTP | TEMPLATES | GRPC)


def test_a_templated_prompt_loads_the_template_engine(tmp_path):
    modules = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say {{ task.id }}")),
                             "--out", str(tmp_path / "out"), "--quiet", environ={"RUNNER_HTML_REPORT": "false"})
    assert "jinja2" in modules
    assert not modules & (HTTP | GRPC)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_http_provider_loads_requests(tmp_path, provider):
    # Port 9 (discard) on the loopback: nothing listens, the call fails at once; the client
    # that made it still had to load requests.
    modules = loaded_modules(tmp_path, "run", str(one_task_file(tmp_path, "Say hello")),
                             "--out", str(tmp_path / "out"), "--quiet",
                             environ={"RUNNER_AI_SERVICE_URL": "http://127.0.0.1:9/v1", "RUNNER_AI_PROVIDER": provider,
                                      "RUNNER_HTML_REPORT": "false", "RUNNER_AI_CONNECT_TIMEOUT": "2"},
                             exit_codes=(1,))      # the task fails: nothing answers
    assert "requests" in modules
    assert not modules & GRPC


def test_a_command_sets_up_only_its_own_parser(tmp_path):
    modules = loaded_modules(tmp_path, "version", packages=False)
    assert {name for name in modules if name.startswith("runner.commands.")} == {"runner.commands.version"}


def test_the_usage_still_lists_every_command(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "runner", "bogus"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    for command in ("batch", "report", "run", "schema", "serve", "show", "validate", "version"):
        assert f"'{command}'" in completed.stderr
