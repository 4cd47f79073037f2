"""AI client throughput and CPU cost against a loopback server that answers after 200 ms.

    .venv/bin/python benchmarks/ai_client.py [--requests 2000] [--concurrency 64] [--delay 0.2] [--rounds 2]
                                             [--transport both|http|grpc]

Measures, in the same run and against the same server (its own process, so it is not
the bottleneck and its CPU is not counted as the client's):
  * AIClient.complete from `concurrency` threads sharing one client: wall time vs the
    ideal ceil(requests / concurrency) x delay (goal <= 1.10x);
  * client CPU time per request vs a bare requests.Session.post loop run the same way
    (goal <= 1.2x).
  * the same with a cancel event and a timeout on every call, as the executor calls it;
  * for reference, one ALT file of `requests` ai_prompt tasks run by the executor.
The same over gRPC (the kserve provider) against tests/kserve_server.py, whose baseline is
a bare grpcio stub loop: the generated GRPCInferenceServiceStub's ModelInfer, called with a
deadline from `concurrency` threads on one channel, the answer's text decoded. A call that
can be cancelled (the executor's, with a cancel event) needs grpc's Future instead of its
direct blocking path, so the bare stub's `.future().result()` is measured too: the floor
of the cancellable calls.
Rounds alternate between the runs so machine noise hits all; the best round of each counts.

    .venv/bin/python benchmarks/ai_client.py --fan-in [--requests 600] [--concurrency 64] [--rounds 3]

The fan-in DAG: one ALT file of `requests` ai_prompt tasks and one more ai_prompt task
depending on them all, run by the executor (no LAST file written), against bare asyncio +
aiohttp making the same calls (a semaphore of `concurrency`, then the one last call) and
against the ideal (ceil(requests / concurrency) + 1) x delay. Goals: <= 1.06x ideal, and
within 1% of asyncio + aiohttp. aiohttp is only a baseline here: pip install 'librunner[bench]'.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.ai import AIClient, AISettings  # noqa: E402


def start_server(delay: float, script: str = "ai_server.py") -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / script), "--delay", str(delay)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_threads(count: int, threads: int, one) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for `count` calls of one(i) from `threads` threads."""
    numbers = itertools.count()
    failures = []

    def worker():
        while True:
            index = next(numbers)
            if index >= count:
                return
            try:
                one(index)
            except Exception as error:  # a benchmark that fails must say so, not time it
                failures.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]!r}")
    return wall, cpu


def bare_requests(url: str, concurrency: int):
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    endpoint = url + "/chat/completions"

    def one(index: int):
        body = {"model": "bench", "messages": [{"role": "user", "content": f"prompt number {index}"}]}
        answer = session.post(endpoint, json=body, timeout=(10, 120))
        answer.raise_for_status()
        assert answer.json()["choices"][0]["message"]["content"] == f"reply to: prompt number {index}"

    return session, one


def ai_client(url: str, concurrency: int):
    client = AIClient(AISettings(provider="openai", base_url=url, model="bench", api_key="sk-bench",
                               max_concurrency=concurrency))

    def one(index: int):
        assert client.complete(f"prompt number {index}").text == f"reply to: prompt number {index}"

    cancel = threading.Event()

    def one_watched(index: int):
        # As the executor calls it: with the run's cancel event and the task's timeout.
        answer = client.complete(f"prompt number {index}", cancel=cancel, timeout=60)
        assert answer.text == f"reply to: prompt number {index}"

    return client, one, one_watched


