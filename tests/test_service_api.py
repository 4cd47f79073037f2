"""The Runner Service's native API, driven over HTTP on a real `python -m runner serve`:
accept (202, durable), status, list, SSE, cancel, LAST file and report, 404/409/413/422,
Idempotency-Key, and the probes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from runner_service import RunnerService

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "alt"
SLEEP = shutil.which("sleep")


def one_task(alt_id: str = "hello", prompt: str = "Say hello") -> dict:
    return {"id": alt_id, "title": alt_id, "mode": "normal",
            "tasks": [{"id": "hello", "description": "Say hello", "parameters": {"prompt": prompt}}]}


def sleeping(alt_id: str = "sleepy", seconds: int = 60) -> dict:
    return {"id": alt_id, "title": alt_id, "mode": "normal",
            "tasks": [{"id": "nap", "description": "sleep", "timeout_seconds": 600,
                       "parameters": {"task_type": "system_command", "command": [SLEEP, str(seconds)]}},
                      {"id": "after", "description": "after the nap", "dependencies": ["nap"]}]}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("service")
    alt_dir = root / "alt"
    alt_dir.mkdir()
    (alt_dir / "demo.json").write_bytes((EXAMPLES / "demo.json").read_bytes())
    (alt_dir / "seg.alt.yaml").write_bytes((EXAMPLES / "segmentation.alt.yaml").read_bytes())
    (root / "secret.json").write_text(json.dumps(one_task("secret")))
    (alt_dir / "escape.json").symlink_to(root / "secret.json")
    server = RunnerService(root / "out", alt_dir, environ={
        "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": SLEEP,
        "RUNNER_MAX_ALT_BYTES": "100000", "RUNNER_GRACE_SECONDS": "0.5"}).start()
    yield server
    server.stop()


def post_run(service, document, **options):
    body = document if isinstance(document, (bytes, str)) else json.dumps(document)
    return service.post("/api/v1/runs", data=body, **options)


def test_a_posted_run_is_accepted_then_runs_to_its_last_file(service):
    answer = post_run(service, one_task())
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] in ("queued", "running")
    assert accepted["alt_id"] == "hello"
    assert answer.headers["Location"] == f"/api/v1/runs/{accepted['id']}"
    view = service.wait_for(accepted["id"])
    assert view["status"] == "success"
    assert view["progress"] == {"done": 1, "total": 1}
    assert view["success_rate"] == 1.0
    assert view["started_at"] and view["ended_at"] and view["error"] is None
    last = service.get(f"/api/v1/runs/{accepted['id']}/last")
    assert last.status_code == 200
    assert last.json()["id"] == view["last_id"]
    assert Path(view["last_file_path"]).read_bytes() == last.content
    assert Path(view["last_file_path"]).is_relative_to(service.out)
    report = service.get(f"/api/v1/runs/{accepted['id']}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")


def test_a_yaml_document_in_the_segmentation_dialect_is_accepted(service):
    answer = post_run(service, (EXAMPLES / "segmentation.alt.yaml").read_bytes(),
                      headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 202, answer.text
    assert service.wait_for(answer.json()["id"])["status"] in ("success", "partialsuccess")


def test_an_invalid_document_is_refused_with_every_error_and_its_pointer(service):
    document = one_task()
    document["tasks"].append({"id": "second", "description": "x", "dependencies": ["missing"]})
    document["mode"] = "sideways"
    answer = post_run(service, document)
    assert answer.status_code == 422
    body = answer.json()
    assert "invalid ALT file (2 errors)" in body["error"]
    paths = {error["path"] for error in body["errors"]}
    assert paths == {"/mode", "/tasks/1/dependencies/0"}
    assert all(error["message"] for error in body["errors"])
    assert post_run(service, b"{not json").status_code == 422


def test_a_document_over_the_size_limit_is_refused_413(service):
    document = one_task(prompt="x" * 200_000)
    answer = post_run(service, document)
    assert answer.status_code == 413
    assert "RUNNER_MAX_ALT_BYTES" in answer.json()["error"]


def test_bad_query_options_are_refused_422(service):
    answer = service.post("/api/v1/runs?mode=fast&seed=-1", data=json.dumps(one_task()))
    assert answer.status_code == 422
    assert {error["path"] for error in answer.json()["errors"]} == {"?mode", "?seed"}


def test_an_idempotency_key_returns_the_same_run_and_refuses_another_body(service):
    key = {"Idempotency-Key": "retry-me-1"}
    first = post_run(service, one_task("idem"), headers=key)
    assert first.status_code == 202
    again = post_run(service, one_task("idem"), headers=key)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = post_run(service, one_task("idem", prompt="Say something else"), headers=key)
    assert other.status_code == 409
    assert first.json()["id"] in other.json()["error"]


def test_runs_are_listed_newest_first_and_filtered_by_status(service):
    ids = [post_run(service, one_task(f"listed{n}")).json()["id"] for n in range(3)]
    for run_id in ids:
        service.wait_for(run_id)
    listed = service.get("/api/v1/runs?limit=3").json()["runs"]
    assert [run["id"] for run in listed] == ids[::-1]
    successes = service.get("/api/v1/runs?status=success&limit=1000").json()["runs"]
    assert set(ids) <= {run["id"] for run in successes}
    assert all(run["status"] == "success" for run in successes)
    assert service.get("/api/v1/runs?status=done").status_code == 422
    assert service.get("/api/v1/runs?limit=0").status_code == 422


def read_events(response) -> list[tuple[int, dict]]:
    events, event_id = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("data:"):
            events.append((event_id, json.loads(line[5:].strip())))
    return events


def test_the_event_stream_is_read_to_its_end_and_resumes_after_last_event_id(service):
    run_id = post_run(service, (EXAMPLES / "demo.json").read_bytes()).json()["id"]
    with service.http.get(f"{service.url}/api/v1/runs/{run_id}/events", stream=True, timeout=60) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = read_events(stream)
    assert [event_id for event_id, _ in events] == list(range(1, len(events) + 1))
    assert all(event["seq"] == event_id for event_id, event in events)
    assert events[0][1]["event"] == "run_started"
    assert events[-1][1]["event"] == "run_finished"
    finished = [event["task_id"] for _, event in events if event["event"] == "task_finished"]
    assert sorted(finished) == ["abi_changes", "changes", "draft", "headline"]
    # The run has ended: a new stream replays it, and Last-Event-ID skips what was seen.
    with service.http.get(f"{service.url}/api/v1/runs/{run_id}/events", stream=True, timeout=60,
                          headers={"Last-Event-ID": "3"}) as stream:
        rest = read_events(stream)
    assert rest == events[3:]


def test_a_running_run_is_cancelled_and_still_writes_its_last_file(service):
    run_id = post_run(service, sleeping()).json()["id"]
    service.wait_for(run_id, ("running",))
    answer = service.post(f"/api/v1/runs/{run_id}/cancel")
    assert answer.status_code == 202
    view = service.wait_for(run_id)
    assert view["status"] == "cancelled"
    last = service.get(f"/api/v1/runs/{run_id}/last").json()
    assert last["execution"]["interrupted"] is True
    assert {task_id: task["status"] for task_id, task in last["task_results"].items()} == {
        "nap": "cancelled", "after": "cancelled"}
    assert service.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
    # Interrupted, its run kept its temporary workspace for a resume; cancelled by its user, it
    # will not be resumed, and the service removed it.
    (journal,) = (service.out / "runs" / run_id).glob("*/journal.jsonl")
    workspace = Path(json.loads(journal.read_bytes().splitlines()[0])["workspace"])
    assert workspace.name.startswith("runner-workspace-") and not workspace.exists()


def test_unknown_runs_and_routes_are_404_in_json(service):
    for path in ("/api/v1/runs/nope", "/api/v1/runs/nope/events", "/api/v1/runs/nope/last", "/nowhere"):
        answer = service.get(path)
        assert answer.status_code == 404, path
        assert "error" in answer.json()
    assert service.post("/api/v1/runs/nope/cancel").status_code == 404


def test_the_probes_metrics_and_openapi(service):
    assert service.get("/health").json()["status"] == "ok"
    assert service.get("/ready").json() == {"status": "ready"}
    run_id = post_run(service, one_task("metered")).json()["id"]
    service.wait_for(run_id)
    metrics = service.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    for name in ("runner_runs_total{status=\"success\"}", "runner_tasks_total{status=\"completed\"}",
                 "runner_queue_depth", "runner_active_runs", "runner_ai_calls_total", "runner_ai_tokens_total",
                 "runner_task_duration_seconds_bucket", "runner_runs_accepted_total"):
        assert name in text, name
    spec = service.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path, method in (("/api/v1/runs", "post"), ("/api/v1/runs", "get"), ("/api/v1/runs/{run_id}", "get"),
                         ("/api/v1/runs/{run_id}/events", "get"), ("/api/v1/runs/{run_id}/cancel", "post"),
                         ("/api/v1/runs/{run_id}/last", "get"), ("/api/v1/runs/{run_id}/report", "get"),
                         ("/api/v1/health", "get"), ("/api/v1/status", "get"), ("/api/v1/process", "post"),
                         ("/run", "post"), ("/tasks/{run_id}", "get"), ("/tasks/{run_id}/cancel", "post"),
                         ("/files/last/{last_id}", "get"), ("/health", "get"), ("/ready", "get"),
                         ("/metrics", "get"), ("/openapi.json", "get")):
        assert method in spec["paths"][path], (path, method)


def test_the_accepted_run_is_on_disk_before_the_answer(service):
    answer = post_run(service, one_task("durable"))
    run_id = answer.json()["id"]
    log = (service.out / "runs" / "accepted.jsonl").read_bytes()
    records = [json.loads(line) for line in log.splitlines()]
    accepted = [r for r in records if r.get("t") == "accepted" and r["id"] == run_id]
    assert len(accepted) == 1
    assert json.loads(accepted[0]["document"])["id"] == "durable"


def test_a_run_refused_by_the_preflight_is_422(tmp_path):
    server = RunnerService(tmp_path / "out").start()
    try:
        answer = post_run(server, sleeping())
        assert answer.status_code == 422
        assert "RUNNER_ENABLE_SYSTEM_COMMANDS" in answer.json()["error"]
    finally:
        server.stop()


def test_requests_without_the_token_are_401_except_the_probes(tmp_path):
    server = RunnerService(tmp_path / "out", token="s3cret-token").start()
    try:
        bare = requests.Session()
        for path in ("/api/v1/runs", "/api/v1/status", "/tasks/x", "/openapi.json"):
            assert bare.get(server.url + path, timeout=30).status_code == 401, path
        wrong = bare.get(server.url + "/api/v1/runs", headers={"Authorization": "Bearer s3cret-tokem"}, timeout=30)
        assert wrong.status_code == 401
        assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert bare.post(server.url + "/api/v1/runs", data=json.dumps(one_task()), timeout=30).status_code == 401
        for path in ("/health", "/ready", "/metrics", "/api/v1/health"):
            assert bare.get(server.url + path, timeout=30).status_code == 200, path
        for scheme in ("bearer", "BEARER", "Bearer "):
            answer = bare.get(server.url + "/api/v1/runs", headers={"Authorization": f"{scheme} s3cret-token"},
                              timeout=30)
            assert answer.status_code == 200, scheme
        for value in ("Basic s3cret-token", "s3cret-token", "Bearer", "Bearers3cret-token"):
            answer = bare.get(server.url + "/api/v1/runs", headers={"Authorization": value}, timeout=30)
            assert answer.status_code == 401, value
        spec = requests.get(server.url + "/openapi.json", headers={"Authorization": "Bearer s3cret-token"},
                            timeout=30).json()
        assert spec["paths"]["/health"]["get"]["security"] == []
        assert "security" not in spec["paths"]["/api/v1/runs"]["get"]
        answer = post_run(server, one_task())
        assert answer.status_code == 202
        assert server.wait_for(answer.json()["id"])["status"] == "success"
        assert "s3cret-token" not in server.log()
    finally:
        server.stop()


def test_a_non_loopback_address_without_a_token_is_refused(tmp_path):
    import os
    import subprocess
    import sys

    environ = {name: value for name, value in os.environ.items() if not name.startswith("RUNNER_")}
    completed = subprocess.run([sys.executable, "-m", "runner", "serve", "--host", "0.0.0.0", "--port", "0",
                                "--out", str(tmp_path / "out")], env=environ, capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 2
    assert "RUNNER_API_TOKEN" in completed.stderr


def test_a_second_server_on_the_same_output_directory_is_refused(service):
    import os
    import subprocess
    import sys

    environ = {name: value for name, value in os.environ.items() if not name.startswith("RUNNER_")}
    completed = subprocess.run([sys.executable, "-m", "runner", "serve", "--port", "0", "--out", str(service.out)],
                               env=environ, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "another runner service" in completed.stderr


def test_a_full_queue_is_429_and_runs_start_by_priority(tmp_path):
    server = RunnerService(tmp_path / "out", environ={
        "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": SLEEP,
        "RUNNER_MAX_CONCURRENT_RUNS": "1", "RUNNER_MAX_QUEUED_RUNS": "2", "RUNNER_GRACE_SECONDS": "0.2"}).start()
    try:
        blocker = post_run(server, sleeping("blocker")).json()["id"]
        server.wait_for(blocker, ("running",))
        low = post_run(server, one_task("low"), params={"priority": "low"})
        high = post_run(server, one_task("high"), params={"priority": "high"})
        assert low.status_code == high.status_code == 202
        full = post_run(server, one_task("refused"))
        assert full.status_code == 429
        assert int(full.headers["Retry-After"]) > 0
        server.post(f"/api/v1/runs/{blocker}/cancel")
        low_view = server.wait_for(low.json()["id"])
        high_view = server.wait_for(high.json()["id"])
        assert high_view["started_at"] <= low_view["started_at"]
        assert high_view["status"] == low_view["status"] == "success"
    finally:
        server.stop()


def test_serve_dask_places_the_heavy_tasks_of_each_run_on_the_cluster(tmp_path):
    server = RunnerService(tmp_path / "out", extra_args=["--dask", "local:1"]).start(timeout=120)
    try:
        document = {"id": "heavy", "title": "heavy", "tasks": [
            {"id": "data", "description": "sort", "parameters": {
                "task_type": "data_processing", "input": [{"v": 3}, {"v": 1}, {"v": 2}],
                "operations": [{"op": "sort", "by": "v"}]}},
            {"id": "ask", "description": "hello", "dependencies": ["data"]}]}
        run_id = post_run(server, document).json()["id"]
        assert server.wait_for(run_id, timeout=120)["status"] == "success"
        results = server.get(f"/api/v1/runs/{run_id}/last").json()["task_results"]
        assert results["data"]["output"]["result"] == [{"v": 1}, {"v": 2}, {"v": 3}]
        assert results["data"]["metadata"]["worker"]["address"].startswith("tcp://127.0.0.1:")
        assert "worker" not in results["ask"]["metadata"]
    finally:
        server.stop()


def test_each_last_file_of_the_service_is_published_to_nats(tmp_path):
    from nats_server import NatsServer, Subscriber, decode_last_file_message

    nats = NatsServer().start()
    subscriber = None
    server = RunnerService(tmp_path / "out", environ={"RUNNER_NATS_URL": nats.url,
                                                      "RUNNER_NATS_SUBJECT": "service.last"}).start()
    try:
        subscriber = Subscriber(nats.url, "service.last")
        ids = [post_run(server, one_task(f"published{n}")).json()["id"] for n in range(2)]
        last_ids = {server.wait_for(run_id)["last_id"] for run_id in ids}
        messages = [decode_last_file_message(data) for data in subscriber.until_sentinel()]
        assert {message["ID"] for message in messages} == last_ids
        assert len(messages) == 2
    finally:
        if subscriber is not None:
            subscriber.close()
        server.stop()
        nats.stop()


def test_runs_share_one_ai_client_and_its_in_flight_limit(tmp_path):
    from ai_server import AIServer

    ai = AIServer(delay=0.2)
    server = RunnerService(tmp_path / "out", environ={
        "RUNNER_AI_SERVICE_URL": ai.base_url, "RUNNER_AI_PROVIDER": "openai", "RUNNER_AI_MAX_CONCURRENCY": "2",
        "RUNNER_MAX_CONCURRENT_RUNS": "4"}).start()
    try:
        document = {"id": "wide", "title": "wide", "tasks": [
            {"id": f"ask{n}", "description": f"Question {n}"} for n in range(4)]}
        ids = [post_run(server, document).json()["id"] for _ in range(4)]
        for run_id in ids:
            assert server.wait_for(run_id)["status"] == "success"
        assert len(ai.seen) == 16
        # Four runs of four AI tasks at once, and never more than the service's limit in flight.
        assert ai.max_in_flight == 2
        assert ai.connections <= 2
    finally:
        server.stop()
        ai.close()


def test_concurrent_posts_with_one_idempotency_key_make_one_run(service):
    # A document over the inline-parse size is parsed on a worker thread: the requests
    # interleave between the key's check and the run's record; still one run.
    import threading
    document = one_task("idem-race")
    document["tasks"][0]["description"] = "d" * 70000
    body, key = json.dumps(document), {"Idempotency-Key": "race-1"}
    answers, barrier = [], threading.Barrier(6)

    def post():
        barrier.wait()
        answer = post_run(service, body, headers=key)
        answers.append((answer.status_code, answer.json().get("id")))
    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({run_id for _, run_id in answers}) == 1, answers
    assert sorted(status for status, _ in answers) == [200] * 5 + [202], answers
    listed = service.get("/api/v1/runs?limit=1000").json()
    assert len([run for run in listed["runs"] if run["alt_id"] == "idem-race"]) == 1


def test_a_run_named_by_an_idempotency_key_can_be_read_as_soon_as_it_is_answered(service):
    # Requests with the key of a run whose record is still being fsynced wait for it: their
    # answer never names a run that a GET cannot find yet.
    import threading
    seen = []

    def post_then_read(key, barrier):
        barrier.wait()
        answer = post_run(service, one_task("idem-read"), headers={"Idempotency-Key": key})
        run_id = answer.json().get("id")
        seen.append((key, answer.status_code, run_id, service.get(f"/api/v1/runs/{run_id}").status_code))
    for round_number in range(6):
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=post_then_read, args=(f"read-{round_number}", barrier)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(seen) == 48
    assert [entry for entry in seen if entry[3] != 200] == []
    for round_number in range(6):
        answers = [entry for entry in seen if entry[0] == f"read-{round_number}"]
        assert len({run_id for _, _, run_id, _ in answers}) == 1, answers
        assert sorted(status for _, status, _, _ in answers) == [200] * 7 + [202], answers


def test_a_traceparent_header_makes_the_run_join_that_trace(service):
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = post_run(service, one_task("traced"), headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert answer.status_code == 202, answer.text
    view = service.wait_for(answer.json()["id"])
    assert view["status"] == "success"
    execution = service.get(f"/api/v1/runs/{view['id']}/last").json()["execution"]
    assert execution["trace_id"] == trace_id
    assert execution["trace_parent_span_id"] == parent
    # A value that is not a traceparent is ignored, as the W3C text asks: the run is not traced.
    ignored = post_run(service, one_task("untraced"), headers={"traceparent": "00-nothex-00f067aa0ba902b7-01"})
    assert ignored.status_code == 202, ignored.text
    view = service.wait_for(ignored.json()["id"])
    assert view["status"] == "success"
    assert "trace_id" not in service.get(f"/api/v1/runs/{view['id']}/last").json()["execution"]
