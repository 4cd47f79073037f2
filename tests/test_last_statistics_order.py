"""The LAST record's statistics read each result once in the ALT file's order and walk the
tasks in topological order over what they kept (last_record.pxi, TaskPass). They must be
exactly what one visit of the results in topological order gives: the reference below,
on result sets whose file order, topological order and arrival order all differ."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

import runner
from runner.execution import execute

from tests.conftest import dumps

STATUSES = ("completed", "failed", "timeout", "cancelled", "skipped", "running")


def reference_statistics(alt, results: dict) -> dict:
    """The statistics as one visit per task in topological order makes them: status counts,
    the sum of durations in that order, retried tasks and models in the order met, levels,
    the critical path (ties to the later task) and the span of the stamps."""
    graph = alt.graph
    order = graph.topological_order()
    tasks = alt.tasks
    counts = dict.fromkeys(runner.librunner.TASK_STATUSES, 0)
    total, retries, retried, tokens = 0.0, 0, [], {}
    level, finish, previous = {}, {}, {}
    starts, ends = [], []
    for v in order:
        task = tasks[v]
        result = results.get(task.id)
        status = result.status if result is not None else "pending"
        duration = float(result.duration_ms) if result is not None and result.duration_ms is not None else 0.0
        metadata = result.metadata if result is not None else {}
        counts[status] += 1
        total += duration
        if metadata:
            attempts = metadata.get("attempts")
            if type(attempts) is list and len(attempts) > 1:
                retries += len(attempts) - 1
                retried.append({"task_id": task.id, "attempts": len(attempts)})
            ai = metadata.get("ai")
            if type(ai) is dict:
                model = ai.get("model") or "unknown"
                usage = tokens.setdefault(model, {"provider": ai.get("provider"), "calls": 0, "prompt_tokens": 0,
                                                  "completion_tokens": 0})
                usage["calls"] += 1
                for name in ("prompt_tokens", "completion_tokens"):
                    if type(ai.get(name)) is int:
                        usage[name] += ai[name]
        if result is not None:
            for stamp, into in ((result.started_at, starts), (result.completed_at, ends)):
                if stamp is not None:
                    into.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
        deps = graph.dependencies_of(v)
        level[v] = max((level[d] + 1 for d in deps), default=0)
        best, best_dep = 0.0, -1
        for d in deps:
            if best_dep < 0 or finish[d] > best:
                best, best_dep = finish[d], d
        previous[v], finish[v] = best_dep, best + duration
    critical, length = [], 0.0
    if order:
        deepest = order[0]
        for v in order[1:]:
            if finish[v] >= finish[deepest]:
                deepest = v
        length = finish[deepest]
        v = deepest
        while v >= 0:
            critical.append(tasks[v].id)
            v = previous[v]
        critical.reverse()

    def stamp(moment):
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return {"status_counts": counts, "total_task_time_ms": total,
            "critical_path": {"task_ids": critical, "duration_ms": length},
            "retries": {"total": retries, "tasks": retried}, "tokens": tokens,
            "levels": (max(level.values()) + 1) if level else 0,
            "start_time": stamp(min(starts)) if starts else None, "end_time": stamp(max(ends)) if ends else None}


def recorded_statistics(record: dict) -> dict:
    statistics = record["statistics"]
    chosen = {k: statistics[k] for k in ("status_counts", "total_task_time_ms", "critical_path", "retries",
                                         "tokens", "levels")}
    chosen["start_time"], chosen["end_time"] = record["start_time"], record["end_time"]
    return chosen


def assert_same(alt, results: dict):
    record = runner.build_last_record(alt, results, "0190a0b0-0000-7000-8000-000000000001",
                                      "0190a0b0-0000-7000-8000-000000000002", "2030-01-01T00:00:00.000Z")
    expected = reference_statistics(alt, results)
    if expected["start_time"] is None:
        expected["start_time"] = expected["end_time"] = "2030-01-01T00:00:00.000Z"
    got = recorded_statistics(record)
    assert got == expected
    # Order matters in the file: models and retried tasks as the topological visit met them.
    assert list(got["tokens"].items()) == list(expected["tokens"].items())
    assert got["total_task_time_ms"].hex() == expected["total_task_time_ms"].hex()
    return record


def backwards_alt(size: int, rng: random.Random):
    """Tasks whose dependencies mostly come later in the file: the topological order is
    far from the file's."""
    tasks = []
    for n in range(size):
        later = range(n + 1, min(size, n + 12))
        deps = rng.sample(later, min(len(later), rng.randint(0, 3)))
        tasks.append({"id": f"t{n:04d}", "dependencies": [f"t{d:04d}" for d in deps]})
    return runner.parse_alt_file(dumps({"id": "order", "title": "Order", "tasks": tasks}))


