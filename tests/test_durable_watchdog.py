"""kill -9 of `run` leaves nothing running and nothing in the temporary directory: its
watchdog (runner.execution.watchdog) kills the commands it started, the Dask LocalCluster of
`--dask local:N` (worker processes, the commands they started) and removes the cluster's
directories. Real runs, real clusters on 127.0.0.1, real SIGKILL; each in a private TMPDIR."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from test_durable_journal import ENABLED


def stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start ticks) of a live, not zombie, process; None otherwise."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return None if fields[0] == b"Z" else (int(fields[1]), int(fields[19]))


def descendants(root: int) -> dict[int, int]:
    """Every live process below `root`: pid -> start ticks."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = stat(int(entry.name))
            if found is not None:
                parents[int(entry.name)] = found
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, ticks) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = ticks
                frontier.append(pid)
    return found


def alive(processes: dict[int, int]) -> dict[int, int]:
    """Those of `processes` still running (same pid, same start time)."""
    return {pid: ticks for pid, ticks in processes.items() if (stat(pid) or (0, None))[1] == ticks}


def watchdog_of(pid: int) -> int:
    """The watchdog process a librunner process started."""
    for child in descendants(pid):
        try:
            if b"watchdog_process.py" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            pass
    raise AssertionError(f"process {pid} has no watchdog")


def gated(tmp_path: Path, name: str) -> list[str]:
    """Appends "<name> <its pid>" to the log, then waits for a gate that never opens."""
    return ["sh", "-c", f"echo {name} $$ >> {tmp_path / 'log'}; "
                        f"while ! test -f {tmp_path / 'gate'}; do sleep 0.05; done"]


def started(tmp_path: Path) -> dict[str, int]:
    log = tmp_path / "log"
    return {line.split()[0]: int(line.split()[1]) for line in log.read_text().splitlines()} if log.exists() else {}


def environment(tmp_path: Path) -> dict:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return {**os.environ, **ENABLED, "TMPDIR": str(scratch), "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,sleep,test"}


def write_alt(path: Path, name: str, tasks: list) -> Path:
    path.write_text(json.dumps({"id": name, "title": name, "tasks": tasks}))
    return path


def commands(tmp_path: Path, *names: str) -> list:
    return [{"id": name, "description": name,
             "parameters": {"task_type": "system_command", "command": gated(tmp_path, name)}} for name in names]


def kill_and_check(child: subprocess.Popen, tmp_path: Path) -> None:
    """kill -9 of `child`: then none of the processes below it lives, their command groups
    included, and the private temporary directory is empty."""
    below = descendants(child.pid)
    groups = list(started(tmp_path).values())
    assert groups, "no command started"
    try:
        child.kill()
        child.wait(30)
        assert wait_until(lambda: not alive(below), 60), alive(below)
        assert wait_until(lambda: not groups_alive(groups), 60), groups_alive(groups)
        assert wait_until(lambda: not any((tmp_path / "tmp").iterdir()), 60), list((tmp_path / "tmp").iterdir())
    finally:
        for pid in alive(below):       # only if the test failed: its own processes
            os.kill(pid, signal.SIGKILL)
        for pgid in groups_alive(groups):
            os.killpg(pgid, signal.SIGKILL)


def groups_alive(groups: list[int]) -> set[int]:
    """Those of the process groups `groups` that hold a live (not zombie) process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                data = (entry / "stat").read_bytes()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2:].split()
            if fields[0] != b"Z" and int(fields[2]) in groups:
                found.add(int(fields[2]))
    return found


def test_kill_9_of_a_run_kills_its_commands(tmp_path):
    """The run's own commands (no cluster): its watchdog kills their process groups."""
    env = environment(tmp_path)
    alt = write_alt(tmp_path / "alt.json", "local", commands(tmp_path, "a", "b"))
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", alt, "--out", tmp_path / "out", "--quiet",
                              "--workspace", tmp_path / "workspace"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_until(lambda: len(started(tmp_path)) == 2, 120), started(tmp_path)
    except BaseException:
        child.kill()
        raise
    kill_and_check(child, tmp_path)
    (directory,) = (tmp_path / "out").iterdir()
    shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["state"] == "interrupted" and summary["processes"] == []



