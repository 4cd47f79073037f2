"""The task types: data_processing, file_operation, system_command, templates, generic."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from runner.errors import ConfigurationError
from runner.execution import execute

ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": f"echo,{sys.executable}"}


def run_one(tmp_path, parameters, description="t", environ=None, deps=(), workspace=None):
    tasks = [*deps, {"id": "t", "description": description, "dependencies": [d["id"] for d in deps],
                     "parameters": parameters}]
    outcome = execute({"id": "types", "title": "types", "tasks": tasks}, tmp_path / "out",
                      workspace=workspace or tmp_path / "ws", environ=environ or {})
    return outcome.results["t"]


PEOPLE = [{"name": "ann", "age": 41, "team": "a"}, {"name": "bob", "age": 25, "team": "b"},
          {"name": "cid", "age": 33, "team": "a"}, {"name": "dee", "team": "b"}]


@pytest.mark.parametrize("operations, expected", [
    ([{"op": "filter", "field": "age", "cmp": "gt", "value": 30}, {"op": "map", "fields": ["name"]}],
     [{"name": "ann"}, {"name": "cid"}]),
    ([{"op": "map", "fields": ["name", "age"], "rename": {"name": "who"}}, {"op": "filter", "field": "age", "cmp": "exists"},
      {"op": "sort", "by": "age"}],
     [{"who": "bob", "age": 25}, {"who": "cid", "age": 33}, {"who": "ann", "age": 41}]),
    ([{"op": "sort", "by": "age", "descending": True}, {"op": "map", "fields": ["name"]}],
     [{"name": "ann"}, {"name": "cid"}, {"name": "bob"}, {"name": "dee"}]),
    ([{"op": "reduce", "function": "sum", "field": "age"}], 99),
    ([{"op": "reduce", "function": "mean", "field": "age"}], 33),
    ([{"op": "reduce", "function": "max", "field": "age"}], 41),
    ([{"op": "reduce", "function": "count"}], 4),
    ([{"op": "reduce", "function": "concat", "field": "name", "separator": ","}], "ann,bob,cid,dee"),
    ([{"op": "group_by", "by": "team", "aggregate": {"function": "count"}}],
     [{"key": "a", "value": 2}, {"key": "b", "value": 2}]),
    ([{"op": "group_by", "by": "team", "aggregate": {"function": "min", "field": "age"}}],
     [{"key": "a", "value": 33}, {"key": "b", "value": 25}]),
])
def test_data_processing_operations(tmp_path, operations, expected):
    result = run_one(tmp_path, {"task_type": "data_processing", "input": PEOPLE, "operations": operations})
    assert result.status == "completed", result.error
    assert result.output["result"] == expected


def test_data_processing_reads_a_dependency_output(tmp_path):
    source = {"id": "src", "description": "s", "parameters": {"task_type": "generic", "rows": PEOPLE}}
    result = run_one(tmp_path, {"task_type": "data_processing", "input_from": "src", "input_path": "rows",
                                "operations": [{"op": "group_by", "by": "team"}]}, deps=[source])
    assert [g["key"] for g in result.output["result"]] == ["a", "b"]
    assert result.output["result"][0]["items"] == [PEOPLE[0], PEOPLE[2]]


@pytest.mark.parametrize("operations, message", [
    ([{"op": "reduce", "function": "sum", "field": "name"}], "operations[0] (reduce): sum needs numbers"),
    ([{"op": "reduce", "function": "mean", "field": "team"}], "operations[0] (reduce): mean needs numbers"),
])
def test_data_processing_errors_name_the_operation(tmp_path, operations, message):
    result = run_one(tmp_path, {"task_type": "data_processing", "input": PEOPLE, "operations": operations})
    assert result.status == "failed" and message in result.error


def validation_errors(parameters, dependencies=()) -> list[str]:
    """The errors parse_alt_file reports for one task with these parameters."""
    import orjson
    from runner import AltValidationError, parse_alt_file

    tasks = [*({"id": d, "description": d} for d in dependencies),
             {"id": "t", "description": "t", "dependencies": list(dependencies), "parameters": parameters}]
    with pytest.raises(AltValidationError) as caught:
        parse_alt_file(orjson.dumps({"id": "types", "title": "types", "tasks": tasks}))
    return [str(issue) for issue in caught.value.issues]


# Mistakes visible in the file itself are refused when it is validated: nothing runs.
@pytest.mark.parametrize("parameters, message", [
    ({"task_type": "data_processing", "input": PEOPLE,
      "operations": [{"op": "filter", "field": "age", "cmp": "like", "value": 1}]},
     "/tasks/0/parameters/operations/0/cmp: unknown cmp 'like'"),
    ({"task_type": "data_processing", "input": PEOPLE, "operations": [{"op": "sort"}]},
     "/tasks/0/parameters/operations/0/by: 'by' must be a field name"),
    ({"task_type": "data_processing", "input": PEOPLE, "operations": []}, "/tasks/0/parameters/operations: "
                                                                          "data_processing needs parameters.operations, a non-empty list"),
    ({"task_type": "data_processing", "input": PEOPLE, "operations": [{"op": "fliter", "field": "a"}]},
     "unknown op 'fliter' (did you mean 'filter'?)"),
    ({"task_type": "file_operation", "operation": "read", "path": "../secret"}, "contains '..'"),
    ({"task_type": "file_operation", "operation": "write", "path": "a/../../escape"}, "contains '..'"),
    ({"task_type": "file_operation", "operation": "read", "path": "/etc/passwd"}, "is absolute"),
    ({"task_type": "file_operation", "operation": "delete", "path": ""}, "non-empty string"),
    ({"task_type": "file_operation", "opration": "write", "path": "a"}, "file_operation needs an 'operation'"),
    ({"task_type": "file_operation", "operation": "wirte", "path": "a"}, "unknown operation 'wirte' (did you mean 'write'?)"),
    ({"task_type": "file_operation", "operation": "write", "path": "a", "content": 3}, "/content: expected string"),
    ({"task_type": "system_command", "command": "echo hi; rm -rf /"}, "never run through a shell"),
    ({"task_type": "system_command", "command": ["./echo"]}, "bare name or an absolute path"),
    ({"task_type": "system_command", "command": []}, "non-empty list of strings"),
    ({"prompt": "{% for x in %}"}, "/tasks/0/parameters/prompt: prompt template syntax error at line 1"),
    ({"prompt": "a\n{{ deps.w.output. }}"}, "prompt template syntax error at line 2"),
    ({"prompt": "p", "explore_samples": 11}, "/explore_samples: expected a number in [1, 10]"),
    ({"prompt": "p", "temperature": "hot"}, "/temperature: expected number"),
])
def test_parameter_mistakes_are_refused_by_validation(parameters, message):
    assert any(message in error for error in validation_errors(parameters)), validation_errors(parameters)


def test_input_from_must_name_a_dependency():
    errors = validation_errors({"task_type": "data_processing", "input_from": "elsewhere",
                                "operations": [{"op": "sort", "by": "x"}]}, dependencies=["src"])
    assert errors == ["/tasks/1/parameters/input_from: 'elsewhere' is not a dependency of this task"]


def test_unknown_parameters_are_warnings_with_suggestions():
    import orjson
    from runner import AltValidationError, parse_alt_file

    doc = {"id": "w", "title": "w", "tasks": [
        {"id": "t", "description": "t", "parameters": {"prompt": "p", "modle": "x", "temprature": 1}},
        {"id": "g", "description": "g", "parameters": {"task_type": "generic", "anything": 1}}]}
    alt = parse_alt_file(orjson.dumps(doc))
    assert [str(w) for w in alt.warnings] == [
        "/tasks/0/parameters/modle: unknown parameter (did you mean 'model'?)",
        "/tasks/0/parameters/temprature: unknown parameter (did you mean 'temperature'?)"]
    with pytest.raises(AltValidationError, match="modle: unknown parameter"):
        parse_alt_file(orjson.dumps(doc), strict=True)


def test_file_operations_inside_the_workspace(tmp_path):
    ws = tmp_path / "ws"
    wrote = run_one(tmp_path, {"task_type": "file_operation", "operation": "write", "path": "notes/a.txt",
                               "content": "héllo"}, workspace=ws)
    assert wrote.status == "completed" and (ws / "notes" / "a.txt").read_text() == "héllo"
    assert wrote.metadata["files_written"] == ["notes/a.txt"]
    run_one(tmp_path, {"task_type": "file_operation", "operation": "append", "path": "notes/a.txt",
                       "content": "!"}, workspace=ws)
    read = run_one(tmp_path, {"task_type": "file_operation", "operation": "read", "path": "notes/a.txt"}, workspace=ws)
    assert read.output["content"] == "héllo!"
    listed = run_one(tmp_path, {"task_type": "file_operation", "operation": "list", "path": "notes"}, workspace=ws)
    assert listed.output["entries"] == [{"name": "a.txt", "type": "file", "size": 7}]
    deleted = run_one(tmp_path, {"task_type": "file_operation", "operation": "delete", "path": "notes/a.txt"},
                      workspace=ws)
    assert deleted.status == "completed" and not (ws / "notes" / "a.txt").exists()


@pytest.mark.parametrize("where, refusal", [
    ("a file", "it is not a directory"),
    ("under a file", "'.*afile' is in its way and is not a directory"),
    ("two under a file", "'.*afile' is in its way and is not a directory"),
    ("a name too long", r"it cannot be made \(File name too long\)"),
    ("under a dangling link", "'.*dangling' is in its way and is not a directory"),
])
def test_a_workspace_that_cannot_be_made_stops_the_run_before_anything_runs(tmp_path, where, refusal):
    # A file where the workspace should be raised a bare FileExistsError (a traceback from
    # the CLI), a name too long an OSError from the first look at it; now a ConfigurationError
    # that says which workspace and why, nothing ran, and no folder was made on the way (a
    # name too long is found before the folders above it are made).
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    workspace = {"a file": tmp_path / "afile", "under a file": tmp_path / "afile" / "sub",
                 "two under a file": tmp_path / "afile" / "sub" / "deeper",
                 "a name too long": tmp_path / "a" / "b" / ("n" * 300),
                 "under a dangling link": tmp_path / "dangling" / "sub"}[where]
    alt = {"id": "w", "title": "w", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "f.txt", "content": "x"}}]}
    (tmp_path / "w.json").write_text(json.dumps(alt))
    before = sorted(tmp_path.rglob("*"))
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(tmp_path / "w.json"), "--workspace",
                           str(workspace), "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.search(f"workspace {re.escape(repr(str(workspace)))}: {refusal}", done.stderr), done.stderr
    with pytest.raises(ConfigurationError, match=refusal):
        execute(alt, tmp_path / "out", workspace=workspace, environ={})
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "afile").read_text() == "x"


def test_a_workspace_given_as_bytes_is_a_path_as_os_functions_take_it(tmp_path):
    # It was a TypeError traceback from Path(bytes) (review 21).
    alt = {"id": "w", "title": "w", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "f.txt", "content": "x"}}]}
    outcome = execute(alt, tmp_path / "out", workspace=bytes(tmp_path / "wsb"), environ={})
    assert outcome.all_completed and (tmp_path / "wsb" / "f.txt").read_text() == "x"
    # Bytes that are not UTF-8 (or a str holding them, as argv gives them) are refused: the
    # journal, JSON, could not record the workspace, and the run could not be resumed.
    for odd in (bytes(tmp_path) + b"/\xff-ws", str(tmp_path) + "/\udcff-ws"):
        with pytest.raises(ConfigurationError, match="its path is not UTF-8 text"):
            execute(alt, tmp_path / "out2", workspace=odd, environ={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "wsb"]


def test_a_relative_workspace_is_recorded_whole_and_a_resume_continues_in_it(tmp_path, monkeypatch):
    # The journal recorded "rel/ws" as given, and resume refused it as not an absolute path
    # (review 22): it is made absolute when the run begins.
    from runner.execution.resume import resume

    monkeypatch.chdir(tmp_path)
    alt = {"id": "w", "title": "w", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "f.txt", "content": "x"}}]}
    outcome = execute(alt, tmp_path / "out", workspace="rel/ws", environ={})
    assert outcome.all_completed and outcome.workspace == tmp_path / "rel" / "ws"
    start = json.loads((outcome.directory / "journal.jsonl").read_bytes().splitlines()[0])
    assert start["workspace"] == str(tmp_path / "rel" / "ws")
    again = resume(outcome.directory, environ={})
    assert again.workspace == tmp_path / "rel" / "ws" and again.all_completed


def test_an_empty_workspace_path_is_refused_not_taken_for_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    alt = {"id": "w", "title": "w", "tasks": [{"id": "t", "description": "t", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "f.txt", "content": "x"}}]}
    with pytest.raises(ConfigurationError, match="workspace '': an empty path"):
        execute(alt, tmp_path / "out", workspace="", environ={})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("operation, path, message", [
    ("write", "link/owned", "'link' is a symbolic link"),
    ("read", "file_link", "is a symbolic link"),
    ("write", "file_link", None),
    ("list", "link", "is a symbolic link"),
])
def test_paths_that_could_leave_the_workspace_are_refused(tmp_path, operation, path, message):
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("do not read")
    ws.mkdir()
    (ws / "link").symlink_to(outside)
    (ws / "file_link").symlink_to(outside / "secret")
    result = run_one(tmp_path, {"task_type": "file_operation", "operation": operation, "path": path,
                                "content": "x"}, workspace=ws)
    if message is None:
        # Writing over a symlink replaces the link itself; the outside file is untouched.
        assert result.status == "completed" and not (ws / "file_link").is_symlink()
    else:
        assert result.status == "failed" and message in result.error
        assert len(result.metadata["attempts"]) == 1       # refusals are permanent
    assert (outside / "secret").read_text() == "do not read"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_system_commands_are_off_unless_enabled(tmp_path):
    result = run_one(tmp_path, {"task_type": "system_command", "command": ["echo", "hi"]})
    assert result.status == "failed" and "system commands are disabled" in result.error


@pytest.mark.parametrize("command, message", [
    (["sh", "-c", "echo hi"], "not in RUNNER_SYSTEM_COMMAND_ALLOWLIST"),
    (["no-such-program-here"], "not in RUNNER_SYSTEM_COMMAND_ALLOWLIST"),
])
def test_commands_outside_the_allowlist_or_as_strings_are_refused(tmp_path, command, message):
    result = run_one(tmp_path, {"task_type": "system_command", "command": command}, environ=ENABLED)
    assert result.status == "failed" and message in result.error


def test_an_allowed_command_runs_with_capped_output(tmp_path):
    ok = run_one(tmp_path, {"task_type": "system_command", "command": ["echo", "hello", "world"]}, environ=ENABLED)
    assert ok.status == "completed" and ok.output["stdout"] == "hello world\n" and ok.output["exit_code"] == 0
    big = run_one(tmp_path, {"task_type": "system_command",
                             "command": [sys.executable, "-c", "print('x' * 100000)"]},
                  environ={**ENABLED, "RUNNER_COMMAND_OUTPUT_CAP_BYTES": "1000"})
    assert big.status == "completed" and len(big.output["stdout"]) == 1000 and big.output["stdout_truncated"]


def test_commands_get_no_secrets_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_AI_API_KEY", "sk-secret")
    result = run_one(tmp_path, {"task_type": "system_command",
                                "command": [sys.executable, "-c", "import os; print(sorted(os.environ))"]},
                     environ=ENABLED)
    assert "RUNNER_AI_API_KEY" not in result.output["stdout"]


def test_prompt_templates_read_dependency_outputs(tmp_path):
    source = {"id": "task_001", "description": "s", "parameters": {"task_type": "generic", "text": "42"}}
    result = run_one(tmp_path, {}, description="The answer is {{ deps.task_001.output.text }}.", deps=[source])
    assert result.status == "completed" and result.output["text"] == "echo: The answer is 42."


@pytest.mark.parametrize("template, message", [
    # (deps.nope, not a dependency, is refused by validation: test_validate_every_error.py)
    ("{{ task.nope }}", "prompt template: 'dict object' has no attribute 'nope'"),
    ("{{ ''.__class__.__mro__ }}", "prompt template"),
    ("{{ 'x' * 10**9 }}", "too large"),
    ("{{ 7 ** 999999 }}", "too large"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}xxxx{% endfor %}{% endfor %}", "longer than"),
])
def test_template_errors_fail_the_task_with_the_message(tmp_path, template, message):
    result = run_one(tmp_path, {"prompt": template})
    assert result.status == "failed" and message in result.error
    assert len(result.metadata["attempts"]) == 1


def test_the_sandbox_refuses_python_internals(tmp_path):
    result = run_one(tmp_path, {"prompt": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    assert result.status == "failed" and ("unsafe" in result.error or "__class__" in result.error)


def test_generic_tasks_record_their_parameters(tmp_path):
    result = run_one(tmp_path, {"task_type": "generic", "a": [1, 2], "b": {"c": None}})
    assert result.output == {"task_type": "generic", "a": [1, 2], "b": {"c": None}}


def test_files_written_in_the_default_workspace_become_artifacts_and_the_workspace_goes(tmp_path):
    outcome = execute({"id": "art", "title": "art", "tasks": [
        {"id": "f", "description": "x", "parameters": {"task_type": "file_operation", "operation": "write",
                                                       "path": "out/report.md", "content": "# hi"}}]}, tmp_path)
    (artifact,) = outcome.record["artifacts"]
    assert artifact["name"] == "out/report.md" and artifact["task_id"] == "f"
    assert (outcome.directory / artifact["path"]).read_text() == "# hi"
    assert not outcome.workspace.exists()
