"""Users' own task types in Python: registered functions (sync and async), a run's handlers=,
their parameters schema checked before anything runs, retries, timeouts, the workspace
rules, and resume's key (the handler's name and version)."""
from __future__ import annotations

import asyncio
import threading

import pytest

import runner
from runner import librunner
from runner.execution import execute
from runner.execution import task_types
from runner.execution.resume import plan, resume


pytestmark = pytest.mark.usefixtures("task_type_registry")   # each test's registrations removed after it


def alt(*tasks) -> dict:
    return {"id": "own", "title": "Own types", "tasks": list(tasks)}


def task(task_id: str, task_type: str, deps=(), **fields) -> dict:
    parameters = {"task_type": task_type, **fields.pop("parameters", {})}
    return {"id": task_id, "description": task_id, "dependencies": list(deps), "parameters": parameters, **fields}


def results_of(outcome) -> dict:
    return {k: v.to_dict() for k, v in outcome.results.items()}


def test_a_registered_function_gets_its_parameters_and_its_dependencies_outputs(tmp_path):
    @runner.task_type("add")
    def add(t):
        t.log.info("adding %s", t.parameters["n"])
        return {"sum": t.parameters["n"] + sum(d["sum"] for d in t.deps.values()), "attempt": t.attempt,
                "mode": t.mode, "id": t.id}

    outcome = execute(alt(task("a", "add", parameters={"n": 1}), task("b", "add", parameters={"n": 2}),
                          task("c", "add", ["a", "b"], parameters={"n": 10})), tmp_path, environ={})
    results = results_of(outcome)
    assert results["c"]["status"] == "completed"
    assert results["c"]["output"] == {"sum": 13, "attempt": 1, "mode": "normal", "id": "c"}
    assert results["a"]["metadata"]["log"] == ["INFO adding 1"]
    assert results["a"]["metadata"]["task_type"] == "add"
    assert task_types.lookup("add").origin == "python"


def test_the_built_in_types_are_registrations_and_cannot_be_replaced():
    for name in ("ai_prompt", "data_processing", "file_operation", "system_command", "generic"):
        assert task_types.lookup(name).origin == "built-in"
    with pytest.raises(task_types.TaskTypeError, match="built in"):
        runner.register_task_type("generic", lambda t: None)
    with pytest.raises(task_types.TaskTypeError, match="non-empty"):
        runner.register_task_type("", lambda t: None)


def test_async_handlers_run_on_the_runs_event_loop(tmp_path):
    threads = set()

    async def wait_then_answer(t):
        threads.add(threading.current_thread().name)
        await asyncio.sleep(0.01)
        return t.parameters["n"] * 2

    outcome = execute(alt(*[task(f"t{i}", "later", parameters={"n": i}) for i in range(50)]), tmp_path,
                      environ={}, max_concurrency=50, handlers={"later": wait_then_answer})
    results = results_of(outcome)
    assert [results[f"t{i}"]["output"] for i in range(50)] == [i * 2 for i in range(50)]
    assert threads == {"runner-async"}


def test_a_raising_handler_is_retried_and_its_error_recorded(tmp_path):
    calls = []

    def flaky(t):
        calls.append(t.attempt)
        if t.attempt < 3:
            raise RuntimeError(f"attempt {t.attempt} broke")
        return "fine"

    outcome = execute(alt(task("f", "flaky", retry_count=2), task("g", "broken", retry_count=1)), tmp_path,
                      environ={"RUNNER_RETRY_BASE_SECONDS": "0.01"},
                      handlers={"flaky": flaky, "broken": lambda t: 1 / 0})
    results = results_of(outcome)
    assert calls == [1, 2, 3]
    assert results["f"]["status"] == "completed" and results["f"]["output"] == "fine"
    assert [a["error"] for a in results["f"]["metadata"]["attempts"]][:2] == [
        "RuntimeError: attempt 1 broke", "RuntimeError: attempt 2 broke"]
    assert results["g"]["status"] == "failed"
    assert results["g"]["error"] == "ZeroDivisionError: division by zero"
    assert len(results["g"]["metadata"]["attempts"]) == 2


