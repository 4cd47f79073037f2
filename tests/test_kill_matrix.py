"""A run stopped by SIGTERM or killed by SIGKILL, while its tasks run or while it writes its
LAST directory (issue 12): no file ever appears half-written under its final name, and no
temporary workspace is left behind: a SIGTERM'd run removes it itself; a killed run's
workspace is kept for `resume` (issue 11's journal), which finishes the run and removes it.
"""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from runner import schemas

def content(number: int) -> str:
    """What file task `number` writes (about 16 KB): artifacts are compared with it whole."""
    return f"file {number} " * 2000


def matrix_alt() -> dict:
    tasks = [{"id": f"w{i}", "description": "write", "dependencies": None,
              "parameters": {"task_type": "file_operation", "operation": "write", "path": f"out/f{i}.txt",
                             "content": content(i)}} for i in range(4)]
    tasks.append({"id": "slow", "description": "sleep", "dependencies": ["w0"],
                  "parameters": {"task_type": "system_command", "command": ["sleep", "1.5"]}})
    # Many results and large outputs after the sleep: the LAST directory takes a while to write.
    tasks += [{"id": f"g{i}", "description": "generic", "dependencies": ["slow"],
               "parameters": {"task_type": "generic", "payload": "p" * (200_000 if i < 8 else 10)}}
              for i in range(200)]
    return {"id": "matrix", "title": "kill matrix", "tasks": tasks}


def journal_lines(directory: Path) -> list[bytes]:
    path = directory / "journal.jsonl"
    return path.read_bytes().split(b"\n") if path.is_file() else []


def journal_has(out: Path, word: bytes) -> bool:
    return any(word in line for d in out.glob("*") for line in journal_lines(d))


def run_started(directory: Path) -> dict:
    return json.loads(journal_lines(directory)[0])


def check_no_torn_files(out: Path, killed: bool) -> None:
    """Every file under a final name is complete; temporaries (.<name>.<random>.tmp) only after SIGKILL."""
    validator = schemas.validator("last")
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            assert killed, f"{path} left behind by a run that ended by itself"
            continue
        data = path.read_bytes()
        if name == "last.json":
            record = json.loads(data)
            errors = sorted(validator.iter_errors(record), key=str)
            assert not errors, f"{path}: {errors[0]}"
            if (path.parent / "last.json.gz").exists():
                assert gzip.decompress((path.parent / "last.json.gz").read_bytes()) == data
        elif name == "last.json.gz":
            json.loads(gzip.decompress(data))
        elif name == "alt.json":
            json.loads(data)
        elif name == "report.html":
            assert data.rstrip().endswith(b"</html>"), path
        elif name == "graph.svg":
            assert data.rstrip().endswith(b"</svg>"), path
        elif name == "graph.dot":
            assert data.rstrip().endswith(b"}"), path
        elif name == "journal.jsonl":
            lines = data.split(b"\n")
            assert lines[-1] == b"" or killed, f"{path}: a torn last line after a run that ended by itself"
            for line in lines[:-1]:
                json.loads(line)
        elif path.parent.parent.name == "artifacts":
            number = int(name.removeprefix("f").removesuffix(".txt"))
            assert data.decode() == content(number), path
        else:
            pytest.fail(f"unexpected file {path}")


@pytest.mark.parametrize("moment", ["tasks running", "writing the LAST directory"])
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_run_leaves_no_torn_file_and_its_workspace_only_for_its_resume(tmp_path, moment, signal_number):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    out = tmp_path / "out"
    alt = tmp_path / "matrix.json"
    alt.write_text(json.dumps(matrix_alt()))
    environ = {**os.environ, "TMPDIR": str(temporary), "RUNNER_ENABLE_SYSTEM_COMMANDS": "true",
               "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep", "RUNNER_ENABLE_COMPRESSION": "true",
               "RUNNER_GRACE_SECONDS": "0.2", "RUNNER_GRAPH_RENDERER": "builtin"}
    run = subprocess.Popen([sys.executable, "-m", "runner", "run", str(alt), "--out", str(out), "--quiet"],
                           env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Tasks running: the file tasks' results are in the journal, the sleep is on.
        # Writing: the journal's last record (run_ended) is written just before the products.
        word = b'"task_results"' if moment == "tasks running" else b'"run_ended"'
        assert wait_until(lambda: journal_has(out, word), 60), run.stderr.read() if run.poll() is not None else ""
        run.send_signal(signal_number)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    killed = signal_number == signal.SIGKILL
    directory, = [d for d in out.iterdir() if d.is_dir()]
    check_no_torn_files(out, killed)
    workspace = Path(run_started(directory)["workspace"])
    assert workspace.parent == temporary
    if not killed:
        assert run.returncode in (0, 1, 143), stderr     # 1: a task failed, not a signal death
        assert (directory / "last.json").is_file()
        if not json.loads((directory / "last.json").read_bytes())["execution"]["interrupted"]:
            # Stopped while its LAST directory was written: the run had ended, its workspace goes.
            assert wait_until(lambda: not workspace.exists(), 5), f"{workspace} left behind"
            assert list(temporary.iterdir()) == []
            return
        # Interrupted: the files its tasks wrote stay for the tasks its resume runs, and it says so.
        assert f"its temporary workspace {workspace} is kept for its resume" in stderr
        assert workspace.is_dir() and any(workspace.iterdir())
    else:
        assert run.returncode == -signal.SIGKILL
        if (directory / "last.json").exists():
            return      # killed after the last file was renamed into place: the run was complete
    # The stopped run's workspace holds its files for resume, which finishes the run and removes it.
    done = subprocess.run([sys.executable, "-m", "runner", "resume", str(directory), "--quiet"],
                          env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    check_no_torn_files(out, killed=True)
    resumed = Path(done.stdout.strip().splitlines()[-1])
    assert json.loads((resumed / "last.json").read_bytes())["status"] == "success"
    assert wait_until(lambda: not workspace.exists(), 5), f"{workspace} left behind after resume"
    assert list(temporary.iterdir()) == []
