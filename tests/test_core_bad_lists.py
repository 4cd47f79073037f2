"""Lists and indexes from outside the core (an AltFile's tasks, the scheduler's arguments,
a record's columns) are looked at before the core reads them: it is compiled with
boundscheck off and reads tasks without a type check, and each case here was a segfault
(reviews 19 and 21). Each is now a clear Python error, or works on a copy taken in time."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pytest

from runner import librunner
from test_inline_results import alt_of

STAMP = "2026-01-01T00:00:00Z"


def chain_alt(n: int):
    return librunner.parse_alt_file(orjson.dumps({"id": "a", "title": "a", "tasks": [
        {"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"] if i else [],
         "parameters": {"task_type": "generic"}} for i in range(n)]}))


def drained(alt) -> dict:
    results = {}
    librunner.Scheduler(alt, None, None, frozenset({"generic"})).run_inline(results)
    return results


def test_a_task_list_changed_under_the_core_is_an_error_not_a_crash():
    # The core read alt.tasks' items as tasks without a look: anything else in their place,
    # or a list shorter than the graph, crashed the process (review 19).
    alt = alt_of([{}, {}, {}])
    alt.tasks[1] = 12345
    with pytest.raises(TypeError, match="holds int at 1, not a task"):
        librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    alt = alt_of([{}, {}, {}])
    graph = librunner.DependencyGraph.of(alt)
    alt.tasks.pop()
    with pytest.raises(ValueError, match="the dependency graph has 3 tasks, the ALT file 2"):
        librunner.Scheduler(alt, graph, None, frozenset({"generic"}))
    alt = alt_of([{}, {}, {}])
    scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    alt.tasks[2] = "not a task"
    with pytest.raises(TypeError):
        scheduler.run_inline({})
    alt = alt_of([{}, {}, {}])
    scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    del alt.tasks[1:]
    with pytest.raises(IndexError, match="lost task 1"):
        scheduler.run_inline({})
    alt = alt_of([{}, {}])
    statistics = librunner.RunStatistics({}, alt.tasks)
    alt.tasks[0] = None
    with pytest.raises(TypeError):
        statistics.record(0, librunner.task_result_from_dict({"task_id": "t0", "status": "completed"}, alt_of([{}])))


def test_a_record_reads_the_task_list_as_its_graph_has_it_or_says_why_not():
    alt = chain_alt(3)
    alt.tasks[1] = 12345
    with pytest.raises(TypeError, match="holds int at 1, not a task"):
        librunner.build_last_record(alt, {}, "l", "e", STAMP)
    alt = chain_alt(3)
    alt.tasks.clear()
    with pytest.raises(IndexError, match="lost task 0"):
        librunner.build_last_record(alt, {}, "l", "e", STAMP)
    alt = chain_alt(3)
    results = drained(alt)
    statistics_alt = chain_alt(3)
    ended = {}
    statistics = librunner.RunStatistics(ended, statistics_alt.tasks)
    librunner.Scheduler(statistics_alt, None, None, frozenset({"generic"})).run_inline(statistics)
    statistics_alt.tasks.extend([statistics_alt.tasks[0]] * 5000)       # longer than the graph
    with pytest.raises(ValueError, match="holds 5003 tasks where its graph has 3"):
        librunner.build_last_record(statistics_alt, ended, "l", "e", STAMP, None, statistics)
    record = librunner.build_last_record(alt, results, "l", "e", STAMP)
    assert record["execution_graph"].descriptions_of({"t0"}) == {"t0": "d"}
    alt.tasks[2] = None         # after the record was made: its graph reads the list when written
    with pytest.raises(TypeError, match="holds NoneType at 2"):
        librunner.last_json(record)
    with pytest.raises(TypeError, match="holds NoneType at 2"):
        record["execution_graph"].descriptions_of({"t0"})
    alt.tasks.clear()
    with pytest.raises(IndexError, match="lost task 0"):
        list(record["execution_graph"].each_node())


def test_a_records_results_are_indexed_as_a_sequence_is():
    record = librunner.build_last_record(chain_alt(3), drained(chain_alt(3)), "l", "e", STAMP)
    dicts = record["task_results"].columns()[4]
    assert len(dicts) == 3 and dicts[-1]["task_id"] == dicts[2]["task_id"] == "t2"
    assert [d["task_id"] for d in dicts] == ["t0", "t1", "t2"]      # iteration ends at the end
    for wrong in (3, -4, 100_000):
        with pytest.raises(IndexError):
            dicts[wrong]


def test_the_schedulers_indexes_from_outside_are_looked_at():
    alt = chain_alt(3)
    scheduler = librunner.Scheduler(alt, None, None, frozenset())
    task = alt.tasks[0]
    for call in (lambda: scheduler.release(10 ** 8, -1), lambda: scheduler.dependents(10 ** 7),
                 lambda: scheduler.add([task], [[10 ** 6]], [True], [False], -1),
                 lambda: librunner.Scheduler(alt, None, None, frozenset(), held=[10 ** 8]),
                 lambda: librunner.Scheduler(alt, None, None, frozenset(), not_inline=[-1])):
        with pytest.raises(IndexError):
            call()
    with pytest.raises(ValueError, match="50 tasks, 0 dependency lists"):
        scheduler.add([task] * 50, [], [], [], -1)
    with pytest.raises(ValueError, match="no group 7"):
        scheduler.release(0, 7)


def test_an_add_refused_for_its_tasks_leaves_the_scheduler_as_it_was():
    # A non-task after a task in the batch: the refused add had already recorded its first
    # node (3) as a dependent of node 4, and the nodes a later add put there inherited it:
    # node 4's end would have counted down node 3's dependencies.
    alt = chain_alt(3)
    scheduler = librunner.Scheduler(alt, None, None, frozenset())
    task = alt.tasks[0]
    with pytest.raises(TypeError, match="holds int at 1"):
        scheduler.add([task, 5], [[4], []], [False, False], [False, False], -1)
    first = scheduler.add([task, task], [[], []], [False, False], [False, False], -1)
    assert first == 3 and scheduler.dependents(3) == [] and scheduler.dependents(4) == []


def test_control_flow_helpers_look_at_the_tasks_they_are_given():
    alt = chain_alt(2)
    with pytest.raises(TypeError, match="holds int at 1"):
        librunner.run_alt_file(alt, [alt.tasks[0], 5])
    template = alt.tasks[0]
    librunner.append_tasks(alt, [librunner.task_instance(template, "x", [], "d", None, None, 10 ** 7)])
    with pytest.raises(ValueError, match="says it is task 10000000 of 3"):
        librunner.DependencyGraph.of(alt)


def test_a_task_type_that_changes_the_runs_task_list_fails_the_run_without_a_crash(tmp_path):
    # A handler (user code) that puts something else in alt.tasks during the run: the LAST
    # file's record refused to be built from it with a segfault. Run apart, so that a crash
    # shows as one.
    script = textwrap.dedent(f"""
        import orjson, runner
        from runner.execution import execute

        def mutate(task):
            alt.tasks[0] = 12345
            return "done"
        runner.register_task_type("mutate", mutate)
        alt = runner.parse_alt_file(orjson.dumps({{"id": "a", "title": "a", "tasks": [
            {{"id": "t0", "description": "d", "parameters": {{"task_type": "generic"}}}},
            {{"id": "t1", "description": "d", "dependencies": ["t0"], "parameters": {{"task_type": "mutate"}}}}]}}))
        try:
            execute(alt, {str(tmp_path / "out")!r}, environ={{}})
        except Exception as error:
            print("refused:", type(error).__name__, error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: TypeError" in done.stdout and "not a task" in done.stdout, done.stdout