def test_a_handler_past_its_timeout_is_reported_timeout_and_its_late_result_dropped(tmp_path):
    release, saw_cancel = threading.Event(), threading.Event()

    def stubborn(t):
        release.wait(30)              # ignores t.cancelled, as a thread cannot be killed
        if t.cancelled.is_set():
            saw_cancel.set()
        return "late"

    async def sleepy(t):
        await asyncio.sleep(30)
        return "never"

    try:
        outcome = execute(alt(task("s", "stubborn", timeout_seconds=0.2), task("a", "sleepy", timeout_seconds=0.2),
                              task("after", "generic", ["s"])), tmp_path, environ={},
                          handlers={"stubborn": stubborn, "sleepy": sleepy})
    finally:
        release.set()
    results = results_of(outcome)
    assert results["s"]["status"] == "timeout" and results["s"]["output"] is None
    assert results["s"]["error"].startswith("timed out after 0.2 s")
    assert results["a"]["status"] == "timeout"
    assert results["after"]["status"] == "skipped"
    assert saw_cancel.wait(10)


def test_a_runs_own_handlers_are_not_seen_by_other_runs(tmp_path):
    outcome = execute(alt(task("x", "only_here")), tmp_path, environ={}, handlers={"only_here": lambda t: 7})
    assert results_of(outcome)["x"]["output"] == 7
    with pytest.raises(librunner.AltValidationError) as refused:
        execute(alt(task("x", "only_here")), tmp_path, environ={})
    message = str(refused.value)
    assert "/tasks/0/parameters/task_type" in message and "is a plugin missing?" in message


def test_an_unknown_type_is_refused_with_suggestions():
    runner.register_task_type("translate", lambda t: None)
    with pytest.raises(librunner.AltValidationError) as refused:
        librunner.parse_alt_file(__import__("json").dumps(alt(task("x", "translat"))))
    (issue,) = refused.value.issues
    assert issue.path == "/tasks/0/parameters/task_type"
    assert "did you mean 'translate'?" in issue.message and "is a plugin missing?" in issue.message
    assert "generic" in issue.message


SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}, "to": {"enum": ["fr", "de"]}},
          "required": ["text"]}


def test_the_parameters_schema_is_checked_before_the_run_with_pointers_and_suggestions(tmp_path):
    ran = []

    @runner.task_type("translate", parameters=SCHEMA)
    def translate(t):
        ran.append(t.id)
        return {"text": t.parameters["text"].upper()}

    import json
    with pytest.raises(librunner.AltValidationError) as refused:
        execute(alt(task("ok", "translate", parameters={"text": "hi"}),
                    task("bad", "translate", parameters={"text": 3, "to": "xx"})), tmp_path, environ={})
    paths = {i.path: i.message for i in refused.value.issues}
    assert set(paths) == {"/tasks/1/parameters/text", "/tasks/1/parameters/to"}
    assert "3 is not of type 'string'" in paths["/tasks/1/parameters/text"]
    assert ran == []
    parsed = librunner.parse_alt_file(json.dumps(alt(task("w", "translate", parameters={"text": "a", "too": "fr"}))))
    (warning,) = parsed.warnings
    assert warning.path == "/tasks/0/parameters/too"
    assert "did you mean 'to'?" in warning.message


def test_the_task_workspace_follows_file_operations_rules(tmp_path):
    workspace = tmp_path / "ws"

    def files(t):
        t.workspace.write_text("notes/a.txt", "alpha")
        out = {"read": t.workspace.read_text("notes/a.txt"), "listed": [e["name"] for e in t.workspace.list("notes")]}
        t.workspace.read_text("../outside.txt")
        return out

    outcome = execute(alt(task("w", "files")), tmp_path / "out", environ={}, workspace=workspace,
                      handlers={"files": files})
    result = results_of(outcome)["w"]
    assert result["status"] == "failed"
    assert "outside.txt" in result["error"]
    assert (workspace / "notes" / "a.txt").read_text() == "alpha"


