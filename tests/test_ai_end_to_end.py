"""ALT files with ai_prompt tasks, run by the executor against the loopback server and the echo default."""
from __future__ import annotations

import threading

import pytest

from ai_server import AIServer, CutStream, Redirect, Reply, Status
from runner.ai import AIClient, AISettings as AIConfig
from runner.execution import execute, modes

KEY = "sk-E2E-LEAKCHECK-31d9"
FAST_RETRIES = {"RUNNER_RETRY_BASE_SECONDS": "0", "RUNNER_RETRY_MAX_SECONDS": "0"}


def alt_file(**metadata) -> dict:
    return {"id": "ai_demo", "title": "AI demo", "metadata": metadata, "tasks": [
        {"id": "ask", "description": "Say hello", "retry_count": 2, "parameters": {"task_type": "ai_prompt"}},
        {"id": "improve", "description": "Improve it", "dependencies": ["ask"], "retry_count": 2,
         "parameters": {"task_type": "ai_prompt", "prompt": "Improve: {{ deps.ask.output.text }}",
                        "model": "task-model", "stream": True}},
    ]}


@pytest.fixture
def server():
    with AIServer() as running:
        yield running


def service(server, **extra) -> dict:
    return {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_API_KEY": KEY, **FAST_RETRIES, **extra}


def test_with_no_service_the_echo_default_answers(tmp_path):
    outcome = execute(alt_file(), tmp_path, environ={})
    ask, improve = outcome.results["ask"], outcome.results["improve"]
    assert ask.status == improve.status == "completed"
    assert ask.output == {"text": "echo: Say hello", "model": "echo", "provider": "echo"}
    assert improve.output["text"] == "echo: Improve: echo: Say hello"
    assert improve.metadata["ai"]["model"] == "echo" and improve.metadata["ai"]["completion_tokens"] == 5


def test_against_the_loopback_service_results_carry_text_model_tokens_and_timings(server, tmp_path):
    outcome = execute(alt_file(model="alt-model"), tmp_path, environ=service(server))
    ask, improve = outcome.results["ask"], outcome.results["improve"]
    assert ask.output == {"text": "reply to: Say hello", "model": "alt-model", "provider": "openai"}
    assert improve.output["text"] == "reply to: Improve: reply to: Say hello"
    ai = improve.metadata["ai"]
    assert (ai["model"], ai["prompt_tokens"], ai["completion_tokens"]) == ("task-model", 5, 7)
    assert ai["latency_ms"] > 0 and ai["time_to_first_token_ms"] is not None
    assert [seen.body["model"] for seen in server.seen] == ["alt-model", "task-model"]
    assert server.seen[1].body["stream"] is True
    tokens = outcome.record["statistics"]["tokens"]
    assert tokens["alt-model"]["completion_tokens"] == 4 and tokens["task-model"]["prompt_tokens"] == 5


def test_the_executor_retries_429_500_and_cut_streams_then_succeeds(server, tmp_path):
    server.plan(Status(429, "slow down", {"Retry-After": "0"}), Status(500, "oops"), Reply(), CutStream(1))
    outcome = execute(alt_file(), tmp_path, environ=service(server))
    assert outcome.results["ask"].status == outcome.results["improve"].status == "completed"
    attempts = outcome.results["ask"].metadata["attempts"]
    assert [a["outcome"] for a in attempts] == ["failed", "failed", "completed"]
    assert "HTTP 429: slow down" in attempts[0]["error"] and "HTTP 500: oops" in attempts[1]["error"]
    assert [a["outcome"] for a in outcome.results["improve"].metadata["attempts"]] == ["failed", "completed"]


def test_a_4xx_fails_the_task_at_once_with_the_servers_message_and_no_key(server, tmp_path):
    server.plan(Status(400, f"Invalid model; your key {KEY} may not use it"))
    outcome = execute(alt_file(), tmp_path, environ=service(server))
    ask = outcome.results["ask"]
    assert ask.status == "failed" and len(ask.metadata["attempts"]) == 1
    assert "Invalid model; your key [redacted] may not use it" in ask.error
    assert outcome.results["improve"].status == "skipped"
    written = b"".join(path.read_bytes() for path in outcome.directory.rglob("*") if path.is_file())
    assert KEY.encode() not in written and KEY.encode() not in outcome.json


def test_a_redirect_fails_the_task_at_once_and_the_key_stays_with_the_configured_service(server, tmp_path):
    with AIServer() as elsewhere:
        server.plan(Redirect(elsewhere.base_url + "/messages", 307))
        outcome = execute(alt_file(), tmp_path, environ=service(server, RUNNER_AI_PROVIDER="anthropic"))
        assert elsewhere.seen == []
    ask = outcome.results["ask"]
    assert ask.status == "failed" and len(ask.metadata["attempts"]) == 1
    assert "HTTP 307: the service answered with a redirect" in ask.error
    assert "RUNNER_AI_SERVICE_URL" in ask.error and elsewhere.base_url not in ask.error
    written = b"".join(path.read_bytes() for path in outcome.directory.rglob("*") if path.is_file())
    assert KEY.encode() not in written and KEY.encode() not in outcome.json


def test_dream_mode_sends_anthropic_a_temperature_it_accepts_and_no_top_p(server, tmp_path):
    outcome = execute(alt_file(), tmp_path, mode="dream", environ=service(server, RUNNER_AI_PROVIDER="anthropic"))
    assert outcome.results["ask"].status == "completed"
    body = server.seen[0].body
    assert body["temperature"] == 1.0 and "top_p" not in body
    # metadata.ai.sampling records what was sent, not what the mode asked for.
    assert outcome.results["ask"].metadata["ai"]["sampling"] == {"temperature": 1.0, "max_tokens": 1024}


def test_dream_mode_keeps_its_values_where_the_provider_allows_them(server, tmp_path):
    outcome = execute(alt_file(), tmp_path, mode="dream", environ=service(server))
    body = server.seen[0].body
    assert (body["temperature"], body["top_p"]) == (1.2, 0.95)
    assert outcome.results["ask"].metadata["ai"]["sampling"] == {"temperature": 1.2, "top_p": 0.95}


def test_explore_temperatures_stop_at_the_providers_maximum(server, tmp_path):
    alt = {"id": "explore_demo", "title": "Explore", "tasks": [
        {"id": "ideas", "description": "Ideas", "parameters": {"task_type": "ai_prompt", "explore_samples": 10}}]}
    outcome = execute(alt, tmp_path, mode="explore", environ=service(server))
    result = outcome.results["ideas"]
    assert result.status == "completed"
    sent = [seen.body["temperature"] for seen in server.seen]
    assert sent == [0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9, 2.0, 2.0, 2.0]
    assert [a["sampling"]["temperature"] for a in result.metadata["ai"]["alternatives"]] == sent


def test_sampling_for_gives_the_values_each_provider_is_sent():
    assert modes.sampling_for("dream", {}, provider="openai") == {"temperature": 1.2, "top_p": 0.95}
    assert modes.sampling_for("dream", {}, provider="anthropic") == {"temperature": 1.0, "max_tokens": 1024}
    assert modes.sampling_for("dream", {"temperature": 0.4}, provider="anthropic") == \
        {"temperature": 0.4, "max_tokens": 1024}
    assert modes.sampling_for("explore", {}, 9, provider="openai") == {"temperature": 2.0}
    assert modes.sampling_for("explore", {}, 1, provider="anthropic") == {"temperature": 0.9, "max_tokens": 1024}
    assert modes.sampling_for("explore", {}, 2, provider="anthropic") == {"temperature": 1.0, "max_tokens": 1024}
    assert modes.sampling_for("dream", {}, provider="echo") == {"temperature": 1.2, "top_p": 0.95}
    assert modes.sampling_for("dream", {}) == {"temperature": 1.2, "top_p": 0.95}    # as asked for


def test_one_client_limits_requests_across_runs_running_at_once(tmp_path):
    def many(alt_id):
        return {"id": alt_id, "title": alt_id, "tasks": [
            {"id": f"t{i}", "description": f"question {i}", "parameters": {"task_type": "ai_prompt"}}
            for i in range(8)]}

    with AIServer(delay=0.05) as server, \
            AIClient(AIConfig(provider="openai", base_url=server.base_url, max_concurrency=3)) as shared:
        outcomes = {}
        runs = [threading.Thread(target=lambda name=name: outcomes.setdefault(name, execute(
                    many(name), tmp_path / name, max_concurrency=8, ai_client=shared, environ={})))
                for name in ("first", "second")]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert all(r.status == "completed" for o in outcomes.values() for r in o.results.values())
        assert len(server.seen) == 16
        assert 2 <= server.max_in_flight <= 3
