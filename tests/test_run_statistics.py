"""The statistics a run accumulates as its results are recorded (core RunStatistics): the
LAST record built from them is byte for byte the one built by reading every result again,
on real runs of every kind (failures, retries, skips, chaos faults, AI accounting, a
resume's reused results, control-flow instances, an interrupted run); and a result that
went into the results some other way is noticed, never miscounted."""
from __future__ import annotations

import json

import orjson
import pytest

import runner
from runner import librunner
from runner.execution import execute
from runner.execution.resume import resume

from tests.conftest import dumps

COMMANDS = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,sleep,false",
            "RUNNER_RETRY_BASE_SECONDS": "0.01"}


def generic(task_id, deps=(), **fields):
    return {"id": task_id, "description": task_id, "dependencies": list(deps),
            "parameters": {"task_type": "generic", **fields.pop("parameters", {})}, **fields}


def command(task_id, line, deps=(), **fields):
    return {"id": task_id, "description": task_id, "dependencies": list(deps),
            "parameters": {"task_type": "system_command", "command": ["sh", "-c", line]}, **fields}


def observed(**options):
    """execute()/resume() options that keep the run's Execution in the returned list."""
    runs: list = []
    return runs, {**options, "on_execution": runs.append}


def assert_accumulated_as_recomputed(outcome, execution) -> dict:
    """The written last.json took the accumulated figures, and they are those a record
    built from the results alone has: same bytes, same ids."""
    statistics = execution.statistics
    assert statistics.vouches_for(execution.alt, outcome.results)
    written = orjson.loads((outcome.directory / "last.json").read_bytes())
    ids = (written["id"], written["execution_id"], written["created_at"])
    accumulated = librunner.build_last_record(execution.alt, outcome.results, *ids, outcome.facts, statistics)
    recomputed = librunner.build_last_record(execution.alt, dict(outcome.results), *ids, outcome.facts)
    assert librunner.last_json(accumulated) == librunner.last_json(recomputed)
    assert written["statistics"] == json.loads(orjson.dumps(recomputed["statistics"]))
    assert written["summary"] == recomputed["summary"]
    counts = recomputed["statistics"]["status_counts"]
    assert statistics.status_counts() == {**counts, "pending": 0}
    assert execution.counts == {s: counts[s] for s in ("completed", "failed", "timeout", "cancelled", "skipped")}
    return written


def test_failures_retries_skips_and_inline_tasks(tmp_path):
    alt = {"id": "mixed", "title": "Mixed", "tasks": [
        generic("g0"), generic("g1", ["g0"], parameters={"text": "caf\u00e9 \U0001F600"}),
        command("ok", "true", ["g1"]),
        command("bad", "false", ["g0"], retry_count=2),
        command("after_bad", "true", ["bad"]), generic("after_after", ["after_bad"]),
        {"id": "ask", "description": "question", "dependencies": ["g0"]},
        {"id": "ask2", "description": "another", "dependencies": ["ask"], "parameters": {"model": "other"}},
        generic("last", ["ok", "ask2"])]}
    runs, options = observed(environ=COMMANDS)
    outcome = execute(alt, tmp_path, **options)
    written = assert_accumulated_as_recomputed(outcome, runs[0])
    statistics = written["statistics"]
    assert statistics["retries"] == {"total": 2, "tasks": [{"task_id": "bad", "attempts": 3}]}
    assert statistics["status_counts"]["skipped"] == 2 and statistics["status_counts"]["failed"] == 1
    assert statistics["tokens"], "the offline AI answers carry their accounting"


def test_chaos_faults_and_their_retries(tmp_path):
    alt = {"id": "chaos", "title": "Chaos", "mode": "chaos", "tasks": [
        {"id": f"ask{i}", "description": f"question {i}", "retry_count": 2,
         "dependencies": [f"ask{i - 1}"] if i % 3 else []} for i in range(9)] + [generic("g", ["ask0"])]}
    runs, options = observed(seed=7, environ={"RUNNER_CHAOS_FAULT_RATE": "0.5", "RUNNER_RETRY_BASE_SECONDS": "0.01"})
    outcome = execute(alt, tmp_path, **options)
    assert outcome.facts["faults"]
    assert_accumulated_as_recomputed(outcome, runs[0])


def test_a_resume_s_reused_results(tmp_path):
    flag = tmp_path / "flag"
    alt = {"id": "again", "title": "Again", "tasks": [
        generic("a"), command("gate", f"test -e {flag}", ["a"]), generic("b", ["gate"]),
        {"id": "ask", "description": "question"}, generic("c", ["ask"])]}
    first = execute(alt, tmp_path, environ=COMMANDS)
    assert first.results["b"].status == "skipped"
    flag.write_text("")
    runs, options = observed(environ=COMMANDS)
    again = resume(first.directory, **options)
    assert again.results["a"].metadata["reused_from"] == first.last_id
    assert again.results["b"].status == "completed"
    assert_accumulated_as_recomputed(again, runs[0])


