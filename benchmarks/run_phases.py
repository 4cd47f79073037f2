"""Where the time of `python -m runner run FILE --out DIR --quiet` goes, whole process, at a size:

the run of benchmarks/memory.py (generic tasks in a layered DAG: each task depends on 2 of
the layer before) in a child process whose CLI is timed from the inside: each phase's wall
clock (start, end, thread) around the functions that make it, interpreter start-up (spawn
to the child's first line) and teardown (main returned to process exit: freeing the run's
objects, atexit, the threads joined), printed against the run loop measured in the same
run (the LAST record's execution_time_ms) and the whole process. Phases on other threads
(graph, report, the gzip copy) overlap those of the main thread; they are shown with their
thread's name and not added to the main thread's sum.

    .venv/bin/python benchmarks/run_phases.py [--tasks 200000] [--layer-width 1000] [--dag layered|none]
                                              [--rounds 1] [--keep DIR]

Goal (issue 23): the whole process <= 15 s at 1M tasks. The machine is shared: each
figure is followed by the load average, and --rounds N keeps the fastest whole process.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))


# ---- the child: the CLI with its phases timed ------------------------------------------------

_PHASES: list = []      # (name, thread, start, end), monotonic seconds (system-wide on Linux)


def _timed(name: str, function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            _PHASES.append((name, threading.current_thread().name, started, time.monotonic()))
    return timed


def _wrap(owner, attribute: str, name: str) -> None:
    setattr(owner, attribute, _timed(name, getattr(owner, attribute)))


def _instrument() -> None:
    """Timers around the functions that make each phase, found by the names the CLI calls."""
    import runner
    from runner import alt_input, librunner
    from runner.commands import run as run_command
    from runner.execution import executor, journal, run as execution_run
    from runner.last import directory, write

    _wrap(alt_input, "read_alt_input", "read the ALT file")
    _wrap(runner, "parse_alt_file", "parse (model)")
    _wrap(run_command, "preflight_passes", "preflight")
    _wrap(execution_run, "execute_request", "execute_request")
    _wrap(execution_run, "_checked_ai_client", "  AI service check")
    _wrap(execution_run, "_start_journal", "  journal start (alt.json, first lines)")
    _wrap(executor.Execution, "execute", "  executor (run loop)")
    _wrap(journal.Journal, "finish", "  journal finish")
    _wrap(journal.Journal, "release", "  journal release")
    _wrap(execution_run, "write_last_file", "  write_last_file")
    _wrap(librunner, "checked_last_record", "    record build (core)")
    _wrap(directory, "write_directory", "    write_directory")
    import runner.last.artifacts as artifacts
    _wrap(artifacts, "extract_artifacts", "      artifacts")
    _wrap(directory, "_write_graph", "      graph.svg (drawing)")
    if hasattr(directory, "_write_dot"):
        _wrap(directory, "_write_dot", "      graph.dot")
    _wrap(directory, "_write_report", "      report.html")
    _wrap(directory, "_stream_last_json", "      last.json (+ .gz) stream")
    _wrap(directory, "fsync_directory", "      directory fsync")
    from runner.last import graph_drawing
    _wrap(graph_drawing, "to_dot", "        graph.dot text (Python)")
    _wrap(graph_drawing, "summarise", "        graph summary")
    _wrap(graph_drawing, "run_dot", "        dot -Tsvg")
    _wrap(directory, "_write_text", "        text file write")
    _wrap(directory, "render_html", "        report render")


def _time_collections() -> None:
    """Each cyclic GC pass as a phase of its own (it lands inside whatever allocated last)."""
    import gc

    began = {}

    def callback(stage, info):
        if stage == "start":
            began["at"] = time.monotonic()
        elif "at" in began:
            _PHASES.append((f"gc generation {info['generation']} ({info['collected']} freed)",
                            threading.current_thread().name, began.pop("at"), time.monotonic()))
    gc.callbacks.append(callback)


def child(argv: list[str], phases_file: str) -> None:
    first = time.monotonic()
    _time_collections()
    _instrument()
    from runner.cli import main

    imported = time.monotonic()
    sys.argv = ["runner", *argv]
    code = main()
    ended = time.monotonic()
    with open(phases_file, "w") as handle:
        json.dump({"first": first, "imported": imported, "ended": ended, "code": code, "phases": _PHASES}, handle)
    raise SystemExit(code)      # as python -m runner does: teardown follows


# ---- the parent --------------------------------------------------------------------------------

def _load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def write_alt(path: Path, tasks: int, dag: str, width: int) -> None:
    from memory import _dependencies

    with open(path, "w") as handle:
        handle.write('{"id":"mem_run","title":"memory","tasks":[')
        handle.write(",".join(f'{{"id":"t{i}","description":"d"{_dependencies(i, dag, width)},'
                              f'"parameters":{{"task_type":"generic"}}}}' for i in range(tasks)))
        handle.write("]}")


def one_run(alt: Path, out: Path, phases_file: Path) -> dict:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("RUNNER_")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, __file__, "--child", str(phases_file), "run", str(alt), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, env=environ, timeout=3600)
    exited = time.monotonic()
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(phases_file.read_text())
    last = Path(done.stdout.strip().splitlines()[-1]) / "last.json"
    with open(last, "rb") as handle:
        found = re.search(rb'"execution_time_ms":(\d+)', handle.read(1 << 16))
    figures.update(started=started, exited=exited, loop=int(found.group(1)) / 1000 if found else 0.0)
    return figures


def report(figures: dict, tasks: int) -> list[str]:
    started, exited, loop = figures["started"], figures["exited"], figures["loop"]
    whole = exited - started
    rows = [("interpreter start-up + imports", "MainThread", started, figures["imported"])]
    rows += [tuple(phase) for phase in figures["phases"]]
    rows.append(("teardown (main returned -> exit)", "MainThread", figures["ended"], exited))
    rows.sort(key=lambda row: row[2])
    lines = [f"{tasks} tasks: whole process {whole:.2f} s = {whole / loop if loop else float('inf'):.1f}x the run "
             f"loop ({loop:.2f} s, the record's execution_time_ms); goal at 1M <= 15 s "
             f"({'met' if whole <= 15 else 'MISSED'} at this size); {_load()}",
             f"{'phase':<44} {'thread':<22} {'from':>7} {'seconds':>8} {'x loop':>7}"]
    for name, thread, start, end in rows:
        lines.append(f"{name:<44} {thread[:22]:<22} {start - started:7.2f} {end - start:8.3f} "
                     f"{(end - start) / loop if loop else 0:7.2f}")
    top = [row for row in rows if row[1] == "MainThread" and not row[0].startswith(" ")]
    covered = sum(end - start for name, _, start, end in top if name != "execute_request")
    inside = [row for row in rows if row[1] == "MainThread" and row[0].startswith("  ") and not row[0].startswith("   ")]
    request = next((end - start for name, _, start, end in top if name == "execute_request"), 0.0)
    covered += request
    untimed = whole - covered
    lines.append(f"{'(main thread, outside the phases above)':<44} {'MainThread':<22} {'':>7} {untimed:8.3f}")
    lines.append(f"{'(execute_request, outside its phases)':<44} {'MainThread':<22} {'':>7} "
                 f"{request - sum(end - start for _, _, start, end in inside):8.3f}")
    return lines


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[3:], sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--dag", choices=("layered", "none"), default="layered")
    parser.add_argument("--layer-width", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="write the ALT file and the LAST directories here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        alt = work / f"layered_{args.tasks}.json"
        if not alt.exists():
            write_alt(alt, args.tasks, args.dag, args.layer_width)
        best = None
        for round_number in range(args.rounds):
            figures = one_run(alt, work / "out", work / "phases.json")
            if best is None or figures["exited"] - figures["started"] < best["exited"] - best["started"]:
                best = figures
        for line in report(best, args.tasks):
            print(line, flush=True)


if __name__ == "__main__":
    main()
