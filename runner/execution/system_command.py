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
import subprocess
import threading

from runner.execution.attempt import TaskFailure

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
READ_CHUNK = 65536


def _refuse(message: str):
    return TaskFailure(message, permanent=True)


def checked_argv(ctx) -> list[str]:
    """The argv to run, with argv[0] resolved; TaskFailure if it is not allowed."""
    settings = ctx.settings
    if not settings.system_commands_enabled:
        raise _refuse("system commands are disabled (set RUNNER_ENABLE_SYSTEM_COMMANDS=true to enable them)")
    argv = ctx.parameters.get("command")
    if isinstance(argv, str):
        raise _refuse("parameters.command must be an argv list of strings; a command line string is refused "
                      "(commands never run through a shell)")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise _refuse(f"parameters.command must be a non-empty list of strings, found {argv!r}")
    if any("\x00" in a for a in argv):
        raise _refuse("parameters.command contains a NUL character")
    name = argv[0]
    if "/" in name and not name.startswith("/"):
        raise _refuse(f"parameters.command[0] {name!r}: give a bare name or an absolute path")
    resolved = name if name.startswith("/") else shutil.which(name, path=os.environ.get("PATH") or SAFE_PATH)
    allowlist = settings.command_allowlist
    if name not in allowlist and (resolved is None or resolved not in allowlist):
        shown = ", ".join(allowlist) if allowlist else "empty"
        raise _refuse(f"executable {name!r} is not in RUNNER_SYSTEM_COMMAND_ALLOWLIST ({shown})")
    if resolved is None or not os.access(resolved, os.X_OK):
        raise _refuse(f"executable {name!r} not found")
    return [resolved, *argv[1:]]


class _CappedReader(threading.Thread):
    """Drains a pipe so the child never blocks on it, keeping the first `cap` bytes."""

    def __init__(self, pipe, cap: int):
        super().__init__(daemon=True)
        self.pipe, self.cap = pipe, cap
        self.kept = bytearray()
        self.total = 0

    def run(self):
        with self.pipe:
            while chunk := self.pipe.read1(READ_CHUNK):
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


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
    readers = [_CappedReader(process.stdout, cap), _CappedReader(process.stderr, cap)]
    for reader in readers:
        reader.start()
    try:
        code = process.wait()
    finally:
        _kill_group(process.pid)      # whatever it left running in its group
        for reader in readers:
            reader.join(timeout=5)
    out, err = readers
    if ctx.cancel.is_set():
        raise TaskFailure(f"{os.path.basename(argv[0])} was killed: the attempt was cancelled")
    result = {"exit_code": code, "stdout": out.text(), "stderr": err.text(),
              "stdout_truncated": out.total > cap, "stderr_truncated": err.total > cap}
    if code != 0:
        tail = err.text()[-500:].strip()
        signal_note = f" (signal {-code})" if code < 0 else ""
        raise TaskFailure(f"{os.path.basename(argv[0])} exited with status {code}{signal_note}"
                          f"{': ' + tail if tail else ''}")
    return result
