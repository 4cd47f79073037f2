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
import threading

from runner.execution.attempt import TaskFailure
from runner.librunner import command_problem

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
READ_CHUNK = 65536
# How long output may still arrive once the command has exited. More is possible only from
# a process that left its group (setsid) holding the pipes; it is not waited for.
DRAIN_SECONDS = 1.0


def _refuse(message: str):
    return TaskFailure(message, permanent=True)


def allowed(name: str, allowlist) -> tuple[str | None, str | None]:
    """(the path `name` resolves to, why it is refused or None): a bare name or an absolute
    path that is, or resolves to, an entry of RUNNER_SYSTEM_COMMAND_ALLOWLIST."""
    resolved = name if name.startswith("/") else shutil.which(name, path=os.environ.get("PATH") or SAFE_PATH)
    if name not in allowlist and (resolved is None or resolved not in allowlist):
        shown = ", ".join(allowlist) if allowlist else "empty"
        return resolved, f"executable {name!r} is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST ({shown})"
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
    name = argv[0]
    resolved, refusal = allowed(name, settings.command_allowlist)
    if refusal is not None:
        raise _refuse(refusal)
    if resolved is None or not os.access(resolved, os.X_OK):
        raise _refuse(f"executable {name!r} not found")
    return [resolved, *argv[1:]]


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


class _Drain(threading.Thread):
    """Drains stdout and stderr so the child never blocks on them, until both reach end of
    file or stop() is called. A process that hands its pipes to a detached grandchild
    (setsid) never closes them: finish() ends the drain anyway, through a wake-up pipe that
    poll watches with the outputs; the pipes are closed when the thread ends."""

    def __init__(self, pipes, cap: int):
        super().__init__(name="runner-command-output", daemon=True)
        self.pipes = pipes
        self.outputs = [_Output(cap) for _ in pipes]
        self._wake_read, self._wake_write = os.pipe()

    def finish(self, drain_seconds: float) -> None:
        """Lets output arrive for drain_seconds more, then ends the drain and waits for it."""
        self.join(drain_seconds)
        os.write(self._wake_write, b"x")    # the pipe has room: nothing else is ever written
        self.join()
        # Closed only now that the thread has ended, so no write can reach a reused fd.
        os.close(self._wake_read)
        os.close(self._wake_write)

    def run(self) -> None:
        poller = select.poll()
        open_fds = {}
        for pipe, output in zip(self.pipes, self.outputs):
            open_fds[pipe.fileno()] = output
            poller.register(pipe.fileno(), select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        try:
            while open_fds:
                for fd, _ in poller.poll():
                    if fd == self._wake_read:
                        return
                    chunk = os.read(fd, READ_CHUNK)
                    if chunk:
                        open_fds[fd].add(chunk)
                    else:
                        poller.unregister(fd)
                        del open_fds[fd]
        finally:
            for pipe in self.pipes:
                pipe.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(ctx) -> dict:
    argv = checked_argv(ctx)
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": str(ctx.workspace), "TMPDIR": str(ctx.workspace)}
    try:
        process = subprocess.Popen(argv, cwd=ctx.workspace, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True, close_fds=True)
    except OSError as error:
        raise TaskFailure(f"cannot start {argv[0]!r}: {error.strerror or error}") from None
    # The process leads its own group (start_new_session): killing the group stops the
    # children it started too. The callback runs on the thread that cancels, at once.
    ctx.cancellation.on_cancel(lambda: _kill_group(process.pid))
    ctx.metadata["process"] = {"pid": process.pid, "argv": argv}
    cap = ctx.settings.output_cap_bytes
    drain = _Drain([process.stdout, process.stderr], cap)
    drain.start()
    try:
        code = process.wait()
    finally:
        _kill_group(process.pid)      # whatever it left running in its group
        drain.finish(DRAIN_SECONDS)
    out, err = drain.outputs
    if ctx.cancel.is_set():
        raise TaskFailure(f"{os.path.basename(argv[0])} was killed: the attempt was cancelled")
    result = {"exit_code": code, "stdout": out.text(), "stderr": err.text(),
              "stdout_truncated": out.truncated, "stderr_truncated": err.truncated}
    if code != 0:
        tail = err.text()[-500:].strip()
        signal_note = f" (signal {-code})" if code < 0 else ""
        raise TaskFailure(f"{os.path.basename(argv[0])} exited with status {code}{signal_note}"
                          f"{': ' + tail if tail else ''}")
    return result
