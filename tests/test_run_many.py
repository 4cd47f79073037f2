"""Many ALT files in one `run` (and runner.run_many) on this machine: the mapping, exit codes,
interruption, and what --dask says before anything runs when it cannot be used."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runner


def cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "runner", "run", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def alt(tmp_path, name, tasks) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"id": name, "title": name, "tasks": tasks}))
    return path


def generic(name):
    return alt(Path(name).parent, Path(name).name, [
        {"id": "a", "description": "hello", "parameters": {"task_type": "generic"}},
        {"id": "b", "description": "Hi {{ deps.a.output.task_type }}", "dependencies": ["a"]}])


def test_several_files_print_one_object_of_last_directories(tmp_path):
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    done = cli(one, two, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)
    assert list(mapping) == [str(one), str(two)]
    for path, directory in mapping.items():
        record = json.loads((Path(directory) / "last.json").read_text())
        assert record["alt_file_id"] == Path(path).stem
        assert record["task_results"]["b"]["output"]["text"] == "echo: Hi generic"
        assert "worker" not in record["execution"]         # ran here, not on a Dask worker
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(d).name for d in mapping.values())


def test_a_file_that_cannot_run_is_an_error_entry_and_exit_1(tmp_path):
    good = generic(tmp_path / "good")
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"id": "x", "tasks": [')
    done = cli(good, invalid, tmp_path / "missing.json", good, "--out", tmp_path / "out")
    assert done.returncode == 1
    mapping = json.loads(done.stdout)
    assert Path(mapping[str(good)]).is_dir() and Path(mapping[f"{good} (2)"]).is_dir()
    assert mapping[f"{good} (2)"] != mapping[str(good)]
    assert mapping[str(invalid)].startswith(f"ERROR: {invalid}: invalid (1 error)")
    missing = tmp_path / "missing.json"
    assert mapping[str(missing)] == f"ERROR: {missing}: cannot read: No such file or directory"


def test_a_task_not_completed_in_any_file_exits_1(tmp_path):
    good = generic(tmp_path / "good")
    failing = alt(tmp_path, "failing", [{"id": "c", "description": "x",
                                         "parameters": {"task_type": "system_command", "command": ["true"]}}])
    done = cli(good, failing, "--out", tmp_path / "out")
    assert done.returncode == 1
    record = json.loads((Path(json.loads(done.stdout)[str(failing)]) / "last.json").read_text())
    assert record["task_results"]["c"]["status"] == "failed"


def test_one_file_behaves_as_before(tmp_path):
    done = cli(generic(tmp_path / "one"), "--out", tmp_path / "out")
    assert done.returncode == 0
    assert Path(done.stdout.strip().splitlines()[-1]).parent == tmp_path / "out"   # a path, not JSON


def test_unusable_options_exit_2_before_anything_runs(tmp_path):
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    assert cli(one, two, "--out", tmp_path / "out", "--jobs", "0").returncode == 2
    assert cli(one, two, "--out", tmp_path / "out", "--workspace", tmp_path / "ws").returncode == 2
    bad_env = cli(one, two, "--out", tmp_path / "out", env={"RUNNER_RETRY_MAX_SECONDS": "soon"})
    assert bad_env.returncode == 2 and "RUNNER_RETRY_MAX_SECONDS" in bad_env.stderr
    bad_address = cli(one, two, "--out", tmp_path / "out", "--dask", "somewhere")
    assert bad_address.returncode == 2 and "tcp://HOST:8786" in bad_address.stderr
    assert not (tmp_path / "out").exists()


def test_run_many_returns_the_mapping(tmp_path):
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    mapping = runner.run_many([one, tmp_path / "nope.json", two], tmp_path / "out", jobs=2)
    assert list(mapping) == [str(one), str(tmp_path / "nope.json"), str(two)]
    assert mapping[str(tmp_path / "nope.json")].startswith("ERROR: ")
    assert all(Path(mapping[str(p)], "last.json").is_file() for p in (one, two))
    with pytest.raises(runner.ConfigurationError, match="jobs 0"):
        runner.run_many([one], tmp_path / "out", jobs=0)


def test_without_distributed_dask_says_how_to_install_it(tmp_path):
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    # The package is hidden from this child only: an entry of None makes `import distributed` fail.
    code = ("import sys; sys.modules['distributed'] = None; from runner.cli import main; "
            f"raise SystemExit(main(['run', {str(one)!r}, {str(two)!r}, '--out', {str(tmp_path / 'out')!r}, "
            "'--dask', 'local:1']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install 'librunner[dask]'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_run_without_dask_never_imports_distributed(tmp_path):
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    code = ("import sys; from runner.cli import main; "
            f"code = main(['run', {str(one)!r}, {str(two)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet']); "
            "print('distributed' in sys.modules, file=sys.stderr); raise SystemExit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_a_scheduler_nobody_listens_on_is_one_error_before_anything_runs(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]          # free once closed: nobody listens there
    one, two = generic(tmp_path / "one"), generic(tmp_path / "two")
    started = time.monotonic()
    done = cli(one, two, "--out", tmp_path / "out", "--dask", f"tcp://127.0.0.1:{port}",
               env={"RUNNER_DASK_CONNECT_TIMEOUT": "1"})
    assert done.returncode == 2
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 30
    # The same through the environment variable, for one file (its heavy tasks would go there).
    single = cli(one, "--out", tmp_path / "out", env={"RUNNER_DASK_SCHEDULER": f"tcp://127.0.0.1:{port}",
                                                      "RUNNER_DASK_CONNECT_TIMEOUT": "1"})
    assert single.returncode == 2 and "cannot reach the Dask scheduler" in single.stderr
    assert not (tmp_path / "out").exists()


def test_sigterm_stops_the_files_and_still_writes_what_finished(tmp_path):
    quick = generic(tmp_path / "quick")
    slow = [alt(tmp_path, f"slow{i}", [{"id": "s", "description": "x", "timeout_seconds": 60,
                                        "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}}])
            for i in range(3)]
    env = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep",
           "RUNNER_GRACE_SECONDS": "0.5"}
    process = subprocess.Popen([sys.executable, "-m", "runner", "run", str(quick), *map(str, slow),
                                "--out", str(tmp_path / "out"), "--jobs", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((tmp_path / "out").glob("*/last.json"))) < 1:
            time.sleep(0.05)
        time.sleep(0.3)                      # the next slow file has started its command
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, err
    mapping = json.loads(out)
    assert Path(mapping[str(quick)], "last.json").is_file()
    interrupted = [json.loads(Path(mapping[str(p)], "last.json").read_text())
                   for p in slow if not mapping[str(p)].startswith("ERROR: ")]
    assert interrupted and all(r["execution"]["interrupted"] for r in interrupted)
    assert all(r["task_results"]["s"]["status"] == "cancelled" for r in interrupted)
    assert [mapping[str(p)] for p in slow if mapping[str(p)].startswith("ERROR: ")] == \
        ["ERROR: interrupted before it started"] * (3 - len(interrupted))


def test_ctrl_c_in_run_many_stops_the_files_and_raises_with_the_mapping(tmp_path):
    quick = generic(tmp_path / "quick")
    slow = alt(tmp_path, "slow", [{"id": "s", "description": "x", "timeout_seconds": 60,
                                   "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}}])
    code = ("import json, sys, runner\n"
            "from runner.cluster.many import FilesInterrupted\n"
            "try:\n"
            f"    runner.run_many([{str(quick)!r}, {str(slow)!r}], {str(tmp_path / 'out')!r}, jobs=2)\n"
            "except FilesInterrupted as interrupted:\n"
            "    print(json.dumps(interrupted.entries))\n"
            "    sys.exit(130)\n")
    env = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep",
           "RUNNER_GRACE_SECONDS": "0.3"}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((tmp_path / "out").glob("*/journal.jsonl"))) < 2:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    mapping = json.loads(out)
    assert json.loads(Path(mapping[str(quick)], "last.json").read_text())["execution"]["interrupted"] is False
    record = json.loads(Path(mapping[str(slow)], "last.json").read_text())
    assert record["execution"]["interrupted"] is True and record["task_results"]["s"]["status"] == "cancelled"
