"""Unknown fields of ALT files, tasks and task results: warnings with a suggestion, errors when strict."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import dumps

# The newcomer's file of issue 13: four misspelt fields, each close to a real one.
MISSPELT = {"id": "uf", "title": "uf", "moed": "dream", "tasks": [
    {"id": "b", "description": "b"},
    {"id": "a", "description": "a", "depends_on": ["b"], "timeout": 5, "retries": 3}]}
EXPECTED = [
    "/moed: unknown field (did you mean 'mode'?)",
    "/tasks/1/depends_on: unknown field (did you mean 'dependencies'?)",
    "/tasks/1/timeout: unknown field (did you mean 'timeout_seconds'?)",
    "/tasks/1/retries: unknown field (did you mean 'retry_count'?)",
]
# As the command line prints them: an issue inside a task names the task.
DESCRIBED = [w.replace(": unknown", " (task 'a'): unknown", 1)
             if w.startswith("/tasks/1/") else w for w in EXPECTED]


def cli(*args, env=None, stdin=None):
    import os
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=environ, input=stdin, timeout=120)


def test_the_parser_keeps_unknown_fields_and_lists_them():
    from runner import parse_alt_file

    alt = parse_alt_file(dumps(MISSPELT))
    assert [str(w) for w in alt.warnings] == EXPECTED
    assert alt.extra == {"moed": "dream"} and alt.task("a").extra["depends_on"] == ["b"]
    assert alt.to_dict()["moed"] == "dream"            # still copied into the LAST file


def test_known_fields_give_no_warning(spec_alt):
    from runner import parse_alt_file

    assert parse_alt_file(dumps(spec_alt)).warnings == []


def test_suggestions_cover_tasks_parameters_written_on_the_task():
    from runner import parse_alt_file

    alt = parse_alt_file(dumps({"id": "p", "title": "p", "tasks": [
        {"id": "t", "prompt": "hello", "Dependencies": [], "zzz_producer_field": 1}]}))
    assert [str(w) for w in alt.warnings] == [
        "/tasks/0/prompt: unknown field (did you mean 'parameters.prompt'?)",
        "/tasks/0/Dependencies: unknown field (did you mean 'dependencies'?)",
        "/tasks/0/zzz_producer_field: unknown field"]


def test_validate_prints_warnings_and_strict_makes_them_errors(tmp_path):
    path = tmp_path / "uf.json"
    path.write_bytes(dumps(MISSPELT))
    loose = cli("validate", path)
    assert loose.returncode == 0, loose.stderr
    assert f"{path}: valid ALT file 'uf' (2 tasks, mode normal)" in loose.stdout
    assert [line.strip() for line in loose.stdout.splitlines()[1:]] == [f"warning: {w}" for w in DESCRIBED]
    for strict in (cli("validate", "--strict", path), cli("validate", path, env={"RUNNER_STRICT": "true"})):
        assert strict.returncode == 1
        assert strict.stdout.splitlines() == [f"{path}: invalid (4 errors)", *(f"  {w}" for w in DESCRIBED)]
    bad = cli("validate", path, env={"RUNNER_STRICT": "maybe"})
    assert bad.returncode == 2 and "RUNNER_STRICT='maybe': expected true or false" in bad.stderr


def test_validate_json_lists_errors_and_warnings(tmp_path):
    path = tmp_path / "uf.json"
    path.write_bytes(dumps(MISSPELT))
    verdict = json.loads(cli("validate", "--json", path).stdout)["files"][0]
    assert verdict["valid"] and verdict["tasks"] == 2 and verdict["errors"] == []
    assert [f"{w['path']}: {w['message']}" for w in verdict["warnings"]] == EXPECTED
    strict = json.loads(cli("validate", "--json", "--strict", path).stdout)
    assert strict["strict"] and not strict["files"][0]["valid"] and strict["files"][0]["error_total"] == 4


def test_run_warns_before_it_starts_and_strict_refuses(tmp_path):
    out = tmp_path / "out"
    done = cli("run", "-", "--out", out, "--quiet", stdin=json.dumps(MISSPELT))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [f"-: warning: {w}" for w in DESCRIBED]
    refused = cli("run", "-", "--out", out, "--strict", stdin=json.dumps(MISSPELT))
    assert refused.returncode == 2 and "-: invalid (4 errors)" in refused.stderr
    assert len(list(out.iterdir())) == 1          # nothing ran the second time


def test_a_c_host_reads_the_warnings(runner, monkeypatch):
    assert runner.runner_parse_alt_file(dumps(MISSPELT)) == 1
    warnings = json.loads(runner.take(runner.runner_get_warnings(b"uf")))
    assert [f"{w['path']}: {w['message']}" for w in warnings] == EXPECTED
    result = {"task_id": "b", "status": "completed", "cost_usd": 0.01}
    assert runner.runner_add_task_result(b"uf", dumps(result)) == 1
    warnings = json.loads(runner.take(runner.runner_get_warnings(b"uf")))
    assert warnings[-1] == {"path": "/task_results/b/cost_usd", "message": "unknown field"}
    # A later result for the task without the field replaces the warning too.
    assert runner.runner_add_task_result(b"uf", dumps({"task_id": "b", "status": "completed"})) == 1
    assert len(json.loads(runner.take(runner.runner_get_warnings(b"uf")))) == 4
    assert runner.runner_get_warnings(b"nope") is None
    assert "runner_get_warnings: unknown ALT file 'nope'" in runner.last_error()
    monkeypatch.setenv("RUNNER_STRICT", "true")
    assert runner.runner_add_task_result(b"uf", dumps(result)) == 0
    assert "/task_results/b/cost_usd: unknown field" in runner.last_error()
    assert runner.runner_parse_alt_file(dumps(MISSPELT)) == 0
    assert "runner_parse_alt_file: /moed: unknown field (did you mean 'mode'?) (4 errors in ALT file)" \
        in runner.last_error()


@pytest.mark.parametrize("key", ["x_producer", "depends_on"])
def test_many_unknown_fields_are_counted_but_capped(key):
    from runner import parse_alt_file

    tasks = [{"id": f"t{i}", key: 1} for i in range(500)]
    alt = parse_alt_file(dumps({"id": "many", "title": "m", "tasks": tasks}))
    assert alt.warning_total == 500 and len(alt.warnings) == 100