def test_resume_reuses_a_user_tasks_result_and_reruns_it_when_its_version_changes(tmp_path):
    calls = []

    def step(t):
        calls.append(t.id)
        return t.id

    runner.register_task_type("step", step, version="1")
    first = execute(alt(task("a", "step"), task("b", "step", ["a"])), tmp_path, environ={})
    assert calls == ["a", "b"]
    assert [t.action for t in plan(first.directory, environ={}).tasks] == ["reuse", "reuse"]
    again = resume(first.directory, environ={})
    assert calls == ["a", "b"]
    assert results_of(again)["b"]["metadata"]["reused_from"] == first.last_id

    runner.register_task_type("step", step, version="2")
    reasons = {t.task_id: (t.action, t.reason) for t in plan(first.directory, environ={}).tasks}
    assert reasons == {"a": ("run", "handler's version changed"), "b": ("run", "dependency a re-runs")}
    resume(first.directory, environ={})
    assert calls == ["a", "b", "a", "b"]


def test_an_output_that_is_not_json_fails_the_task_and_says_why(tmp_path):
    outcome = execute(alt(task("s", "odd")), tmp_path, environ={}, handlers={"odd": lambda t: {"x": {1, 2}}})
    result = results_of(outcome)["s"]
    assert result["status"] == "failed"
    assert result["error"].startswith("the task's result cannot be recorded")


def test_chaos_faults_reach_user_tasks_too(tmp_path):
    ran = []
    outcome = execute(alt(*[task(f"c{i}", "counted", retry_count=3) for i in range(20)]), tmp_path,
                      environ={"RUNNER_CHAOS_FAULT_RATE": "0.5", "RUNNER_RETRY_BASE_SECONDS": "0.01"},
                      mode="chaos", seed=7, handlers={"counted": lambda t: ran.append(t.id) or t.seed})
    faults = outcome.facts["faults"]
    assert faults and all(f["task_id"].startswith("c") for f in faults)
    completed = [r for r in results_of(outcome).values() if r["status"] == "completed"]
    assert completed and all(r["output"] == 7 for r in completed)


def test_task_ai_calls_are_recorded_and_replayed_with_the_server_stopped(tmp_path):
    from ai_server import AIServer

    def summarise(t):
        first = t.ai.complete(f"Summarise {t.parameters['topic']}", temperature=0.2)
        return {"text": first, "again": t.ai.complete("Shorter: " + first, model="small-model")}

    cassette = tmp_path / "calls.jsonl"
    document = alt(task("s", "summarise", parameters={"topic": "cassettes"}))
    with AIServer() as server:
        env = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai", "RUNNER_AI_MODEL": "m"}
        recorded = execute(document, tmp_path / "rec", environ={**env, "RUNNER_AI_RECORD": str(cassette)},
                           handlers={"summarise": summarise})
        assert len(server.seen) == 2
    first = results_of(recorded)["s"]
    assert first["status"] == "completed", first["error"]
    assert first["metadata"]["ai"]["model"] == "small-model"
    assert len(cassette.read_text().splitlines()) == 2
    replayed = execute(document, tmp_path / "rep", environ={**env, "RUNNER_AI_REPLAY": str(cassette)},
                       handlers={"summarise": summarise})
    assert results_of(replayed)["s"]["output"] == first["output"]


class _Odd(BaseException):
    pass


def _raise(error):
    def handler(t):
        raise error
    return handler


def _raise_async(error):
    async def handler(t):
        raise error
    return handler


def test_a_handler_raising_systemexit_keyboardinterrupt_or_a_baseexception_fails_its_task(tmp_path):
    # Not a hang until the timeout (the attempt was never reported), not a dead worker or
    # event loop: the task fails naming what was raised, and the run goes on.
    errors = {"exit": SystemExit(3), "interrupt": KeyboardInterrupt(), "odd": _Odd("odd")}
    handlers = {f"{name}_sync": _raise(error) for name, error in errors.items()}
    handlers.update({f"{name}_async": _raise_async(error) for name, error in errors.items()})
    handlers["fine"] = lambda t: "fine"
    tasks = [task(name, name, timeout_seconds=120) for name in handlers if name != "fine"]
    tasks.append(task("after", "fine", deps=()))
    outcome = execute(alt(*tasks), tmp_path, environ={}, handlers=handlers)
    results = results_of(outcome)
    assert results["after"]["status"] == "completed"
    for name in errors:
        for way in ("sync", "async"):
            result = results[f"{name}_{way}"]
            assert result["status"] == "failed", (name, way, result)
    assert results["exit_sync"]["error"] == "SystemExit: 3"
    assert results["interrupt_async"]["error"].startswith("KeyboardInterrupt")
    assert results["odd_sync"]["error"] == "_Odd: odd"