def bare_grpc_stub(url: str):
    """The floor: the generated stub's ModelInfer with a deadline, the text read from raw contents."""
    import grpc

    from runner.ai.proto import grpc_service_pb2 as pb
    from runner.ai.proto import grpc_service_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(url.split("://", 1)[1])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def request(index: int):
        built = pb.ModelInferRequest(model_name="plain")
        tensor = built.inputs.add(name="text_input", datatype="BYTES", shape=[1])
        tensor.contents.bytes_contents.append(f"prompt number {index}".encode())
        return built

    def one(index: int):
        answer = stub.ModelInfer(request(index), timeout=120)
        assert answer.raw_output_contents[0][4:].decode() == f"reply to: prompt number {index}"

    def one_future(index: int):
        answer = stub.ModelInfer.future(request(index), timeout=120).result()
        assert answer.raw_output_contents[0][4:].decode() == f"reply to: prompt number {index}"

    return channel, one, one_future


def kserve_client(url: str, concurrency: int):
    client = AIClient(AISettings(provider="kserve", base_url=url, model="plain", api_key="sk-bench",
                               max_concurrency=concurrency))
    cancel = threading.Event()

    def one(index: int):
        assert client.complete(f"prompt number {index}").text == f"reply to: prompt number {index}"

    def one_watched(index: int):
        answer = client.complete(f"prompt number {index}", cancel=cancel, timeout=60)
        assert answer.text == f"reply to: prompt number {index}"

    return client, one, one_watched


def compare(server, requests_count: int, concurrency: int, ideal: float, rounds: int, runs) -> dict:
    """Best (wall, CPU) of each named run over `rounds` alternating rounds, each printed."""
    best = {name: (math.inf, math.inf) for name, _ in runs}
    for round_number in range(1, rounds + 1):
        for name, one in runs:
            server_cpu = process_cpu_seconds(server.pid)
            wall, cpu = run_threads(requests_count, concurrency, one)
            server_cpu = process_cpu_seconds(server.pid) - server_cpu
            print(f"round {round_number} {name:15s} wall {wall:6.3f} s ({wall / ideal:.3f}x ideal)  "
                  f"client CPU {cpu / requests_count * 1000:.3f} ms/request  "
                  f"server CPU {server_cpu / wall * 100:.0f}% of a core")
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def grpc_benchmark(args, ideal: float) -> None:
    server, url = start_server(args.delay, "kserve_server.py")
    try:
        channel, bare_one, bare_future = bare_grpc_stub(url)
        client, client_one, watched_one = kserve_client(url, args.concurrency)
        for one in (bare_one, bare_future, client_one, watched_one):
            run_threads(args.concurrency, args.concurrency, one)
        best = compare(server, args.requests, args.concurrency, ideal, args.rounds,
                       (("bare grpc stub", bare_one), ("AIClient kserve", client_one),
                        ("bare stub future", bare_future), ("+cancel/timeout", watched_one)))
        client.close()
        channel.close()
        executor_wall, executor_cpu, completed = executor_run(url, args.requests, args.concurrency,
                                                              {"RUNNER_AI_MODEL": "plain"})
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    (bare_wall, bare_cpu), (wall, cpu) = best["bare grpc stub"], best["AIClient kserve"]
    watched_wall, watched_cpu = best["+cancel/timeout"]
    future_cpu = best["bare stub future"][1]
    print(f"\ngRPC (kserve): {args.requests} completions, {args.concurrency} in flight, server answers after "
          f"{args.delay * 1000:.0f} ms; ideal {ideal:.3f} s")
    print(f"AIClient wall time       {wall:.3f} s = {wall / ideal:.3f}x ideal (goal <= 1.10x); "
          f"bare grpc stub {bare_wall / ideal:.3f}x")
    print(f"AIClient CPU per request {cpu / args.requests * 1000:.3f} ms vs bare grpc stub "
          f"{bare_cpu / args.requests * 1000:.3f} ms = {cpu / bare_cpu:.3f}x (goal <= 1.2x)")
    print(f"  with a cancel event and a timeout per call: {watched_wall / ideal:.3f}x ideal, "
          f"{watched_cpu / args.requests * 1000:.3f} ms CPU per request = {watched_cpu / bare_cpu:.3f}x bare stub, "
          f"{watched_cpu / future_cpu:.3f}x the bare stub's cancellable future "
          f"({future_cpu / args.requests * 1000:.3f} ms)")
    print(f"  {completed} ai_prompt tasks of one ALT file through the executor (no LAST file written): "
          f"{executor_wall / ideal:.3f}x ideal, {executor_cpu / args.requests * 1000:.3f} ms CPU per task")


