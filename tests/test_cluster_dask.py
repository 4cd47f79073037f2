"""ALT files and heavy tasks on real Dask clusters started by the tests on 127.0.0.1:
a LocalCluster of worker processes, and a `dask scheduler` with two `dask worker`s as
subprocesses, one of them killed while files run."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import distributed          # the test extra installs it, so CI runs these tests
import pytest

import runner
from runner.cluster import on_worker
from runner.cluster.placement import DaskPlacement
from runner.execution import execute, settings as config

COMMANDS = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep,echo,true"}


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes whose own environment allows commands: the submitter's settings,
    not these, must decide."""
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                                     env={"RUNNER_ENABLE_SYSTEM_COMMANDS": "true",
                                          "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep,echo"})
    client = distributed.Client(local, set_as_default=False)
    yield client
    client.close()
    local.close()


def write_alt(directory: Path, name: str, tasks) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"id": name, "title": name, "tasks": tasks}))
    return path


def record_of(directory) -> dict:
    return json.loads((Path(directory) / "last.json").read_text())


def processes_running(*argv: str) -> list[int]:
    """The pids of processes whose command line is exactly argv (read from /proc)."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_three_files_on_a_local_cluster_come_back_as_local_last_directories(tmp_path):
    files = [write_alt(tmp_path, f"f{i}", [
        {"id": "write", "description": "x", "parameters": {"task_type": "file_operation", "operation": "write",
                                                         "path": "notes/out.txt", "content": f"file {i}"}},
        {"id": "ask", "description": f"question {i}", "dependencies": ["write"]}]) for i in range(3)]
    done = subprocess.run([sys.executable, "-m", "runner", "run", *map(str, files), "--out", str(tmp_path / "out"),
                           "--dask", "local:2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)
    assert list(mapping) == [str(f) for f in files]
    assert len(list((tmp_path / "out").iterdir())) == 3
    for i, path in enumerate(files):
        directory = Path(mapping[str(path)])
        record = record_of(directory)
        worker = record["execution"]["worker"]
        assert worker["address"].startswith("tcp://127.0.0.1:") and worker["name"]
        assert record["task_results"]["ask"]["output"]["text"] == f"echo: question {i}"
        # The file the task wrote on the worker came back as an artifact of the local LAST directory.
        assert (directory / "artifacts" / "write" / "out.txt").read_text() == f"file {i}"
        assert (directory / "report.html").is_file()


@pytest.mark.parametrize("where", ["here", "cluster"])
def test_run_many_writes_where_its_environ_says(tmp_path, cluster, monkeypatch, where):
    """RUNNER_OUTPUT_DIR comes from run_many's environ, on this machine and from a cluster
    alike (the cluster's LAST files went to ./output, from os.environ)."""
    alt = write_alt(tmp_path, "placed", [{"id": "a", "description": "a"}])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_OUTPUT_DIR", raising=False)
    environ = {**os.environ, "RUNNER_OUTPUT_DIR": str(tmp_path / "from_environ")}
    written = runner.run_many([alt], dask=cluster.scheduler.address if where == "cluster" else None,
                              environ=environ)
    assert Path(written[str(alt)]).parent == tmp_path / "from_environ"
    assert not (tmp_path / "output").exists()


def test_the_submitters_settings_travel_with_the_work(tmp_path, cluster):
    command = write_alt(tmp_path, "command", [{"id": "say", "description": "x", "parameters": {
        "task_type": "system_command", "command": ["echo", "travelled"]}}])
    address = cluster.scheduler.address
    # The workers' own environment allows commands; the submitter's does not: refused.
    plain = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    refused = runner.run_many([command], tmp_path / "a", dask=address, environ=plain)
    result = record_of(refused[str(command)])["task_results"]["say"]
    assert result["status"] == "failed" and "system commands are disabled" in result["error"]
    # The submitter allows them, with its own allowlist: they run on the worker.
    allowed = runner.run_many([command], tmp_path / "b", dask=address, environ={**plain, **COMMANDS})
    record = record_of(allowed[str(command)])
    assert record["task_results"]["say"]["output"]["stdout"] == "travelled\n"
    assert record["execution"]["worker"]["address"] in cluster.scheduler_info()["workers"]


def attempt_spec(task_type, parameters, timeout, dependencies=None):
    settings = config.load({**os.environ, **COMMANDS})
    return {"key": f"test-attempt-{uuid.uuid4().hex}", "task_type": task_type, "parameters": parameters,
            "number": 1, "mode": "normal", "dependencies": dependencies or {}, "settings": settings,
            "timeout": timeout}


def test_a_commands_timeout_is_enforced_on_the_worker(cluster):
    started = time.monotonic()
    answer = cluster.submit(on_worker.run_attempt, attempt_spec("system_command", {"command": ["sleep", "30"]}, 1.0),
                            pure=False).result(timeout=30)
    assert time.monotonic() - started < 10
    assert answer["outcome"] == "timeout"
    assert answer["error"] == "timed out after 1 s (stopped on the worker)"
    assert answer["metadata"]["worker"]["address"] in cluster.scheduler_info()["workers"]
    assert gone(answer["metadata"]["process"]["pid"])      # its process group was killed there


def test_a_data_tasks_timeout_is_enforced_on_the_worker(cluster):
    rows = [{"n": (i * 7919) % 100003} for i in range(100000)]
    steps = [{"op": "sort", "by": "n", "descending": bool(k % 2)} for k in range(400)]
    answer = cluster.submit(on_worker.run_attempt,
                            attempt_spec("data_processing", {"input": rows, "operations": steps}, 0.5),
                            pure=False).result(timeout=60)
    assert answer["outcome"] == "timeout"
    assert answer["error"] == "timed out after 0.5 s (stopped on the worker)"


def test_heavy_tasks_of_one_file_run_on_workers_under_the_local_scheduler(tmp_path, cluster):
    alt = {"id": "heavy", "title": "heavy", "tasks": [
        {"id": "data", "description": "x", "priority": "high", "parameters": {
            "task_type": "data_processing", "input": [{"v": 3}, {"v": 1}, {"v": 2}],
            "operations": [{"op": "sort", "by": "v"}]}},
        {"id": "slow", "description": "x", "timeout_seconds": 1, "retry_count": 1, "parameters": {
            "task_type": "system_command", "command": ["sleep", "29.37"]}},
        {"id": "after", "description": "x", "dependencies": ["slow"], "parameters": {"task_type": "generic"}},
        {"id": "ask", "description": "hello", "dependencies": ["data"]}]}
    environ = {**os.environ, **COMMANDS, "RUNNER_RETRY_BASE_SECONDS": "0.01"}
    started = time.monotonic()
    outcome = execute(alt, tmp_path / "out", placement=DaskPlacement(cluster), environ=environ)
    assert time.monotonic() - started < 15
    results = {k: v.to_dict() for k, v in outcome.results.items()}
    workers = cluster.scheduler_info()["workers"]
    assert results["data"]["status"] == "completed"
    assert results["data"]["output"]["result"] == [{"v": 1}, {"v": 2}, {"v": 3}]
    assert results["data"]["metadata"]["worker"]["address"] in workers
    slow = results["slow"]
    assert slow["status"] == "timeout"
    assert [a["outcome"] for a in slow["metadata"]["attempts"]] == ["timeout", "timeout"]   # the retry budget
    assert results["after"]["status"] == "skipped"
    # The AI call stayed in this process: no worker in its metadata.
    assert results["ask"]["status"] == "completed" and "worker" not in results["ask"]["metadata"]
    # The commands were killed on the worker when their attempts were abandoned.
    time.sleep(0.5)
    assert processes_running("sleep", "29.37") == []


def start(argv, **kwargs):
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def test_a_worker_killed_mid_run_loses_no_file(tmp_path):
    """(First, with the scheduler alone: a scheduler without workers is an error before anything runs.)"""
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    processes = [start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(scheduler_file)], env=env)]
    try:
        deadline = time.monotonic() + 30
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        alone = write_alt(tmp_path, "alone", [{"id": "a", "description": "x", "parameters": {"task_type": "generic"}}])
        no_worker = subprocess.run([sys.executable, "-m", "runner", "run", str(alone), str(alone),
                                    "--out", str(tmp_path / "out"), "--dask", address],
                                   capture_output=True, text=True, timeout=60,
                                   env={**env, "RUNNER_DASK_CONNECT_TIMEOUT": "1"})
        assert no_worker.returncode == 2
        assert f"the Dask scheduler at {address} has no worker after 1 s" in no_worker.stderr
        assert not (tmp_path / "out").exists()
        workers = {name: start([dask, "worker", address, "--nthreads", "1", "--name", name, "--no-dashboard",
                                "--host", "127.0.0.1"], env=env) for name in ("doomed", "survivor")}
        processes += workers.values()
        files = [write_alt(tmp_path, f"f{i}", [{"id": "wait", "description": "x", "parameters": {
            "task_type": "system_command", "command": ["sleep", "0.5"]}}]) for i in range(6)]
        with distributed.Client(address, set_as_default=False, timeout=30) as watcher:
            watcher.wait_for_workers(2, timeout=30)
            doomed = next(a for a, w in watcher.scheduler_info()["workers"].items() if w["name"] == "doomed")
            run = subprocess.Popen([sys.executable, "-m", "runner", "run", *map(str, files),
                                    "--out", str(tmp_path / "out"), "--dask", address, "--quiet"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**env, **COMMANDS})
            # Kill the doomed worker (its nanny and its process group) while it runs a file.
            deadline = time.monotonic() + 30
            while not watcher.processing(workers=[doomed]).get(doomed) and time.monotonic() < deadline:
                time.sleep(0.02)
            running = watcher.processing(workers=[doomed]).get(doomed)
            assert running, "the doomed worker never got a file"
            stop(workers["doomed"])
            out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        mapping = json.loads(out)
        assert len(mapping) == 6 and not any(v.startswith("ERROR") for v in mapping.values())
        directories = sorted((tmp_path / "out").iterdir())
        assert len(directories) == 6                          # each file once, no LAST directory twice
        # The file the doomed worker was running ran again on the survivor.
        interrupted = files[int(running[0].split("-")[2])]
        assert record_of(mapping[str(interrupted)])["execution"]["worker"]["name"] == "survivor"
        assert all(record_of(d)["task_results"]["wait"]["status"] == "completed" for d in directories)
    finally:
        for process in reversed(processes):
            stop(process)


