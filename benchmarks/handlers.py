"""Users' own task types: what a handler costs, measured against baselines in one run.

    .venv/bin/python benchmarks/handlers.py [--tasks 20000] [--async-tasks 1000] [--repeat 3]

1. --tasks trivial Python handler tasks (`def handler(task): return 1`) against as many
   generic tasks, both through runner.execution.execute (no LAST file), flat files of
   independent tasks. Goals: at most 2x, and at most 20 us per task more than generic.
2. --async-tasks `async def` handlers each awaiting 200 ms, all in flight at once
   (max_concurrency = their number), against the ideal (200 ms). Goal: at most 1.1x.
3. --c-tasks C handlers through the ABI (a C program compiled here with `python -m runner
   config --cflags --libs`, whole runs by runner_execute_alt_file) against a C loop calling
   the same function, and against as many generic tasks: the per-task overhead.
4. The same DAG of trivial functions in LangGraph (the [bench] extra), one node per task:
   --langgraph-tasks in layers of --langgraph-width, each depending on the task above it
   in the layer before. End to end on both sides: librunner parses the document and runs
   it; LangGraph builds, compiles and invokes the graph. Goal: librunner at least 20x
   faster.

Each figure is the best of --repeat runs (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import asyncio
import operator
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, TypedDict

from measure import best_of     # benchmarks/measure.py (run as a script: its folder is on sys.path)

from runner import parse_alt_file
from runner.execution import execute

HERE = Path(__file__).resolve().parent


def flat_document(n: int, task_type: str, **parameters) -> dict:
    return {"id": f"bench_{task_type}_{n}", "title": f"{n} {task_type} tasks",
            "tasks": [{"id": f"t{i}", "description": "x", "parameters": {"task_type": task_type, **parameters}}
                      for i in range(n)]}


def trivial(task):
    return 1


async def wait_200ms(task):
    await asyncio.sleep(0.2)
    return 1


def run(alt, workspace: str, **options) -> None:
    outcome = execute(alt, write=False, workspace=workspace, environ={}, **options)
    bad = [r for r in outcome.results.values() if r.status != "completed"]
    if bad:
        raise SystemExit(f"benchmark run failed: {bad[0].task_id}: {bad[0].error}")


def python_handlers(n: int, repeat: int, workspace: str) -> dict:
    import orjson
    handlers = {"trivial": trivial}
    generic = parse_alt_file(orjson.dumps(flat_document(n, "generic")))
    from runner.execution.task_types import run_handlers
    with run_handlers(handlers):
        own = parse_alt_file(orjson.dumps(flat_document(n, "trivial")))
    generic_s = best_of(repeat, lambda: run(generic, workspace))
    own_s = best_of(repeat, lambda: run(own, workspace, handlers=handlers))
    overhead_us = (own_s - generic_s) / n * 1e6
    return {"generic_s": generic_s, "handler_s": own_s, "ratio": own_s / generic_s, "overhead_us": overhead_us}


def async_handlers(n: int, repeat: int, workspace: str) -> dict:
    import orjson
    from runner.execution.task_types import run_handlers
    handlers = {"wait_200ms": wait_200ms}
    with run_handlers(handlers):
        alt = parse_alt_file(orjson.dumps(flat_document(n, "wait_200ms")))
    cpu = []

    def timed():
        started = time.process_time()
        run(alt, workspace, handlers=handlers, max_concurrency=n)
        cpu.append(time.process_time() - started)
    wall = best_of(repeat, timed)
    # The CPU time the run took (all its threads) bounds its overhead on an idle machine,
    # whatever the load of a shared one does to the wall time.
    return {"wall_s": wall, "ideal_s": 0.2, "ratio": wall / 0.2, "cpu_s": min(cpu)}


C_BENCH = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "runner_ffi.h"

static volatile long sink;
static int trivial(runner_task *task, void *user_data) {
    sink += (long)(runner_task_json(task) != NULL);
    return runner_task_set_output(task, "1") ? 0 : 1;
}
static int bare(void) { sink += 1; return 0; }   /* the same work, without librunner */

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}

static char *document(const char *id, const char *type, int n) {
    size_t size = 128 + (size_t)n * 96;
    char *alt = malloc(size);
    int used = snprintf(alt, size, "{\"id\":\"%s\",\"title\":\"c\",\"tasks\":[", id);
    for (int i = 0; i < n; i++)
        used += snprintf(alt + used, size - used, "%s{\"id\":\"t%d\",\"description\":\"x\","
                         "\"parameters\":{\"task_type\":\"%s\"}}", i ? "," : "", i, type);
    snprintf(alt + used, size - used, "]}");
    return alt;
}

static double timed_run(const char *id, const char *out) {
    double started = now();
    char *last = runner_execute_alt_file(id, out);
    double took = now() - started;
    if (last == NULL) { char *e = runner_get_last_error(); fprintf(stderr, "%s\n", e); exit(1); }
    runner_free_string(last);
    return took;
}

int main(int argc, char **argv) {
    int n = atoi(argv[1]), repeat = atoi(argv[3]);
    const char *out = argv[2];
    if (!runner_init() || !runner_register_task_type("trivial_c", trivial, NULL)) return 1;
    char *own = document("c_own", "trivial_c", n), *generic = document("c_generic", "generic", n);
    if (!runner_parse_alt_file(own) || !runner_parse_alt_file(generic)) return 1;
    double loop = 1e9, through = 1e9, plain = 1e9;
    for (int r = 0; r < repeat; r++) {
        double started = now();
        for (int i = 0; i < n; i++) bare();
        double took = now() - started;
        if (took < loop) loop = took;
        took = timed_run("c_generic", out);
        if (took < plain) plain = took;
        took = timed_run("c_own", out);
        if (took < through) through = took;
    }
    printf("%.6f %.6f %.6f\n", loop, plain, through);
    runner_cleanup();
    return 0;
}
"""


