"""Memory of a run's results alone (issue 23: results kept typed), in a child process.

N generic tasks (run inline by the scheduler, as in benchmarks/memory.py: a layered DAG,
each task depending on 2 of the layer before) are parsed, then run with
runner.execution.execute(write=False, journal=False); only outcome.results is kept. Printed:
- typed: bytes per task the results add (VmRSS after the run, results kept, less VmRSS
  before it; and the same by tracemalloc, which counts Python's allocations exactly);
- dict form: the same after every result's output, metadata and extra are read as dicts
  (what each inline result held before they were typed), and the ratio of the two.

    .venv/bin/python benchmarks/inline_results.py [--tasks 200000] [--layer-width 1000]
"""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _alt_text(tasks: int, width: int) -> str:
    def dependencies(i: int) -> str:
        if i < width:
            return ""
        first = i - width
        second = first + 1 if (first + 1) % width else first + 1 - width
        return f',"dependencies":["t{first}","t{second}"]'
    body = ",".join(f'{{"id":"t{i}","description":"d"{dependencies(i)},"parameters":{{"task_type":"generic"}}}}'
                    for i in range(tasks))
    return '{"id":"mem_results","title":"memory","tasks":[' + body + "]}"


def child(tasks: int, width: int, traced: bool) -> dict:
    import runner
    from runner.execution import execute

    with tempfile.TemporaryDirectory() as out:
        execute(runner.parse_alt_file(_alt_text(10, width)), out, write=False, journal=False)     # warm-up
        alt = runner.parse_alt_file(_alt_text(tasks, width))
        gc.collect()
        if traced:
            tracemalloc.start()
        measure = (lambda: tracemalloc.get_traced_memory()[0]) if traced else _rss
        before = measure()
        results = execute(alt, out, write=False, journal=False).results
        gc.collect()
        typed = measure() - before
        for result in results.values():     # the dict form: what inline results held before
            result.output, result.metadata, result.extra
        gc.collect()
        dicts = measure() - before
    return {"typed": typed, "dicts": dicts, "tasks": len(results)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1")))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--layer-width", type=int, default=1000)
    args = parser.parse_args()
    for traced, how in ((False, "VmRSS"), (True, "tracemalloc")):
        done = subprocess.run([sys.executable, __file__, "--child", str(args.tasks), str(args.layer_width),
                               "1" if traced else "0"], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        n = figures["tasks"]
        typed, dicts = figures["typed"] / n, figures["dicts"] / n
        print(f"{n} inline results ({how}): {typed:.0f} B/task kept typed, {dicts:.0f} B/task once read as "
              f"dicts (the form before): typed = {typed / dicts:.2f}x the dict form (goal ~250 B/task)")


if __name__ == "__main__":
    main()
