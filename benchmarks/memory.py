"""Peak memory of a run, measured in a child process (issue 12's bounds):

- ai: an AI answer of N MB (served by tests/ai_server.py on 127.0.0.1, as JSON and as an
  SSE stream) peaks at most 4 x N MB above the process's baseline, the LAST file included;
- run: a run of 1M generic tasks (python -m runner run) in a layered DAG (layers of
  --layer-width tasks, each depending on 2 tasks of the layer before; --dag none: no
  dependencies) stays under 1.5 GB peak (and 1.2 KB per task at 200k), the whole process
  under 15 s, printed against the run loop alone (the LAST record's execution_time_ms);
- last: writing a LAST file peaks at most 2 x the size of the last.json it writes.

The child reads its own resident set from /proc: the baseline is VmRSS after a warm-up
of the same work at a tiny size, then the peak (VmHWM, reset with /proc/self/clear_refs)
of the measured step. The machine is shared: figures vary by a few percent between runs.

    .venv/bin/python benchmarks/memory.py [ai|run|last ...] [--ai-mb 32] [--tasks 1000000] [--last-tasks 200000]
                                          [--dag layered|none] [--layer-width 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1 << 20


def _status(field: str) -> int:
    """A VmRSS/VmHWM-style field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")        # resets VmHWM to the current VmRSS


