"""Reading the segmentation service's ALT files: this project against PyYAML's own loader.

A synthetic document in the service's v1.0 shape (segments with content, a parameter
list, 0-2 dependencies, metadata) of N segments, written as the service writes it
(yaml.dump, sort_keys=False) and as JSON (json.dumps, indent=2), measured in ONE run so
the ratios hold on a noisy machine:

  (a) yaml.load with CSafeLoader (libyaml): what the service itself does, the floor for YAML,
  (b) runner.parse_alt_file on the YAML: bounded event composition + conversion + validation,
  (c) orjson.loads on the JSON text: the floor for JSON,
  (d) runner.parse_alt_file on the JSON text.

    .venv/bin/python benchmarks/alt_segments.py [--sizes 100,1000,10000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import random
import time

import orjson
import yaml

import runner


def document(n: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    segments = []
    for i in range(n):
        ids = [s["id"] for s in segments[-20:]]
        segments.append({
            "id": f"seg-{i:06d}", "task_type": rng.choice(["execute", "search", "create", "analyze"]),
            "content": " ".join(rng.choice(["list", "files", "largest", "report", "search", "web"])
                                for _ in range(rng.randint(3, 12))),
            "parameters": [{"name": "content", "value": f"value {i}", "type": "string", "required": True,
                            "description": "Task content"}],
            "dependencies": rng.sample(ids, min(len(ids), rng.randint(0, 2))),
            "metadata": {"confidence": 0.5},
        })
    return {"id": "bench", "version": "1.0", "timestamp": "2025-04-28T00:28:21.922739", "command": "bench",
            "language": "en", "mode": "Normal", "persona": "technical_expert", "chaos_level": None,
            "segments": segments, "metadata": {}}


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    print(f"PyYAML {yaml.__version__}, libyaml: {loader is not yaml.SafeLoader}; best of {args.repeat}")
    print(f"{'segments':>9} {'bytes':>10} {'(a) yaml':>10} {'(b) runner':>11} {'b/a':>6}"
          f" {'(c) orjson':>11} {'(d) runner':>11} {'d/c':>6}")
    for n in (int(size) for size in args.sizes.split(",")):
        doc = document(n)
        as_yaml = yaml.dump(doc, sort_keys=False, default_flow_style=False).encode()
        as_json = json.dumps(doc, indent=2).encode()
        limits = runner.AltLimits()
        assert len(runner.parse_alt_file(as_yaml, limits=limits)) == n
        a = best(lambda: yaml.load(as_yaml, Loader=loader), args.repeat)
        b = best(lambda: runner.parse_alt_file(as_yaml, limits=limits), args.repeat)
        c = best(lambda: orjson.loads(as_json), args.repeat)
        d = best(lambda: runner.parse_alt_file(as_json, limits=limits), args.repeat)
        print(f"{n:>9} {len(as_yaml):>10} {a * 1000:>8.1f}ms {b * 1000:>9.1f}ms {b / a:>6.2f}"
              f" {c * 1000:>9.2f}ms {d * 1000:>9.1f}ms {d / c:>6.1f}")


if __name__ == "__main__":
    main()
