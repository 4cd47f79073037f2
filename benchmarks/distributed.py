"""Many ALT files on a Dask cluster vs on this machine: throughput and per-file overhead.

    .venv/bin/python benchmarks/distributed.py [--files 64] [--tasks 20] [--latency 0.25] [--workers 1,2,4]

Each ALT file holds --tasks latency-bound tasks (`sleep --latency` commands, all able to
run at once), so a file takes about --latency seconds wherever it runs. For each N in
--workers, in the same run:
  - local:  runner.run_many on this machine, N files at once (jobs=N);
  - dask:   runner.run_many on a LocalCluster of N worker processes (one thread each, so
            also N files at once), started beforehand (its start-up is printed apart).
Both write every LAST directory (into a temporary directory). Printed per N: wall times,
the ideal (files/N x latency), files per second, speed-up over N=1, and the per-file
overhead of going through Dask: (dask - local) / (files / N), i.e. the extra time each
file's slot costs, and (dask - ideal) / (files / N), everything above the sleeps included
(process start-up of the commands, the LAST directory). Goal: at most 50 ms per file.

Then the fixed cost alone, with --files one-task files (a generic task, no latency) one
at a time: run_many here and through one Dask worker; and the bare round trip, a file run
without writing its LAST directory, in this process (runner.execution.execute) vs on the
worker (runner.cluster.on_worker.run_file, submitted and waited for): the difference is
what going through Dask costs a file.

The machine is shared: expect noise; run it twice before believing a figure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# This file's name is the package's: its directory must not shadow `import distributed`
# (here, and in the worker processes, which inherit sys.path).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def write_files(directory: Path, files: int, tasks: int, latency: float) -> list[Path]:
    paths = []
    for number in range(files):
        doc = {"id": f"bench_{number:03d}", "title": f"bench {number}", "tasks": [
            {"id": f"t{i:02d}", "description": "wait", "timeout_seconds": 60,
             "parameters": {"task_type": "system_command", "command": ["sleep", f"{latency:g}"]}}
            for i in range(tasks)]}
        path = directory / f"bench_{number:03d}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def timed_run(paths, out: Path, environ, **options) -> float:
    import runner

    started = time.perf_counter()
    mapping = runner.run_many(paths, out, environ=environ, **options)
    elapsed = time.perf_counter() - started
    failed = [v for v in mapping.values() if v.startswith("ERROR")]
    if failed:
        raise SystemExit(f"{len(failed)} files failed, e.g. {failed[0]}")
    for directory in mapping.values():
        record = json.loads((Path(directory) / "last.json").read_bytes())
        if any(result["status"] != "completed" for result in record["task_results"].values()):
            raise SystemExit(f"{directory}: not every task completed")
    return elapsed


def main() -> None:
    import distributed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    environ = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep",
               "RUNNER_MAX_CONCURRENT_TASKS": str(args.tasks)}
    print(f"{args.files} ALT files x {args.tasks} tasks of {args.latency:g} s (sleep commands), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'N':>3} {'ideal s':>8} {'local s':>8} {'dask s':>8} {'dask/local':>10} {'files/s dask':>12} "
          f"{'speed-up':>8} {'vs local ms/file':>16} {'vs ideal ms/file':>16} {'cluster start s':>15}")
    first = None
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as scratch:
        scratch = Path(scratch)
        paths = write_files(scratch, args.files, args.tasks, args.latency)
        # A warm-up file each way, so imports are not counted in the first N.
        timed_run(paths[:1], scratch / "warm", environ, jobs=1)
        for n in counts:
            local = timed_run(paths, scratch / f"local{n}", environ, jobs=n)
            started = time.perf_counter()
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                               dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            start_up = time.perf_counter() - started
            try:
                address = cluster.scheduler_address
                timed_run(paths[:n], scratch / f"warm{n}", environ, dask=address)   # workers import librunner
                remote = timed_run(paths, scratch / f"dask{n}", environ, dask=address)
            finally:
                cluster.close()
            ideal = -(-args.files // n) * args.latency
            first = first or remote
            overhead_ms = (remote - local) / (args.files / n) * 1000.0
            over_ideal_ms = (remote - ideal) / (args.files / n) * 1000.0
            print(f"{n:>3} {ideal:>8.2f} {local:>8.2f} {remote:>8.2f} {remote / local:>10.2f} "
                  f"{args.files / remote:>12.1f} {first / remote:>8.2f} {overhead_ms:>16.1f} {over_ideal_ms:>16.1f} "
                  f"{start_up:>15.2f}")
        print("ms/file = (dask - local or ideal) / (files / N): the extra wall time per file slot; goal <= 50 ms")
        fixed_cost(scratch, args.files, environ)


def fixed_cost(scratch: Path, files: int, environ) -> None:
    import distributed

    paths = []
    for number in range(files):
        path = scratch / f"noop_{number:03d}.json"
        path.write_text(json.dumps({"id": f"noop_{number:03d}", "title": "noop", "tasks": [
            {"id": "a", "description": "x", "parameters": {"task_type": "generic"}}]}))
        paths.append(path)
    local = timed_run(paths, scratch / "noop_local", environ, jobs=1)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    try:
        timed_run(paths[:1], scratch / "noop_warm", environ, dask=cluster.scheduler_address)
        remote = timed_run(paths, scratch / "noop_dask", environ, dask=cluster.scheduler_address)
        here, there = round_trips(paths, cluster, environ)
    finally:
        cluster.close()
    print(f"fixed cost: {files} one-task files one at a time: local {local:.2f} s "
          f"({local / files * 1000:.1f} ms/file), dask {remote:.2f} s ({remote / files * 1000:.1f} ms/file); "
          f"through Dask "
          f"{(remote - local) / files * 1000:+.1f} ms/file")
    print(f"round trip without LAST directories: in this process {here / files * 1000:.1f} ms/file, "
          f"on the Dask worker {there / files * 1000:.1f} ms/file: "
          f"Dask adds {(there - here) / files * 1000:.1f} ms/file (goal <= 50)")


def round_trips(paths, cluster, environ) -> tuple[float, float]:
    import distributed

    from runner.cluster import on_worker, travelling_settings
    from runner.execution import execute

    documents = [path.read_bytes() for path in paths]
    started = time.perf_counter()
    for data in documents:
        execute(data, None, write=False, environ=environ)
    here = time.perf_counter() - started
    travelled = travelling_settings.of_submitter(environ)
    with distributed.Client(cluster, set_as_default=False) as client:
        client.submit(on_worker.run_file, documents[0], None, None, None, travelled, "warm", pure=False).result()
        started = time.perf_counter()
        for data in documents:
            answer = client.submit(on_worker.run_file, data, None, None, None, travelled, "bench", pure=False).result()
            assert answer["results"]["a"]["status"] == "completed"
        there = time.perf_counter() - started
    return here, there


if __name__ == "__main__":
    main()