def stamp_of(ms: int, form: int) -> str:
    seconds, milli = divmod(ms, 1000)
    moment = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() + seconds
    base = datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None).isoformat()
    if form == 0:
        return f"{base}.{milli:03d}Z"
    if form == 1:
        return f"{base}.{milli:03d}250Z"              # microseconds
    if form == 2:
        return f"{base}Z"                             # whole seconds
    return f"{base}.{milli:03d}+00:00"                # an offset, made canonical on reading


def varied_results(alt, rng: random.Random, *, stamp_forms=(0,), missing=0.05):
    docs = []
    for task in alt.tasks:
        if rng.random() < missing:
            continue                                  # pending: never reported
        status = rng.choice(STATUSES) if rng.random() < 0.5 else "completed"
        start = rng.randint(0, 500_000)
        doc = {"task_id": task.id, "status": status,
               "started_at": stamp_of(start, rng.choice(stamp_forms)),
               "completed_at": stamp_of(start + rng.randint(0, 9000), rng.choice(stamp_forms))}
        # Durations whose float sum depends on the order of the additions.
        doc["duration_ms"] = rng.choice((0.1, 0.2, 0.3, 1e15 + 0.5, 3.3, 7, 1234.5678, 2 ** 52 + 1.0))
        metadata = {}
        if rng.random() < 0.3:
            metadata["attempts"] = [{"number": k + 1} for k in range(rng.randint(1, 4))]
        if rng.random() < 0.6:
            model = rng.choice(("m1", "m2", "m3", "", None))
            ai = {"provider": rng.choice(("p1", "p2", "p3")), "prompt_tokens": rng.randint(0, 2 ** 40),
                  "completion_tokens": rng.choice((rng.randint(0, 50), None))}
            if model is not None:
                ai["model"] = model
            metadata["ai"] = ai
        if metadata or rng.random() < 0.5:
            doc["metadata"] = metadata
        docs.append(doc)
    return docs


@pytest.mark.parametrize("seed", range(6))
def test_statistics_equal_a_visit_in_topological_order(seed):
    rng = random.Random(seed)
    alt = backwards_alt(300, rng)
    docs = varied_results(alt, rng)
    rng.shuffle(docs)                                 # arrival order: neither file nor topological
    results = {doc["task_id"]: runner.task_result_from_dict(doc, alt) for doc in docs}
    assert_same(alt, results)


@pytest.mark.parametrize("forms", [(0, 1), (0, 2), (1, 2, 3), (3,), (0, 1, 2, 3)])
def test_mixed_stamp_forms_give_the_same_span(forms):
    rng = random.Random(len(forms))
    alt = backwards_alt(200, rng)
    results = {doc["task_id"]: runner.task_result_from_dict(doc, alt)
               for doc in varied_results(alt, rng, stamp_forms=forms)}
    assert_same(alt, results)


