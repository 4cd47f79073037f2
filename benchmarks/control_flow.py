"""Control flow against the same work written out flat, measured in one run.

    .venv/bin/python benchmarks/control_flow.py [--items 100000] [--iterations 10000] [--repeat 3]

1. Dynamic mapping: a native task with `for_each` over an array of 100k items (a generic
   no-op body that reads `$x`), against the same 100k generic tasks written out in the file.
   Goal: at most 1.5x the flat run.
2. A v2.0 `while` loop of 10k iterations (a one-segment generic body, the condition on the
   loop's counter), against 10k generic tasks chained one after another.
   Goal: at most 2x the chain.

Both are timed from a parsed AltFile to every TaskResult (runner.execution.execute with
write=False, no journal), the best of --repeat runs (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time

import orjson

from runner import parse_alt_file
from runner.execution import execute


def mapped_document(n: int) -> dict:
    return {"id": "mapped", "title": f"for_each over {n} items", "variables": {"items": list(range(n))},
            "tasks": [{"id": "m", "for_each": {"variable": "x", "iterable": "items"},
                       "parameters": {"task_type": "generic", "x": "$x"}}]}


def flat_document(n: int) -> dict:
    return {"id": "flat", "title": f"{n} tasks", "tasks": [
        {"id": f"m_{i}", "parameters": {"task_type": "generic", "x": i}}
        for i in range(n)]}


def while_document(n: int) -> dict:
    return {"id": "while", "version": "2.0", "command": "loop", "language": "en", "mode": "Normal",
            "global_variables": [{"name": "limit", "type": "number", "value": n}],
            "segments": [{"id": "w", "task_type": "generic", "content": "loop",
                          "loop": {"type": "while", "variable": "i",
                                   "condition": {"operator": "lt", "left": "i", "right": "$limit"},
                                   "body": ["step"]}},
                         {"id": "step", "task_type": "generic", "content": "step",
                          "parameters": [{"name": "i", "value": "$i"}]}]}


def chain_document(n: int) -> dict:
    return {"id": "chain", "title": f"{n} chained tasks", "tasks": [
        {"id": f"c{i}", "dependencies": [f"c{i - 1}"] if i else [], "parameters": {"task_type": "generic", "i": i}}
        for i in range(n)]}


def best_of(repeat: int, alt, environ) -> tuple[float, int]:
    times, count = [], 0
    with tempfile.TemporaryDirectory() as workspace:
        for _ in range(repeat):
            gc.collect()
            started = time.perf_counter()
            outcome = execute(alt, write=False, journal=False, workspace=workspace, environ=environ)
            times.append(time.perf_counter() - started)
            count = sum(1 for r in outcome.results.values() if r.status == "completed")
    return min(times), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    environ = {"RUNNER_MAX_LOOP_ITERATIONS": str(max(args.items, args.iterations)),
               "RUNNER_MAX_TASK_INSTANCES": str(2 * max(args.items, args.iterations))}
    ok = True

    mapped = parse_alt_file(orjson.dumps(mapped_document(args.items)))
    flat = parse_alt_file(orjson.dumps(flat_document(args.items)))
    flat_s, flat_n = best_of(args.repeat, flat, environ)
    mapped_s, mapped_n = best_of(args.repeat, mapped, environ)
    assert flat_n == args.items and mapped_n == args.items + 1, (flat_n, mapped_n)
    ratio = mapped_s / flat_s
    ok &= ratio <= 1.5
    print(f"for_each over {args.items} items: {mapped_s:.3f} s; the same tasks flat: {flat_s:.3f} s; "
          f"ratio {ratio:.2f}x (goal <= 1.5x: {'met' if ratio <= 1.5 else 'missed'})")

    looped = parse_alt_file(orjson.dumps(while_document(args.iterations)))
    chain = parse_alt_file(orjson.dumps(chain_document(args.iterations)))
    chain_s, chain_n = best_of(args.repeat, chain, environ)
    loop_s, loop_n = best_of(args.repeat, looped, environ)
    assert chain_n == args.iterations and loop_n == args.iterations + 1, (chain_n, loop_n)
    ratio = loop_s / chain_s
    ok &= ratio <= 2.0
    print(f"while of {args.iterations} iterations: {loop_s:.3f} s; {args.iterations} chained tasks: "
          f"{chain_s:.3f} s; ratio {ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2.0 else 'missed'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
