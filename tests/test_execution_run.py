"""The executor end to end: order, priority, skips, retries, modes, chaos, the LAST file."""
from __future__ import annotations

import json
import sys

import pytest

import runner
from runner.execution import execute, modes
from tests.conftest import dumps

ENV = {"RUNNER_RETRY_BASE_SECONDS": "0.01", "RUNNER_RETRY_MAX_SECONDS": "0.05",
       "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": sys.executable}


def alt_doc(tasks, **header):
    return {"id": "exec_test", "title": "Execution test", **header, "tasks": tasks}


def command(task_id, code, deps=(), **extra):
    return {"id": task_id, "description": task_id, "dependencies": list(deps),
            "parameters": {"task_type": "system_command", "command": [sys.executable, "-c", code]}, **extra}


def generic(task_id, deps=(), **params):
    return {"id": task_id, "description": task_id, "dependencies": list(deps),
            "parameters": {"task_type": "generic", **params}}


def started_order(events):
    return [e["task_id"] for e in events if e["event"] == "task_started"]


def test_a_run_writes_a_last_file_with_every_result(tmp_path):
    doc = alt_doc([generic("a", k=1), {"id": "b", "description": "Say {{ deps.a.output.k }}", "dependencies": ["a"]}])
    outcome = execute(doc, tmp_path / "out", environ=ENV)
    record = json.loads((outcome.directory / "last.json").read_bytes())
    assert record["task_results"]["a"]["output"] == {"task_type": "generic", "k": 1}
    assert record["task_results"]["b"]["output"]["text"] == "echo: Say 1"
    assert record["task_results"]["b"]["metadata"]["ai"]["provider"] == "echo"
    assert record["status"] == "success" and outcome.all_completed
    assert record["execution"]["mode"] == "normal" and record["execution"]["interrupted"] is False


def test_runner_run_is_the_python_api(tmp_path):
    record = runner.run(alt_doc([generic("only")]), tmp_path)
    assert record["task_results"]["only"]["status"] == "completed"


def test_dependencies_finish_before_dependents_start(tmp_path):
    # Each task appends its id to a shared file when it ends; a dependent checks its
    # dependencies' ids are already there when it starts.
    log = tmp_path / "log"
    log.write_text("")
    code = ("import sys,pathlib; p=pathlib.Path(sys.argv[1]); seen=p.read_text().split();"
            "assert all(d in seen for d in sys.argv[3:]), (sys.argv[2], seen);"
            "import time; time.sleep(0.02); open(p,'a').write(sys.argv[2]+' ')")
    layers = [["a", "b", "c"], ["d", "e"], ["f"]]
    tasks = []
    for depth, layer in enumerate(layers):
        deps = layers[depth - 1] if depth else []
        for name in layer:
            tasks.append({"id": name, "description": name, "dependencies": deps,
                          "parameters": {"task_type": "system_command",
                                         "command": [sys.executable, "-c", code, str(log), name, *deps]}})
    outcome = execute(alt_doc(tasks), tmp_path / "out", max_concurrency=4, environ=ENV)
    assert {r.status for r in outcome.results.values()} == {"completed"}, {
        k: r.error for k, r in outcome.results.items()}
    assert set(log.read_text().split()) == {"a", "b", "c", "d", "e", "f"}


def test_ready_tasks_start_by_priority_then_file_order(tmp_path):
    quick = "pass"
    tasks = [command("low", quick, priority="low"), command("medium", quick),
             command("critical", quick, priority="critical"), command("high", quick, priority="high"),
             command("critical2", quick, priority="critical")]
    events = []
    execute(alt_doc(tasks), tmp_path, max_concurrency=1, on_event=events.append, environ=ENV)
    assert started_order(events) == ["critical", "critical2", "high", "medium", "low"]


def test_dependents_of_a_failed_task_are_skipped_with_the_reason(tmp_path):
    tasks = [command("fetch", "raise SystemExit(3)"), command("parse", "pass", ["fetch"]),
             command("report", "pass", ["parse"]), command("independent", "pass")]
    outcome = execute(alt_doc(tasks), tmp_path, environ=ENV)
    results = outcome.results
    assert results["fetch"].status == "failed" and "exited with status 3" in results["fetch"].error
    assert results["parse"].status == "skipped"
    assert results["parse"].metadata["skipped_reason"] == "dependency 'fetch' failed"
    assert results["report"].metadata["skipped_reason"] == "dependency 'parse' was skipped"
    assert results["independent"].status == "completed"
    assert not outcome.all_completed