def measured(step) -> tuple[int, int, float]:
    """(baseline RSS, peak RSS during step(), seconds) of this process."""
    import gc
    gc.collect()
    before = _status("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    step()
    return before, _status("VmHWM"), time.perf_counter() - started


# ---- children ---------------------------------------------------------------------------

def child_ai(url: str, megabytes: int, stream: bool, out: str) -> dict:
    os.environ.update(RUNNER_AI_SERVICE_URL=url, RUNNER_AI_PROVIDER="openai", RUNNER_AI_READ_TIMEOUT="600")
    from runner.execution import execute

    def run_once(tag: str):
        alt = {"id": f"mem_{tag}", "title": "memory", "tasks": [{"id": "ask", "description": "answer",
                                                                 "timeout_seconds": 600}]}
        outcome = execute(alt, out, stream=False, environ=os.environ)
        result = outcome.results["ask"]
        assert result.status == "completed", result.error
        return len(result.output["text"])

    run_once("warmup")                  # every module, pool and connection of a run, at a tiny size
    sizes = {}
    before, peak, seconds = measured(lambda: sizes.setdefault("text", run_once("big")))
    return {"before": before, "peak": peak, "seconds": seconds, "text_bytes": sizes["text"]}


def child_last(tasks: int, out: str) -> dict:
    import runner
    alt = runner.parse_alt_file(json.dumps({"id": "mem_last", "title": "memory", "tasks": [
        {"id": f"t{i}", "description": f"task {i}", "dependencies": [f"t{i - 1}"] if i % 10 else None}
        for i in range(tasks)]}))
    results = {f"t{i}": runner.task_result_from_dict({
        "task_id": f"t{i}", "status": "completed" if i % 7 else "failed",
        "output": {"text": f"answer number {i} " * 8}, "error": None if i % 7 else "boom",
        "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:01.500Z",
        "duration_ms": 1500.0, "metadata": {"ai": {"model": "echo", "prompt_tokens": 4, "completion_tokens": 9}}},
        alt) for i in range(tasks)}
    written = {}
    options = dict(graph=False, html_report=False)
    runner.write_last_file(alt, dict(list(results.items())[:10]), out, **options)    # warm-up
    before, peak, seconds = measured(lambda: written.setdefault("w", runner.write_last_file(alt, results, out,
                                                                                               **options)))
    size = (Path(written["w"].directory) / "last.json").stat().st_size
    return {"before": before, "peak": peak, "seconds": seconds, "json_bytes": size}


# ---- the parent ---------------------------------------------------------------------------

def spawn(*args: str, env=None) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_ai(megabytes: int) -> list[str]:
    sys.path.insert(0, str(REPO / "tests"))
    from ai_server import AIServer, Reply

    lines = []
    # Words of 64 KiB: the test server streams one SSE event per word.
    word = "x" * (64 * 1024 - 1) + " "
    text = word * (megabytes * MB // len(word))
    with AIServer() as server, tempfile.TemporaryDirectory() as out:
        for stream in (False, True):
            server.plan(Reply(text="tiny"), Reply(text=text))
            figures = spawn("ai", server.base_url, str(megabytes), str(int(stream)), out)
            above = (figures["peak"] - figures["before"]) / MB
            size = figures["text_bytes"] / MB
            verdict = "met" if above <= 4 * size else "MISSED"
            lines.append(f"ai answer {size:.0f} MB ({'SSE stream' if stream else 'JSON'}): peak {above:.0f} MB above "
                         f"a {figures['before'] / MB:.0f} MB baseline = {above / size:.2f}x the answer "
                         f"(goal <= 4x: {verdict}), {figures['seconds']:.1f} s")
    return lines


def _dependencies(i: int, dag: str, width: int) -> str:
    """Task i's dependencies as JSON text: in a layered DAG, 2 tasks of the layer before."""
    if dag == "none" or i < width:
        return ""
    first = i - width
    second = first + 1 if (first + 1) % width else first + 1 - width
    return f',"dependencies":["t{first}","t{second}"]'


def bench_run(tasks: int, dag: str = "layered", width: int = 1000) -> list[str]:
    with tempfile.TemporaryDirectory() as work:
        alt = Path(work) / "tasks.json"
        with open(alt, "w") as handle:
            handle.write('{"id":"mem_run","title":"memory","tasks":[')
            handle.write(",".join(f'{{"id":"t{i}","description":"d"{_dependencies(i, dag, width)},'
                                  f'"parameters":{{"task_type":"generic"}}}}' for i in range(tasks)))
            handle.write("]}")
        alt_size = alt.stat().st_size
        figures = spawn("run", str(alt), str(Path(work) / "out"))
    peak = figures["peak"]
    shape = f"a layered DAG ({width} per layer, 2 dependencies each)" if dag == "layered" else "no dependencies"
    per_task = peak / tasks
    size_verdict = "met" if peak <= 1.5 * 1024 * MB else "MISSED"
    task_verdict = "met" if per_task <= 1.2 * 1024 else "MISSED"
    loop = figures["loop_seconds"]
    time_verdict = "met" if figures["seconds"] <= 15 else "MISSED"
    return [f"run of {tasks} generic tasks, {shape} ({alt_size / MB:.0f} MB ALT file, python -m runner run): "
            f"peak {peak / MB:.0f} MB (goal at 1M tasks <= 1536 MB: {size_verdict}) = {per_task / 1024:.2f} KB/task "
            f"(goal at 200k <= 1.2 KB/task: {task_verdict}), last.json {figures['json_bytes'] / MB:.0f} MB; whole "
            f"process {figures['seconds']:.1f} s (goal at 1M <= 15 s: {time_verdict}) = "
            f"{figures['seconds'] / loop if loop else float('inf'):.1f}x the run loop alone ({loop:.1f} s)"]


def child_run(alt: str, out: str) -> dict:
    """The CLI in a process of its own: this child's only child, so RUSAGE_CHILDREN is its peak."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runner", "run", alt, "--out", out, "--quiet"],
                          capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    last = Path(done.stdout.strip().splitlines()[-1]) / "last.json"
    with open(last, "rb") as handle:         # the run's own clock is near the top of the record
        head = handle.read(1 << 16)
    found = re.search(rb'"execution_time_ms":(\d+)', head)
    return {"peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "seconds": seconds,
            "json_bytes": last.stat().st_size, "loop_seconds": int(found.group(1)) / 1000 if found else 0.0}


def bench_last(tasks: int) -> list[str]:
    with tempfile.TemporaryDirectory() as out:
        figures = spawn("last", str(tasks), out)
    above = (figures["peak"] - figures["before"]) / MB
    size = figures["json_bytes"] / MB
    verdict = "met" if above <= 2 * size else "MISSED"
    return [f"LAST file of {tasks} tasks: peak {above:.0f} MB above the stored results for a {size:.0f} MB last.json "
            f"= {above / size:.2f}x (goal <= 2x: {verdict}), {figures['seconds']:.1f} s"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        if kind == "ai":
            figures = child_ai(args[0], int(args[1]), args[2] == "1", args[3])
        elif kind == "run":
            figures = child_run(args[0], args[1])
        else:
            figures = child_last(int(args[0]), args[1])
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", choices=("ai", "run", "last", []), default=[])
    parser.add_argument("--ai-mb", type=int, default=30, help="below the client's 32 MiB answer cap")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--last-tasks", type=int, default=200_000)
    parser.add_argument("--dag", choices=("layered", "none"), default="layered")
    parser.add_argument("--layer-width", type=int, default=1000)
    args = parser.parse_args()
    cases = args.cases or ["ai", "last", "run"]
    for case in cases:
        lines = {"ai": lambda: bench_ai(args.ai_mb), "run": lambda: bench_run(args.tasks, args.dag, args.layer_width),
                 "last": lambda: bench_last(args.last_tasks)}[case]()
        for line in lines:
            print(line, flush=True)


if __name__ == "__main__":
    main()
