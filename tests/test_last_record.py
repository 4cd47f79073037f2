"""The LAST record: statistics, critical path, retries, tokens, and the C ABI flow around it."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import orjson
import pytest

import runner
from conftest import REPO, dumps

T0 = "2026-01-01T00:00:0{}.000Z"


def diamond():
    return runner.parse_alt_file(dumps({
        "id": "diamond", "title": "Diamond", "mode": "explore",
        "tasks": [
            {"id": "a", "description": "A", "dependencies": None},
            {"id": "b", "description": "B", "dependencies": ["a"]},
            {"id": "c", "description": "C", "dependencies": ["a"], "parameters": {"task_type": "generic"}},
            {"id": "d", "description": "D", "dependencies": ["b", "c"]},
        ]}))


def result(alt, task_id, status, start, end, **extra):
    doc = {"task_id": task_id, "status": status, "started_at": T0.format(start), "completed_at": T0.format(end),
           "duration_ms": (end - start) * 1000.0, **extra}
    return runner.task_result_from_dict(doc, alt)


def diamond_results(alt):
    return {
        "a": result(alt, "a", "completed", 0, 1, metadata={
            "attempts": [{"number": 1, "outcome": "failed"}, {"number": 2, "outcome": "completed"}],
            "ai": {"provider": "openai", "model": "gpt-x", "prompt_tokens": 10, "completion_tokens": 5}}),
        "b": result(alt, "b", "completed", 1, 2, metadata={
            "ai": {"provider": "openai", "model": "gpt-x", "prompt_tokens": 7, "completion_tokens": None}}),
        "c": result(alt, "c", "failed", 1, 4, error="boom", metadata={
            "attempts": [{"number": 1}, {"number": 2}, {"number": 3}],
            "ai": {"provider": "echo", "model": "echo", "prompt_tokens": 1, "completion_tokens": 1}}),
        "d": result(alt, "d", "skipped", 4, 4, metadata={"skipped_reason": "dependency 'c' failed"}),
    }


def build(alt, results, execution=None):
    return runner.build_last_record(alt, results, "0190a0b0-0000-7000-8000-000000000001", "0190a0b0-0000-7000-8000-000000000002", "2026-01-02T00:00:00.000Z", execution)


def test_statistics_count_time_parallelism_and_the_critical_path():
    alt = diamond()
    record = build(alt, diamond_results(alt))
    stats = record["statistics"]
    assert stats["status_counts"] == {"pending": 0, "running": 0, "completed": 2, "failed": 1, "cancelled": 0,
                                      "timeout": 0, "skipped": 1}
    assert record["success_rate"] == stats["success_rate"] == 0.5
    assert record["status"] == "partialsuccess"
    assert record["execution_time_ms"] == stats["execution_time_ms"] == 4000.0
    assert stats["total_task_time_ms"] == 5000.0
    assert stats["parallelism"] == pytest.approx(1.25)
    # a (1 s) -> c (3 s) -> d (0 s) is longer than a -> b -> d.
    assert stats["critical_path"] == {"task_ids": ["a", "c", "d"], "duration_ms": 4000.0}
    assert stats["retries"] == {"total": 3, "tasks": [{"task_id": "a", "attempts": 2}, {"task_id": "c", "attempts": 3}]}
    assert stats["tokens"] == {
        "gpt-x": {"provider": "openai", "calls": 2, "prompt_tokens": 17, "completion_tokens": 5},
        "echo": {"provider": "echo", "calls": 1, "prompt_tokens": 1, "completion_tokens": 1},
    }
    assert stats["levels"] == 3
    assert record["start_time"] == "2026-01-01T00:00:00.000Z" and record["end_time"] == "2026-01-01T00:00:04.000Z"
    assert "2 of 4 tasks completed" in record["summary"] and "1 failed" in record["summary"]
    assert "1 skipped" in record["summary"] and "3 retries" in record["summary"]
    assert "(50.00% success, partial success)" in record["summary"]   # prose, not the wire word


def test_graph_nodes_carry_status_level_type_and_edges_their_dependency():
    alt = diamond()
    record = build(alt, diamond_results(alt))
    nodes = {node["id"]: node for node in record["execution_graph"]["nodes"]}
    assert [n["id"] for n in record["execution_graph"]["nodes"]] == ["a", "b", "c", "d"]
    assert {k: nodes[k]["level"] for k in nodes} == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert nodes["c"]["status"] == "failed" and nodes["c"]["task_type"] == "generic"
    assert nodes["a"]["task_type"] == "ai_prompt" and nodes["c"]["duration_ms"] == 3000
    assert all(node["task_id"] == node["id"] for node in nodes.values())
    assert sorted((e["source"], e["target"], e["dependency_type"]) for e in record["execution_graph"]["edges"]) == [
        ("a", "b", "required"), ("a", "c", "required"), ("b", "d", "required"), ("c", "d", "required")]


def test_execution_facts_give_the_wall_time_and_are_recorded():
    alt = diamond()
    execution = {"mode": "explore", "seed": 42, "faults": [{"task_id": "c", "attempt": 1, "kind": "error",
                                                            "detail": "injected"}],
                 "max_concurrency": 2, "started_at": "2026-01-01T00:00:00.000Z",
                 "ended_at": "2026-01-01T00:00:10.000Z", "wall_time_ms": 10000.0, "interrupted": False}
    record = build(alt, diamond_results(alt), execution)
    assert record["execution"] == execution
    assert record["execution_time_ms"] == 10000.0
    assert record["end_time"] == "2026-01-01T00:00:10.000Z"
    assert record["statistics"]["parallelism"] == pytest.approx(0.5)


def test_mixed_timestamp_formats_are_compared_as_times():
    alt = diamond()
    results = {
        "a": runner.task_result_from_dict({"task_id": "a", "status": "completed",
                                           "started_at": "2026-01-01T01:00:00+01:00",
                                           "completed_at": "2026-01-01T00:00:01.000Z"}, alt),
        "b": runner.task_result_from_dict({"task_id": "b", "status": "completed",
                                           "started_at": "2026-01-01T00:00:00.500Z",
                                           "completed_at": "2026-01-01T00:00:02.250Z"}, alt),
    }
    record = build(alt, results)
    assert record["start_time"] == "2026-01-01T00:00:00.000Z"
    assert record["execution_time_ms"] == 2250.0
    # Same length as the uniform stamps, but a space separator sorts before "T" as text.
    results = {
        "a": result(alt, "a", "completed", 1, 2),
        "c": runner.task_result_from_dict({"task_id": "c", "status": "completed",
                                           "started_at": "2026-01-01 00:00:05.000Z",
                                           "completed_at": "2026-01-01T00:00:06.000Z"}, alt),
    }
    record = build(alt, results)
    assert record["start_time"] == "2026-01-01T00:00:01.000Z" and record["execution_time_ms"] == 5000.0


def test_no_results_means_all_pending_and_failure():
    alt = diamond()
    record = build(alt, {})
    assert record["status"] == "failure" and record["success_rate"] == 0.0
    assert record["statistics"]["status_counts"]["pending"] == 4
    assert record["statistics"]["critical_path"]["duration_ms"] == 0.0
    assert record["start_time"] == record["end_time"] == "2026-01-02T00:00:00.000Z"


ARTIFACT_FIELDS = {"id", "name", "artifact_type", "task_id", "path", "size_bytes", "mime_type", "sha256", "created_at"}


def test_the_record_matches_the_published_schema(tmp_path):
    schema_dir = REPO / "runner" / "schemas"
    if not (schema_dir / "last.schema.json").is_file():
        pytest.skip("runner/schemas/last.schema.json is not published yet (issue 3)")
    import jsonschema

    # The published schema stands alone: no registry, nothing to resolve elsewhere.
    validator = jsonschema.Draft202012Validator(json.loads((schema_dir / "last.schema.json").read_text()))
    alt = diamond()
    results = diamond_results(alt)
    results["b"] = result(alt, "b", "completed", 1, 2, output={"files": {"notes.md": "# notes"}})
    written = runner.write_last_file(alt, results, tmp_path, execution={"seed": 1, "mode": "explore"})
    record = json.loads(written.json)
    errors = sorted(validator.iter_errors(record), key=str)
    assert errors == [], errors[0].message if errors else ""
    assert len(record["artifacts"]) == 1 and set(record["artifacts"][0]) >= ARTIFACT_FIELDS
    broken = dict(record, status="fine")
    assert not validator.is_valid(broken)


def test_write_last_file_rejects_results_of_other_tasks(tmp_path):
    alt = diamond()
    other = runner.parse_alt_file(dumps({"id": "o", "title": "O", "tasks": [
        {"id": "zz", "description": "Z", "dependencies": None}]}))
    foreign = runner.task_result_from_dict({"task_id": "zz", "status": "completed"}, other)
    with pytest.raises(runner.UnknownIdError, match="unknown task 'zz'"):
        runner.write_last_file(alt, {"zz": foreign}, tmp_path)
    with pytest.raises(runner.TaskResultError):
        runner.write_last_file(alt, {"a": 3}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_last_file_accepts_result_dicts_and_returns_the_written_json(tmp_path):
    alt = diamond()
    written = runner.write_last_file(alt, {"a": {"task_id": "a", "status": "completed"}}, tmp_path)
    assert written.directory == tmp_path / written.last_id
    assert (written.directory / "last.json").read_bytes() == written.json
    assert json.loads(written.json) == written.record
    assert written.record["task_results"]["a"]["status"] == "completed"


def test_invalid_option_variable_is_a_configuration_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_ARCHIVE", "rar")
    with pytest.raises(runner.ConfigurationError, match="RUNNER_ARCHIVE='rar'"):
        runner.write_last_file(diamond(), {}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_c_abi_generate_writes_the_whole_directory(runner, spec_alt, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_ENABLE_COMPRESSION", "true")
    monkeypatch.setenv("RUNNER_GRAPH_RENDERER", "builtin")
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_add_task_result(b"test_alt_file", dumps(
        {"task_id": "task1", "status": "completed", "output": {"text": "```sh\necho hi\n```"}})) == 1
    last_id = runner.take(runner.runner_generate_last_file(b"test_alt_file", str(tmp_path).encode()))
    assert last_id, runner.last_error()
    directory = tmp_path / last_id
    assert {p.name for p in directory.iterdir()} == {"last.json", "last.json.gz", "report.html", "graph.dot",
                                                     "graph.svg", "artifacts"}
    served = runner.take(runner.runner_get_last_file_json(last_id.encode()))
    assert served.encode() == (directory / "last.json").read_bytes()
    record = json.loads(served)
    assert record["success_rate"] == 0.5
    assert [a["path"] for a in record["artifacts"]] == ["artifacts/task1/code_1.sh"]
    assert (directory / "artifacts" / "task1" / "code_1.sh").read_text() == "echo hi\n"


def test_c_abi_batch_runs_in_parallel_and_reports_each_failure(runner, spec_alt, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_LAST_WORKERS", "3")
    ids = []
    for number in range(6):
        spec_alt["id"] = f"alt{number}"
        assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
        ids.append(spec_alt["id"])
    ids.insert(2, "missing")
    mapping = json.loads(runner.take(runner.runner_batch_process(dumps(ids), str(tmp_path).encode())))
    assert list(mapping) == ids
    assert mapping["missing"].startswith("ERROR: unknown ALT file 'missing'")
    produced = {value for key, value in mapping.items() if key != "missing"}
    assert len(produced) == 6 and {p.name for p in tmp_path.iterdir()} == produced
    for last_id in produced:
        assert json.loads((tmp_path / last_id / "last.json").read_bytes())["id"] == last_id


def test_c_abi_generate_into_an_unwritable_place_is_a_clear_error(runner, spec_alt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert not runner.runner_generate_last_file(b"test_alt_file", str(blocker).encode())
    message = runner.last_error()
    assert "cannot write the LAST file of 'test_alt_file'" in message and str(blocker) in message


def test_concurrent_generations_from_threads_each_get_a_complete_directory(tmp_path):
    alt = diamond()
    results = diamond_results(alt)
    written, errors = [], []

    def work():
        try:
            for _ in range(3):
                written.append(runner.write_last_file(alt, results, tmp_path, graph_renderer="builtin"))
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({w.last_id for w in written}) == 12
    for w in written:
        assert (w.directory / "report.html").is_file() and (w.directory / "graph.svg").is_file()
        assert not [p for p in Path(w.directory).rglob(".*.tmp")]


def test_the_record_gives_the_mode_that_ran_not_the_files_mode(tmp_path):
    from runner.commands.show import describe
    from runner.execution import execute

    alt = diamond()                                   # the file says explore
    ran = execute(alt, tmp_path / "ran", mode="chaos", seed=1, environ={})
    assert ran.record["mode"] == "chaos" and ran.record["execution"]["mode"] == "chaos"
    written = runner.write_last_file(alt, {}, tmp_path / "w", execution={"mode": "dream"}, graph=False)
    record = runner.load_last(written.directory)
    assert record["mode"] == "dream"
    assert "mode dream" in describe(record)
    assert "mode dream &middot;" in (written.directory / "report.html").read_text()
    # A free-form execution dict cannot put an unknown mode into the record.
    odd = runner.write_last_file(alt, {}, tmp_path / "odd", execution={"mode": ["x"]}, graph=False,
                                 html_report=False)
    assert odd.record["mode"] == "explore"
    # Records written before the fix carry the file's mode at the top: show and the report
    # take execution.mode, the mode that ran.
    older = {**record, "mode": "explore"}
    assert "mode dream" in describe(older)
    from runner.last.report import render_report
    assert "mode dream &middot;" in render_report(older)


def test_the_graph_json_written_by_the_core_is_what_orjson_writes_for_the_same_dicts(tmp_path):
    # Descriptions that need escapes or are not ASCII take every path of the writer.
    odd = ['a"quote', "back\\slash", "tab\there", "ünï", "emoji \U0001f600", "ctrl\x01", "plain"]
    tasks = [{"id": f"t{n}", "description": name, "dependencies": [f"t{m}" for m in range(n)][-2:]}
             for n, name in enumerate(odd)]
    tasks.append({"id": "nodesc", "description": None, "dependencies": ["t0"]})
    alt = runner.parse_alt_file(json.dumps({"id": "g", "title": "g", "tasks": tasks}).encode())
    first, second = alt.tasks[0].id, alt.tasks[1].id
    results = {first: runner.task_result_from_dict({"task_id": first, "status": "completed", "duration_ms": 2.5,
                                                    "started_at": "2026-01-01T00:00:00Z",
                                                    "completed_at": "2026-01-01T00:00:00.0025Z"}, alt),
               second: runner.task_result_from_dict({"task_id": second, "status": "skipped",
                                                     "completed_at": "2026-01-01T00:00:01Z", "duration_ms": 0}, alt)}
    written = runner.write_last_file(alt, results, tmp_path, html_report=False, graph=False)
    record = written.record
    plain = {**record, "execution_graph": {"nodes": list(record["execution_graph"]["nodes"]),
                                           "edges": list(record["execution_graph"]["edges"])}}
    assert written.json == orjson.dumps(plain) == (written.directory / "last.json").read_bytes()
    assert json.loads(json.dumps(record)) == json.loads(written.json)      # the standard library sees it all
    assert runner.load_last(written.directory) == record
    nodes = {node["task_id"]: node for node in record["execution_graph"]["nodes"]}
    assert nodes[first]["duration_ms"] == 3 and nodes[second]["status"] == "cancelled" and nodes[second]["skipped"]
    assert nodes["nodesc"]["start_time"] is None and record["task_results"]["nodesc"]["start_time"] == record["start_time"]


def test_an_unread_graph_never_serialises_as_empty():
    alt = diamond()
    record = build(alt, diamond_results(alt))
    with pytest.raises(TypeError):
        orjson.dumps(record)            # not silently {"nodes": [], ...}: runner.last_json writes it
    assert orjson.loads(runner.last_json(record))["execution_graph"]["edges"]
