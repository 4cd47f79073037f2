"""The journal's rows for inline (generic) results: short rows (journal_lines) against the
full rows the journal wrote before (journal_results_line), measured in the same run.

    .venv/bin/python benchmarks/journal_rows.py [--sizes 10000,100000] [--repeat 5]

On schedule.py's no-op DAG, for each size:
- bytes: the task_results lines per result, each form;
- writing: the core's time to make the lines of every result, and the part of it that holds
  the GIL (the short rows' doubles are written by the journal's writer without it), best of
  --repeat;
- reading: RunState's time to read back a journal of those lines (resume, show), each form;
- the run: the run loop without a journal and with one (short rows, written by the drain;
  rounds alternate, best of each), as a journal/none ratio (schedule.py's goal: <= 1.3x).
Then the drain's own rows (RowSink, what a journaled run's thread pays per inline result): the
core's drain of DRAIN_TASKS tasks into the results alone and into a RowSink too, alternated,
the difference per row (median of --repeat x 40 rounds), against journal_text's general path
on the same results.
"""
from __future__ import annotations

import argparse
import gc
import pathlib
import statistics
import tempfile
import time

import orjson

from measure import best_of     # benchmarks/measure.py (run as a script: its folder is on sys.path)
from schedule import dag_document, run_librunner, run_librunner_journaled

from runner import librunner, parse_alt_file
from runner.execution import execute
from runner.execution import journal as journal_module

SHORT = staticmethod(journal_module.Journal._results_line)


def full_rows(results: list, documents=()) -> bytes:
    """The journal's lines as the previous version wrote them: every row full."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return librunner.journal_results_line(results, [journal_module._row_of(d) for d in documents])
    finally:
        if collecting:
            gc.enable()


def journal_of(alt, workspace: str, root: str, lines: bytes) -> pathlib.Path:
    """A run's directory whose journal holds its first line and then `lines` (the run's own
    rows are the drain's short ones, whatever form is measured)."""
    out = tempfile.mkdtemp(prefix="bench-rows-", dir=root)
    execute(alt, out, write=False, journal=True, workspace=workspace, environ={})
    directory = next(pathlib.Path(out).iterdir())
    path = directory / journal_module.JOURNAL_NAME
    first = path.read_bytes().split(b"\n", 1)[0] + b"\n"
    path.write_bytes(first + lines)
    return directory


DRAIN_TASKS = 1000      # a line of their rows stays within the sink's first buffer: no growth


def drain_rows(repeat: int) -> None:
    alt = parse_alt_file(orjson.dumps(dag_document(DRAIN_TASKS)))

    def drain(sink: bool):
        scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
        queue, ended = [], {}
        into = librunner.RowSink(queue) if sink else None
        recorder = librunner.RunStatistics(ended, alt.tasks)      # as the executor has it
        started = time.perf_counter()
        scheduler.run_inline(recorder, into)
        elapsed = time.perf_counter() - started
        if into is not None:
            into.close()
        return elapsed, ended

    rows, plain = [], []
    for _ in range(repeat * 40):
        alone, ended = drain(False)
        with_rows, _ = drain(True)
        plain.append(alone)
        rows.append(with_rows - alone)
    results = list(ended.values())
    general = best_of(repeat * 40, lambda: librunner.journal_text(results))
    per_row = statistics.median(rows) / DRAIN_TASKS
    print(f"  drain  {DRAIN_TASKS} tasks: {statistics.median(plain) * 1e9 / DRAIN_TASKS:4.0f} ns/task without a journal; "
          f"its rows +{per_row * 1e9:4.0f} ns/result (journal_text's general path on the same results: "
          f"{general * 1e9 / DRAIN_TASKS:4.0f} ns/result, drain/general {per_row * DRAIN_TASKS / general:4.2f}x)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-rows-") as root:      # 35 MB a 100k journal
        measure(args, root)
    drain_rows(args.repeat)


def measure(args, root: str) -> None:
    workspace = tempfile.mkdtemp(prefix="bench-workspace-", dir=root)
    forms = {"short": SHORT, "full": staticmethod(full_rows)}
    for n in [int(size) for size in args.sizes.split(",")]:
        alt = parse_alt_file(orjson.dumps(dag_document(n)))
        results = list(execute(alt, write=False, journal=False, environ={}).results.values())
        figures = {}
        for name, form in forms.items():
            lines = bytes(form.__func__(results))
            directory = journal_of(alt, workspace, root, lines)
            made = best_of(args.repeat, lambda: form.__func__(results))
            # The short rows' doubles are put in by the writer, without the GIL (write_synced):
            # the whole text's time, and the part of it that holds the GIL.
            whole = best_of(args.repeat, lambda: bytes(form.__func__(results)))
            read = best_of(args.repeat, lambda: journal_module.RunState(directory))
            figures[name] = (len(lines) / n, made, whole, read)
        out = tempfile.mkdtemp(prefix="bench-journal-", dir=root)
        times = {"none": [], "journal": []}
        for _ in range(args.repeat):
            times["none"].append(best_of(1, lambda: run_librunner(alt, workspace)))
            fresh = tempfile.mkdtemp(dir=out)
            times["journal"].append(best_of(1, lambda: run_librunner_journaled(alt, workspace, fresh)))
        for name in forms:
            size, made, whole, read = figures[name]
            print(f"{n:>7} tasks  {name:5} rows {size:6.1f} B/result, made in {whole * 1e9 / n:4.0f} ns/result "
                  f"({made * 1e9 / n:4.0f} with the GIL), read in {read * 1e6 / n:5.2f} us/result", flush=True)
        plain, journaled = min(times["none"]), min(times["journal"])
        ratios = sorted(j / p for j, p in zip(times["journal"], times["none"]))
        print(f"{n:>7} tasks  run {journaled * 1e3:6.1f} ms with the journal vs {plain * 1e3:5.1f} ms without: "
              f"{journaled / plain:4.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