def test_failed_attempts_are_retried_and_every_attempt_is_recorded(tmp_path):
    # Fails twice, then succeeds: the counter file lives in the workspace.
    code = ("import pathlib; p=pathlib.Path('count'); n=int(p.read_text()) if p.exists() else 0;"
            "p.write_text(str(n+1)); raise SystemExit(0 if n >= 2 else 1)")
    tasks = [command("flaky", code, retry_count=3), command("hopeless", "raise SystemExit(1)", retry_count=2)]
    outcome = execute(alt_doc(tasks), tmp_path / "out", workspace=tmp_path / "ws", environ=ENV)
    flaky = outcome.results["flaky"]
    assert flaky.status == "completed"
    assert [a["outcome"] for a in flaky.metadata["attempts"]] == ["failed", "failed", "completed"]
    assert [a["number"] for a in flaky.metadata["attempts"]] == [1, 2, 3]
    assert all(a["started_at"].endswith("Z") and a["duration_ms"] >= 0 for a in flaky.metadata["attempts"])
    hopeless = outcome.results["hopeless"]
    assert hopeless.status == "failed" and len(hopeless.metadata["attempts"]) == 3


def test_permanent_failures_are_not_retried(tmp_path):
    tasks = [{"id": "bad", "description": "x", "retry_count": 5,
              "parameters": {"task_type": "data_processing", "input": ["a"],
                             "operations": [{"op": "reduce", "function": "sum"}]}}]
    result = execute(alt_doc(tasks), tmp_path, environ=ENV).results["bad"]
    assert result.status == "failed" and len(result.metadata["attempts"]) == 1
    assert "sum needs numbers" in result.error


def test_backoff_is_full_jitter_below_an_exponential_cap():
    from runner.execution.settings import load
    from runner.execution.executor import Execution
    from runner import parse_alt_file

    settings = load({"RUNNER_RETRY_BASE_SECONDS": "1", "RUNNER_RETRY_MAX_SECONDS": "5"})
    execution = Execution(parse_alt_file(dumps(alt_doc([generic("g")]))), settings=settings, mode="normal",
                          max_concurrency=1, seed=None, workspace=None)
    for number, cap in ((1, 1), (2, 2), (3, 4), (4, 5), (10, 5)):
        delays = [execution.retry_delay(number, None) for _ in range(300)]
        assert all(0 <= d <= cap for d in delays) and max(delays) > cap * 0.8 and min(delays) < cap * 0.2
    assert execution.retry_delay(1, 7.5) == 7.5       # the server's Retry-After wins


def test_bad_configuration_is_reported_with_the_variable(tmp_path):
    with pytest.raises(runner.ConfigurationError, match="RUNNER_RETRY_BASE_SECONDS"):
        execute(alt_doc([generic("g")]), tmp_path, environ={"RUNNER_RETRY_BASE_SECONDS": "soon"})
    with pytest.raises(runner.ConfigurationError, match="max_concurrency"):
        execute(alt_doc([generic("g")]), tmp_path, max_concurrency=0, environ={})


def test_dream_mode_samples_creatively_but_a_task_own_parameters_win():
    assert modes.sampling_for("dream", {}) == {"temperature": 1.2, "top_p": 0.95}
    assert modes.sampling_for("dream", {"temperature": 0.1}) == {"temperature": 0.1, "top_p": 0.95}
    assert modes.sampling_for("normal", {}) == {}
    assert modes.sampling_for("explore", {}, 2)["temperature"] == 1.1


def test_explore_mode_keeps_every_alternative_and_selects_the_longest(tmp_path):
    tasks = [{"id": "idea", "description": "ideas please", "parameters": {"explore_samples": 4}}]
    result = execute(alt_doc(tasks, mode="explore"), tmp_path, environ=ENV).results["idea"]
    ai = result.metadata["ai"]
    assert len(ai["alternatives"]) == 4 and ai["selected"] == 0     # echo answers alike: the earliest
    assert result.output["text"] == ai["alternatives"][0]["text"]
    assert [a["sampling"]["temperature"] for a in ai["alternatives"]] == [0.7, 0.9, 1.1, 1.3]
    assert modes.select_alternative(["ab", "abcd", "abcd", "a"]) == 1