def executor_run(url: str, count: int, concurrency: int, extra: dict | None = None) -> tuple[float, float, int]:
    """(wall, CPU, completed) for an ALT file of `count` ai_prompt tasks run by the executor."""
    from runner.execution import execute

    tasks = [{"id": f"task{i}", "description": f"prompt number {i}", "parameters": {"task_type": "ai_prompt"}}
             for i in range(count)]
    environ = {"RUNNER_AI_SERVICE_URL": url, "RUNNER_AI_MAX_CONCURRENCY": str(concurrency), **(extra or {})}
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = execute({"id": "ai_bench", "title": "AI benchmark", "tasks": tasks}, None,
                      max_concurrency=concurrency, write=False, environ=environ)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, sum(result.status == "completed" for result in outcome.results.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--transport", choices=("both", "http", "grpc"), default="both")
    parser.add_argument("--fan-in", action="store_true",
                        help="only the fan-in DAG against asyncio + aiohttp (defaults: 600 requests)")
    args = parser.parse_args()
    if args.fan_in:
        if args.requests == parser.get_default("requests"):
            args.requests = 600
        fan_in_benchmark(args)
        return
    ideal = math.ceil(args.requests / args.concurrency) * args.delay
    if args.transport != "http":
        grpc_benchmark(args, ideal)
    if args.transport != "grpc":
        http_benchmark(args, ideal)


def fan_in_alt(count: int) -> dict:
    tasks = [{"id": f"task{i}", "description": f"prompt number {i}", "parameters": {"task_type": "ai_prompt"}}
             for i in range(count)]
    tasks.append({"id": "summary", "description": "prompt number summary", "dependencies": [t["id"] for t in tasks],
                  "parameters": {"task_type": "ai_prompt"}})
    return {"id": "ai_fan_in", "title": "AI fan-in benchmark", "tasks": tasks}


def executor_fan_in(url: str, count: int, concurrency: int) -> float:
    """Wall seconds of the fan-in ALT file run by the executor; every task must complete."""
    from runner.execution import execute

    alt = fan_in_alt(count)
    environ = {"RUNNER_AI_SERVICE_URL": url, "RUNNER_AI_MAX_CONCURRENCY": str(concurrency)}
    wall = time.perf_counter()
    outcome = execute(alt, None, max_concurrency=concurrency, write=False, environ=environ)
    wall = time.perf_counter() - wall
    completed = sum(result.status == "completed" for result in outcome.results.values())
    if completed != count + 1:
        raise SystemExit(f"the executor completed {completed} of {count + 1} tasks")
    return wall


def aiohttp_fan_in(url: str, count: int, concurrency: int) -> float:
    """Wall seconds of bare asyncio + aiohttp making the fan-in DAG's calls (a new loop and session,
    as the executor makes a new client per run)."""
    import asyncio

    import aiohttp

    endpoint = url + "/chat/completions"
    headers = {"Authorization": "Bearer sk-bench"}

    async def call(session, semaphore, prompt: str) -> None:
        async with semaphore:
            body = {"model": "bench", "messages": [{"role": "user", "content": prompt}]}
            async with session.post(endpoint, json=body, headers=headers) as answer:
                answer.raise_for_status()
                doc = await answer.json()
        assert doc["choices"][0]["message"]["content"] == f"reply to: {prompt}"

    async def dag() -> None:
        semaphore = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(call(session, semaphore, f"prompt number {i}") for i in range(count)))
            await call(session, semaphore, "prompt number summary")

    wall = time.perf_counter()
    asyncio.run(dag())
    return time.perf_counter() - wall


