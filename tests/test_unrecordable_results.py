"""A run always finishes its LAST file: a task whose result the journal or the LAST file
cannot encode (an integer beyond +-(2^53-1), a token count that is not a count, a value that
is not JSON) fails that task with an error naming what and where; the other tasks go on."""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ai_server import AIServer, Raw
import runner as librunner

BIG = 9007199254740991


def bigsum_alt() -> dict:
    return {"id": "bigsum", "title": "t", "tasks": [
        {"id": "s", "description": "d", "parameters": {
            "task_type": "data_processing", "input": [{"x": BIG}] * 2049,
            "operations": [{"op": "reduce", "function": "sum", "field": "x"}]}},
        {"id": "small", "description": "d", "parameters": {
            "task_type": "data_processing", "input": [{"x": BIG}, {"x": 1}],
            "operations": [{"op": "reduce", "function": "sum", "field": "x"}]}},
        {"id": "ok", "description": "d", "parameters": {"task_type": "generic"}},
    ]}


def ai_alt() -> dict:
    return {"id": "ai_counts", "title": "t", "tasks": [
        {"id": "ask", "description": "Say hello", "parameters": {"task_type": "ai_prompt"}},
        {"id": "ok", "description": "d", "parameters": {"task_type": "generic"}},
    ]}


def cli_run(path: Path, out: Path, env: dict | None = None, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(out), "--quiet", *extra],
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip(), done.stderr
    directory = out / done.stdout.strip().rsplit("/", 1)[-1]
    return done, json.loads((directory / "last.json").read_bytes())


def test_a_sum_beyond_2_53_fails_that_task_and_the_run_writes_its_last_file(tmp_path):
    path = tmp_path / "bigsum.json"
    path.write_text(json.dumps(bigsum_alt()))
    done, record = cli_run(path, tmp_path / "out")
    assert done.returncode == 1
    results = record["task_results"]
    assert results["ok"]["status"] == "completed"
    for task in ("s", "small"):     # beyond 64 bits, and just beyond 2^53
        assert results[task]["status"] == "failed"
        error = results[task]["error"]
        assert "/output" in error and "2^53" in error, error


def test_the_c_abi_records_the_failed_task_instead_of_an_internal_error(runner, tmp_path):
    runner.lib.runner_execute_alt_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    runner.lib.runner_execute_alt_file.restype = ctypes.c_void_p
    assert runner.runner_parse_alt_file(json.dumps(bigsum_alt()).encode()) == 1, runner.last_error()
    last_id = runner.take(runner.lib.runner_execute_alt_file(b"bigsum", str(tmp_path).encode()))
    assert last_id is not None, runner.last_error()
    record = json.loads((tmp_path / last_id / "last.json").read_bytes())
    assert record["task_results"]["s"]["status"] == "failed"
    assert record["task_results"]["ok"]["status"] == "completed"
    # A result given through the C ABI passes the same check: refused, named, not stored.
    beyond = b'{"task_id":"ok","status":"completed","output":{"n":[1,9007199254740992]}}'
    assert runner.runner_add_task_result(b"bigsum", beyond) == 0
    assert "/output/n/1" in runner.last_error() and "2^53" in runner.last_error()


def openai_answer(usage: dict) -> bytes:
    return json.dumps({"id": "c", "object": "chat.completion", "model": "m", "usage": usage,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                    "finish_reason": "stop"}]}).encode()


@pytest.mark.parametrize("usage, where", [
    ({"prompt_tokens": -1, "completion_tokens": 2}, "/metadata/ai/prompt_tokens"),
    ({"prompt_tokens": True, "completion_tokens": 2}, "/metadata/ai/prompt_tokens"),
    ({"prompt_tokens": 3, "completion_tokens": 2 ** 60}, "/metadata/ai/completion_tokens"),
])
def test_token_counts_the_ledger_cannot_hold_fail_the_ai_task_only(tmp_path, usage, where):
    path = tmp_path / "ai.json"
    path.write_text(json.dumps(ai_alt()))
    with AIServer() as server:
        server.plan(Raw(openai_answer(usage)))
        done, record = cli_run(path, tmp_path / "out", {"RUNNER_AI_SERVICE_URL": server.base_url,
                                                        "RUNNER_AI_PROVIDER": "openai"})
    assert done.returncode == 1
    ask = record["task_results"]["ask"]
    assert ask["status"] == "failed" and where in ask["error"], ask
    assert record["task_results"]["ok"]["status"] == "completed"
    journal = (tmp_path / "out" / done.stdout.strip().rsplit("/", 1)[-1] / "journal.jsonl").read_text()
    assert '"run_ended"' in journal


def test_a_cassette_with_a_token_count_that_is_not_one_never_aborts_the_run(tmp_path):
    path = tmp_path / "ai.json"
    path.write_text(json.dumps(ai_alt()))
    cassette = tmp_path / "calls.jsonl"
    with AIServer() as server:
        done, _ = cli_run(path, tmp_path / "a", {"RUNNER_AI_SERVICE_URL": server.base_url,
                                                 "RUNNER_AI_PROVIDER": "openai"}, "--record", str(cassette))
    assert done.returncode == 0
    line = json.loads(cassette.read_text())
    line["response"]["prompt_tokens"] = -1
    cassette.write_text(json.dumps(line) + "\n")
    # Replayed: the service's URL names a port nobody listens on (it is never called).
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "b"), "--quiet",
                           "--replay", str(cassette)],
                          env={"PATH": "/usr/bin:/bin", "RUNNER_AI_SERVICE_URL": "http://127.0.0.1:9/v1",
                               "RUNNER_AI_PROVIDER": "openai"}, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 2:        # the cassette's own check at load refuses the line
        assert "line 1" in done.stderr, done.stderr
        return
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / "b" / done.stdout.strip().rsplit("/", 1)[-1] / "last.json").read_bytes())
    ask = record["task_results"]["ask"]
    assert ask["status"] == "failed" and "/metadata/ai/prompt_tokens" in ask["error"], ask


def test_values_that_are_not_json_are_refused_with_their_place():
    alt = librunner.parse_alt_file(json.dumps(bigsum_alt()))
    for output, where in (({"a": {1, 2}}, "/output/a"), ({"k": [1, b"x"]}, "/output/k/1"),
                          ({"a": {3: 1}}, "/output/a"), ({"s": "\udcff"}, "/output/s"),
                          ([-BIG - 1], "/output/0")):
        with pytest.raises(librunner.TaskResultError) as refused:
            librunner.task_result_from_dict({"task_id": "ok", "status": "completed", "output": output}, alt)
        assert where in str(refused.value), (output, str(refused.value))
    kept = librunner.task_result_from_dict({"task_id": "ok", "status": "completed",
                                            "output": {"n": [BIG, -BIG, 1.5, None, True, "\u00e9\U0001f600"]}}, alt)
    assert kept.output["n"][0] == BIG