def test_control_flow_instances_and_their_resume(tmp_path):
    counter, flag = tmp_path / "counter.txt", tmp_path / "flag"
    doc = {"id": "flow", "title": "control flow", "variables": {"items": [1, 2, 3, 4]}, "tasks": [
        {"id": "m", "for_each": {"variable": "x", "iterable": "items"}, "parameters": {
            "task_type": "system_command",
            "command": ["sh", "-c", f"echo $x >> {counter}; test $x != 2 || test -e {flag}"]}},
        generic("w", parameters={"x": "$x"}, for_each={"variable": "x", "iterable": "items"},
                when={"operator": "gt", "left": "x", "right": 2}),
        generic("after", ["m", "w"])]}
    runs, options = observed(environ=COMMANDS)
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", **options)
    assert first.results["m[1]"].status == "failed" and first.results["w[0]"].status == "skipped"
    assert_accumulated_as_recomputed(first, runs[0])
    flag.write_text("")
    runs, options = observed(environ=COMMANDS)
    again = resume(first.directory, **options)
    assert again.results["m[0]"].metadata["reused_from"] == first.last_id
    assert again.results["after"].status == "completed"
    assert_accumulated_as_recomputed(again, runs[0])


def test_an_interrupted_run(tmp_path):
    alt = {"id": "stop", "title": "Stop", "tasks": [
        generic("g"), command("nap", "sleep 30", ["g"]), command("nap2", "sleep 30"),
        generic("after", ["nap"]), generic("later", ["after"]),
        command("retrying", "false", retry_count=5)]}
    runs = []

    def on_event(event):
        if event["event"] == "task_started" and event["task_id"] == "nap":
            runs[0].interrupt()
    outcome = execute(alt, tmp_path, environ={**COMMANDS, "RUNNER_GRACE_SECONDS": "0.1",
                                               "RUNNER_RETRY_BASE_SECONDS": "5"},
                      on_execution=runs.append, on_event=on_event)
    assert outcome.interrupted and outcome.results["after"].status == "cancelled"
    assert_accumulated_as_recomputed(outcome, runs[0])


# ---- the accumulator on its own -------------------------------------------------------------

def small():
    alt = runner.parse_alt_file(dumps({"id": "s", "title": "S", "tasks": [
        generic("a"), generic("b", ["a"]), generic("c", ["a"]), generic("d", ["b", "c"])]}))
    results: dict = {}
    return alt, results, librunner.RunStatistics(results, alt.tasks)


def result(alt, task_id, status="completed", **fields):
    doc = {"task_id": task_id, "status": status, "output": None, "error": None,
           "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:01.500Z",
           "duration_ms": 1500.25, **fields}
    return runner.task_result_from_dict(doc, alt)


def record(alt, results, statistics=None):
    return librunner.last_json(librunner.build_last_record(alt, results, "L", "E", "2026-01-01T00:00:09.000Z",
                                                           {}, statistics))


def test_a_partial_run_counts_the_tasks_without_a_result_as_pending():
    alt, results, statistics = small()
    statistics.record(0, result(alt, "a", metadata={"attempts": [{}, {}], "ai": {"model": "m", "prompt_tokens": 3}}))
    statistics.record(2, result(alt, "c", "failed", started_at="2026-01-01T00:00:00Z"))     # mixed stamps
    assert statistics.vouches_for(alt, results)
    assert statistics.progress_counts() == {"completed": 1, "failed": 1, "timeout": 0, "cancelled": 0, "skipped": 0}
    assert record(alt, results, statistics) == record(alt, dict(results))
    assert orjson.loads(record(alt, results, statistics))["statistics"]["status_counts"]["pending"] == 2


def test_a_result_recorded_again_keeps_the_counts_and_the_record_reads_the_results_again():
    alt, results, statistics = small()
    statistics.record(0, result(alt, "a"))
    statistics.record(1, result(alt, "b", metadata={"attempts": [{}, {}, {}]}))
    statistics.record(1, result(alt, "b", "failed"))
    assert statistics.progress_counts()["completed"] == 1 and statistics.progress_counts()["failed"] == 1
    assert not statistics.current and not statistics.vouches_for(alt, results)
    assert record(alt, results, statistics) == record(alt, dict(results))


@pytest.mark.parametrize("change", ["added", "replaced", "removed", "another_dict", "wrong_index"])
def test_results_changed_behind_its_back_are_read_again(change):
    alt, results, statistics = small()
    statistics.record(0, result(alt, "a"))
    statistics.record(1, result(alt, "b"))
    given = results
    if change == "added":
        results["c"] = result(alt, "c", "timeout")
    elif change == "replaced":
        results["b"] = result(alt, "b", "cancelled")
    elif change == "removed":
        del results["a"]
    elif change == "another_dict":
        given = dict(results)
    else:
        statistics.record(3, result(alt, "c"))
    assert not statistics.vouches_for(alt, given)
    assert record(alt, given, statistics) == record(alt, dict(given))


