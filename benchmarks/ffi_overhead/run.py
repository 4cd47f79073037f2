"""FFI overhead: calls/s through librunner's C ABI from a C host, against the GIL floor.

Builds ffi_overhead.c with `python -m runner config --cflags --libs` (plus Python.h for the
floor loop), runs every case on 1 and 2 threads in interleaved rounds in ONE process, and
prints the median rate of each (and the best round: the machine is shared and noisy) with
its ratio to the floor measured in the same run:

    .venv/bin/python benchmarks/ffi_overhead/run.py [--rounds 7] [--calls 200000]
        [--baseline DIR]

--baseline DIR also builds the program against another librunner.so (say, one built from
an earlier revision) and alternates rounds of the two, printing current/baseline ratios.

Goals (issue 2): runner_add_task_result within 4x of the floor and >= 500k calls/s on one
thread; runner_get_last_error + runner_free_string takes no GIL and beats the floor.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = (("gil_floor", "GIL floor (Ensure+Release)"),
         ("add_task_result", "runner_add_task_result"),
         ("last_error_free", "runner_get_last_error+free_string"))

Rates = dict[tuple[str, int], list[float]]


def build(output: Path, library_dir: Path | None = None) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("no C compiler")
    runner_flags = subprocess.run([sys.executable, "-m", "runner", "config", "--cflags", "--libs"],
                                  check=True, capture_output=True, text=True).stdout.split()
    if library_dir is not None:  # the same header, another library: its -L and rpath first
        runner_flags = [f"-L{library_dir}", f"-Wl,-rpath,{library_dir}", *runner_flags]
    python_flags = [f"-I{sysconfig.get_paths()['include']}", f"-L{sysconfig.get_config_var('LIBDIR')}",
                    f"-Wl,-rpath,{sysconfig.get_config_var('LIBDIR')}",
                    f"-lpython{sysconfig.get_config_var('LDVERSION')}"]
    subprocess.run([compiler, "-O2", "-Wall", "-Werror", str(HERE / "ffi_overhead.c"), *runner_flags,
                    *python_flags, "-lpthread", "-o", str(output)], check=True)
    return output


def run_rounds(program: Path, rounds: int, calls: int, rates: Rates, scratch: str) -> None:
    # env={}: the program must find its Python on its own, as a user's would.
    completed = subprocess.run([str(program), str(rounds), str(calls)], env={}, capture_output=True,
                               text=True, cwd=scratch)
    if completed.returncode != 0:
        sys.exit(f"{program.name} failed:\n{completed.stderr}")
    for line in completed.stdout.splitlines():
        case, threads, count, seconds = line.split()
        rates[case, int(threads)].append(int(count) / float(seconds))


def print_table(title: str, rates: Rates) -> dict[tuple[str, int], float]:
    median = {key: statistics.median(values) for key, values in rates.items()}
    print(title)
    print(f"{'case':<34}{'threads':>8}{'calls/s':>14}{'ns/call':>10}{'x floor':>10}{'best calls/s':>16}")
    for threads in (1, 2):
        floor = median["gil_floor", threads]
        for case, label in CASES:
            rate = median[case, threads]
            ratio = floor / rate  # time per call, in units of the floor's
            print(f"{label:<34}{threads:>8}{rate:>14,.0f}{threads * 1e9 / rate:>10.0f}{ratio:>9.2f}x"
                  f"{max(rates[case, threads]):>16,.0f}")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000, help="calls per thread per measurement")
    parser.add_argument("--baseline", type=Path, help="directory of another librunner.so to compare with")
    args = parser.parse_args()

    current: Rates = defaultdict(list)
    baseline: Rates = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        program = build(Path(scratch) / "ffi_overhead")
        if args.baseline is None:
            run_rounds(program, args.rounds, args.calls, current, scratch)
        else:
            other = build(Path(scratch) / "ffi_overhead_baseline", args.baseline.resolve())
            for _ in range(args.rounds):  # alternate, so that noise hits both alike
                run_rounds(program, 1, args.calls, current, scratch)
                run_rounds(other, 1, args.calls, baseline, scratch)

    title = f"ffi_overhead: {args.rounds} rounds x {args.calls} calls/thread; median of rounds (best round)"
    median = print_table(title, current)
    add_1, floor_1, error_1 = (median["add_task_result", 1], median["gil_floor", 1],
                               median["last_error_free", 1])
    print()
    print(f"goal add_task_result <= 4x floor (1 thread): {floor_1 / add_1:.2f}x "
          f"-> {'met' if floor_1 / add_1 <= 4 else 'MISSED'}")
    print(f"goal add_task_result >= 500k calls/s (1 thread): {add_1:,.0f} "
          f"-> {'met' if add_1 >= 500_000 else 'MISSED'}")
    print(f"goal get_last_error+free beats the floor (1 thread): {error_1 / floor_1:.2f}x the floor's rate "
          f"-> {'met' if error_1 > floor_1 else 'MISSED'}")
    if args.baseline is not None:
        print()
        before = print_table(f"baseline {args.baseline}:", baseline)
        print()
        for threads in (1, 2):
            for case, label in CASES[1:]:
                print(f"{label} ({threads} thread{'s' if threads > 1 else ''}): "
                      f"{median[case, threads] / before[case, threads]:.2f}x the baseline's calls/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
