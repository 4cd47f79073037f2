#!/usr/bin/env python3
"""The window between a side effect and its record (issue 18): how long after a command's
effect (a line it appends, just before it exits) or a file operation's append its task's
completed result is on disk in the journal (written and fsynced by the group commit).

A kill -9 inside this window loses the result although the effect happened, so `resume`
runs the task again: the documented "at most one repetition per kill" of durable runs.

Runs, in this process, fan-outs of `system_command` tasks (`python -I -S -c`, no shell,
each appending a line with the wall time of its append and exiting) and of
`file_operation` appends, with the journal as the CLI writes it; the journal's commits are
watched (the moment each commit's fsync returned, and which results it held). Prints
percentiles of effect -> durable, for the journal as it is (a result with an effect
hurries the writer) and, as the baseline in the same run, with the writer's 50 ms window
alone (hurry off).

    .venv/bin/python benchmarks/journal_window.py [--commands 200] [--files 400] [--concurrency 4]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import runner  # noqa: E402
from runner.execution import execute, file_operation, journal, system_command  # noqa: E402

PYTHON = os.path.realpath(sys.executable)
COMMAND = ("import os,sys,time\n"
           "fd=os.open('effects.log',os.O_WRONLY|os.O_APPEND|os.O_CREAT,0o644)\n"
           "os.write(fd,('%s %.6f\\n'%(sys.argv[1],time.time())).encode())\n")


class Watch:
    """The journal's commits: task id -> wall time its commit's fsync returned."""

    def __init__(self):
        self.durable: dict[str, float] = {}
        self.queued: dict[str, float] = {}          # task id -> when its result was queued
        self.exited: dict[int, float] = {}          # command pid -> when the runner saw it end
        self.file_effects: dict[str, float] = {}
        self.local = threading.local()
        self.commits = 0

    def install(self, hurry: bool):
        original_take, original_commit, original_append = journal.Journal._take, journal.Journal._commit_pending, \
            file_operation._append
        original_collect = system_command._collect
        watch = self

        def collect(process, cap):
            out = original_collect(process, cap)
            watch.exited[process.pid] = time.time()     # its exit seen, its pipes read to their end
            return out
        system_command._collect = collect

        def take(pending):
            batch = original_take(pending)
            if batch and not isinstance(batch[0], dict):
                watch.local.ids = [r.task_id for r in batch]
            return batch

        def commit(self):
            watch.local.ids = []
            original_commit(self)
            done = time.time()
            if watch.local.ids:
                watch.commits += 1
            for task_id in watch.local.ids:
                watch.durable.setdefault(task_id, done)

        def append(dir_fd, name, path, ctx):
            out = original_append(dir_fd, name, path, ctx)
            watch.file_effects[ctx.task.id] = time.time()
            return out

        journal.Journal._take = staticmethod(take)
        journal.Journal._commit_pending = commit
        file_operation._append = append
        original_init = journal.Journal.__init__

        def init(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            if not hurry:
                self.hurry = lambda: None
            queue = self.write_result

            def write_result(result):
                watch.queued.setdefault(result.task_id, time.time())
                queue(result)
            self.write_result = write_result
        journal.Journal.__init__ = init

        def restore():
            journal.Journal._take = staticmethod(original_take)
            journal.Journal._commit_pending = original_commit
            journal.Journal.__init__ = original_init
            file_operation._append = original_append
            system_command._collect = original_collect
        return restore


def document(commands: int, files: int) -> dict:
    tasks = [{"id": "start", "description": "s", "parameters": {"task_type": "generic"}}]
    for i in range(commands):
        tasks.append({"id": f"c{i}", "description": "c", "dependencies": ["start"], "parameters": {
            "task_type": "system_command", "command": [PYTHON, "-I", "-S", "-c", COMMAND, f"c{i}"]}})
    for i in range(files):
        tasks.append({"id": f"f{i}", "description": "f", "dependencies": ["start"], "parameters": {
            "task_type": "file_operation", "operation": "append", "path": "files.log", "content": f"f{i}\n"}})
    return {"id": "window", "title": "window", "tasks": tasks}


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return "-"

    def at(q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000.0
    return f"p50 {at(0.5):6.2f}  p90 {at(0.9):6.2f}  p99 {at(0.99):6.2f}  max {values[-1] * 1000.0:6.2f} ms"


def measure(hurry: bool, commands: int, files: int, concurrency: int) -> tuple[list, list, int]:
    with tempfile.TemporaryDirectory(prefix="runner-window-") as root:
        root = Path(root)
        workspace = root / "workspace"
        workspace.mkdir()
        watch = Watch()
        restore = watch.install(hurry)
        try:
            environ = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true",
                       "RUNNER_SYSTEM_COMMAND_ALLOWLIST": PYTHON}
            done = execute(runner.parse_alt_file(json.dumps(document(commands, files)).encode()), root / "out",
                           workspace=workspace, max_concurrency=concurrency, environ=environ)
        finally:
            restore()
        assert all(r.status == "completed" for r in done.results.values()), "a task did not complete"
        command_windows, command_queued, commit = [], [], []
        for line in (workspace / "effects.log").read_text().splitlines():
            task_id, at = line.split()
            command_windows.append(watch.durable[task_id] - float(at))
            command_queued.append(watch.queued[task_id] - float(at))
        file_windows = [watch.durable[task_id] - at for task_id, at in watch.file_effects.items()]
        commit = [watch.durable[task_id] - at for task_id, at in watch.queued.items() if task_id in watch.durable]
        ended = [watch.durable[task_id] - watch.exited[result.metadata["process"]["pid"]]
                 for task_id, result in done.results.items() if task_id.startswith("c")]
        return {"system_command": command_windows, "  of which effect -> result queued": command_queued,
                "  command's end (exit seen) -> fsynced": ended,
                "file_operation": file_windows, "result queued -> fsynced (both)": commit}, watch.commits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternated; all results pooled")
    args = parser.parse_args(argv)
    pooled = {True: ({}, 0), False: ({}, 0)}
    for _ in range(args.repeat):
        for hurry in (True, False):
            found, commits = measure(hurry, args.commands, args.files, args.concurrency)
            windows, count = pooled[hurry]
            for name, values in found.items():
                windows.setdefault(name, []).extend(values)
            pooled[hurry] = (windows, count + commits)
    print(f"effect -> its result fsynced in the journal ({args.commands} commands, {args.files} file appends, "
          f"concurrency {args.concurrency}, x{args.repeat}; load {os.getloadavg()[0]:.1f})")
    for hurry, label in ((True, "as it is (hurry)"), (False, "baseline: the 50 ms commit window alone")):
        windows, commits = pooled[hurry]
        print(f"  {label}: {commits} commits")
        for name, values in windows.items():
            print(f"    {name:<36} {percentiles(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
