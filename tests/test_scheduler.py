"""The Cython scheduler on its own: priority order, file-order ties, skips, the ready set."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from runner import parse_alt_file
from runner.librunner import Scheduler
from tests.conftest import dumps


def alt_of(tasks, **header):
    return parse_alt_file(dumps({"id": "s", "title": "scheduler", **header, "tasks": tasks}))


def task(task_id, deps=(), priority=None, task_type="ai_prompt"):
    doc = {"id": task_id, "description": task_id, "dependencies": list(deps),
           "parameters": {"task_type": task_type}}
    if priority:
        doc["priority"] = priority
    return doc


def ids(alt, indices):
    return [alt.tasks[i].id for i in indices]


def test_ready_tasks_come_out_by_priority_then_file_order():
    alt = alt_of([task("l1", priority="low"), task("m1"), task("c1", priority="critical"),
                  task("h1", priority="high"), task("m2", priority="medium"), task("c2", priority="critical")])
    assert ids(alt, Scheduler(alt).take(10)) == ["c1", "c2", "h1", "m1", "m2", "l1"]


def test_file_priority_is_the_default_for_tasks_without_one():
    alt = alt_of([task("a", priority="medium"), task("b")], priority="low")
    assert ids(alt, Scheduler(alt).take(10)) == ["a", "b"]


def test_take_respects_the_limit_and_counts_running():
    alt = alt_of([task(f"t{i}") for i in range(5)])
    scheduler = Scheduler(alt)
    assert len(scheduler.take(2)) == 2
    assert scheduler.running == 2 and scheduler.ready_count == 3


def test_a_task_becomes_ready_only_when_all_its_dependencies_completed():
    alt = alt_of([task("a"), task("b"), task("c", ["a", "b"])])
    scheduler = Scheduler(alt)
    a, b = scheduler.take(10)
    scheduler.complete(a, True)
    assert scheduler.take(10) == []
    scheduler.complete(b, True)
    assert ids(alt, scheduler.take(10)) == ["c"]


def test_a_failure_skips_dependents_transitively_and_independent_branches_go_on():
    alt = alt_of([task("fetch"), task("other"), task("parse", ["fetch"]), task("report", ["parse", "other"]),
                  task("side", ["other"])])
    scheduler = Scheduler(alt)
    fetch, other = scheduler.take(10)
    skipped = scheduler.complete(fetch, False)
    assert sorted(ids(alt, skipped)) == ["parse", "report"]
    assert alt.tasks[scheduler.cause_of(alt.task("report").index)].id == "parse"
    assert alt.tasks[scheduler.cause_of(alt.task("parse").index)].id == "fetch"
    scheduler.complete(other, True)
    assert ids(alt, scheduler.take(10)) == ["side"]
    scheduler.complete(alt.task("side").index, True)
    assert scheduler.finished


def test_inline_tasks_run_in_the_loop_and_ready_their_dependents():
    alt = alt_of([task("g1", task_type="generic"), task("ai", ["g1"]), task("g2", ["ai"], task_type="generic")])
    scheduler = Scheduler(alt, None, None, frozenset({"generic"}))
    results = {}
    assert scheduler.take(10) == []            # the only ready task is inline
    assert scheduler.run_inline(results) == 1
    assert results["g1"].status == "completed" and results["g1"].output == {"task_type": "generic"}
    (ai,) = scheduler.take(10)
    scheduler.complete(ai, True)
    assert scheduler.run_inline(results) == 1 and scheduler.finished


def test_completing_a_task_that_is_not_running_is_refused():
    alt = alt_of([task("a"), task("b", ["a"])])
    scheduler = Scheduler(alt)
    with pytest.raises(ValueError, match="not running"):
        scheduler.complete(1, True)
    with pytest.raises(ValueError):
        scheduler.complete(99, True)


def test_cancel_pending_ends_everything_not_handed_out():
    alt = alt_of([task("a"), task("b", ["a"]), task("c")])
    scheduler = Scheduler(alt)
    scheduler.take(1)
    assert sorted(ids(alt, scheduler.cancel_pending())) == ["b", "c"]
    assert scheduler.ready_count == 0 and not scheduler.finished


def test_a_seeded_shuffle_reorders_only_equal_priorities_and_is_repeatable():
    tasks = [task(f"t{i}") for i in range(20)] + [task("urgent", priority="critical")]
    alt = alt_of(tasks)
    first = ids(alt, Scheduler(alt, None, random.Random(7)).take(100))
    assert first[0] == "urgent"
    assert first == ids(alt, Scheduler(alt, None, random.Random(7)).take(100))
    assert first[1:] != [f"t{i}" for i in range(20)]


@st.composite
def dags(draw):
    n = draw(st.integers(1, 40))
    tasks = []
    for i in range(n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=min(i, 4))) if i else set()
        priority = draw(st.sampled_from([None, "low", "medium", "high", "critical"]))
        tasks.append(task(f"t{i}", [f"t{d}" for d in sorted(deps)], priority))
    failing = draw(st.sets(st.integers(0, n - 1), max_size=3))
    return tasks, failing, draw(st.randoms(use_true_random=False)), draw(st.integers(1, 5))


@settings(max_examples=150, deadline=None)
@given(dags())
def test_dependency_order_is_always_respected(case):
    tasks, failing, rng, cap = case
    alt = alt_of(tasks)
    scheduler = Scheduler(alt)
    completed, ended, running = set(), set(), []
    while not scheduler.finished:
        taken = scheduler.take(cap - len(running))
        for i in taken:
            deps = set(scheduler_deps(alt, i))
            assert deps <= completed, f"{alt.tasks[i].id} started before its dependencies completed"
        running += taken
        assert len(running) <= cap
        assert running, "scheduler stalled"
        i = running.pop(rng.randrange(len(running)))
        ok = i not in failing
        skipped = scheduler.complete(i, ok)
        ended.add(i)
        if ok:
            completed.add(i)
        for s in skipped:
            assert s not in ended
            ended.add(s)
    assert len(ended) == len(tasks)
    # Exactly the transitive dependents of failed tasks were skipped.
    for i in range(len(tasks)):
        if i not in completed and i not in failing:
            assert any(d not in completed for d in scheduler_deps(alt, i))


def scheduler_deps(alt, i):
    return [alt.task(d).index for d in alt.tasks[i].dependencies]