def test_it_starts_from_an_empty_dict():
    alt, _, _ = small()
    with pytest.raises(ValueError):
        librunner.RunStatistics({"a": None}, alt.tasks)


def test_random_results_in_random_order_give_the_bytes_of_the_results_read_again():
    """Durations of every type, stamps of mixed forms (and none), attempts, AI accounting of
    any shape, statuses of every kind, tasks without a result: recorded in a random order."""
    import random
    rng = random.Random(31)
    stamps = ["2026-01-01T00:00:{:02d}.{:03d}Z", "2026-01-01T00:00:{:02d}Z", "2026-01-01T02:00:{:02d}.{:03d}+02:00",
              "2026-01-01t00:00:{:02d}.{:03d}z"]
    for round_ in range(40):
        size = rng.randint(1, 60)
        tasks = [generic(f"t{n}", rng.sample([f"t{d}" for d in range(n)], min(n, rng.randint(0, 3))))
                 for n in range(size)]
        alt = runner.parse_alt_file(dumps({"id": "r", "title": "R", "tasks": tasks}))
        results: dict = {}
        statistics = librunner.RunStatistics(results, alt.tasks)
        forms = stamps[:1] if round_ % 3 == 0 else stamps
        order = list(range(size))
        rng.shuffle(order)
        for index in order[:rng.randint(0, size)]:
            doc = {"task_id": f"t{index}", "status": rng.choice(["completed", "failed", "timeout", "cancelled",
                                                                  "skipped", "completed"]),
                   "output": {"n": index}, "error": None,
                   "duration_ms": rng.choice([None, 0, 12, 1.5, 9007199254740991.0, 7.25, 2 ** 40, 0.1, 0.2])}
            if rng.random() < 0.9:
                doc["started_at"] = rng.choice(forms).format(rng.randint(0, 59), rng.randint(0, 999))
            if rng.random() < 0.9:
                doc["completed_at"] = rng.choice(forms).format(rng.randint(0, 59), rng.randint(0, 999))
            metadata = {}
            if rng.random() < 0.5:
                metadata["attempts"] = [{}] * rng.randint(0, 4)
            if rng.random() < 0.5:
                metadata["ai"] = {key: value for key, value in (
                    ("model", rng.choice(["a", "b", None])), ("provider", rng.choice(["p", "q", None])),
                    ("prompt_tokens", rng.choice([3, 2 ** 53 - 1, 0, None])),
                    ("completion_tokens", rng.choice([0, 9, None]))) if rng.random() < 0.8}
            if metadata:
                doc["metadata"] = metadata
            statistics.record(index, runner.task_result_from_dict(doc, alt))
        assert statistics.vouches_for(alt, results)
        execution = {"started_at": "2026-01-01T00:00:00.000Z"} if round_ % 2 else {}
        assert librunner.last_json(librunner.build_last_record(alt, results, "L", "E", "2026-01-01T00:00:09.000Z",
                                                               execution, statistics)) == \
            librunner.last_json(librunner.build_last_record(alt, dict(results), "L", "E", "2026-01-01T00:00:09.000Z",
                                                            execution))


def test_metadata_changed_after_its_result_was_recorded_is_what_the_record_counts(tmp_path):
    """A result's metadata is the one part of it that can still change once recorded (the
    attempts list a progress subscriber is handed; a holder of the Execution editing a
    result before the LAST file is written): the statistics read it when the record is made,
    so last.json never contradicts its own results."""
    document = {"id": "m", "title": "m", "tasks": [
        command("c", "echo hi"), {"id": "u", "description": "u", "parameters": {"task_type": "probe"}}]}

    def appended(event):
        if event["event"] == "task_finished" and event["task_id"] == "c":
            event["attempts"].append(dict(event["attempts"][0], number=2))
    runs, options = observed(on_event=appended, handlers={"probe": lambda task: 1})
    outcome = execute(document, tmp_path / "a", environ=COMMANDS, **options)
    written = assert_accumulated_as_recomputed(outcome, runs[0])
    assert written["statistics"]["retries"]["total"] == 1

    runs = []

    def edited(event):
        if event["event"] == "run_finished":
            metadata = runs[0].results["u"].metadata
            metadata["ai"] = {"model": "m", "provider": "p", "prompt_tokens": 5, "completion_tokens": 7}
            metadata["attempts"] = [{"number": 1}, {"number": 2}, {"number": 3}]
    outcome = execute(document, tmp_path / "b", environ=COMMANDS, on_event=edited, on_execution=runs.append,
                      handlers={"probe": lambda task: 1})
    written = assert_accumulated_as_recomputed(outcome, runs[0])
    assert written["statistics"]["retries"]["total"] == 2
    assert written["statistics"]["tokens"]
