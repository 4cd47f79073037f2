"""system_command: run an allowed executable with an argv list, never through a shell.

parameters: command, a list of strings (argv). Off unless RUNNER_ENABLE_SYSTEM_COMMANDS
is true; argv[0] must be a bare name or an absolute path, and it (or the absolute path a
bare name resolves to) must be listed in RUNNER_SYSTEM_COMMAND_ALLOWLIST (comma
separated). The command runs in the workspace with a minimal environment (no secrets
inherited), in its own session, so cancelling kills its whole process group, children
included. stdout and stderr are kept up to RUNNER_COMMAND_OUTPUT_CAP_BYTES each.
"""
from __future__ import annotations

import os
import shutil
import signal
import select
import subprocess
import time

from runner.execution import watchdog
from runner.execution.attempt import TaskFailure
from runner.librunner import command_problem

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
READ_CHUNK = 65536
# How long output may still arrive once the command has exited. More is possible only from
# a process that left its group (setsid) holding the pipes; it is not waited for.
DRAIN_SECONDS = 1.0
# Without pidfd_open (Linux < 5.3), how often the output reader asks whether the process exited.
EXIT_POLL_SECONDS = 0.05


def _refuse(message: str):
    return TaskFailure(message, permanent=True)


def allowed(name: str, allowlist) -> tuple[str | None, str | None]:
    """(the path `name` resolves to, why it may not run or None): a bare name or an absolute
    path that is, or resolves to, an entry of RUNNER_SYSTEM_COMMAND_ALLOWLIST, and an
    executable file."""
    resolved = name if name.startswith("/") else shutil.which(name, path=os.environ.get("PATH") or SAFE_PATH)
    if name not in allowlist and (resolved is None or resolved not in allowlist):
        shown = ", ".join(allowlist) if allowlist else "empty"
        return resolved, f"executable {name!r} is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST ({shown})"
    if resolved is None or not os.access(resolved, os.X_OK):
        return resolved, f"executable {name!r} not found"
    return resolved, None


def checked_argv(ctx) -> list[str]:
    """The argv to run, with argv[0] resolved; TaskFailure if it is not allowed."""
    settings = ctx.settings
    if not settings.system_commands_enabled:
        raise _refuse("system commands are disabled (set RUNNER_ENABLE_SYSTEM_COMMANDS=true to enable them)")
    argv = ctx.parameters.get("command")
    problem = command_problem(argv)     # also checked when the ALT file is validated
    if problem is not None:
        raise _refuse(problem)
    resolved, refusal = _resolved(ctx, argv[0])
    if refusal is not None:
        raise _refuse(refusal)
    return [resolved, *argv[1:]]


def _resolved(ctx, name: str) -> tuple[str | None, str | None]:
    """(the path `name` runs, why it may not run or None), found once per run and name
    (kept in the run's preparation): shutil.which walks PATH with a system call per
    directory, each a hand-over of the GIL among the run's threads."""
    executables = getattr(ctx.preparation, "executables", None)
    key = (name, os.environ.get("PATH"))
    found = executables.get(key) if executables is not None else None
    if found is None:
        found = allowed(name, ctx.settings.command_allowlist)
        if executables is not None:
            executables[key] = found
    return found


class _Output:
    """One pipe's bytes: the first `cap` kept, all counted."""

    def __init__(self, cap: int):
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