def c_handlers(n: int, repeat: int) -> dict | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        source, program = Path(scratch) / "bench.c", Path(scratch) / "bench"
        source.write_text(C_BENCH)
        flags = subprocess.run([sys.executable, "-m", "runner", "config", "--cflags", "--libs"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run([compiler, "-O2", str(source), *flags, "-o", str(program)], check=True)
        # Whole runs through runner_execute_alt_file (LAST directory written), best of
        # `repeat`: the file of C handler tasks, and a file of as many generic tasks (the
        # run's own cost without handlers), beside a C loop calling the same function.
        done = subprocess.run([str(program), str(n), str(Path(scratch) / "out"), str(repeat)], capture_output=True,
                              text=True, check=True)
        loop_s, generic_s, through_s = map(float, done.stdout.split())
    return {"c_loop_s": loop_s, "generic_s": generic_s, "through_abi_s": through_s,
            "per_task_us": (through_s - loop_s) / n * 1e6, "over_generic_us": (through_s - generic_s) / n * 1e6}


def layered_document(n: int, width: int, task_type: str) -> dict:
    """n tasks in layers of `width`: task i depends on task i - width (chains of n / width)."""
    return {"id": f"bench_dag_{n}", "title": f"{n} {task_type} tasks in layers of {width}",
            "tasks": [{"id": f"t{i}", "description": "x", "parameters": {"task_type": task_type},
                       **({"dependencies": [f"t{i - width}"]} if i >= width else {})} for i in range(n)]}


class LangGraphState(TypedDict):
    done: Annotated[int, operator.add]      # each node adds 1: the number of nodes that ran


def langgraph_node(state):
    return {"done": 1}


def langgraph_dag(n: int, width: int, repeat: int) -> float | None:
    """The same DAG in LangGraph, end to end (graph built, compiled and invoked), best of
    `repeat`; None when langgraph is not installed."""
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None

    def once():
        builder = StateGraph(LangGraphState)
        for i in range(n):
            builder.add_node(f"t{i}", langgraph_node)
            builder.add_edge(START if i < width else f"t{i - width}", f"t{i}")
            if i >= n - width:
                builder.add_edge(f"t{i}", END)
        final = builder.compile().invoke({"done": 0}, {"recursion_limit": n + 10})
        if final["done"] != n:
            raise SystemExit(f"LangGraph ran {final['done']} of {n} nodes")
    return best_of(repeat, once)


def librunner_dag(n: int, width: int, repeat: int, workspace: str) -> float:
    """The DAG through librunner, end to end: the document parsed and validated, then run."""
    import orjson
    from runner.execution.task_types import run_handlers
    handlers = {"trivial": trivial}
    document = orjson.dumps(layered_document(n, width, "trivial"))

    def once():
        with run_handlers(handlers):
            alt = parse_alt_file(document)
        run(alt, workspace, handlers=handlers)
    return best_of(repeat, once)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--async-tasks", type=int, default=1000)
    parser.add_argument("--c-tasks", type=int, default=20000)
    parser.add_argument("--langgraph-tasks", type=int, default=1000)
    parser.add_argument("--langgraph-width", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workspace:
        py = python_handlers(args.tasks, args.repeat, workspace)
        print(f"{args.tasks} generic tasks:            {py['generic_s']:.3f} s")
        print(f"{args.tasks} trivial Python handlers:  {py['handler_s']:.3f} s  "
              f"ratio {py['ratio']:.2f}x (goal <= 2x), overhead {py['overhead_us']:.1f} us/task (goal <= 20)")
        aio = async_handlers(args.async_tasks, args.repeat, workspace)
        print(f"{args.async_tasks} async handlers awaiting 200 ms, all in flight: {aio['wall_s']:.3f} s  "
              f"ratio {aio['ratio']:.3f}x the ideal 0.2 s (goal <= 1.1x); CPU time {aio['cpu_s'] * 1e3:.0f} ms "
              f"({aio['cpu_s'] / args.async_tasks * 1e6:.0f} us/task)")
    c = c_handlers(args.c_tasks, args.repeat)
    if c is None:
        print("C handlers: no C compiler")
    else:
        print(f"{args.c_tasks} C handler tasks through the ABI: {c['through_abi_s']:.3f} s, {args.c_tasks} generic "
              f"tasks {c['generic_s']:.3f} s (whole runs, LAST files included), a C loop {c['c_loop_s'] * 1e3:.3f} ms: "
              f"{c['over_generic_us']:.1f} us/task over generic, {c['per_task_us']:.1f} us/task over the C loop")
    n, width = args.langgraph_tasks, args.langgraph_width
    lg = langgraph_dag(n, width, args.repeat)
    if lg is None:
        print("LangGraph: not installed (pip install -e '.[bench]' to compare)")
    else:
        with tempfile.TemporaryDirectory() as workspace:
            ours = librunner_dag(n, width, args.repeat, workspace)
        print(f"{n} trivial functions in layers of {width} (each depending on one of the layer before), end to "
              f"end: LangGraph {lg:.3f} s, librunner {ours:.3f} s: {lg / ours:.1f}x faster (goal >= 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
