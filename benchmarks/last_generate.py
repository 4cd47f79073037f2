"""LAST generation at 100k tasks, against baselines measured in the same run.

    .venv/bin/python benchmarks/last_generate.py [--tasks 100000] [--repeat 5]

(a) the complete LAST record (statistics, critical path, graph, summary) + its JSON as
    last.json holds it, streamed in chunks from the typed results
    (runner.librunner.write_last_json, as the LAST writer does) and as one bytes object
    (runner.last_json), vs orjson.dumps of the same task-results dict (the floor; goal
    <= 3x), and the streamed step's peak traced memory against the JSON it writes
    (goal <= 1.2x); the record alone (build_last_record: its part of that time); the
    record build as write_last_file makes it (checked_last_record) from results read
    again, and from the statistics a run accumulates as its results are recorded
    (RunStatistics, as a run hands them over);
(b) last.json and last.json.gz written from one stream (the gzip copy compressed on its
    own thread) vs last.json alone: what the copy adds, against a plain zlib level-1
    compression of the same bytes (goal <= 1.5x);
(c) report.html for all tasks: time and peak traced memory;
(d) for information, the whole write_last_file with every product.
The machine is shared and noisy: medians of several runs, ratios in one run.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

import orjson

import runner
from runner import librunner
from runner.last import directory as last_directory, options as last_options
from runner.librunner import write_last_json

from measure import median_time

STAMP = "2026-01-01T{:02d}:{:02d}:{:02d}.{:03d}Z"


def stamp(ms: int) -> str:
    seconds, milli = divmod(ms, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return STAMP.format(hour % 24, minute, second, milli)


def make_run(size: int, seed: int = 7):
    """An ALT file (random DAG, 0-3 dependencies) and ~400-byte task results for it."""
    rng = random.Random(seed)
    tasks = []
    for n in range(size):
        deps = rng.sample(range(max(0, n - 50), n), min(n, rng.randint(0, 3))) if n else []
        tasks.append({"id": f"task_{n:06d}", "description": f"step {n} of the benchmark run",
                      "dependencies": [f"task_{d:06d}" for d in deps]})
    alt = runner.parse_alt_file(orjson.dumps({"id": "bench", "title": "LAST benchmark", "tasks": tasks}))
    docs = {}
    for n in range(size):
        start = rng.randint(0, 3_000_000)
        duration = rng.randint(5, 5000)
        status = "completed" if rng.random() < 0.95 else rng.choice(("failed", "timeout", "skipped"))
        doc = {"task_id": f"task_{n:06d}", "status": status,
               "output": {"text": "".join(rng.choice("abcdefghij ") for _ in range(150))},
               "error": None if status == "completed" else f"{status} after {duration} ms",
               "started_at": stamp(start), "completed_at": stamp(start + duration), "duration_ms": float(duration),
               "metadata": {"task_type": "ai_prompt",
                            "ai": {"provider": "echo", "model": "echo", "prompt_tokens": 40, "completion_tokens": 30,
                                   "latency_ms": 1.5}}}
        if n % 20 == 0:
            doc["metadata"]["attempts"] = [{"number": 1, "outcome": "failed"}, {"number": 2, "outcome": "completed"}]
        docs[doc["task_id"]] = doc
    results = {task_id: runner.task_result_from_dict(doc, alt) for task_id, doc in docs.items()}
    return alt, docs, results


def paired(floor, ours, repeat: int) -> tuple[float, float, float]:
    """Median times of floor and ours, and the median of their ratios, timed alternately
    so that load from other processes hits both alike."""
    floors, ourses = [], []
    for _ in range(repeat):
        floors.append(median_time(floor, 1))
        ourses.append(median_time(ours, 1))
    ratios = sorted(o / f for o, f in zip(ourses, floors))
    return statistics.median(floors), statistics.median(ourses), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    alt, docs, results = make_run(args.tasks)
    floor_bytes = orjson.dumps(docs)
    print(f"{args.tasks} tasks, task-results JSON {len(floor_bytes) / 1e6:.1f} MB "
          f"({len(floor_bytes) / args.tasks:.0f} bytes per result)")

    def record():
        return runner.build_last_record(alt, results, "0190a0b0-0000-7000-8000-000000000001",
                                        "0190a0b0-0000-7000-8000-000000000002", "2026-01-02T00:00:00.000Z")

    def streamed():
        written = [0]

        def sink(chunk: bytes) -> None:
            written[0] += len(chunk)

        write_last_json(record(), sink)
        return written[0]

    def whole():
        return runner.last_json(record())

    floor, stream_time, ratio = paired(lambda: orjson.dumps(docs), streamed, args.repeat)
    _, record_time, record_ratio = paired(lambda: orjson.dumps(docs), record, args.repeat)
    _, whole_time, whole_ratio = paired(lambda: orjson.dumps(docs), whole, args.repeat)
    data = whole()
    gc.collect()
    tracemalloc.start()   # a separate run: what the step holds at its peak (record, graph, chunks)
    before = tracemalloc.get_traced_memory()[0]
    size = streamed()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    assert size == len(data)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    whole()
    whole_peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    print(f"(a) floor orjson.dumps(task results)      {floor * 1e3:8.1f} ms")
    print(f"    LAST record + JSON streamed ({len(data) / 1e6:.1f} MB) {stream_time * 1e3:8.1f} ms  "
          f"ratio {ratio:.2f}x (goal <= 3x)")
    print(f"    of which the record alone (statistics, critical path, graph, summary) "
          f"{record_time * 1e3:.1f} ms, {record_ratio:.2f}x the floor")
    print(f"    peak memory of the step {peak / 1e6:.1f} MB, {peak / len(data):.2f}x the JSON it writes (goal <= 1.2x)")
    print(f"    LAST record + JSON as one bytes object   {whole_time * 1e3:8.1f} ms  ratio {whole_ratio:.2f}x, "
          f"peak memory {whole_peak / 1e6:.1f} MB, {whole_peak / len(data):.2f}x the JSON")

    # As a run hands its results over: recorded through RunStatistics as they ended (here in
    # the file's order, outside the timing: in a run this happens in its loop).
    ran: dict = {}
    accumulated = librunner.RunStatistics(ran, alt.tasks)
    for task in alt.tasks:
        accumulated.record(task.index, results[task.id])
    last_id = "0190a0b0-0000-7000-8000-000000000001"
    again_time = median_time(lambda: librunner.checked_last_record(alt, results, None, last_id), args.repeat)
    taken_time = median_time(lambda: librunner.checked_last_record(alt, ran, None, last_id, accumulated),
                             args.repeat)
    fixed = (last_id, "0190a0b0-0000-7000-8000-000000000002", "2026-01-02T00:00:00.000Z")
    assert runner.last_json(runner.build_last_record(alt, ran, *fixed, None, accumulated)) == data
    print(f"    the record build of write_last_file (checked_last_record): results read again "
          f"{again_time * 1e3:.1f} ms, from the statistics accumulated as they were recorded "
          f"{taken_time * 1e3:.1f} ms ({again_time / taken_time:.1f}x faster)")

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        made = runner.build_last_record(alt, results, "0190a0b0-0000-7000-8000-000000000001",
                                        "0190a0b0-0000-7000-8000-000000000002", "2026-01-02T00:00:00.000Z")

        def stream(compression: bool):
            def write():
                with last_directory.atomic_file(directory / "last.json") as handle:
                    compressing = last_directory._Compressing(directory, 1) if compression else None
                    last_directory._stream_last_json(made, handle, compressing)
            return write

        plain = median_time(lambda: zlib.compress(data, 1), args.repeat)
        alone, both, _ = paired(stream(False), stream(True), args.repeat)
        size = (directory / "last.json.gz").stat().st_size
        assert (directory / "last.json").read_bytes() == data
        print(f"(b) plain zlib.compress level 1            {plain * 1e3:8.1f} ms")
        print(f"    last.json streamed alone                {alone * 1e3:8.1f} ms; with last.json.gz from the same stream "
              f"({size / 1e6:.1f} MB) {both * 1e3:8.1f} ms: the copy adds {(both - alone) * 1e3:.1f} ms = "
              f"{(both - alone) / plain:.2f}x plain zlib (goal <= 1.5x)")
        del made

        record = orjson.loads(data)
        options = last_options.LastOptions(graph_renderer="builtin")
        report_time = median_time(lambda: last_directory.render_html(record, options), max(1, args.repeat // 2))
        tracemalloc.start()   # a separate run: tracing slows Python code several times
        html = last_directory.render_html(record, options)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"(c) report.html for {args.tasks} tasks            {report_time * 1e3:8.1f} ms, "
              f"{len(html) / 1e6:.2f} MB, peak memory beyond the loaded record {peak / 1e6:.1f} MB")
        del record, html

        begin = time.perf_counter()
        result = runner.write_last_file(alt, results, directory / "all", compression=True, archive="none",
                                        graph_renderer="auto")
        whole = time.perf_counter() - begin
        files = sorted(p.name for p in result.directory.iterdir())
        print(f"(d) write_last_file, every product        {whole * 1e3:8.1f} ms  ({', '.join(files)}; "
              f"{len(result.record['artifacts'])} artifacts)")


if __name__ == "__main__":
    main()