def test_interrupting_a_run_on_the_cluster_stops_its_files_and_writes_what_finished(tmp_path, cluster):
    import threading

    from runner.cluster.many import NOT_STARTED, Stop, run_files

    quick = write_alt(tmp_path, "quick", [{"id": "a", "description": "x", "parameters": {"task_type": "generic"}}])
    slow = [write_alt(tmp_path, f"slow{i}", [{"id": "s", "description": "x", "timeout_seconds": 60, "parameters": {
        "task_type": "system_command", "command": ["sleep", "30.61"]}}]) for i in range(5)]
    plain = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    stop = Stop()

    def on_file(outcome):
        if outcome.path == str(quick):
            threading.Timer(1.0, stop).start()      # the slow files have started by then
    started = time.monotonic()
    outcomes = run_files([quick, *slow], tmp_path / "out", dask=cluster.scheduler.address, on_file=on_file, stop=stop,
                         environ={**plain, **COMMANDS, "RUNNER_GRACE_SECONDS": "0.5"})
    assert time.monotonic() - started < 20
    assert outcomes[0].directory is not None and outcomes[0].all_completed
    written = [o for o in outcomes[1:] if o.directory is not None]
    assert written, "no running file came back"
    for outcome in written:
        record = record_of(outcome.directory)
        assert outcome.interrupted and record["execution"]["interrupted"] is True
        assert record["task_results"]["s"]["status"] == "cancelled"
    assert all(o.error == NOT_STARTED for o in outcomes[1:] if o.directory is None)
    assert len(list((tmp_path / "out").iterdir())) == 1 + len(written)
    time.sleep(0.5)
    assert processes_running("sleep", "30.61") == []


