"""What tracing costs a run: the same `python -m runner run` with spans exported to a
loopback OTLP/HTTP receiver (tests/otlp_receiver.py, its own process) and without.

    .venv/bin/python benchmarks/trace.py [--tasks 10000] [--ai-tasks 640] [--concurrency 64]
                                         [--delay 0.5] [--rounds 3] [--protocol http/protobuf]

  * a 10k-task run (generic tasks, the executor's cheapest: the run is all overhead, so
    this is the worst case for tracing), end to end: process start, run, LAST directory,
    spans sent and flushed. Goal: traced <= 1.3x untraced. The same with 10k small
    data_processing tasks (a sort and a count of 50 rows each, on worker threads).
  * an AI run bound by latency: `ai-tasks` ai_prompt tasks against tests/ai_server.py
    answering after `delay` s, `concurrency` at once. Goal: traced <= 1.02x untraced.
Rounds alternate traced and untraced runs so machine noise hits both; the best round of
each counts. Each traced round checks the receiver got every span (a span per attempt and
AI call, and the run's), so a fast but lossy export cannot pass.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(script: str, *args) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / script), *args],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def stop(process: subprocess.Popen) -> str:
    process.stdin.close()
    out = process.stdout.read()
    process.wait(timeout=30)
    return out.strip()


def generic_alt(count: int) -> dict:
    return {"id": "bench_generic", "title": "generic tasks", "tasks": [
        {"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"] if i % 10 else [],
         "parameters": {"task_type": "generic", "n": i}} for i in range(count)]}


def data_alt(count: int) -> dict:
    """Tasks that do a little work on worker threads: a sort and a reduce of 50 rows each."""
    tasks = [{"id": "rows", "description": "rows", "parameters": {
        "task_type": "generic", "rows": [{"x": (i * 37) % 101} for i in range(50)]}}]
    tasks += [{"id": f"d{i}", "description": "d", "dependencies": ["rows"],
               "parameters": {"task_type": "data_processing", "input_from": "rows", "input_path": "rows",
                              "operations": [{"op": "sort", "by": "x"}, {"op": "reduce", "function": "count"}]}}
              for i in range(count - 1)]
    return {"id": "bench_data", "title": "data tasks", "tasks": tasks}


def ai_alt(count: int) -> dict:
    return {"id": "bench_ai", "title": "AI tasks", "tasks": [
        {"id": f"a{i}", "description": f"prompt number {i}", "parameters": {"task_type": "ai_prompt"}}
        for i in range(count)]}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(alt_path: Path, out: Path, environ: dict) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one `run` in a child process, and its LAST record."""
    cpu = children_cpu()
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(alt_path), "--out", str(out), "--quiet"],
                          env=environ, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({done.returncode}): {done.stderr[-2000:]}")
    if "traces:" in done.stderr:
        raise SystemExit(f"the export failed: {done.stderr[-2000:]}")
    directory = Path(done.stdout.strip().splitlines()[-1])
    return wall, cpu, json.loads((directory / "last.json").read_text())


def spans_expected(record: dict) -> int:
    spans = 1
    for result in record["task_results"].values():
        spans += max(1, len(result["metadata"].get("attempts") or ()))
        ai = result["metadata"].get("ai")
        if ai:
            spans += len(ai.get("alternatives") or ()) or 1
    return spans


def compare(name: str, alt: dict, base_env: dict, rounds: int, protocol: str, goal: float) -> float:
    best = {"untraced": math.inf, "traced": math.inf}
    best_cpu = dict(best)
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as scratch:
        scratch = Path(scratch)
        alt_path = scratch / "alt.json"
        alt_path.write_text(json.dumps(alt))
        for round_number in range(1, rounds + 1):
            for kind in ("untraced", "traced"):
                environ = dict(base_env)
                receiver = None
                if kind == "traced":
                    receiver, url = start("otlp_receiver.py")
                    environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                                   RUNNER_TRACE_FLUSH_SECONDS="60")
                try:
                    wall, cpu, record = run_once(alt_path, scratch / f"{kind}{round_number}", environ)
                finally:
                    received = stop(receiver) if receiver is not None else None
                if received is not None and int(received) != spans_expected(record):
                    raise SystemExit(f"the receiver got {received} spans of {spans_expected(record)}")
                print(f"round {round_number} {name} {kind:9s} wall {wall:7.3f} s  CPU {cpu:7.3f} s"
                      + (f"  ({received} spans received)" if received is not None else ""), flush=True)
                best[kind] = min(best[kind], wall)
                best_cpu[kind] = min(best_cpu[kind], cpu)
    ratio = best["traced"] / best["untraced"]
    print(f"{name}: traced {best['traced']:.3f} s vs untraced {best['untraced']:.3f} s = {ratio:.3f}x "
          f"(goal <= {goal}x) {'met' if ratio <= goal else 'MISSED'}; the run's CPU (the receiver's not counted) "
          f"{best_cpu['traced']:.3f} s vs {best_cpu['untraced']:.3f} s = "
          f"{best_cpu['traced'] / best_cpu['untraced']:.3f}x\n", flush=True)
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--ai-tasks", type=int, default=640)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--protocol", choices=("http/protobuf", "http/json"), default="http/protobuf")
    parser.add_argument("--only", choices=("generic", "data", "ai"))
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RUNNER_")) and k != "TRACEPARENT"}
    if args.only in (None, "generic"):
        compare(f"{args.tasks} generic tasks", generic_alt(args.tasks), base, args.rounds, args.protocol, 1.3)
    if args.only in (None, "data"):
        compare(f"{args.tasks} data_processing tasks", data_alt(args.tasks), base, args.rounds, args.protocol, 1.3)
    if args.only in (None, "ai"):
        server, url = start("ai_server.py", "--delay", str(args.delay))
        try:
            environ = {**base, "RUNNER_AI_SERVICE_URL": url, "RUNNER_AI_MODEL": "bench",
                       "RUNNER_MAX_CONCURRENT_TASKS": str(args.concurrency),
                       "RUNNER_AI_MAX_CONCURRENCY": str(args.concurrency)}
            compare(f"{args.ai_tasks} AI tasks ({args.delay * 1000:.0f} ms each, {args.concurrency} at once)",
                    ai_alt(args.ai_tasks), environ, args.rounds, args.protocol, 1.02)
        finally:
            stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
