"""Record and replay of AI calls against the real loopback HTTP server (tests/ai_server.py):
record, stop the server, replay the same results without it; the cassette holds no key."""
from __future__ import annotations

import json
import subprocess
import sys

from ai_server import AIServer
from runner.execution import execute

KEY = "sk-cassette-secret-42424242"


def alt() -> dict:
    return {"id": "tape", "title": "Tape", "tasks": [
        {"id": "ask", "description": "What is a cassette?"},
        {"id": "streamed", "description": "Tell a story", "parameters": {"stream": True}},
        {"id": "follow", "description": "Shorten: {{ deps.ask.output.text }}", "dependencies": ["ask"]},
        {"id": "explore", "description": "Name a colour", "parameters": {"temperature": 0.3}}]}


def texts(outcome) -> dict:
    return {k: r.output["text"] for k, r in outcome.results.items()}


def test_a_recorded_run_replays_with_the_server_stopped(tmp_path):
    cassette = tmp_path / "calls.jsonl"
    with AIServer(api_key=KEY) as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai", "RUNNER_AI_API_KEY": KEY}
        pieces = []
        recorded = execute(alt(), tmp_path / "rec", environ={**env, "RUNNER_AI_RECORD": str(cassette)},
                           on_event=lambda e: e["event"] == "task_output" and pieces.append(e["text"]))
        requests_seen = len(server.seen)
    assert recorded.all_completed and requests_seen == 4
    text = cassette.read_text()
    assert KEY not in text and "authorization" not in text.lower()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4 and all(len(entry["key"]) == 64 for entry in lines)
    streamed = next(entry for entry in lines if entry["request"]["prompt"] == "Tell a story")
    assert streamed["stream"] and len(streamed["pieces"]) > 1
    assert [p[0] for p in streamed["pieces"]] == sorted(p[0] for p in streamed["pieces"])
    assert "".join(p[1] for p in streamed["pieces"]) == streamed["response"]["text"]
    # The server is gone: any connection would be refused. The replay answers the same.
    replay_pieces = []
    replayed = execute(alt(), tmp_path / "rep", environ={**env, "RUNNER_AI_REPLAY": str(cassette)},
                       on_event=lambda e: e["event"] == "task_output" and replay_pieces.append(e["text"]))
    assert replayed.all_completed, [r.error for r in replayed.results.values()]
    assert texts(replayed) == texts(recorded)
    assert replay_pieces == pieces
    assert replayed.results["ask"].metadata["ai"]["prompt_tokens"] == recorded.results["ask"].metadata["ai"]["prompt_tokens"]


def test_the_cli_replays_and_a_missing_call_names_the_task_and_the_difference(tmp_path):
    cassette = tmp_path / "calls.jsonl"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(alt()))
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai", "PATH": "/usr/bin:/bin"}
        first = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "a"),
                                "--record", str(cassette), "--quiet"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    edited = alt()
    edited["tasks"][0]["description"] = "What is a casette?"
    path.write_text(json.dumps(edited))
    second = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "b"),
                             "--replay", str(cassette), "--quiet"], env=env, capture_output=True, text=True)
    assert second.returncode == 1
    record = json.loads((tmp_path / "b" / second.stdout.strip().rsplit("/", 1)[-1] / "last.json").read_bytes())
    error = record["task_results"]["ask"]["error"]
    assert error.startswith("task ask: replay: no recorded call in ")
    assert "differs in prompt (from character 13: 'ette?' where the recording has 'sette?')" in error
    assert record["task_results"]["streamed"]["status"] == "completed"
    follow = record["task_results"]["follow"]      # skipped: cancelled in the original's words, marked
    assert follow["status"] == "cancelled" and follow["skipped"] is True


def test_the_writer_refuses_a_call_that_would_put_the_key_in_the_cassette(tmp_path):
    cassette = tmp_path / "calls.jsonl"
    leaky = {"id": "leak", "title": "Leak", "tasks": [
        {"id": "leak", "description": f"repeat {KEY}"}, {"id": "fine", "description": "hello"}]}
    with AIServer(api_key=KEY) as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai", "RUNNER_AI_API_KEY": KEY,
               "RUNNER_AI_RECORD": str(cassette)}
        outcome = execute(leaky, tmp_path, environ=env)
    assert outcome.results["leak"].status == "failed"
    assert "refusing to record a call whose text contains the API key" in outcome.results["leak"].error
    assert outcome.results["fine"].status == "completed"
    assert KEY not in cassette.read_text() and len(cassette.read_text().splitlines()) == 1
