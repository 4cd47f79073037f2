"""The core stays sound on inputs a careless or hostile caller sends: no crash, clear errors."""
from __future__ import annotations

import json
import re

import pytest

import runner as runner_api  # the `runner` fixture is the C ABI
from conftest import dumps


def test_a_graph_made_directly_is_empty_and_indexes_are_checked(spec_alt):
    assert runner_api.DependencyGraph().topological_order() == []
    assert runner_api.DependencyGraph.__new__(runner_api.DependencyGraph).find_cycle() is None
    graph = runner_api.DependencyGraph.of(runner_api.parse_alt_file(dumps(spec_alt)))
    assert graph.dependencies_of(1) == [0] and graph.dependents_of(0) == [1]
    for index in (-1, 2, 10**6):
        with pytest.raises(IndexError, match=f"task index {index} out of range for a graph of 2 tasks"):
            graph.dependencies_of(index)
        with pytest.raises(IndexError):
            graph.dependents_of(index)


@pytest.mark.parametrize("ai, path, found", [
    (["x"], "/metadata/ai", "expected object, found array"),
    ({"model": ["x"]}, "/metadata/ai/model", "expected string, found array"),
    ({"model": "m", "prompt_tokens": 18446744073709551615}, "/metadata/ai/prompt_tokens",
     "expected an integer from 0 to 2^53-1"),
    ({"model": "m", "completion_tokens": -1}, "/metadata/ai/completion_tokens", "expected an integer from 0"),
    ({"model": "m", "prompt_tokens": 1.5}, "/metadata/ai/prompt_tokens", "found number 1.5"),
])
def test_ai_metadata_that_would_break_the_statistics_is_refused_at_once(runner, spec_alt, ai, path, found):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    body = {"task_id": "task1", "status": "completed", "metadata": {"ai": ai}}
    assert runner.runner_add_task_result(b"test_alt_file", dumps(body)) == 0
    error = runner.last_error()
    assert error.startswith(f"runner_add_task_result: {path}: ") and found in error


def test_a_bug_in_one_batch_entry_does_not_take_the_others_down(runner, spec_alt, tmp_path, monkeypatch):
    from runner.last import directory as last_directory

    real = last_directory.write_directory

    def broken_for_one(record, *args, **kwargs):
        if record["alt_file_id"] == "broken":
            raise RuntimeError("simulated bug")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(last_directory, "write_directory", broken_for_one)
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    spec_alt["id"] = "broken"
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    outcome = json.loads(runner.take(runner.runner_batch_process(b'["test_alt_file", "broken"]',
                                                                 str(tmp_path).encode())))
    assert outcome["broken"] == "ERROR: internal error: RuntimeError: simulated bug"
    assert (tmp_path / outcome["test_alt_file"] / "last.json").is_file()


def test_invalid_utf8_is_reported_where_it_is(runner):
    document = b'{"id":"\xff\xfe","title":"t","tasks":[{"id":"a"}]}'
    assert runner.runner_parse_alt_file(document) == 0
    assert runner.last_error() == ("runner_parse_alt_file: /: invalid JSON: not valid UTF-8 (byte 7) "
                                   "(1 error in ALT file)")
    with pytest.raises(runner_api.AltValidationError, match=r"not valid UTF-8 \(byte 7\)"):
        runner_api.parse_alt_file(document)
    assert runner.runner_parse_alt_file(dumps({"id": "u", "title": "t", "tasks": [{"id": "a"}]})) == 1
    assert runner.runner_add_task_result(b"u", b'{"task_id":"a","status":"completed","error":"\xc3"}') == 0
    assert runner.last_error() == ("runner_add_task_result: /: invalid JSON: not valid UTF-8 (byte 45) "
                                   "(1 error in task result)")


def wait_for_child_command(name: str, timeout: float = 20.0) -> None:
    """Waits until a child process of this test process runs `name`."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/comm") as comm:
                    command = comm.read().strip()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and command == name:
                return
        time.sleep(0.02)
    raise AssertionError(f"no child process '{name}' within {timeout} s")


def test_reparsing_during_a_run_keeps_the_new_version_and_drops_the_old_results(runner, tmp_path, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("RUNNER_ENABLE_SYSTEM_COMMANDS", "true")
    monkeypatch.setenv("RUNNER_SYSTEM_COMMAND_ALLOWLIST", "sleep")
    first = {"id": "r", "title": "v1", "tasks": [
        {"id": "a", "description": "a", "parameters": {"task_type": "system_command", "command": ["sleep", "1"]}}]}
    assert runner.runner_parse_alt_file(dumps(first)) == 1
    finished = {}
    run = threading.Thread(target=lambda: finished.setdefault(
        "last", runner.take(runner.runner_execute_alt_file(b"r", str(tmp_path).encode()))))
    run.start()
    wait_for_child_command("sleep")  # the run has fetched its ALT file and started its task
    time.sleep(0.1)
    assert runner.runner_parse_alt_file(dumps({"id": "r", "title": "v2", "tasks": [{"id": "z"}]})) == 1
    run.join(30)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", finished["last"]), finished
    last_id = runner.take(runner.runner_generate_last_file(b"r", str(tmp_path).encode()))
    assert last_id is not None, runner.last_error()
    record = json.loads((tmp_path / last_id / "last.json").read_bytes())
    assert record["title"] == "v2" and list(record["task_results"]) == ["z"]
    assert record["task_results"]["z"]["status"] == "pending"


def test_a_call_that_began_before_a_cleanup_stores_nothing_after_it(spec_alt):
    store = runner_api.RunStore()
    alt = runner_api.parse_alt_file(dumps(spec_alt))
    began = store.generation
    store.clear()  # what runner_cleanup does while the call is paused mid-way
    with pytest.raises(runner_api.RunnerError, match="runner_cleanup ran during this call: nothing was kept"):
        store.store_alt(alt, began)
    with pytest.raises(runner_api.UnknownIdError):
        store.alt_file("test_alt_file")
    store.store_alt(alt, store.generation)
    assert store.alt_file("test_alt_file") is alt


def test_token_totals_do_not_overflow():
    # 1100 results of 2^53-1 tokens sum past 2^63: a C long long would wrap (undefined behaviour).
    alt = runner_api.parse_alt_file(dumps({"id": "t", "title": "t", "tasks": [{"id": f"t{n}"} for n in range(1100)]}))
    big = 2 ** 53 - 1
    results = {task.id: runner_api.task_result_from_dict(
        {"task_id": task.id, "status": "completed",
         "metadata": {"ai": {"model": "m", "prompt_tokens": big, "completion_tokens": 1}}}, alt)
        for task in alt.tasks}
    totals = runner_api.build_last_record(alt, results, "l", "e", "2026-01-01T00:00:00Z")["statistics"]["tokens"]["m"]
    assert totals["prompt_tokens"] == 1100 * big > 2 ** 63
    assert totals["completion_tokens"] == 1100 and totals["calls"] == 1100
