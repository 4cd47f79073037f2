"""What publishing to the archive adds to writing a LAST file, with a real nats-server.

In ONE run, N LAST files of a small ALT file (last.json only: no report, graph or
artifacts, so the publication's share is not hidden) are written
  (a) without RUNNER_NATS_URL,
  (b) with RUNNER_NATS_URL pointing at a nats-server started here on 127.0.0.1,
  (c) with RUNNER_NATS_URL pointing at a port where nothing listens (3 failed attempts each),
and the time per file is printed with (b)/(a).

    .venv/bin/python benchmarks/last_delivery.py [--files 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nats_server import NatsServer, free_port  # noqa: E402  (the tests' server starter)

import runner  # noqa: E402

ALT = b'{"id": "bench", "title": "bench", "tasks": [{"id": "a", "description": "x"}, {"id": "b", "dependencies": ["a"]}]}'


def per_file(count: int, out: Path) -> float:
    alt = runner.parse_alt_file(ALT)
    options = runner.LastOptions(html_report=False, graph=False, artifacts=False, workers=1)
    start = time.perf_counter()
    for _ in range(count):
        runner.write_last_file(alt, {}, out, options=options)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    server = NatsServer().start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            out = Path(directory)
            os.environ.pop("RUNNER_NATS_URL", None)
            plain = per_file(args.files, out / "a")
            os.environ["RUNNER_NATS_URL"] = server.url
            per_file(5, out / "warm")                       # the client's import and connection
            published = per_file(args.files, out / "b")
            os.environ["RUNNER_NATS_URL"] = f"nats://127.0.0.1:{free_port()}"
            down = per_file(max(args.files // 20, 3), out / "c")
    finally:
        server.stop()
    print(f"{args.files} LAST files (last.json only)")
    print(f"(a) no publication:      {plain * 1000:8.2f} ms per file")
    print(f"(b) published (nats):    {published * 1000:8.2f} ms per file   (b)/(a) = {published / plain:.2f}")
    print(f"(c) server down:         {down * 1000:8.2f} ms per file   (3 attempts, recorded in delivery.json)")


if __name__ == "__main__":
    main()