def test_results_in_the_files_order_and_replaced_ones_out_of_step():
    """The usual case (results in step with the tasks) and results replaced later, as a
    retry or a resume replaces them: a replaced entry keeps its place in a dict, one taken
    out and put back moves to the end."""
    rng = random.Random(11)
    alt = backwards_alt(250, rng)
    results = {doc["task_id"]: runner.task_result_from_dict(doc, alt)
               for doc in varied_results(alt, rng, missing=0)}
    assert_same(alt, results)
    for doc in varied_results(alt, random.Random(12), missing=0.5):
        if rng.random() < 0.5:
            results[doc["task_id"]] = runner.task_result_from_dict(doc, alt)
        else:
            results.pop(doc["task_id"], None)
            results[doc["task_id"]] = runner.task_result_from_dict(doc, alt)
    assert_same(alt, results)


def test_a_model_first_met_late_in_the_file_comes_first_in_the_record():
    """The file lists b before a, but a runs first: a's model and provider come first."""
    alt = runner.parse_alt_file(dumps({"id": "m", "title": "M", "tasks": [
        {"id": "b", "dependencies": ["a"]}, {"id": "c", "dependencies": ["b"]}, {"id": "a"}]}))
    docs = [{"task_id": "b", "status": "completed", "metadata": {"ai": {"model": "late", "provider": "pb"}}},
            {"task_id": "c", "status": "completed", "metadata": {"ai": {"model": "early", "provider": "pc"}}},
            {"task_id": "a", "status": "completed", "metadata": {"ai": {"model": "early", "provider": "pa"},
                                                                 "attempts": [{}, {}]}}]
    record = assert_same(alt, {d["task_id"]: runner.task_result_from_dict(d, alt) for d in docs})
    assert list(record["statistics"]["tokens"]) == ["early", "late"]
    assert record["statistics"]["tokens"]["early"]["provider"] == "pa"


def test_no_tasks_and_no_results():
    alt = runner.parse_alt_file(dumps({"id": "e", "title": "E", "tasks": [{"id": "a"}, {"id": "b"}]}))
    assert_same(alt, {})


def test_a_control_flow_run_records_the_statistics_of_its_instances(tmp_path):
    """Loop instances and a skipped branch: the record written by a real run has the
    statistics the reference gives for the tasks its graph lists."""
    doc = {"id": "flow", "title": "flow", "variables": {"items": [1, 2, 3, 4], "go": False}, "tasks": [
        {"id": "a", "parameters": {"task_type": "generic"}},
        {"id": "b", "dependencies": ["a"], "parameters": {"task_type": "generic", "n": "$x"},
         "for_each": {"variable": "x", "iterable": "items"}},
        {"id": "c", "dependencies": ["b"], "parameters": {"task_type": "generic", "all": "$b"}},
        {"id": "d", "dependencies": ["a"], "parameters": {"task_type": "generic"},
         "when": {"operator": "eq", "left": "go", "right": True}}]}
    done = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", max_concurrency=2)
    record = json.loads((done.directory / "last.json").read_bytes())
    graph = record["execution_graph"]
    needs = {node["id"]: [] for node in graph["nodes"]}
    for edge in graph["edges"]:
        needs[edge["target"]].append(edge["source"])
    # Instance ids (b[0]) are not ids an ALT file may hold: the same graph under plain names.
    name = {node_id: f"n{i}" for i, node_id in enumerate(needs)}
    original = {v: k for k, v in name.items()}
    expanded = runner.parse_alt_file(dumps({"id": "flow", "title": "flow", "tasks": [
        {"id": name[node_id], "dependencies": [name[d] for d in deps]} for node_id, deps in needs.items()]}))
    expected = reference_statistics(expanded, {name[k]: r for k, r in done.results.items() if k in name})
    expected["critical_path"]["task_ids"] = [original[i] for i in expected["critical_path"]["task_ids"]]
    for entry in expected["retries"]["tasks"]:
        entry["task_id"] = original[entry["task_id"]]
    got = recorded_statistics(record)
    assert {k: v for k, v in got.items() if k not in ("start_time", "end_time")} == \
        {k: v for k, v in expected.items() if k not in ("start_time", "end_time")}
    assert got["status_counts"]["skipped"] >= 1 and len(needs) >= 7