def test_a_heavy_task_whose_worker_dies_runs_again_within_its_retry_budget(tmp_path, cluster):
    """Last in this module: it kills one of the shared cluster's workers (its nanny restarts it)."""
    import threading

    alt = {"id": "dies", "title": "dies", "tasks": [{"id": "work", "description": "x", "timeout_seconds": 30,
                                                     "retry_count": 1,
                                                     "parameters": {"task_type": "system_command",
                                                                    "command": ["sleep", "1.5"]}}]}
    killed = []

    def kill_the_worker_running_it():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            busy = [address for address, keys in cluster.processing().items()
                    if any(str(key).startswith("runner-task-") for key in keys)]
            if busy:
                pid = cluster.run(os.getpid, workers=busy[:1])[busy[0]]
                time.sleep(0.3)                     # the command has started there
                os.kill(pid, signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.02)
    killer = threading.Thread(target=kill_the_worker_running_it)
    killer.start()
    outcome = execute(alt, tmp_path / "out", placement=DaskPlacement(cluster),
                      environ={**os.environ, **COMMANDS, "RUNNER_RETRY_BASE_SECONDS": "0.01"})
    killer.join()
    assert killed, "no worker was seen running the task"
    result = outcome.results["work"].to_dict()
    assert result["status"] == "completed", result
    assert result["metadata"]["worker"]["address"] != killed[0]
    first, second = result["metadata"]["attempts"]       # the death cost one attempt of the budget
    assert first["outcome"] == "failed" and f"the Dask worker running it ({killed[0]}) died" in first["error"]
    assert second["outcome"] == "completed"
    assert len(list((tmp_path / "out").iterdir())) == 1