RELEASING_HOST = """
import subprocess, sys
from runner.execution import watchdog

def group():
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    watchdog.guard_group(process.pid, watchdog.start_ticks(process.pid))
    return process.pid

running = group()
released = group()
watchdog.release_group(released)      # nothing else is sent after it
if sys.argv[1] == "stop":
    watchdog.stop()
print(released, running, flush=True)
sys.stdin.read()                      # until it is killed, or its input closed
"""


@pytest.mark.parametrize("end", ["kill", "stop"])
def test_a_released_group_is_withdrawn_at_once(tmp_path, end):
    """A release reaches the watchdog when it is made, not with a later line: a kill -9 of
    its owner while another group still runs kills only that one, and stop() kills it too.
    The released group here is still running (in real use its number may by then belong to
    an unrelated group that reused it), so a release held back would get it killed."""
    host = subprocess.Popen([sys.executable, "-c", RELEASING_HOST, end], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    groups = [int(pid) for pid in host.stdout.readline().split()]
    try:
        assert len(groups) == 2, "the host printed no groups"
        released, running = groups
        if end == "kill":
            host.kill()
        else:
            host.stdin.close()
            assert host.wait(60) == 0
        assert wait_until(lambda: running not in groups_alive(groups), 60), "the registered group lives on"
        # The watchdog has ended: whatever it was going to kill is dead by now.
        own = b"watchdog_process.py\0%d\0" % host.pid
        assert wait_until(lambda: not any(own in _cmdline(pid) for pid in _pids()), 60)
        assert released in groups_alive(groups), "a released group was killed"
    finally:
        host.kill()
        host.wait(60)
        for pgid in groups_alive(groups):
            os.killpg(pgid, signal.SIGKILL)


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

def test_kill_9_of_a_run_on_a_local_dask_cluster_leaves_no_process_and_no_directory(tmp_path):
    """One file, its commands placed on the workers of `--dask local:2`: after kill -9 of the
    submitter no worker, command or helper process lives and $TMPDIR is empty; `show` of the
    dead run names the worker each interrupted attempt was running on."""
    env = environment(tmp_path)
    alt = write_alt(tmp_path / "alt.json", "placed", commands(tmp_path, "a", "b"))
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", alt, "--out", tmp_path / "out", "--quiet",
                              "--workspace", tmp_path / "workspace", "--dask", "local:2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_until(lambda: len(started(tmp_path)) == 2, 120), started(tmp_path)
        (directory,) = (tmp_path / "out").iterdir()
        assert wait_until(lambda: (directory / "journal.jsonl").read_bytes().count(b'"attempt_worker"') == 2, 60)
        assert list((tmp_path / "tmp").glob("runner-dask-*"))       # the cluster's scratch, removed below
        assert len(list((tmp_path / "tmp").glob("runner-worker-task-*"))) == 2
    except BaseException:
        child.kill()
        raise
    kill_and_check(child, tmp_path)
    shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0, shown.stderr
    workers = json.loads(shown.stdout)["workers"]
    assert sorted(w["task_id"] for w in workers) == ["a", "b"]
    assert all(w["attempt"] == 1 and w["worker"].startswith("tcp://127.0.0.1:") for w in workers)
    text = subprocess.run([sys.executable, "-m", "runner", "show", directory],
                          capture_output=True, text=True, timeout=60, env=env).stdout
    for worker in workers:
        assert (f"interrupted {worker['task_id']}: attempt 1 started, never finished "
                f"(on Dask worker {worker['worker']})") in text


def test_kill_9_of_several_files_on_a_local_dask_cluster_leaves_no_process_and_no_directory(tmp_path):
    """Whole files on the workers (runner-worker-file-* directories there)."""
    env = environment(tmp_path)
    files = [write_alt(tmp_path / f"{name}.json", name, commands(tmp_path, name)) for name in ("f", "g")]
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", *files, "--out", tmp_path / "out",
                              "--quiet", "--dask", "local:2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_until(lambda: len(started(tmp_path)) == 2, 120), started(tmp_path)
        assert len(list((tmp_path / "tmp").glob("runner-worker-file-*"))) == 2
    except BaseException:
        child.kill()
        raise
    kill_and_check(child, tmp_path)


# ---- a C host: SIGPIPE left at its default, fork without exec, waiting for its children ----

@pytest.fixture(scope="module")
def watchdog_host(cc, tmp_path_factory):
    return cc(Path(__file__).parent / "c" / "watchdog_host.c", tmp_path_factory.mktemp("watchdog-host") / "host")


def host_environment(tmp_path: Path) -> dict:
    return {**environment(tmp_path), "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "echo,sleep"}


def test_a_c_host_whose_watchdog_died_still_runs_commands(watchdog_host, tmp_path):
    """Writing to a dead watchdog is a warning, not a SIGPIPE that kills the host (exit 141)."""
    done = subprocess.run([watchdog_host, tmp_path / "out", "dead-watchdog"], capture_output=True, text=True,
                          timeout=300, env=host_environment(tmp_path))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout == "second run: ok\n"
    assert "the watchdog process ended" in done.stderr


def test_runner_cleanup_ends_and_reaps_the_watchdog(watchdog_host, tmp_path):
    """A host that waits for all its children after runner_cleanup is not kept waiting."""
    done = subprocess.run([watchdog_host, tmp_path / "out", "cleanup"], capture_output=True, text=True,
                          timeout=300, env=host_environment(tmp_path))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout == "no children left\n"


def test_runner_cleanup_in_a_c_host_that_forked_without_exec_ends_the_watchdog_at_once(watchdog_host, tmp_path):
    """The forked child holds a copy of the watchdog's socket, so closing the host's end did
    not end the watchdog's line: runner_cleanup waited its 10 s for it and said so. The line
    is shut down, which ends it whoever holds a copy."""
    done = subprocess.run([watchdog_host, tmp_path / "out", "fork-cleanup"], capture_output=True, text=True,
                          timeout=300, env=host_environment(tmp_path))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout == "cleaned\n"
    assert "did not end within" not in done.stderr, done.stderr


def test_kill_9_of_a_c_host_that_forked_without_exec_kills_its_command(watchdog_host, tmp_path):
    """The forked child holds a copy of the watchdog's socket: the watchdog sees the host's
    end on a pidfd, not only at end of file, and kills the command at once."""
    host = subprocess.Popen([watchdog_host, tmp_path / "out", "fork"], stdout=subprocess.PIPE, text=True,
                            env=host_environment(tmp_path))
    helper, command = None, None
    try:
        ready = host.stdout.readline().split()
        assert ready[:1] == ["ready"], ready
        helper = int(ready[1])

        def sleeping() -> dict[int, int]:
            found = {}
            for pid, ticks in descendants(host.pid).items():
                try:
                    if Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"sleep\x004242\x00"):
                        found[pid] = ticks
                except OSError:
                    pass
            return found
        assert wait_until(lambda: sleeping(), 120)
        command = sleeping()
        host.kill()
        host.wait(30)
        assert wait_until(lambda: not alive(command), 60), alive(command)
        assert stat(helper) is not None       # it still holds the socket's copy: end of file never came
    finally:
        host.kill()
        for pid in alive(command or {}):
            os.kill(pid, signal.SIGKILL)
        if helper is not None and stat(helper) is not None:
            os.kill(helper, signal.SIGKILL)


def test_send_now_sends_a_line_whole_never_blocks_and_never_raises_sigpipe():
    """The watchdog's lines go by librunner.send_now, which keeps the GIL: it must send a
    short line whole, answer -1 at once (not wait) when the socket has no room, and turn a
    peer that is gone into OSError, never SIGPIPE (a C host keeps SIGPIPE's default)."""
    program = r"""
import errno, signal, socket, sys
from runner import librunner
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
mine, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
line = b"G 12345 678\n"
assert librunner.send_now(mine.fileno(), line) == len(line)
assert far.recv(100) == line
sent = 0
while True:                      # fill it: the peer reads nothing
    count = librunner.send_now(mine.fileno(), line)
    if count == -1:
        break
    sent += count
assert sent > 0, sent
far.close()
try:
    librunner.send_now(mine.fileno(), line)
except OSError as error:
    assert error.errno in (errno.EPIPE, errno.ECONNRESET), error
else:
    raise AssertionError("a send to a closed peer succeeded")
print("held")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "held", (done.returncode, done.stderr)
