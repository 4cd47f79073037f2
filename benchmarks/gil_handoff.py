"""What a journal writer's wake costs a long inline drain: the core's GIL hand-over
(runner/core/gil_handoff.pxi), measured against the same drain with no writer, in one run.

    .venv/bin/python benchmarks/gil_handoff.py [--tasks 100000] [--rounds 7] [--naps 0.001,0.0005]

For each nap length, a thread naps (gil_nap) in a loop beside schedule.py's no-op DAG run
without a journal: each of its wakes takes the GIL from the drain and gives it back at once.
Printed: the run's median time, the median number of wakes, and the time each wake added to
the run ((median - median with no writer) / wakes). Rounds alternate the configurations.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import orjson

from schedule import dag_document   # benchmarks/schedule.py (run as a script: its folder is on sys.path)

from runner import librunner, parse_alt_file
from runner.execution import execute


class Napper:
    """A thread that naps `seconds` at a time until stopped, counting its wakes."""

    def __init__(self, seconds: float):
        self.seconds, self.wakes, self.stopped = seconds, 0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped:
            librunner.gil_nap(self.seconds)
            self.wakes += 1

    def stop(self) -> None:
        self.stopped = True
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--naps", default="0.001,0.0005")
    args = parser.parse_args()
    alt = parse_alt_file(orjson.dumps(dag_document(args.tasks)))
    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as workspace:
        naps = [None] + [float(n) for n in args.naps.split(",")]
        runs: dict = {nap: [] for nap in naps}
        for _ in range(args.rounds):
            for nap in naps:
                napper = Napper(nap) if nap else None
                if napper:
                    time.sleep(0.01)        # its thread started and napping
                wakes = napper.wakes if napper else 0
                started = time.perf_counter()
                execute(alt, write=False, workspace=workspace, environ={})
                elapsed = time.perf_counter() - started
                if napper:
                    wakes = napper.wakes - wakes
                    napper.stop()
                runs[nap].append((elapsed, wakes))
    alone = statistics.median(e for e, _ in runs[None])
    print(f"{args.tasks} no-op tasks, no writer: {alone * 1e3:.2f} ms (median of {args.rounds})")
    for nap in naps[1:]:
        elapsed = statistics.median(e for e, _ in runs[nap])
        wakes = statistics.median(w for _, w in runs[nap])
        per_wake = (elapsed - alone) / wakes * 1e6 if wakes else float("nan")
        print(f"  a writer napping {nap * 1e3:.2f} ms: {elapsed * 1e3:.2f} ms ({elapsed / alone:.3f}x), "
              f"{wakes:.0f} wakes, {per_wake:.1f} us a wake")


if __name__ == "__main__":
    main()