def _collect(process: subprocess.Popen, group: _Group, cap: int) -> tuple[int, _Output, _Output]:
    """(exit status, stdout, stderr) of `process`, read on this thread until both pipes end.

    No thread of its own: poll() watches both pipes and, where Linux has pidfd_open, the
    process itself. Once the process has exited its group is killed (whatever it left
    running), and output is read for DRAIN_SECONDS more at most: a process that handed its
    pipes to a detached grandchild (setsid) would otherwise hold them open for ever.
    Without a pidfd, poll wakes every EXIT_POLL_SECONDS to ask whether the process exited.
    """
    outputs = {process.stdout.fileno(): _Output(cap), process.stderr.fileno(): _Output(cap)}
    out, err = outputs.values()
    poller = select.poll()
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None
    else:
        poller.register(pidfd, select.POLLIN)
    code = None
    drain_until = None
    try:
        while outputs:
            if drain_until is not None:
                left = drain_until - time.monotonic()
                if left <= 0:
                    break
                timeout = left * 1000.0
            else:
                timeout = None if pidfd is not None else EXIT_POLL_SECONDS * 1000.0
            events = poller.poll(timeout)
            for fd, _ in events:
                if fd == pidfd:
                    poller.unregister(pidfd)
                    continue
                chunk = os.read(fd, READ_CHUNK)
                if chunk:
                    outputs[fd].add(chunk)
                else:
                    poller.unregister(fd)
                    del outputs[fd]
            if code is None and (pidfd is None or any(fd == pidfd for fd, _ in events)):
                code = process.poll()
                if code is not None:
                    group.reaped()      # whatever it left running in its group is killed
                    drain_until = time.monotonic() + DRAIN_SECONDS
        if code is None:
            code = process.wait()
            group.reaped()
    finally:
        if pidfd is not None:
            os.close(pidfd)
        process.stdout.close()
        process.stderr.close()
    return code, out, err


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Group:
    """A command's process group, killed only while its number is the command's. Once its
    leader is reaped the number is free for reuse: a cancellation arriving later (its
    deadline, or a SIGTERM's wind-down, while the output of a detached grandchild drains)
    must not kill a group that has taken it since."""

    __slots__ = ("pid",)

    def __init__(self, pid: int):
        self.pid: int | None = pid

    def kill(self) -> None:
        pid = self.pid
        if pid is not None:
            _kill_group(pid)

    def reaped(self) -> None:
        """Its leader was just reaped: what it left in the group is killed, and from now on
        nothing is (the number may be another's)."""
        self.kill()
        self.pid = None


def _started(ctx, process: subprocess.Popen, group: _Group, argv: list[str], ticks: int | None) -> None:
    """The command runs: from here its process group is known. It leads a session of its own
    (start_new_session: setsid in the child, between vfork and exec), so its pgid is its
    pid, and killing that group stops the children it started too. Whatever must learn of a
    started command's group (cancellation, the task's metadata) learns it here."""
    # The callback runs on the thread that cancels, at once.
    ctx.cancellation.on_cancel(group.kill)
    ctx.metadata["process"] = {"pid": process.pid, "argv": argv}
    if ctx.on_process is not None:
        ctx.on_process(process.pid, ticks)


def run(ctx) -> dict:
    argv = checked_argv(ctx)
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": str(ctx.workspace), "TMPDIR": str(ctx.workspace)}
    watchdog.start()        # before the fork: a kill -9 of this process kills the command's group
    forked_after = watchdog.spawn_clock()
    try:
        process = subprocess.Popen(argv, cwd=ctx.workspace, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True, close_fds=True)
    except OSError as error:
        raise TaskFailure(f"cannot start {argv[0]!r}: {error.strerror or error}") from None
    ticks = watchdog.spawned_ticks(process.pid, forked_after)      # not reaped yet: the pid is still its
    watchdog.guard_group(process.pid, ticks)
    group = _Group(process.pid)
    try:
        _started(ctx, process, group, argv, ticks)
        try:
            code, out, err = _collect(process, group, ctx.settings.output_cap_bytes)
        except BaseException:
            group.kill()
            process.wait()
            group.pid = None
            raise
    finally:
        watchdog.release_group(process.pid)
    if ctx.cancellation.is_set():       # (ctx.cancel would make an Event for this question)
        raise TaskFailure(f"{os.path.basename(argv[0])} was killed: the attempt was cancelled")
    result = {"exit_code": code, "stdout": out.text(), "stderr": err.text(),
              "stdout_truncated": out.truncated, "stderr_truncated": err.truncated}
    if code != 0:
        tail = err.text()[-500:].strip()
        signal_note = f" (signal {-code})" if code < 0 else ""
        raise TaskFailure(f"{os.path.basename(argv[0])} exited with status {code}{signal_note}"
                          f"{': ' + tail if tail else ''}")
    return result
