"""Reading a big LAST file back, against orjson.loads of the same file in the same run.

    .venv/bin/python benchmarks/last_read.py [--tasks 200000] [--repeat 3]

(a) in process, on last.json of --tasks results (~900 bytes each with the graph):
    orjson.loads of the bytes as it comes (the cyclic collector running, as in any
    program) and with the collector paused (it rescans the new containers as they are
    made; paused, it scans them all at its next collection instead); load_last (orjson.loads,
    then the shape check); load_last_summary (what `show` reads: the core's skim, then only
    the results of tasks that did not complete); load_last_lazy (what `report` reads: the
    skim, the header and the graph; the results stay bytes) and the report's table of
    results (ResultRows: every result's status and times) from it and from load_last; the
    report page (without the graph) from each. Each ratio is against orjson.loads as it
    comes.
(b) whole processes: `python -m runner show DIR`, and show's text made from the full record
    (load_last, as show read it before load_last_summary), against a Python that only reads
    the file and orjson.loads it.
The machine is shared and noisy: medians of several runs, ratios in one run.
"""
from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner  # noqa: E402
from last_generate import make_run  # noqa: E402
from measure import median_time  # noqa: E402
from runner.last import reader  # noqa: E402
from runner.last.directory import render_html  # noqa: E402
from runner.last.options import LastOptions  # noqa: E402
from runner.last.record_values import ResultRows  # noqa: E402


def paused(function):
    def run():
        gc.disable()
        try:
            return function()
        finally:
            gc.enable()
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    alt, _, results = make_run(args.tasks)
    with tempfile.TemporaryDirectory() as scratch:
        written = runner.write_last_file(alt, results, Path(scratch), html_report=False, graph=False,
                                         compression=False, archive="none")
        del results
        gc.collect()
        path = written.directory / "last.json"
        raw = path.read_bytes()
        print(f"{args.tasks} tasks, last.json {len(raw) / 1e6:.1f} MB")

        page = LastOptions()
        floor = median_time(lambda: orjson.loads(raw), args.repeat)
        rows = [("orjson.loads, collector paused", median_time(paused(lambda: orjson.loads(raw)), args.repeat)),
                ("load_last", median_time(lambda: reader.load_last(path), args.repeat)),
                ("load_last_summary (show's read)", median_time(lambda: reader.load_last_summary(path), args.repeat)),
                ("load_last_lazy (report's read)", median_time(lambda: reader.load_last_lazy(path), args.repeat)),
                ("load_last + the report's table of results",
                 median_time(lambda: ResultRows(reader.load_last(path)), args.repeat)),
                ("load_last_lazy + the report's table of results",
                 median_time(lambda: ResultRows(reader.load_last_lazy(path)), args.repeat)),
                ("report page (no graph) from load_last",
                 median_time(lambda: render_html(reader.load_last(path), page, graph=False), args.repeat)),
                ("report page (no graph) from load_last_lazy",
                 median_time(lambda: render_html(reader.load_last_lazy(path), page, graph=False), args.repeat))]
        print(f"(a) orjson.loads of the bytes                       {floor * 1e3:8.1f} ms")
        for name, took in rows:
            print(f"    {name:<48} {took * 1e3:8.1f} ms  {took / floor:.2f}x")

        def process(*command):
            def run():
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            return run

        bare = median_time(process(sys.executable, "-c", "import orjson, sys; "
                                   "orjson.loads(open(sys.argv[1], 'rb').read())", str(path)), args.repeat)
        show = median_time(process(sys.executable, "-m", "runner", "show", str(written.directory)), args.repeat)
        full = median_time(process(sys.executable, "-c", "import sys; from runner import load_last; "
                                   "from runner.commands.show import describe; "
                                   "describe(load_last(sys.argv[1]))", str(written.directory)), args.repeat)
        print(f"(b) python: read + orjson.loads                     {bare * 1e3:8.1f} ms")
        print(f"    show's text from load_last (the full record)     {full * 1e3:8.1f} ms  {full / bare:.2f}x")
        print(f"    python -m runner show                            {show * 1e3:8.1f} ms  {show / bare:.2f}x")


if __name__ == "__main__":
    main()
