"""Spawning commands: system_command tasks against a bare thread pool of subprocess.run.

    .venv/bin/python benchmarks/commands.py [--commands 1000] [--concurrency 8] [--rounds 3] [--argv true]

Measured in ONE run, rounds alternating so machine noise hits all; the best round of each
counts and the range is printed:

  (a) the floor: a ThreadPoolExecutor of `concurrency` threads, each command run by
      subprocess.run(argv, capture_output=True, start_new_session=True, timeout=60) --
      what librunner gives too: output captured, a process group per command, a timeout;
  (b) librunner: one ALT file of `commands` system_command tasks (no dependencies) run by
      the executor at max_concurrency `concurrency` (no LAST file written);
  (c) LangGraph, if installed (the [bench] extra): one node per command in a fan-out graph calling the same
      subprocess.run, max_concurrency `concurrency`.

Goals: (b) <= 1.1x (a); (b) faster than (c).
--attribute adds librunner runs with parts of each command's safety left out (the /proc
start-time read; the watchdog's lines too), to show what each part costs.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bare_pool(argv: list[str], count: int, concurrency: int, workspace: str) -> float:
    def one(_):
        done = subprocess.run(argv, capture_output=True, start_new_session=True, timeout=60, cwd=workspace,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done

    wall = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - wall


def librunner_run(argv: list[str], count: int, concurrency: int, workspace: str) -> float:
    from runner.execution import execute

    tasks = [{"id": f"command{i}", "description": "a command",
              "parameters": {"task_type": "system_command", "command": argv}} for i in range(count)]
    resolved = shutil.which(argv[0])
    environ = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true",
               "RUNNER_SYSTEM_COMMAND_ALLOWLIST": f"{argv[0]},{resolved}"}
    wall = time.perf_counter()
    outcome = execute({"id": "commands_bench", "title": "commands", "tasks": tasks}, None,
                      max_concurrency=concurrency, write=False, environ=environ, workspace=workspace)
    wall = time.perf_counter() - wall
    completed = sum(result.status == "completed" for result in outcome.results.values())
    if completed != count:
        failed = next(r for r in outcome.results.values() if r.status != "completed")
        raise SystemExit(f"librunner completed {completed} of {count} commands; first failure: {failed.error}")
    return wall


def librunner_parts_run(skip: str):
    """librunner with a part of each command's safety left out, for attribution only (what a
    part costs), never as a figure of the product: "ticks": the leader's start time is not
    read from /proc (a constant is recorded); "watchdog": neither that nor the watchdog's two
    lines per command (guard, release)."""
    def run(argv, count, concurrency, workspace):
        from runner.execution import watchdog
        saved = watchdog.start_ticks, watchdog.guard_group, watchdog.release_group
        watchdog.start_ticks = lambda pid: 1
        if skip == "watchdog":
            watchdog.guard_group = watchdog.release_group = lambda *args: None
        try:
            return librunner_run(argv, count, concurrency, workspace)
        finally:
            watchdog.start_ticks, watchdog.guard_group, watchdog.release_group = saved
    return run


def langgraph_run(argv: list[str], count: int, concurrency: int, workspace: str):
    """A graph whose start fans out to `count` nodes, each running the command; None without LangGraph."""
    try:
        from typing import TypedDict

        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None

    class State(TypedDict, total=False):
        pass

    def node(state):
        done = subprocess.run(argv, capture_output=True, start_new_session=True, timeout=60, cwd=workspace,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done
        return {}

    graph = StateGraph(State)
    for i in range(count):
        graph.add_node(f"command{i}", node)
        graph.add_edge(START, f"command{i}")
        graph.add_edge(f"command{i}", END)
    compiled = graph.compile()
    wall = time.perf_counter()
    compiled.invoke({}, {"max_concurrency": concurrency})
    return time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--argv", default="true", help="the command, split on spaces")
    parser.add_argument("--attribute", action="store_true",
                        help="also librunner without the /proc start-time read, and without the watchdog's "
                             "lines too: what those parts cost (not figures of the product)")
    args = parser.parse_args()
    argv = args.argv.split()
    runs = [("bare subprocess.run pool", bare_pool), ("librunner", librunner_run), ("langgraph", langgraph_run)]
    if args.attribute:
        runs += [("  without the ticks read", librunner_parts_run("ticks")),
                 ("  without the watchdog", librunner_parts_run("watchdog"))]
    walls: dict = {name: [] for name, _ in runs}
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as workspace:
        for _, run in runs:     # warm up: imports, the first threads
            run(argv, args.concurrency, args.concurrency, workspace)
        for round_number in range(1, args.rounds + 1):
            for name, run in runs:
                wall = run(argv, args.commands, args.concurrency, workspace)
                if wall is None:
                    continue
                walls[name].append(wall)
                print(f"round {round_number} {name:25s} {wall:7.3f} s  {wall / args.commands * 1e3:6.3f} ms/command")
    floor = min(walls["bare subprocess.run pool"])
    middle = statistics.median(walls["bare subprocess.run pool"])
    print(f"\n{args.commands} x {' '.join(argv)!r} at concurrency {args.concurrency}, best of {args.rounds} "
          "(and the medians' ratio: on a noisy machine the steadier figure):")
    for name, _ in runs:
        if not walls[name]:
            print(f"{name:25s} not installed")
            continue
        best, worst = min(walls[name]), max(walls[name])
        print(f"{name:25s} {best:7.3f} s = {best / floor:.3f}x the bare pool "
              f"(rounds {min(w / floor for w in walls[name]):.3f}-{worst / floor:.3f}x; "
              f"median {statistics.median(walls[name]) / middle:.3f}x the pool's median)")
    print("goals: librunner <= 1.1x the bare pool; faster than LangGraph")


if __name__ == "__main__":
    main()