def fan_in_benchmark(args) -> None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise SystemExit("the fan-in benchmark's baseline needs aiohttp: pip install 'librunner[bench]'") from None
    ideal = (math.ceil(args.requests / args.concurrency) + 1) * args.delay
    server, url = start_server(args.delay)
    runs = (("asyncio+aiohttp", lambda: aiohttp_fan_in(url, args.requests, args.concurrency)),
            ("librunner", lambda: executor_fan_in(url, args.requests, args.concurrency)))
    walls: dict = {name: [] for name, _ in runs}
    try:
        executor_fan_in(url, args.concurrency, args.concurrency)      # warm up: imports, first connections
        aiohttp_fan_in(url, args.concurrency, args.concurrency)
        for round_number in range(1, args.rounds + 1):
            for name, run in runs:
                wall = run()
                walls[name].append(wall)
                print(f"round {round_number} {name:16s} wall {wall:6.3f} s ({wall / ideal:.3f}x ideal)")
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    ours, bare = min(walls["librunner"]), min(walls["asyncio+aiohttp"])
    print(f"\nfan-in DAG: {args.requests} ai_prompt tasks and one depending on them all, {args.concurrency} in "
          f"flight, server answers after {args.delay * 1000:.0f} ms; ideal {ideal:.3f} s; best of {args.rounds}")
    print(f"librunner        {ours:.3f} s = {ours / ideal:.3f}x ideal (goal <= 1.06x); "
          f"range {min(walls['librunner']) / ideal:.3f}-{max(walls['librunner']) / ideal:.3f}x")
    print(f"asyncio+aiohttp  {bare:.3f} s = {bare / ideal:.3f}x ideal; "
          f"range {min(walls['asyncio+aiohttp']) / ideal:.3f}-{max(walls['asyncio+aiohttp']) / ideal:.3f}x")
    print(f"librunner / asyncio+aiohttp = {ours / bare:.3f} (goal <= 1.01)")


def http_benchmark(args, ideal: float) -> None:
    server, url = start_server(args.delay)
    try:
        bare_session, bare_one = bare_requests(url, args.concurrency)
        client, client_one, watched_one = ai_client(url, args.concurrency)
        # Warm up both: connections opened, code paths imported.
        run_threads(args.concurrency, args.concurrency, bare_one)
        run_threads(args.concurrency, args.concurrency, client_one)
        runs = (("bare requests", bare_one), ("AIClient", client_one), ("+cancel/timeout", watched_one))
        best = compare(server, args.requests, args.concurrency, ideal, args.rounds, runs)
        client.close()
        bare_session.close()
        executor_wall, executor_cpu, completed = executor_run(url, args.requests, args.concurrency)
    finally:
        server.stdin.close()
        server.wait(timeout=10)

    (bare_wall, bare_cpu), (wall, cpu) = best["bare requests"], best["AIClient"]
    watched_wall, watched_cpu = best["+cancel/timeout"]
    print(f"\nHTTP (openai): {args.requests} completions, {args.concurrency} in flight, server answers after "
          f"{args.delay * 1000:.0f} ms; ideal {ideal:.3f} s")
    print(f"AIClient wall time       {wall:.3f} s = {wall / ideal:.3f}x ideal (goal <= 1.10x); "
          f"bare requests {bare_wall / ideal:.3f}x")
    print(f"AIClient CPU per request {cpu / args.requests * 1000:.3f} ms vs bare requests "
          f"{bare_cpu / args.requests * 1000:.3f} ms = {cpu / bare_cpu:.3f}x (goal <= 1.2x)")
    print(f"  with a cancel event and a timeout per call: {watched_wall / ideal:.3f}x ideal, "
          f"{watched_cpu / args.requests * 1000:.3f} ms CPU per request = {watched_cpu / bare_cpu:.3f}x bare")
    print(f"  {completed} ai_prompt tasks of one ALT file through the executor (no LAST file written): "
          f"{executor_wall / ideal:.3f}x ideal, {executor_cpu / args.requests * 1000:.3f} ms CPU per task")


if __name__ == "__main__":
    main()
