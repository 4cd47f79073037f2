"""Resume of a finished run with nothing to run, against reading its journal, in one run.

    .venv/bin/python benchmarks/resume.py [--sizes 10000,100000] [--repeat 3] [--shape dag|chain]

A run of N no-op tasks (generic; a DAG where each task depends on up to 2 earlier random
tasks, or a chain) is executed once with its LAST directory. Then, each the best of
--repeat:
- baseline: reading its journal (runner.execution.journal.RunState: every line parsed,
  every task's result rebuilt), what any resume must do first;
- resume: runner.execution.resume.resume of that directory (the plan, every result
  recorded as reused in a new journal, fsynced, before any task; the scheduler settled at
  once), as the API and the CLI run it, with write=False (no LAST file) so the figure is
  the replay itself;
- for context, the same resume writing its LAST directory (last.json, report, graph),
  which any run of N tasks pays.
Goal: resume within 2x of reading the journal.
"""
from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path

from measure import best_of     # benchmarks/measure.py (run as a script: its folder is on sys.path)

from runner.execution import execute
from runner.execution.journal import RunState
from runner.execution.resume import resume


def document(n: int, shape: str, seed: int = 1) -> dict:
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        if shape == "chain":
            deps = [f"t{i - 1}"] if i else []
        else:
            deps = sorted({f"t{rng.randrange(i)}" for _ in range(min(i, 2))}) if i else []
        tasks.append({"id": f"t{i}", "description": "no-op", "dependencies": deps,
                      "parameters": {"task_type": "generic"}})
    return {"id": f"resume_{n}", "title": f"{n} no-op tasks", "tasks": tasks}


def measure(n: int, shape: str, repeat: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="runner-bench-resume-"))
    try:
        finished = execute(document(n, shape), root / "first", environ={})
        assert finished.all_completed
        directory = finished.directory
        outs = iter(range(10 ** 6))

        def read() -> None:
            state = RunState(directory)
            assert len(state.results) == n

        def replay(write: bool) -> None:
            outcome = resume(directory, None, root / f"again{next(outs)}", environ={}, write=write)
            assert outcome.all_completed and len(outcome.results) == n

        baseline = best_of(repeat, read)
        replayed = best_of(repeat, lambda: replay(False))
        written = best_of(max(1, repeat // 2), lambda: replay(True))
        ratio = replayed / baseline
        print(f"{n:>7} tasks ({shape}): journal read {baseline * 1000:8.1f} ms | resume, nothing to run "
              f"{replayed * 1000:8.1f} ms ({ratio:.2f}x, goal <= 2x: {'met' if ratio <= 2 else 'MISSED'}) | "
              f"with its LAST directory {written * 1000:8.1f} ms ({written / baseline:.2f}x)", flush=True)
        return ratio
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", choices=("dag", "chain"), default="dag")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        measure(n, args.shape, args.repeat)


if __name__ == "__main__":
    main()
