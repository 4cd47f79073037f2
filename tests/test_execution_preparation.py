"""Honest task times: what a task type needs is made ready before the run's clock starts,
and its start-up is recorded apart, in the execution facts' `preparation`."""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import runner.ai
from runner.execution import execute
from runner.execution import prompt_templates as templates

DEMO = Path(__file__).resolve().parent.parent / "examples" / "alt" / "demo.json"
SLOW_START_SECONDS = 0.3


def stamp_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def ai_results(outcome):
    return [r for r in outcome.results.values() if r.metadata.get("task_type") == "ai_prompt"]


def test_the_ai_clients_start_up_is_recorded_apart_from_the_tasks(monkeypatch):
    made = []
    real = runner.ai.client_from_environment

    def slow_to_start(*args):
        """The real client, after the start-up an HTTP client can take (importing requests,
        a session, a TLS context): long enough to stand out from any echo task."""
        time.sleep(SLOW_START_SECONDS)
        client = real(*args)
        made.append(time.time())
        return client

    monkeypatch.setattr(runner.ai, "client_from_environment", slow_to_start)
    outcome = execute(DEMO.read_bytes(), write=False, environ={})
    assert outcome.all_completed
    assert len(made) == 1                                       # one client for the run
    preparation = outcome.facts["preparation"]
    assert preparation["ai_client_ms"] >= SLOW_START_SECONDS * 1000
    assert preparation["duration_ms"] >= preparation["ai_client_ms"]
    tasks = ai_results(outcome)
    assert len(tasks) == 2
    for result in tasks:
        # The client existed before the task's clock started (stamps have ms resolution).
        assert stamp_seconds(result.started_at) >= int(made[0] * 1000) / 1000
        assert result.metadata["ai"]["provider"] == "echo"
    # The run's own clock starts after the preparation too.
    assert stamp_seconds(outcome.facts["started_at"]) >= int(made[0] * 1000) / 1000


def test_prompt_templates_are_compiled_before_their_tasks_start(monkeypatch):
    compiled = {}
    real = templates.compile_prompt

    def recording(text):
        result = real(text)
        compiled[text] = time.time()
        return result

    monkeypatch.setattr(templates, "compile_prompt", recording)
    document = json.loads(DEMO.read_bytes())
    outcome = execute(document, write=False, environ={})
    assert outcome.all_completed
    prompts = {t["id"]: (t.get("parameters") or {}).get("prompt", t["description"]) for t in document["tasks"]}
    assert "templates_ms" in outcome.facts["preparation"]
    for result in ai_results(outcome):
        prompt = prompts[result.task_id]
        assert prompt in compiled, f"{result.task_id}: its template was compiled inside the task"
        assert stamp_seconds(result.started_at) >= int(compiled[prompt] * 1000) / 1000


def test_a_run_without_ai_tasks_makes_no_client(monkeypatch):
    def refuse(*args):
        raise AssertionError("a client was made for a run without AI tasks")

    monkeypatch.setattr(runner.ai, "client_from_environment", refuse)
    outcome = execute({"id": "no_ai", "title": "t", "tasks": [
        {"id": "a", "description": "a", "parameters": {"task_type": "generic"}}]}, write=False, environ={})
    assert outcome.all_completed
    assert "ai_client_ms" not in outcome.facts["preparation"]


def test_a_bad_ai_configuration_still_fails_each_ai_task_and_only_those():
    outcome = execute({"id": "bad_ai", "title": "t", "tasks": [
        {"id": "ask", "description": "Say hello"},
        {"id": "ask_again", "description": "Say hello again"},
        {"id": "keep", "description": "k", "parameters": {"task_type": "generic"}}]},
        write=False, environ={"RUNNER_AI_PROVIDER": "nonsense"})
    for task_id in ("ask", "ask_again"):
        result = outcome.results[task_id]
        assert result.status == "failed"
        assert result.error.startswith("AI configuration: RUNNER_AI_PROVIDER='nonsense'")
        assert len(result.metadata["attempts"]) == 1             # permanent: not retried
    assert outcome.results["keep"].status == "completed"


def test_a_template_is_compiled_once_for_validation_and_the_run(monkeypatch):
    made = []
    real = templates._ENVIRONMENT.from_string

    def counting(source, *args, **kwargs):
        made.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(templates._ENVIRONMENT, "from_string", counting)
    monkeypatch.setattr(templates, "_RECENTLY_COMPILED", {})
    prompt = "Say {{ task.id }} once " + str(time.time())      # a template no earlier test compiled
    outcome = execute({"id": "once", "title": "t", "tasks": [
        {"id": "a", "description": "a", "parameters": {"prompt": prompt}},
        {"id": "b", "description": "b", "parameters": {"prompt": prompt}}]}, write=False, environ={})
    assert outcome.all_completed
    assert made == [prompt]
