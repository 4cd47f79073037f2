"""Where a journaled run's extra time goes (issue 23: the journal within 1.3x of the no-op loop).

    .venv/bin/python benchmarks/journal_parts.py [--tasks 10000] [--rounds 40]

The no-op DAG of benchmarks/schedule.py, run without a journal and with one, alternating,
each run split where the executor's loop begins and ends (Execution.execute):
  - before the loop: settings, the run's directory, its files and the writer's thread;
  - the loop: the drain of inline tasks, which writes each result's row, hands the GIL to the
    writer at its commits, and shares the machine with the writer's I/O (alt.json, the
    journal's start, its commits); its CPU time on the run's thread is printed beside it;
  - after it: the journal's last commit (waiting for the one in flight) and its release.
Then two diagnostics, not runs that can be resumed: the journal given no alt.json (alt.json's
share), and the journal whose writer skips the disk (write_synced does nothing but close and
rename): what the journal costs on a disk that takes no time and interrupts nobody.
Baselines measured in the same run, for the floor: an fsync of a small append, a mkdir and a
file's creation in the same file system. Medians of --rounds.
Where Linux shows them (/proc/interrupts), the interrupts a run costs the machine: devices'
(the disk's completions), function-call and TLB-shootdown IPIs; on a VM each lands on the
core of whatever thread runs there, the run's included.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from schedule import dag_document      # benchmarks/ is on sys.path when run as a script

from runner import librunner, parse_alt_file
from runner.execution import execute, executor, journal

PARTS = ("before", "loop", "loop cpu", "after", "whole")
INTERRUPTS = ("devices", "CAL", "TLB")


def interrupt_counts() -> dict[str, int]:
    """Interrupts so far, every CPU's summed: devices' (numbered lines), CAL and TLB IPIs; {}
    where /proc/interrupts cannot be read."""
    counts = dict.fromkeys(INTERRUPTS, 0)
    try:
        with open("/proc/interrupts") as table:
            cpus = len(table.readline().split())
            for line in table:
                fields = line.split()
                name = fields[0].rstrip(":") if fields else ""
                kind = "devices" if name.isdigit() else name if name in INTERRUPTS else None
                if kind is not None:
                    counts[kind] += sum(int(field) for field in fields[1:1 + cpus] if field.isdigit())
    except OSError:
        return {}
    return counts


def split_runs(alt, scratch: str, rounds: int, journaled: bool) -> dict[str, float]:
    """Median seconds of each part of `rounds` runs (plain ones when not journaled)."""
    marks: list[float] = []
    execute_loop = executor.Execution.execute

    def timed(self):
        marks.extend((time.perf_counter(), time.thread_time()))
        try:
            return execute_loop(self)
        finally:
            marks.extend((time.perf_counter(), time.thread_time()))

    workspace = tempfile.mkdtemp(dir=scratch)
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    executor.Execution.execute = timed
    before = interrupt_counts()
    try:
        for _ in range(rounds):
            marks.clear()
            out = tempfile.mkdtemp(dir=scratch) if journaled else None
            begun = time.perf_counter()
            if journaled:
                execute(alt, out, write=False, journal=True, workspace=workspace, environ={})
            else:
                execute(alt, write=False, workspace=workspace, environ={})
            ended = time.perf_counter()
            loop_start, cpu_start, loop_end, cpu_end = marks
            for part, value in zip(PARTS, (loop_start - begun, loop_end - loop_start, cpu_end - cpu_start,
                                           ended - loop_end, ended - begun)):
                parts[part].append(value)
    finally:
        executor.Execution.execute = execute_loop
    after = interrupt_counts()
    medians = {part: statistics.median(values) for part, values in parts.items()}
    return {**medians, **{kind: (after[kind] - before[kind]) / rounds for kind in before}}


def without_alt_json():
    """Journal made with no alt.json (the diagnostic variant); returns the undo."""
    make = journal.Journal.__init__

    def no_alt(self, directory, alt_json=None, before=None):
        make(self, directory, None, before)

    journal.Journal.__init__ = no_alt
    return lambda: setattr(journal.Journal, "__init__", make)


def without_disk():
    """The journal's writes made no-ops (files still closed and renamed, a digest given when
    asked): the diagnostic variant without disk I/O; returns the undo."""
    write_synced = librunner.write_synced

    def skipped(fd, chunks, sync=True, close=False, rename_from=None, rename_to=None, directory_fd=-1,
                digest=False):
        tuple(chunks)
        if close:
            os.close(fd)
        if rename_from is not None and rename_to is not None:
            os.rename(rename_from, rename_to)
        return "0" * 64 if digest else None

    librunner.write_synced = skipped
    return lambda: setattr(librunner, "write_synced", write_synced)


VARIANTS = {"journal without alt.json": without_alt_json, "journal without disk I/O": without_disk}


def file_system_floor(scratch: str, count: int = 200) -> dict[str, float]:
    """Median seconds of an fsync of a 4 KB append, a mkdir and a file's creation."""
    fsyncs, mkdirs, creates = [], [], []
    fd = os.open(os.path.join(scratch, "floor"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for i in range(count):
            os.write(fd, b"x" * 4096)
            begun = time.perf_counter()
            os.fsync(fd)
            fsyncs.append(time.perf_counter() - begun)
            folder = os.path.join(scratch, f"d{i}")
            begun = time.perf_counter()
            os.mkdir(folder)
            mkdirs.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            os.close(os.open(os.path.join(folder, "f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            creates.append(time.perf_counter() - begun)
    finally:
        os.close(fd)
    return {"fsync": statistics.median(fsyncs), "mkdir": statistics.median(mkdirs),
            "create": statistics.median(creates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    alt = parse_alt_file(orjson.dumps(dag_document(args.tasks)))
    with tempfile.TemporaryDirectory(prefix="bench-journal-parts-") as scratch:
        floor = file_system_floor(scratch)
        print(f"file system here: fsync of an append {floor['fsync'] * 1e6:.0f} us, mkdir "
              f"{floor['mkdir'] * 1e6:.0f} us, a file's creation {floor['create'] * 1e6:.0f} us (medians)")
        slices: dict[str, dict[str, list[float]]] = {"without a journal": {}, "journal": {}}
        slices.update((name, {}) for name in VARIANTS)
        # Alternated in slices, so that load from other processes hits them alike.
        for _ in range(4):
            for name, target in slices.items():
                undo = VARIANTS[name]() if name in VARIANTS else None
                try:
                    slice_ = split_runs(alt, scratch, max(1, args.rounds // 4), name != "without a journal")
                finally:
                    if undo is not None:
                        undo()
                for part, value in slice_.items():
                    target.setdefault(part, []).append(value)
        medians = {name: {part: statistics.median(v) for part, v in d.items()} for name, d in slices.items()}
    plain = medians.pop("without a journal")
    if "devices" in plain:
        print("interrupts a run, on the whole machine (devices' / function-call IPIs / TLB shootdowns): "
              + ", ".join(f"{name} {d['devices']:.1f} / {d['CAL']:.1f} / {d['TLB']:.1f}"
                          for name, d in (("without a journal", plain), *medians.items())))
    print(f"{args.tasks} no-op tasks, medians (ms); the extra time over the run without a journal, and the "
          "whole's ratio:")
    print(f"  {'':28s}" + "".join(f"{part:>10s}" for part in PARTS))
    print(f"  {'without a journal':28s}" + "".join(f"{plain[p] * 1e3:10.3f}" for p in PARTS))
    for name, parts in medians.items():
        print(f"  {name:28s}" + "".join(f"{parts[p] * 1e3:10.3f}" for p in PARTS))
        print(f"  {'  extra':28s}" + "".join(f"{(parts[p] - plain[p]) * 1e3:+10.3f}" for p in PARTS)
              + f"   journal/none {parts['whole'] / plain['whole']:.2f}x (goal <= 1.30)")


if __name__ == "__main__":
    sys.exit(main())
