"""A bounded fuzzing campaign: each target under libFuzzer (atheris) for a fixed time or
number of inputs, from a seed corpus built afresh from the tests' documents.

    python fuzz/campaign.py [--seconds S] [--runs N] [--seed N] [--keep DIR] [TARGET...]

Exit status 0 when no target found anything. A target that fails leaves its input as
<work dir>/<target>/crash-<sha1> and prints how to replay it:
`python fuzz/<target>.py <crash file>`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("parse_alt_file", "segmentation_alt", "add_task_result", "generate_last_file", "batch_process",
           "prompt_template")


def run_target(target: str, work: Path, seconds: int, runs: int | None, seed: int) -> tuple[bool, str]:
    """(passed, libFuzzer's output) of one target run in its own process."""
    import corpus

    folder = work / target
    seeds = corpus.write(work / "seeds", [target])[target]
    live = folder / "corpus"            # libFuzzer adds what it finds here, not in the seeds
    shutil.copytree(seeds, live, dirs_exist_ok=True)
    command = [sys.executable, str(HERE / f"{target}.py"), f"-max_total_time={seconds}", f"-seed={seed}",
               "-timeout=60", "-rss_limit_mb=4096", "-max_len=65536", "-print_final_stats=1",
               f"-artifact_prefix={folder}/", str(live)]
    if runs is not None:
        command.insert(2, f"-runs={runs}")
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", cwd=folder,
                          timeout=seconds + 600)
    return done.returncode == 0, done.stdout + done.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all ({', '.join(TARGETS)})")
    parser.add_argument("--seconds", type=int, default=30, help="per target (default 30)")
    parser.add_argument("--runs", type=int, help="stop a target after this many inputs")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="work directory kept afterwards (default: a temporary one)")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; known: {', '.join(TARGETS)}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="runner-fuzz-campaign-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = []
    for target in args.targets or TARGETS:
        (work / target).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        passed, output = run_target(target, work, args.seconds, args.runs, args.seed)
        stats = [line for line in output.splitlines() if line.startswith(("stat::number_of_executed_units",
                                                                             "Done "))]
        print(f"{target}: {'ok' if passed else 'FAILED'} in {time.monotonic() - started:.0f} s "
              f"({'; '.join(stats) or 'no stats'})", flush=True)
        if not passed:
            failed.append(target)
            print(output[-6000:], file=sys.stderr)
            for crash in sorted((work / target).glob("crash-*")) + sorted((work / target).glob("timeout-*")):
                print(f"  replay: {sys.executable} {HERE / (target + '.py')} {crash}", file=sys.stderr)
    if not args.keep and not failed:
        shutil.rmtree(work, ignore_errors=True)
    elif failed:
        print(f"inputs and output kept in {work}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