def test_chaos_with_the_same_seed_gives_the_same_faults(tmp_path):
    env = {**ENV, "RUNNER_CHAOS_FAULT_RATE": "0.5"}
    tasks = [generic(f"t{i}", [f"t{i - 1}"] if i % 3 else [], ) | {"retry_count": 1} for i in range(24)]

    def chaos(seed):
        outcome = execute(alt_doc(tasks, mode="chaos"), tmp_path / str(seed), seed=seed, max_concurrency=6,
                          environ=env)
        record = json.loads((outcome.directory / "last.json").read_bytes())
        for fault in record["execution"]["faults"]:   # each fault is on the attempt it hit
            attempts = record["task_results"][fault["task_id"]]["metadata"]["attempts"]
            assert attempts[fault["attempt"] - 1]["fault"] == fault["kind"]
        return record["execution"], {k: v["status"] for k, v in record["task_results"].items()}

    first, statuses = chaos(42)
    second, statuses_again = chaos(42)
    assert first["seed"] == 42 and first["faults"], "a 0.5 fault rate over 24 tasks gave no fault"
    assert first["faults"] == second["faults"] and statuses == statuses_again
    assert {f["kind"] for f in first["faults"]} <= {"failure", "latency", "timeout"}
    other, _ = chaos(43)
    assert other["faults"] != first["faults"]
    for fault in first["faults"]:
        assert fault["kind"] in ("failure", "latency", "timeout") and fault["detail"]


def test_chaos_fault_decisions_are_a_pure_function_of_seed_task_and_attempt():
    plan = modes.ChaosPlan(9, 0.3)
    decisions = [plan.fault_for(f"t{i}", a) for i in range(200) for a in (1, 2)]
    assert decisions == [modes.ChaosPlan(9, 0.3).fault_for(f"t{i}", a) for i in range(200) for a in (1, 2)]
    assert 0.2 < sum(d is not None for d in decisions) / len(decisions) < 0.4


class ScriptedAIServer:
    """An OpenAI-compatible server on 127.0.0.1 answering from a script of (status, headers)."""

    def __init__(self, script):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        remaining = list(script)
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                status, headers = remaining.pop(0) if remaining else (200, {})
                body = json.dumps({"model": "m", "choices": [{"message": {"role": "assistant", "content": "fine"}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1}} if status == 200
                                  else {"error": {"message": f"status {status}"}}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.env = {"RUNNER_AI_SERVICE_URL": f"http://127.0.0.1:{self.server.server_address[1]}/v1",
                    "RUNNER_AI_PROVIDER": "openai", "RUNNER_RETRY_BASE_SECONDS": "0.01"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_ai_rate_limit_is_retried_after_the_server_retry_after(tmp_path):
    server = ScriptedAIServer([(429, {"Retry-After": "1"})])
    events = []
    try:
        outcome = execute(alt_doc([{"id": "ask", "description": "hi", "retry_count": 2}]), tmp_path,
                          on_event=events.append, environ=server.env)
    finally:
        server.close()
    result = outcome.results["ask"]
    assert result.status == "completed" and result.output["text"] == "fine"
    assert [a["outcome"] for a in result.metadata["attempts"]] == ["failed", "completed"]
    assert "429" in result.metadata["attempts"][0]["error"]
    (retry,) = [e for e in events if e["event"] == "task_retrying"]
    assert retry["delay"] >= 1.0


def test_an_ai_client_error_is_permanent_and_not_retried(tmp_path):
    server = ScriptedAIServer([(400, {}), (400, {})])
    try:
        outcome = execute(alt_doc([{"id": "ask", "description": "hi", "retry_count": 3}]), tmp_path,
                          environ=server.env)
    finally:
        server.close()
    result = outcome.results["ask"]
    assert result.status == "failed" and len(result.metadata["attempts"]) == 1 and server.requests == 1


def test_no_more_tasks_run_at_once_than_the_concurrency_cap(tmp_path):
    tasks = [command(f"t{i}", "import time; time.sleep(0.05)") for i in range(12)]
    events = []
    execute(alt_doc(tasks), tmp_path, max_concurrency=3, on_event=events.append, environ=ENV)
    peak = max(e["running"] for e in events)
    assert peak == 3


def test_dream_mode_sends_creative_sampling_to_the_ai_service(tmp_path):
    tasks = [{"id": "free", "description": "dream"},
             {"id": "own", "description": "dream", "parameters": {"temperature": 0.2}}]
    results = execute(alt_doc(tasks, mode="dream"), tmp_path, environ=ENV).results
    assert results["free"].metadata["ai"]["sampling"] == {"temperature": 1.2, "top_p": 0.95}
    assert results["own"].metadata["ai"]["sampling"] == {"temperature": 0.2, "top_p": 0.95}


def test_streamed_ai_answers_arrive_as_progress_events(tmp_path):
    events = []
    outcome = execute(alt_doc([{"id": "talk", "description": "one two three"}]), tmp_path, stream=True,
                      on_event=events.append, environ=ENV)
    pieces = [e["text"] for e in events if e["event"] == "task_output" and e["task_id"] == "talk"]
    assert len(pieces) > 1 and "".join(pieces) == outcome.results["talk"].output["text"] == "echo: one two three"
