"""The ALT model's memory and parse time, against orjson.loads of the same bytes.

The file is the one `benchmarks/memory.py run` makes (generic tasks in a layered DAG, each
task depending on 2 of the layer before; ~100 bytes a task). Each figure comes from a child
process of its own, after reading the file (the bytes are the baseline):

  orjson   orjson.loads of the bytes: seconds, peak and kept RSS (the tree alone, the floor),
           and its seconds with the cyclic GC paused, as parse_alt_file pauses it (the hard floor);
  parse    runner.parse_alt_file of the bytes: seconds, peak RSS during the parse and RSS
           kept by the model afterwards (after a full collection);
  traced   the same parse under tracemalloc: traced peak and traced bytes kept.

Bytes per task are above the baseline (the input bytes not counted; parse keeps them as
alt.source, the same object, not a copy). Goal (issue 23, model side): model kept RSS
<= ~450 B/task at 200k, parse peak well under the 385 MB traced / 1.9 KB a task measured
before the model was built from a consumed tree.

    .venv/bin/python benchmarks/alt_memory.py [--sizes 200000,1000000] [--repeat 3] [--dag layered|none]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
MB = 1 << 20


def write_alt(path: Path, tasks: int, dag: str, width: int = 1000) -> int:
    """The ALT file of benchmarks/memory.py run."""
    from memory import _dependencies
    with open(path, "w") as handle:
        handle.write('{"id":"mem_run","title":"memory","tasks":[')
        handle.write(",".join(f'{{"id":"t{i}","description":"d"{_dependencies(i, dag, width)},'
                              f'"parameters":{{"task_type":"generic"}}}}' for i in range(tasks)))
        handle.write("]}")
    return path.stat().st_size


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(kind: str, path: str, repeat: int) -> dict:
    import gc

    import orjson

    import runner
    data = Path(path).read_bytes()
    if kind == "traced":
        import tracemalloc
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        alt = runner.parse_alt_file(data)
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(alt.tasks) > 0
        return {"kept": kept - base, "peak": peak - base}
    step = runner.parse_alt_file if kind == "parse" else orjson.loads
    if kind == "orjson-paused":
        def step(text, loads=orjson.loads):
            gc.disable()
            try:
                return loads(text)
            finally:
                gc.enable()
    step(data[:0] + b'{"id":"w","title":"w","tasks":[{"id":"a"}]}')     # warm-up: every import
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    started = time.perf_counter()
    held = step(data)
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    gc.collect()
    kept = _status("VmRSS")
    times = [seconds]
    del held
    for _ in range(repeat - 1):
        gc.collect()
        started = time.perf_counter()
        held = step(data)
        times.append(time.perf_counter() - started)
        del held
    return {"before": before, "peak": peak - before, "kept": kept - before, "seconds": min(times)}


def spawn(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dag", choices=("layered", "none"), default="layered")
    parser.add_argument("--no-traced", action="store_true", help="skip the tracemalloc child (slow at 1M)")
    args = parser.parse_args()
    with open("/proc/loadavg") as load:
        print(f"load average at start: {load.read().split()[0]}")
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "tasks.json"
            nbytes = write_alt(path, size, args.dag)
            floor = spawn("orjson", str(path), str(args.repeat))
            paused = spawn("orjson-paused", str(path), str(args.repeat))
            parse = spawn("parse", str(path), str(args.repeat))
            traced = None if args.no_traced else spawn("traced", str(path), "1")
        per = lambda amount: amount / size       # noqa: E731
        print(f"{size} tasks ({nbytes / MB:.0f} MB):")
        print(f"  orjson.loads   {floor['seconds']:.3f} s ({paused['seconds']:.3f} s with the GC paused); tree peak "
              f"{per(floor['peak']):.0f} B/task, kept {per(floor['kept']):.0f} B/task RSS")
        print(f"  parse_alt_file {parse['seconds']:.3f} s = {parse['seconds'] / floor['seconds']:.2f}x orjson.loads, "
              f"{parse['seconds'] / paused['seconds']:.2f}x it with the GC paused; "
              f"peak {per(parse['peak']):.0f} B/task RSS ({parse['peak'] / MB:.0f} MB) = "
              f"{parse['peak'] / floor['peak']:.2f}x the tree's peak; model kept {per(parse['kept']):.0f} B/task RSS "
              f"({parse['kept'] / MB:.0f} MB) = {parse['kept'] / floor['kept']:.2f}x the tree")
        if traced is not None:
            print(f"  traced         peak {per(traced['peak']):.0f} B/task ({traced['peak'] / MB:.0f} MB), "
                  f"kept {per(traced['kept']):.0f} B/task ({traced['kept'] / MB:.0f} MB)")
        with open("/proc/loadavg") as load:
            print(f"  load average: {load.read().split()[0]}", flush=True)


if __name__ == "__main__":
    main()
