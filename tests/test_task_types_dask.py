"""Users' task types on a real Dask cluster (a LocalCluster of worker processes on 127.0.0.1):
Python functions travel by pickle and plugins by their entry point's name, with deps,
retries, timeouts, the journal and resume as for the built-in heavy types; a handler that
cannot be pickled, and a type registered in C, are refused before anything runs."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import distributed          # the test extra installs it
import pytest

from runner import ConfigurationError
from runner.cluster.placement import DaskPlacement
from runner.execution import execute
from runner.execution.resume import resume
from task_type_plugin import install_shouting_plugin


@pytest.fixture(scope="module")
def cluster():
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = distributed.Client(local, set_as_default=False)
    yield client
    client.close()
    local.close()


def alt(*tasks) -> dict:
    return {"id": "placed", "title": "placed", "tasks": list(tasks)}


def task(task_id: str, task_type: str, deps=(), **fields) -> dict:
    return {"id": task_id, "description": task_id, "dependencies": list(deps), "parameters": {"task_type": task_type},
            **fields}


def results_of(outcome) -> dict:
    return {task_id: result.to_dict() for task_id, result in outcome.results.items()}


def test_python_handlers_run_on_the_workers_with_deps_retries_and_timeouts(tmp_path, cluster):
    # Nested functions: cloudpickle sends them by value, closures and all.
    def where(t):
        t.log.info("working")
        return {"pid": os.getpid(), "id": t.id, "deps": t.deps, "attempt": t.attempt, "n": t.parameters.get("n")}

    def flaky(t):
        if t.attempt == 1:
            raise RuntimeError("first time unlucky")
        return t.attempt

    def stubborn(t):
        t.cancelled.wait(30)        # set on the worker at the attempt's deadline
        return "too late"

    async def waits(t):
        await asyncio.sleep(0.05)
        return {"pid": os.getpid(), "seed": t.seed}

    document = alt(task("a", "where"), task("b", "where", deps=["a"]),
                   task("f", "flaky", retry_count=1), task("s", "stubborn", timeout_seconds=1),
                   task("w", "waits"))
    document["tasks"][0]["parameters"]["n"] = 7
    outcome = execute(document, tmp_path / "out", placement=DaskPlacement(cluster),
                      handlers={"where": where, "flaky": flaky, "stubborn": stubborn, "waits": waits},
                      environ={"RUNNER_RETRY_BASE_SECONDS": "0.01"})
    results = results_of(outcome)
    workers = cluster.scheduler_info()["workers"]
    a, b = results["a"], results["b"]
    assert a["status"] == "completed" and a["output"]["id"] == "a" and a["output"]["n"] == 7
    assert a["output"]["pid"] != os.getpid()
    assert a["metadata"]["worker"]["address"] in workers
    assert a["metadata"]["log"] == ["INFO working"]
    assert b["output"]["deps"] == {"a": a["output"]}
    flaky_attempts = results["f"]["metadata"]["attempts"]
    assert results["f"]["status"] == "completed" and results["f"]["output"] == 2
    assert [(x["outcome"], x["error"]) for x in flaky_attempts] == [
        ("failed", "RuntimeError: first time unlucky"), ("completed", None)]
    assert results["s"]["status"] == "timeout"
    assert results["w"]["status"] == "completed" and results["w"]["output"]["pid"] != os.getpid()
    assert results["w"]["metadata"]["worker"]["address"] in workers
    (directory,) = (tmp_path / "out").iterdir()
    journal = [json.loads(line) for line in (directory / "journal.jsonl").read_text().splitlines()]
    ended = [(r["task_id"], r["outcome"]) for r in journal if r["type"] == "attempt_ended"]
    assert ("f", "failed") in ended and ("f", "completed") in ended and ("s", "timeout") in ended


def test_a_run_on_the_workers_resumes_reusing_what_completed(tmp_path, cluster):
    calls, gate = tmp_path / "calls.txt", tmp_path / "gate"

    def step(t):
        with open(calls, "a") as written:        # the workers share this machine's disk
            written.write(t.id + "\n")
        if t.id == "second" and not gate.exists():
            raise RuntimeError("the gate is closed")
        return {"step": t.id, "pid": os.getpid()}

    handlers = {"step": step}
    first = execute(alt(task("first", "step"), task("second", "step", deps=["first"])), tmp_path / "out",
                    placement=DaskPlacement(cluster), handlers=handlers)
    assert results_of(first)["second"]["status"] == "failed"
    gate.touch()
    again = resume(first.directory, placement=DaskPlacement(cluster), handlers=handlers)
    results = results_of(again)
    assert calls.read_text().split() == ["first", "second", "second"]
    assert results["first"]["metadata"]["reused_from"] == first.last_id
    assert results["second"]["status"] == "completed" and results["second"]["output"]["pid"] != os.getpid()


def test_a_handler_that_cannot_be_pickled_is_refused_before_anything_runs(tmp_path, cluster):
    lock = threading.Lock()
    ran = []
    with pytest.raises(ConfigurationError) as refused:
        execute(alt(task("x", "locked")), tmp_path / "out", placement=DaskPlacement(cluster),
                handlers={"locked": lambda t: ran.append(lock.locked())})
    message = str(refused.value)
    assert "task type 'locked'" in message and "cannot be pickled" in message and "_thread.lock" in message
    assert ran == [] and not (tmp_path / "out").exists()


def run_cli_in_a_script(tmp_path: Path, preamble: str, document: dict, address: str) -> subprocess.CompletedProcess:
    """`python -m runner run FILE --dask ADDRESS` from a script that first registers a type (a
    host embedding the command line), so the type exists in the submitting process."""
    path = tmp_path / "file.json"
    path.write_text(json.dumps(document))
    script = tmp_path / "host.py"
    script.write_text(preamble + "\nimport runner.cli\nsys.exit(runner.cli.main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, str(script), "run", str(path), "--out", str(tmp_path / "out"),
                           "--dask", address, "--quiet"], capture_output=True, text=True, timeout=120)


def test_the_cli_refuses_an_unpicklable_handler_with_exit_2_naming_it(tmp_path, cluster):
    preamble = ("import sys, threading\nimport runner\nlock = threading.Lock()\n"
                "runner.register_task_type('locked', lambda t: lock.locked())\n")
    done = run_cli_in_a_script(tmp_path, preamble, alt(task("x", "locked")), cluster.scheduler.address)
    assert done.returncode == 2, done.stderr
    assert "task type 'locked'" in done.stderr and "cannot be pickled" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_type_registered_in_c_is_refused_with_dask(tmp_path, cluster, library_path):
    preamble = f"""import sys
from runner import abi
lib = abi.load({str(library_path)!r})
assert lib.runner_init() == 1
called = []
@abi.TASK_HANDLER
def square(task, user_data):
    called.append(1)
    return 0 if lib.runner_task_set_output(task, b"4") else 1
assert lib.runner_register_task_type(b"square", square, None) == 1
"""
    done = run_cli_in_a_script(tmp_path, preamble, alt(task("x", "square")), cluster.scheduler.address)
    assert done.returncode == 2, done.stderr
    assert "task type 'square' is registered through the C ABI" in done.stderr
    assert "without --dask" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_plugins_type_runs_on_a_worker_that_loads_it_by_name(tmp_path):
    site = install_shouting_plugin(tmp_path / "site")
    path = tmp_path / "shout.json"
    path.write_text(json.dumps(alt({"id": "s", "description": "s", "parameters": {"task_type": "shout",
                                                                                  "text": "hey", "times": 2}})))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"),
                           "--dask", "local:1", "--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    result = record["task_results"]["s"]
    assert result["output"] == {"text": "HEYHEY"}
    assert result["metadata"]["worker"]["address"].startswith("tcp://127.0.0.1:")
    assert result["metadata"]["log"] == ["INFO shouting"]
