"""Graph facts of a validated ALT file: order, levels, roots, leaves, critical paths, plan."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import runner
from conftest import FIXTURES, dumps


def alt_of(dependencies: dict, **task_fields) -> runner.AltFile:
    """An ALT file whose tasks (in this order) have these dependencies."""
    tasks = []
    for task_id, deps in dependencies.items():
        task = {"id": task_id, "dependencies": deps}
        task.update(task_fields.get(task_id, {}))
        tasks.append(task)
    return runner.parse_alt_file(dumps({"id": "g", "title": "graph", "tasks": tasks}))


DIAMOND = {"fetch": [], "left": ["fetch"], "right": ["fetch"], "join": ["left", "right"], "side": []}


def ids(graph, indices):
    return [graph.ids[i] for i in indices]


def test_parsed_file_keeps_its_graph_and_of_reuses_it():
    alt = alt_of(DIAMOND)
    assert runner.DependencyGraph.of(alt) is alt.graph
    graph = alt.graph
    assert graph.size == 5
    assert graph.dependencies_of(3) == [1, 2] and graph.dependents_of(0) == [1, 2]
    assert graph.edges() == [("fetch", "left"), ("fetch", "right"), ("left", "join"), ("right", "join")]


def test_order_levels_roots_and_leaves():
    graph = alt_of(DIAMOND).graph
    assert ids(graph, graph.topological_order()) == ["fetch", "side", "left", "right", "join"]
    assert graph.levels() == [0, 1, 1, 2, 0]
    assert [ids(graph, level) for level in graph.level_groups()] == [["fetch", "side"], ["left", "right"], ["join"]]
    assert ids(graph, graph.roots()) == ["fetch", "side"]
    assert ids(graph, graph.leaves()) == ["join", "side"]


def test_topological_order_puts_every_dependency_first():
    deps = {f"t{i}": [f"t{j}" for j in range(i) if (i * 7 + j) % 5 == 0][:3] for i in range(200)}
    graph = alt_of(deps).graph
    position = {task: k for k, task in enumerate(ids(graph, graph.topological_order()))}
    assert len(position) == 200
    for task, task_deps in deps.items():
        assert all(position[d] < position[task] for d in task_deps)


def test_critical_path_by_count_and_by_weight():
    graph = alt_of(DIAMOND).graph
    path, length = graph.critical_path()
    assert ids(graph, path) == ["fetch", "left", "join"] and length == 3
    path, total = graph.critical_path([1, 1, 10, 1, 50])
    assert ids(graph, path) == ["side"] and total == 50
    path, total = graph.critical_path([1, 1, 10, 1, 5])
    assert ids(graph, path) == ["fetch", "right", "join"] and total == 12
    with pytest.raises(ValueError, match="needs 5 weights"):
        graph.critical_path([1])


def test_plan_worst_case_uses_timeouts_retries_and_the_default():
    alt = alt_of(DIAMOND, fetch={"timeout_seconds": 10, "retry_count": 2}, left={"timeout_seconds": 5},
                 right={}, join={"timeout_seconds": 1, "retry_count": 0}, side={"timeout_seconds": 40})
    plan = runner.plan_alt_file(alt)
    assert plan["default_timeout_seconds"] == runner.DEFAULT_TASK_TIMEOUT_SECONDS == 300
    # fetch 10 x 3 + right 300 (default) x 1 + join 1 x 1
    assert plan["critical_path_by_timeout"] == ["fetch", "right", "join"] and plan["worst_case_seconds"] == 331
    assert plan["critical_path_by_count"] == ["fetch", "left", "join"]
    assert plan["roots"] == ["fetch", "side"] and plan["leaves"] == ["join", "side"]
    assert plan["levels"] == [["fetch", "side"], ["left", "right"], ["join"]]
    assert plan["expected_completion_time"] is None and plan["within_expected"] is None
    plan = runner.plan_alt_file(alt, 1.0)
    assert plan["critical_path_by_timeout"] == ["side"] and plan["worst_case_seconds"] == 40  # > 10 x 3 + 5 + 1
    with pytest.raises(ValueError):
        runner.plan_alt_file(alt, 0.0)


def test_plan_compares_with_expected_completion_time():
    doc = {"id": "p", "title": "t", "expected_completion_time": 100,
           "tasks": [{"id": "a", "timeout_seconds": 40, "retry_count": 1}]}
    assert runner.plan_alt_file(runner.parse_alt_file(dumps(doc)))["within_expected"] is True
    doc["expected_completion_time"] = 79.5
    assert runner.plan_alt_file(runner.parse_alt_file(dumps(doc)))["within_expected"] is False


def test_long_chains_and_wide_fans_need_no_recursion():
    n = 50_000
    chain = {"id": "chain", "title": "t",
             "tasks": [{"id": f"t{i}", "dependencies": [f"t{i - 1}"] if i else None} for i in range(n)]}
    graph = runner.parse_alt_file(dumps(chain)).graph
    assert graph.critical_path()[1] == n and graph.levels()[-1] == n - 1
    chain["tasks"][0]["dependencies"] = [f"t{n - 1}"]
    with pytest.raises(runner.AltValidationError, match=r"dependency cycle: t0 -> t49999 -> t49998 -> "):
        runner.parse_alt_file(dumps(chain))
    fan = {"id": "fan", "title": "t", "tasks": [{"id": "root"}] +
           [{"id": f"f{i}", "dependencies": ["root"]} for i in range(n)] +
           [{"id": "sink", "dependencies": [f"f{i}" for i in range(n)]}]}
    graph = runner.parse_alt_file(dumps(fan)).graph
    assert len(graph.level_groups()[1]) == n and ids(graph, graph.leaves()) == ["sink"]


def test_cli_plan_prints_the_graph_facts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "runner", "validate", "--plan",
                           str(FIXTURES / "alt_las_example_alt_file.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "3 tasks, 2 dependencies, 3 levels" in out
    assert "roots: task_001" in out and "leaves: task_003" in out
    assert "critical path by count (3 tasks): task_001 -> task_002 -> task_003" in out
    # 30 x 4 + 60 x 3 + 120 x 2 = 540 s, against metadata.expected_completion_time 300 s.
    assert "worst case: 540 s (9 min 0 s)" in out and "counts 300 s" in out
    assert "expected_completion_time: 300 s (5 min 0 s); the worst case exceeds it by 240 s" in out
    path = tmp_path / "quick.json"
    path.write_text(json.dumps({"id": "q", "title": "t", "expected_completion_time": 10,
                                "tasks": [{"id": "a"}, {"id": "b", "dependencies": ["a"]}]}))
    done = subprocess.run([sys.executable, "-m", "runner", "validate", "--plan", "--default-timeout", "2",
                           str(path)], capture_output=True, text=True)
    assert "worst case: 4 s" in done.stdout and "counts 2 s" in done.stdout and "is within it" in done.stdout
