"""Traces of runs (issue 21): spans exported live to a real OTLP/HTTP receiver on 127.0.0.1
(tests/otlp_receiver.py, decoding with the official opentelemetry-proto messages), and
`python -m runner trace DIR` from LAST files and journals, its Chrome trace checked in
headless Chromium."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ai_server import AIServer, Reply, Slow, Status
from conftest import wait_until
from otlp_receiver import OtlpReceiver, decode_json, spans_of
from runner.execution import execute
from runner.trace.spans import stamp_ns

ROOT = Path(__file__).resolve().parent.parent
FAST_RETRIES = {"RUNNER_RETRY_BASE_SECONDS": "0", "RUNNER_RETRY_MAX_SECONDS": "0"}
# Nothing from the machine's environment decides where a test's spans go.
CLEAN = {name: value for name, value in os.environ.items()
         if not name.startswith(("OTEL_", "RUNNER_")) and name != "TRACEPARENT"}


@pytest.fixture
def receiver():
    running = OtlpReceiver()
    yield running
    running.close()


@pytest.fixture
def ai_server():
    with AIServer() as running:
        yield running


def otel(receiver, **extra) -> dict:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **extra}


def chaos_alt(count: int = 24) -> dict:
    tasks = [{"id": f"t{i}", "description": "generic", "retry_count": 1,
              "dependencies": [f"t{i - 1}"] if i % 4 else [], "parameters": {"task_type": "generic", "n": i}}
             for i in range(count)]
    return {"id": "chaotic", "title": "chaos", "mode": "chaos", "tasks": tasks}


def ai_alt(**parameters) -> dict:
    return {"id": "ai_traced", "title": "AI traced", "tasks": [
        {"id": "ask", "description": "Say hello", "retry_count": 2,
         "parameters": {"task_type": "ai_prompt", **parameters}},
        {"id": "improve", "description": "Improve it", "dependencies": ["ask"],
         "parameters": {"task_type": "ai_prompt", "prompt": "Improve: {{ deps.ask.output.text }}",
                        "model": "task-model", "stream": True}}]}


def cli(*args, environ: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], env={**CLEAN, **environ}, capture_output=True,
                          text=True, timeout=120, **kwargs)


def file_trace(directory, *, environ=None) -> list[dict]:
    """The spans `trace DIR --format otlp-json` writes, decoded by the official messages."""
    done = cli("trace", str(directory), "--format", "otlp-json", environ=environ or {})
    assert done.returncode == 0, done.stderr
    return spans_of(decode_json(done.stdout.encode()))


def comparable(spans: list[dict]) -> list[tuple]:
    return sorted((s["trace_id"], s["span_id"], s["parent_id"], s["name"], s["kind"], s["start"], s["end"],
                   s["status"], s["message"], json.dumps(s["attributes"], sort_keys=True),
                   json.dumps(s["events"], sort_keys=True)) for s in spans)


def wait_for_spans(receiver, count: int) -> list[dict]:
    assert wait_until(lambda: len(receiver.spans) >= count, 10), f"{len(receiver.spans)} of {count} spans arrived"
    return list(receiver.spans)


def attempt_span_times(result: dict) -> list[tuple]:
    """(attempt, start ns, end ns) of each attempt as the LAST file records it."""
    return [(a["number"], stamp_ns(a["started_at"]), stamp_ns(a["started_at"]) + round(a["duration_ms"] * 1e6))
            for a in result["metadata"]["attempts"]]


# -- the live export ---------------------------------------------------------------------


def test_a_chaos_run_is_one_trace_with_a_root_and_a_span_per_attempt_at_the_last_files_times(receiver, tmp_path):
    env = {**otel(receiver), **FAST_RETRIES, "RUNNER_CHAOS_FAULT_RATE": "0.5"}
    outcome = execute(chaos_alt(), tmp_path, seed=7, environ=env)
    record = outcome.record
    attempts = sum(len(r["metadata"].get("attempts", [])) for r in record["task_results"].values())
    never_ran = sum(not r["metadata"].get("attempts") for r in record["task_results"].values())
    spans = wait_for_spans(receiver, 1 + attempts + never_ran)
    assert len(spans) == 1 + attempts + never_ran
    traces = receiver.traces()
    assert list(traces) == [record["execution"]["trace_id"]]
    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == 1
    root = roots[0]
    assert root["span_id"] == record["execution"]["trace_span_id"]
    assert (root["start"], root["end"]) == (stamp_ns(record["start_time"]), stamp_ns(record["end_time"]))
    assert root["attributes"]["librunner.last.id"] == record["id"]
    assert root["attributes"]["librunner.alt.id"] == "chaotic"
    assert root["attributes"]["librunner.run.mode"] == "chaos" and root["attributes"]["librunner.run.seed"] == 7
    assert root["attributes"]["librunner.run.status"] == record["status"]
    assert root["resource"]["service.name"] == "librunner"
    by_task: dict = {}
    for span in spans:
        if span is not root:
            assert span["parent_id"] == root["span_id"]       # retries are siblings under the run
            by_task.setdefault(span["attributes"]["librunner.task.id"], []).append(span)
    assert set(by_task) == set(record["task_results"])
    faults = {(f["task_id"], f["attempt"]): f["kind"] for f in record["execution"]["faults"]}
    assert faults, "the seed gives this run faults"
    for task_id, result in record["task_results"].items():
        mine = sorted(by_task[task_id], key=lambda s: s["attributes"]["librunner.task.attempt"])
        if not result["metadata"].get("attempts"):
            assert [s["attributes"]["librunner.task.attempt"] for s in mine] == [0]
            continue
        assert [(s["attributes"]["librunner.task.attempt"], s["start"], s["end"]) for s in mine] == \
            attempt_span_times(result)
        for span, attempt in zip(mine, result["metadata"]["attempts"]):
            assert span["attributes"]["librunner.task.status"] == attempt["outcome"]
            assert span["attributes"].get("librunner.chaos.fault") == faults.get((task_id, attempt["number"]))
            if attempt["outcome"] in ("failed", "timeout"):
                assert span["status"] == 2 and span["message"] == attempt["error"]      # STATUS_CODE_ERROR
            else:
                assert span["status"] == 0
    assert any(len(spans) > 1 for spans in by_task.values()), "some task was retried"
    # The trace made later from the LAST file is the very trace that was sent.
    assert comparable(file_trace(outcome.directory)) == comparable(spans)


def test_ai_calls_are_genai_spans_inside_their_attempt_and_carry_traceparent(receiver, ai_server, tmp_path):
    ai_server.plan(Status(500, "oops"))     # the first call fails: its task retries
    env = {**otel(receiver), **FAST_RETRIES, "RUNNER_AI_SERVICE_URL": ai_server.base_url,
           "RUNNER_AI_MODEL": "default-model"}
    outcome = execute(ai_alt(), tmp_path, environ=env)
    assert outcome.all_completed
    spans = wait_for_spans(receiver, 1 + 3 + 2)
    ai_spans = sorted((s for s in spans if s["kind"] == 3), key=lambda s: s["start"])      # SPAN_KIND_CLIENT
    assert [s["name"] for s in ai_spans] == ["chat default-model", "chat task-model"]
    ask, improve = ai_spans
    for span, task_id in ((ask, "ask"), (improve, "improve")):
        ai = outcome.record["task_results"][task_id]["metadata"]["ai"]
        attributes = span["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.response.model"] == ai["model"]
        assert attributes["gen_ai.usage.input_tokens"] == ai["prompt_tokens"]
        assert attributes["gen_ai.usage.output_tokens"] == ai["completion_tokens"]
        assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
        assert span["start"] == stamp_ns(ai["started_at"])
        assert span["end"] == stamp_ns(ai["started_at"]) + round(ai["latency_ms"] * 1e6)
        parent = next(s for s in spans if s["span_id"] == span["parent_id"])
        assert parent["attributes"]["librunner.task.id"] == task_id
        assert parent["attributes"]["librunner.task.status"] == "completed"
    assert ask["attributes"]["gen_ai.request.model"] == "default-model"
    assert improve["attributes"]["gen_ai.request.model"] == "task-model"
    # The streamed call's time to first token is an event of its span.
    first_token = [e for e in improve["events"] if e["name"] == "gen_ai.first_token"]
    ttft = outcome.record["task_results"]["improve"]["metadata"]["ai"]["time_to_first_token_ms"]
    assert len(first_token) == 1 and first_token[0]["time"] == improve["start"] + round(ttft * 1e6)
    # The failed attempt of "ask" is an ERROR span; the AI service saw each call's traceparent.
    failed = [s for s in spans if s["attributes"].get("librunner.task.id") == "ask" and s["status"] == 2]
    assert len(failed) == 1 and "500" in failed[0]["message"]
    trace_id = outcome.record["execution"]["trace_id"]
    sent = [seen.headers.get("traceparent") for seen in ai_server.seen]
    assert len(sent) == 3 and all(value and value.startswith(f"00-{trace_id}-") for value in sent)
    assert sent[1:] == [f"00-{trace_id}-{ask['span_id']}-01", f"00-{trace_id}-{improve['span_id']}-01"]


def test_message_content_only_when_asked(receiver, ai_server, tmp_path):
    env = {**otel(receiver), "RUNNER_AI_SERVICE_URL": ai_server.base_url,
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    outcome = execute(ai_alt(), tmp_path, environ=env)
    spans = wait_for_spans(receiver, 1 + 2 + 2)
    ask = next(s for s in spans if s["kind"] == 3 and s["attributes"]["librunner.task.id"] == "ask")
    sent = json.loads(ask["attributes"]["gen_ai.input.messages"])
    answered = json.loads(ask["attributes"]["gen_ai.output.messages"])
    assert sent[0]["parts"][0]["content"] == "Say hello"
    assert answered[0]["parts"][0]["content"] == outcome.results["ask"].output["text"]


def test_kserve_calls_are_genai_spans_and_carry_traceparent_in_grpc_metadata(receiver, tmp_path):
    from kserve_server import KServeServer

    with KServeServer() as kserve:
        env = {**otel(receiver), "RUNNER_AI_PROVIDER": "kserve", "RUNNER_AI_SERVICE_URL": kserve.url,
               "RUNNER_AI_MODEL": "vllm"}
        tasks = {"id": "k", "title": "k", "tasks": [{"id": "ask", "description": "Say hello",
                                                    "parameters": {"task_type": "ai_prompt"}}]}
        outcome = execute(tasks, tmp_path, environ=env)
        infer = [seen for seen in kserve.seen if seen.method in ("ModelInfer", "ModelStreamInfer")]
    assert outcome.all_completed
    spans = wait_for_spans(receiver, 3)
    call = next(s for s in spans if s["kind"] == 3)
    ai = outcome.results["ask"].metadata["ai"]
    assert call["attributes"]["gen_ai.provider.name"] == "kserve"
    assert call["attributes"]["gen_ai.request.model"] == "vllm"
    assert call["attributes"]["gen_ai.usage.input_tokens"] == ai["prompt_tokens"]
    assert call["attributes"]["gen_ai.usage.output_tokens"] == ai["completion_tokens"]
    assert [seen.metadata.get("traceparent") for seen in infer] == \
        [f"00-{call['trace_id']}-{call['span_id']}-01"]


def test_a_run_joins_the_trace_of_traceparent(receiver, ai_server, tmp_path):
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    env = {**otel(receiver), "TRACEPARENT": parent, "RUNNER_AI_SERVICE_URL": ai_server.base_url}
    outcome = execute(ai_alt(), tmp_path, environ=env)
    spans = wait_for_spans(receiver, 5)
    assert {s["trace_id"] for s in spans} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    root = next(s for s in spans if s["name"] == "run ai_traced")
    assert root["parent_id"] == "00f067aa0ba902b7"
    assert outcome.record["execution"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert outcome.record["execution"]["trace_parent_span_id"] == "00f067aa0ba902b7"
    assert all(seen.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
               for seen in ai_server.seen)
    # A service request's header wins over the variable.
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    again = execute(ai_alt(), tmp_path, environ=env, traceparent=other)
    assert again.record["execution"]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_traceparent_without_a_collector_is_carried_on_and_recorded(ai_server, tmp_path):
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    outcome = execute(ai_alt(), tmp_path, environ={"TRACEPARENT": parent,
                                                   "RUNNER_AI_SERVICE_URL": ai_server.base_url})
    assert outcome.record["execution"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    # Not sampled upstream: the flag is passed on as it came.
    assert all(seen.headers["traceparent"].endswith("-00") for seen in ai_server.seen)


def test_json_protocol_headers_and_resource(receiver, tmp_path):
    env = otel(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="http/json", OTEL_EXPORTER_OTLP_HEADERS="x-team=blue%20team",
               OTEL_SERVICE_NAME="nightly", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=a%2Cb")
    outcome = execute(chaos_alt(4) | {"mode": "normal"}, tmp_path, environ=env)
    spans = wait_for_spans(receiver, 5)
    assert {r["content_type"] for r in receiver.requests} == {"application/json"}
    assert {r["headers"].get("x-team") for r in receiver.requests} == {"blue team"}
    assert spans[0]["resource"] == {"service.name": "nightly", "deployment.environment": "ci", "team": "a,b"}
    assert comparable(file_trace(outcome.directory, environ={k: v for k, v in env.items()
                                                             if k.startswith("OTEL_R") or k == "OTEL_SERVICE_NAME"}))\
        == comparable(spans)


def test_the_sampler_can_turn_export_off(receiver, tmp_path):
    outcome = execute(chaos_alt(4) | {"mode": "normal"}, tmp_path,
                      environ=otel(receiver, OTEL_TRACES_SAMPLER="always_off"))
    assert outcome.record["execution"]["trace_id"]
    assert receiver.spans == []


def test_a_bad_otel_setting_is_refused_before_the_run(receiver, tmp_path):
    done = cli("run", str(ROOT / "examples/alt/demo.json"), "--out", str(tmp_path), "--quiet",
               environ=otel(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"))
    assert done.returncode == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'" in done.stderr and "http/protobuf" in done.stderr
    assert not list(tmp_path.iterdir())


def test_an_unreachable_collector_leaves_the_run_alone_with_one_warning(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]       # closed again: nothing listens there
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://user:secret@127.0.0.1:{port}", "RUNNER_TRACE_FLUSH_SECONDS": "2"}
    done = cli("run", str(ROOT / "examples/alt/demo.json"), "--out", str(tmp_path), "--quiet", environ=env)
    assert done.returncode == 0, done.stderr
    directory = Path(done.stdout.strip().splitlines()[-1])
    assert json.loads((directory / "last.json").read_text())["status"] == "success"
    warnings = [line for line in done.stderr.splitlines() if "traces:" in line]
    assert len(warnings) == 1, done.stderr
    assert f"127.0.0.1:{port}/v1/traces" in warnings[0] and "secret" not in done.stderr
    assert "Traceback" not in done.stderr and "opentelemetry" not in done.stderr


def test_sigterm_still_sends_the_runs_spans(receiver, ai_server, tmp_path):
    ai_server.plan(Reply(), Slow(30))        # "improve" hangs until the run is stopped
    env = {**otel(receiver), "RUNNER_AI_SERVICE_URL": ai_server.base_url, "RUNNER_GRACE_SECONDS": "0.2"}
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps(ai_alt()))
    process = subprocess.Popen([sys.executable, "-m", "runner", "run", str(alt), "--out", str(tmp_path / "out"),
                                "--quiet"], env={**CLEAN, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert wait_until(lambda: len(ai_server.seen) == 2, 30)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    record = json.loads((Path(out.strip().splitlines()[-1]) / "last.json").read_text())
    spans = wait_for_spans(receiver, 4)       # the run, ask and its AI call, improve cancelled
    root = next(s for s in spans if s["parent_id"] is None)
    assert root["attributes"]["librunner.run.interrupted"] is True and root["status"] == 2
    improve = [s for s in spans if s["attributes"].get("librunner.task.id") == "improve"]
    assert [s["attributes"]["librunner.task.status"] for s in improve] == ["cancelled"]
    assert improve[0]["status"] == 2
    assert {s["trace_id"] for s in spans} == {record["execution"]["trace_id"]}


# -- imports -------------------------------------------------------------------------------


def test_a_run_that_does_not_trace_imports_nothing_of_opentelemetry(receiver, tmp_path):
    from test_cli_imports import loaded_modules

    demo = str(ROOT / "examples/alt/demo.json")
    plain = loaded_modules(tmp_path, "run", demo, "--out", str(tmp_path / "a"), "--quiet",
                           environ={"TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert "opentelemetry" not in plain and "google" not in plain
    traced = loaded_modules(tmp_path, "run", demo, "--out", str(tmp_path / "b"), "--quiet",
                            environ={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert "opentelemetry" in traced
    chrome = loaded_modules(tmp_path, "trace", next((tmp_path / "a").iterdir()).as_posix(), "-o",
                            str(tmp_path / "t.json"))
    assert "opentelemetry" not in chrome


# -- from files ----------------------------------------------------------------------------


def test_send_posts_a_last_files_trace(receiver, tmp_path):
    outcome = execute(chaos_alt(8), tmp_path, seed=3, environ={**FAST_RETRIES, "RUNNER_CHAOS_FAULT_RATE": "0.5"})
    assert "trace_id" not in outcome.record["execution"]          # not traced: ids come from the LAST id
    done = cli("trace", str(outcome.directory), "--send", environ=otel(receiver))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "sent to" in done.stderr
    assert comparable(receiver.spans) == comparable(file_trace(outcome.directory))
    assert {s["trace_id"] for s in receiver.spans} == {outcome.last_id.replace("-", "")}


def test_trace_of_an_interrupted_run_from_its_journal(ai_server, tmp_path):
    ai_server.plan(Reply(), Slow(30))
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps(ai_alt()))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "runner", "run", str(alt), "--out", str(out), "--quiet"],
                               env={**CLEAN, "RUNNER_AI_SERVICE_URL": ai_server.base_url},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(ai_server.seen) == 2, 30)
        directory = next(out.iterdir())
        assert wait_until(lambda: b'"attempt_started","task_id":"improve"' in
                          (directory / "journal.jsonl").read_bytes(), 10)
    finally:
        process.kill()
        process.wait()
    assert not (directory / "last.json").exists()
    spans = file_trace(directory)
    root = next(s for s in spans if s["parent_id"] is None)
    assert root["attributes"]["librunner.run.status"] == "interrupted" and root["status"] == 2
    improve = next(s for s in spans if s["attributes"].get("librunner.task.id") == "improve")
    assert improve["attributes"]["librunner.task.status"] == "unfinished"
    assert improve["attributes"]["librunner.task.type"] == "ai_prompt"
    ask = [s for s in spans if s["attributes"].get("librunner.task.id") == "ask"]
    assert {s["kind"] for s in ask} == {1, 3}        # its attempt and its AI call
    chrome = json.loads(cli("trace", str(directory), environ={}).stdout)
    assert any(e.get("name") == "improve" and e["ph"] == "X" for e in chrome["traceEvents"])


def test_trace_refuses_what_is_not_a_run(tmp_path):
    done = cli("trace", str(tmp_path), environ={})
    assert done.returncode == 2 and "no last.json" in done.stderr
    done = cli("trace", str(tmp_path), "--send", environ={})
    assert done.returncode == 2 and "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr


CHECK_PAGE = """<!doctype html><html><head><title>check</title></head><body><pre id="out">waiting</pre>
<script id="data" type="application/json">{data}</script>
<script>
function check() {{
  const trace = JSON.parse(document.getElementById('data').textContent);
  const events = trace.traceEvents;
  if (!Array.isArray(events) || events.length === 0) return 'no events';
  let seenTimed = false, lastTs = -Infinity, slices = 0;
  const stacks = new Map();
  for (const e of events) {{
    if (e.ph === 'M') {{ if (seenTimed) return 'M event after timed events'; continue; }}
    seenTimed = true;
    if (typeof e.ts !== 'number' || e.ts < lastTs) return 'not sorted at ' + JSON.stringify(e);
    lastTs = e.ts;
    if (e.ph !== 'X') continue;
    slices++;
    if (!(Number.isInteger(e.ts) && Number.isInteger(e.dur) && e.dur >= 0)) return 'bad ts/dur ' + JSON.stringify(e);
    const stack = stacks.get(e.tid) || [];
    while (stack.length && stack[stack.length - 1] <= e.ts) stack.pop();
    const end = e.ts + e.dur;
    if (stack.length && end > stack[stack.length - 1]) return 'overlap on tid ' + e.tid + ' at ' + JSON.stringify(e);
    stack.push(end);
    stacks.set(e.tid, stack);
  }}
  return 'OK slices=' + slices + ' tids=' + stacks.size;
}}
let verdict;
try {{ verdict = check(); }} catch (error) {{ verdict = 'error ' + error; }}
document.getElementById('out').textContent = verdict;
</script></body></html>"""


def test_chrome_trace_of_a_500_task_run_loads_in_headless_chromium(tmp_path):
    from test_report import CHROMIUM, chromium

    if CHROMIUM is None:
        pytest.skip("no headless Chromium (apt-get install chromium)")
    tasks = [{"id": f"t{i:03d}", "description": "work", "retry_count": 1,
              "dependencies": [f"t{i - 1:03d}"] if i % 10 else [],
              "parameters": {"task_type": "generic", "n": i}} for i in range(500)]
    alt = {"id": "five_hundred", "title": "500 tasks", "mode": "chaos", "tasks": tasks}
    env = {**FAST_RETRIES, "RUNNER_CHAOS_FAULT_RATE": "0.1", "RUNNER_MAX_CONCURRENT_TASKS": "8"}
    outcome = execute(alt, tmp_path / "out", seed=11, environ=env)
    trace_file = tmp_path / "trace.json"
    done = cli("trace", str(outcome.directory), "-o", str(trace_file), environ={})
    assert done.returncode == 0, done.stderr
    trace = json.loads(trace_file.read_text())
    attempts = sum(len(r["metadata"].get("attempts", [])) for r in outcome.record["task_results"].values())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["tid"] != 0]
    assert len(slices) == attempts and len({e["tid"] for e in slices}) <= 8
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert names[0] == "run" and all(names[tid] == f"slot {tid}" for tid in {e["tid"] for e in slices})
    page = tmp_path / "check.html"
    page.write_text(CHECK_PAGE.format(data=trace_file.read_text().replace("</", "<\\/")))
    dom, console = chromium(page, tmp_path, "--dump-dom")
    assert f"OK slices={attempts + 1} " in dom, dom[-500:]


def test_the_report_links_the_trace_when_a_url_template_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_TRACE_URL_TEMPLATE", "http://localhost:16686/trace/{trace_id}")
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    outcome = execute(chaos_alt(2) | {"mode": "normal"}, tmp_path, environ={"TRACEPARENT": parent})
    page = (outcome.directory / "report.html").read_text()
    assert '<a href="http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736">' in page
    monkeypatch.setenv("RUNNER_TRACE_URL_TEMPLATE", "javascript:alert(1)//{trace_id}")
    again = execute(chaos_alt(2) | {"mode": "normal"}, tmp_path, environ={"TRACEPARENT": parent})
    assert "javascript:" not in (again.directory / "report.html").read_text()


def test_a_dask_worker_gets_the_submitters_trace_settings():
    from runner.cluster import travelling_settings

    submitter = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "TRACEPARENT": "00-" + "1" * 32 + "-" + "2" * 16
                 + "-01", "RUNNER_AI_MODEL": "m", "HOME": "/home/a"}
    travelled = travelling_settings.of_submitter(submitter)
    assert set(travelled) == {"OTEL_EXPORTER_OTLP_ENDPOINT", "TRACEPARENT", "RUNNER_AI_MODEL"}
    worker = travelling_settings.on_worker(travelled, {"OTEL_SERVICE_NAME": "worker-own", "PATH": "/bin"})
    assert worker == {**travelled, "PATH": "/bin"}


def test_send_to_an_unreachable_collector_exits_1_saying_so(tmp_path):
    import socket

    outcome = execute(chaos_alt(2) | {"mode": "normal"}, tmp_path, environ={})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = cli("trace", str(outcome.directory), "--send", environ={
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces", "RUNNER_TRACE_FLUSH_SECONDS": "2"})
    assert done.returncode == 1
    assert f"not sent to http://127.0.0.1:{port}/v1/traces" in done.stderr and "Traceback" not in done.stderr