def test_one_file_with_dask_local_places_its_heavy_tasks_from_the_cli(tmp_path):
    path = write_alt(tmp_path, "one", [
        {"id": "data", "description": "x", "parameters": {"task_type": "data_processing", "input": [{"v": 3}, {"v": 1}],
                                                        "operations": [{"op": "sort", "by": "v"}]}},
        {"id": "ask", "description": "hello", "dependencies": ["data"]}])
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"),
                           "--dask", "local:1", "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(temporary)})
    assert done.returncode == 0, done.stderr
    assert list(temporary.iterdir()) == []      # the local cluster's scratch space went with it
    directory = Path(done.stdout.strip().splitlines()[-1])       # one file: the LAST directory, as ever
    record = record_of(directory)
    assert record["task_results"]["data"]["output"]["result"] == [{"v": 1}, {"v": 3}]
    assert record["task_results"]["data"]["metadata"]["worker"]["address"].startswith("tcp://127.0.0.1:")
    assert "worker" not in record["task_results"]["ask"]["metadata"]
    assert "worker" not in record["execution"]            # the file itself ran in the submitting process


def test_a_file_whose_workspace_nests_deeper_than_recursion_runs_on_a_worker(tmp_path, cluster):
    # The worker removes its workspace and the submitter the files that came back: both
    # with runner.workspace.remove_tree, as a local run does (shutil.rmtree raised
    # RecursionError on either side and the file became an ERROR entry).
    from runner.workspace import remove_tree

    deep = write_alt(tmp_path, "deep", [{"id": "t", "description": "t", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "a/" * 1200 + "f.txt", "content": "x"}}])
    try:
        outcome = runner.run_many([deep], tmp_path / "out", dask=cluster.scheduler.address)
        assert not outcome[str(deep)].startswith("ERROR"), outcome
        assert record_of(outcome[str(deep)])["task_results"]["t"]["status"] == "completed"
    finally:
        for child in tmp_path.iterdir():
            if child.is_dir():
                remove_tree(child)
