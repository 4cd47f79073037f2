"""How long the command line takes, whole process: a one-task run against a bare interpreter.

Each round starts, in turn, `python -c pass` (the floor: an interpreter that does
nothing), `python -m runner run ONE_TASK.json` on the offline echo provider (every
default product: last.json, report.html, graph.dot and graph.svg), the same run without
report.html (RUNNER_HTML_REPORT=false: what the report costs) and with the built-in graph
layout instead of GraphViz's dot (what the child process costs), and the two commands
that execute nothing, `version` and `validate`. Medians over the rounds, measured in ONE
run, so the comparison holds on a noisy machine:

    .venv/bin/python benchmarks/cli_startup.py [--rounds 15] [--prompt TEXT]

Goal: `run` <= 150 ms (issue 10). The children run as an installed package runs: with
their bytecode cached (PYTHONDONTWRITEBYTECODE is removed from their environment and a
warm-up round writes the .pyc files), and without RUNNER_AI_* variables, so the echo
provider answers. --prompt '{{ task.id }}' measures a templated prompt instead of a
plain one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MS = 150.0


def one_task_file(directory: Path, prompt: str) -> Path:
    path = directory / "one_task.json"
    path.write_text(json.dumps({
        "id": "cli_startup", "title": "one task", "mode": "normal",
        "tasks": [{"id": "hello", "description": "Say hello", "parameters": {"prompt": prompt}}],
    }))
    return path


def child_environment() -> dict:
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("RUNNER_") and name != "PYTHONDONTWRITEBYTECODE"}
    return environ


def timed(argv: list[str], environ: dict) -> float:
    """Wall time of one child process, start to exit, in ms; a failure stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - started) * 1000.0
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {completed.returncode}: {completed.stderr.decode()[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--prompt", default="Say hello to the release team")
    args = parser.parse_args()

    python = sys.executable
    environ = child_environment()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch:
        scratch = Path(scratch)
        alt = one_task_file(scratch, args.prompt)
        out = scratch / "out"
        run = [python, "-m", "runner", "run", str(alt), "--out", str(out), "--quiet"]
        commands = {   # name -> (argv, extra environment)
            "python -c pass": ([python, "-c", "pass"], {}),
            "runner run (echo, 1 task)": (run, {}),
            "  the same, no report.html": (run, {"RUNNER_HTML_REPORT": "false"}),
            "  the same, built-in graph": (run, {"RUNNER_GRAPH_RENDERER": "builtin"}),
            "runner version": ([python, "-m", "runner", "version"], {}),
            "runner validate": ([python, "-m", "runner", "validate", str(alt)], {}),
        }
        for argv, extra in commands.values():   # warm-up: .pyc files written, files in the page cache
            timed(argv, {**environ, **extra})
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (argv, extra) in commands.items():
                times[name].append(timed(argv, {**environ, **extra}))

    floor = statistics.median(times["python -c pass"])
    print(f"{args.rounds} rounds, medians (min-max); {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; prompt {args.prompt!r}")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = "" if name == "python -c pass" else f"  {median / floor:5.2f}x the bare interpreter, +{median - floor:.0f} ms"
        print(f"  {name:30s} {median:7.1f} ms ({min(values):.0f}-{max(values):.0f}){ratio}")
    run_ms = statistics.median(times["runner run (echo, 1 task)"])
    verdict = "meets" if run_ms <= GOAL_MS else f"misses by {run_ms - GOAL_MS:.0f} ms"
    print(f"goal: run <= {GOAL_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
