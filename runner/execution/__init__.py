"""Executing ALT files: the scheduler loop, attempts, retries, timeouts, modes and task types.

`run(alt)` executes every task and writes the LAST directory; it is the Python API
(`runner.run`), the CLI's `run` command and the C ABI's runner_execute_alt_file.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runner.execution import config, modes
from runner.execution.executor import Execution, default_workspace

# How long the end of a run waits for abandoned attempts before leaving the removal of
# its temporary workspace to the last of them. They were cancelled, so most end at once.
WORKSPACE_RELEASE_SECONDS = 0.5
_ACTIVE: set = set()
_ACTIVE_LOCK = threading.Lock()


@dataclass
class RunOutcome:
    """What a run produced: the LAST file written, and the results and facts it records."""
    last_id: str
    directory: Path
    record: dict
    json: bytes
    results: dict
    execution: dict
    workspace: Path

    @property
    def interrupted(self) -> bool:
        return bool(self.execution.get("interrupted"))

    @property
    def all_completed(self) -> bool:
        # Every task has a result once a run ends (skipped and cancelled ones included).
        return all(r.status == "completed" for r in self.results.values())


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during run(): raised after the LAST file of what finished was written."""

    def __init__(self, outcome: RunOutcome):
        super().__init__("the run was interrupted")
        self.outcome = outcome


def _configuration_error(message: str):
    from runner import librunner
    return librunner.ConfigurationError(message)


def _prepare(alt, mode, max_concurrency, environ):
    from runner import librunner

    if isinstance(alt, (bytes, str)):
        alt = librunner.parse_alt_file(alt)
    elif isinstance(alt, dict):
        import orjson
        alt = librunner.parse_alt_file(orjson.dumps(alt))
    elif not isinstance(alt, librunner.AltFile):
        raise TypeError(f"alt must be an AltFile, a dict or JSON, found {type(alt).__name__}")
    try:
        settings = config.load(environ)
    except ValueError as error:
        raise _configuration_error(str(error)) from None
    mode = mode or alt.mode
    if mode not in librunner.EXECUTION_MODES:
        raise _configuration_error(f"mode {mode!r}: expected one of {', '.join(librunner.EXECUTION_MODES)}")
    cap = settings.max_concurrency if max_concurrency is None else max_concurrency
    if type(cap) is not int or cap < 1:
        raise _configuration_error(f"max_concurrency {cap!r}: expected a whole number of at least 1")
    return alt, settings, mode, cap


def execute(alt, output_dir=None, *, mode: str | None = None, max_concurrency: int | None = None,
            seed: int | None = None, workspace=None, on_event: Callable[[dict], None] | None = None,
            stream: bool = False, ai_client=None, handle_sigint: bool = False, write: bool = True,
            environ=os.environ) -> RunOutcome:
    """Runs every task of `alt` (an AltFile, dict or JSON) and writes its LAST directory.

    mode overrides the file's mode; max_concurrency defaults to RUNNER_MAX_CONCURRENT_TASKS;
    seed fixes chaos mode's faults; workspace is where file_operation and system_command
    tasks work (default: a temporary directory, removed once the LAST directory, which
    holds the files tasks wrote as artifacts, is written and no abandoned attempt still
    works in it); on_event(dict) receives progress events. handle_sigint (main thread
    only): Ctrl-C stops the run cleanly instead of raising at once. write=False skips the
    LAST directory (benchmarks). Before the first task, the AI service and the models the
    AI tasks use are checked once where the provider can be asked (runner.ai.preflight).
    """
    alt, settings, mode, cap = _prepare(alt, mode, max_concurrency, environ)
    if seed is not None and (type(seed) is not int or seed < 0):
        raise _configuration_error(f"seed {seed!r}: expected a whole number >= 0")
    checked_client = _checked_ai_client(alt, ai_client, environ)
    try:
        return _execute(alt, output_dir, settings, mode, cap, seed, workspace, on_event, stream,
                        ai_client or checked_client, handle_sigint, write, environ)
    finally:
        if checked_client is not None:
            checked_client.close()


def _checked_ai_client(alt, ai_client, environ):
    """The AI service check before any task runs (runner.ai.preflight); the client it made, if any."""
    if not any(task.task_type == "ai_prompt" for task in alt.tasks):
        return None         # runs without AI tasks do not even import the AI client
    from runner.ai.preflight import check_ai_service
    try:
        return check_ai_service(alt, ai_client, environ)
    except ValueError as error:
        raise _configuration_error(str(error)) from None


def _execute(alt, output_dir, settings, mode, cap, seed, workspace, on_event, stream, ai_client, handle_sigint,
             write, environ) -> RunOutcome:
    from runner import librunner

    temporary_workspace = workspace is None
    workspace = default_workspace() if temporary_workspace else Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    execution = Execution(alt, settings=settings, mode=mode, max_concurrency=cap, seed=seed,
                          workspace=workspace, on_event=on_event, stream=stream, ai_client=ai_client,
                          environ=environ)
    previous_handler = None
    if handle_sigint and threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, lambda *_: execution.interrupt())
    with _ACTIVE_LOCK:
        _ACTIVE.add(execution)
    try:
        try:
            results, facts = execution.execute()
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        keyboard = facts.pop("keyboard_interrupt", False)
        if not write:
            outcome = RunOutcome("", Path(), {}, b"", results, facts, workspace)
        else:
            written = librunner.write_last_file(alt, results, output_dir, execution=facts, workspace=workspace)
            outcome = RunOutcome(written.last_id, Path(written.directory), written.record, written.json,
                                 results, facts, workspace)
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(execution)
        execution.written.set()     # cancel_active_runs waits for this, LAST file included
        if temporary_workspace:
            # The files tasks listed as written were copied into the LAST directory as
            # artifacts; a temporary workspace is not left behind in /tmp. An attempt
            # abandoned at its deadline may still be working in it (a thread cannot be
            # killed): the directory goes when the last such thread ends, not under it.
            execution.after_attempts(lambda: shutil.rmtree(workspace, ignore_errors=True),
                                     WORKSPACE_RELEASE_SECONDS)
    if keyboard:
        raise RunInterrupted(outcome)
    return outcome


def run(alt, output_dir=None, **options) -> dict:
    """runner.run: executes `alt` and returns its LAST record (see execute for the options)."""
    return execute(alt, output_dir, **options).record


def cancel_active_runs(wait_seconds: float | None = None) -> int:
    """Interrupts every run in this process (runner_cleanup); waits until their LAST files are
    written, at most wait_seconds (default: the grace period plus 5 s). Returns how many."""
    with _ACTIVE_LOCK:
        active = list(_ACTIVE)
    for execution in active:
        execution.interrupt()
    for execution in active:
        limit = wait_seconds if wait_seconds is not None else execution.settings.grace_seconds + 5.0
        execution.written.wait(limit)
    return len(active)


__all__ = ["execute", "run", "cancel_active_runs", "RunOutcome", "RunInterrupted", "modes"]
