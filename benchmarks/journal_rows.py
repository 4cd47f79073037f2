"""The journal's rows for inline (generic) results: short rows (journal_lines) against the
full rows the journal wrote before (journal_results_line), measured in the same run.

    .venv/bin/python benchmarks/journal_rows.py [--sizes 10000,100000] [--repeat 5]

On schedule.py's no-op DAG, for each size:
- bytes: journal.jsonl's task_results lines per result, each form;
- writing: the core's time to make the lines of every result, and the part of it that holds
  the GIL (the short rows' doubles are written by the journal's writer without it), best of
  --repeat;
- reading: RunState's time to read the journal back (resume, show), each form;
- the run: the run loop without a journal, and with one in each row form (rounds alternate,
  best of each), as journal/none ratios (schedule.py's goal: <= 1.3x).
"""
from __future__ import annotations

import argparse
import gc
import pathlib
import tempfile

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


def journal_of(alt, workspace: str, root: str) -> pathlib.Path:
    out = tempfile.mkdtemp(prefix="bench-rows-", dir=root)
    execute(alt, out, write=False, journal=True, workspace=workspace, environ={})
    return next(pathlib.Path(out).iterdir())


def result_bytes(directory: pathlib.Path) -> int:
    lines = (directory / journal_module.JOURNAL_NAME).read_bytes().splitlines(keepends=True)
    return sum(len(line) for line in lines if line.startswith(b'{"type":"task_results"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-rows-") as root:      # 35 MB a 100k journal
        measure(args, root)


def measure(args, root: str) -> None:
    workspace = tempfile.mkdtemp(prefix="bench-workspace-", dir=root)
    forms = {"short": SHORT, "full": staticmethod(full_rows)}
    for n in [int(size) for size in args.sizes.split(",")]:
        alt = parse_alt_file(orjson.dumps(dag_document(n)))
        results = list(execute(alt, write=False, journal=False, environ={}).results.values())
        figures = {}
        for name, form in forms.items():
            journal_module.Journal._results_line = form
            directory = journal_of(alt, workspace, root)
            made = best_of(args.repeat, lambda: form.__func__(results))
            # The short rows' doubles are put in by the writer, without the GIL (write_synced):
            # the whole text's time, and the part of it that holds the GIL.
            whole = best_of(args.repeat, lambda: bytes(form.__func__(results)))
            read = best_of(args.repeat, lambda: journal_module.RunState(directory))
            figures[name] = (result_bytes(directory) / n, made, whole, read)
        out = tempfile.mkdtemp(prefix="bench-journal-", dir=root)
        times = {"none": [], "short": [], "full": []}
        for _ in range(args.repeat):
            times["none"].append(best_of(1, lambda: run_librunner(alt, workspace)))
            for name, form in forms.items():
                journal_module.Journal._results_line = form
                fresh = tempfile.mkdtemp(dir=out)
                times[name].append(best_of(1, lambda: run_librunner_journaled(alt, workspace, fresh)))
        journal_module.Journal._results_line = SHORT
        plain = min(times["none"])
        for name in forms:
            size, made, whole, read = figures[name]
            ratios = sorted(j / p for j, p in zip(times[name], times["none"]))
            print(f"{n:>7} tasks  {name:5} rows {size:6.1f} B/result, made in {whole * 1e9 / n:4.0f} ns/result "
                  f"({made * 1e9 / n:4.0f} with the GIL), "
                  f"read in {read * 1e6 / n:5.2f} us/result; run {min(times[name]) * 1e3:6.1f} ms vs "
                  f"{plain * 1e3:5.1f} ms without journal: {min(times[name]) / plain:4.2f}x "
                  f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
