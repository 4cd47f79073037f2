"""What runs on a Dask worker: a whole ALT file, or one attempt of a CPU-bound task or of a
user's task type.

Both are plain functions the submitter sends by reference (librunner must be installed
on the workers). They return plain dicts, never librunner objects or exceptions, so
nothing but JSON values, bytes and the settings dataclass crosses the wire. Interruption
and cancellation arrive by broadcast (Client.run) and find their target in this module's
registries, keyed by the submission or the attempt.
"""
from __future__ import annotations

import hashlib
import inspect
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from runner.cluster import travelling_settings
from runner.execution import watchdog
from runner.workspace import remove_tree_quietly

_LOCK = threading.Lock()
_FILES: dict[str, set] = {}            # submission -> Executions running its files here
_STOPPED: set[str] = set()             # submissions interrupted: their files not started never start
_ATTEMPTS: dict[str, object] = {}      # attempt key -> its Cancellation
_UNPICKLED: dict[bytes, object] = {}   # digest of a pickled user handler -> its TaskType (a run sends one per type)
MAX_UNPICKLED = 256


def worker_identity() -> dict:
    """{"address", "name"} of the worker this runs on."""
    from distributed import get_worker

    worker = get_worker()
    return {"address": worker.address, "name": str(worker.name)}


# ---- whole files --------------------------------------------------------------------

def run_file(data: bytes, mode, max_concurrency, seed, travelled: dict, submission: str) -> dict:
    """Runs one ALT file here without writing its LAST directory; returns what the submitter
    needs to write it: {"results", "execution", "files"} or {"error"} or {"not_started"}."""
    from runner import RunnerError
    from runner.cluster.shipped_files import pack
    from runner.execution.run import RunRequest, execute_request
    from runner.last.options import from_environment

    identity = worker_identity()
    with _LOCK:
        if submission in _STOPPED:
            return {"not_started": True}
    environ = travelling_settings.on_worker(travelled)
    workspace = _workspace("runner-worker-file-")

    mine = []

    def register(execution):
        mine.append(execution)
        with _LOCK:
            _FILES.setdefault(submission, set()).add(execution)
            stopped = submission in _STOPPED
        if stopped:
            execution.interrupt()

    try:
        try:
            outcome = execute_request(RunRequest(data, None, mode=mode, max_concurrency=max_concurrency, seed=seed,
                                                 workspace=workspace, write=False, environ=environ,
                                                 on_execution=register))
        except RunnerError as error:
            return {"error": str(error), "worker": identity}
        results = {task_id: result.to_dict() for task_id, result in outcome.results.items()}
        files, refused = pack(results, workspace, from_environment(environ).artifact_max_bytes)
        execution = dict(outcome.facts)
        execution["worker"] = identity
        if refused:
            execution["worker"]["files_refused"] = refused
        return {"results": results, "execution": execution, "files": files}
    finally:
        with _LOCK:
            running = _FILES.get(submission)
            if running is not None:
                running.difference_update(mine)
                if not running:
                    _FILES.pop(submission, None)
        _remove(workspace)


def _workspace(prefix: str) -> Path:
    """A scratch directory of this worker process, removed by its watchdog if the process
    dies first (a worker exits at once when its nanny's process dies)."""
    workspace = Path(tempfile.mkdtemp(prefix=prefix))
    watchdog.guard_path(workspace)
    return workspace


def _remove(workspace: Path) -> None:
    remove_tree_quietly(workspace)
    watchdog.release_path(workspace)


def interrupt_submission(submission: str) -> int:
    """Broadcast by an interrupted submitter: its running files stop (their results still
    come back), the ones not started yet return at once. Returns how many were running."""
    with _LOCK:
        _STOPPED.add(submission)
        running = list(_FILES.get(submission, ()))
    for execution in running:
        execution.interrupt()
    return len(running)


# ---- single attempts of heavy tasks and users' types ----------------------------------

def user_type_handler(spec: dict):
    """The run(ctx) of the user's task type an attempt's spec names (see
    placement.travelling_handler): the plugin installed here, loaded by its entry point's
    name, or the pickled function. TaskFailure (permanent: another attempt here cannot do
    better) when this worker cannot provide it."""
    from runner.execution import task_types
    from runner.execution.attempt import TaskFailure

    name = spec["task_type"]
    if "plugin" in spec:
        try:
            kind = task_types.lookup(name)
        except task_types.TaskTypeError as error:
            raise TaskFailure(f"on this worker: {error}", permanent=True) from None
        if kind is None or kind.origin != "plugin":
            raise TaskFailure(f"task type {name!r}: the plugin {spec['plugin'] or '?'} that provides it is not "
                              f"installed on this Dask worker", permanent=True)
        if kind.version != spec["version"]:
            # The run's journal keys its results by the submitter's version (resume).
            raise TaskFailure(f"task type {name!r}: this Dask worker has {kind.distribution} {kind.version}, the run "
                              f"uses {spec['version']}; install the same version on the workers", permanent=True)
        return kind.run
    pickled = spec["pickled"]
    digest = hashlib.sha256(pickled).digest()
    with _LOCK:
        kind = _UNPICKLED.get(digest)
    if kind is None:
        import pickle
        try:
            function = pickle.loads(pickled)
        except Exception as error:      # its module missing here, a class that changed...
            raise TaskFailure(f"task type {name!r}: its handler could not be unpickled on this Dask worker "
                              f"({type(error).__name__}: {error}); is its module installed there?",
                              permanent=True) from None
        kind = task_types.user_type(name, function, origin="placed")
        with _LOCK:
            if len(_UNPICKLED) >= MAX_UNPICKLED:
                _UNPICKLED.clear()
            _UNPICKLED[digest] = kind
    return kind.run


def _await(coroutine, cancellation):
    """An async handler's coroutine, run to its end on an event loop of this attempt's thread;
    cancelled (asyncio.CancelledError in the handler) when the attempt is."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(coroutine)
        cancellation.on_cancel(lambda: loop.call_soon_threadsafe(task.cancel))
        return loop.run_until_complete(task)
    finally:
        loop.close()


def run_attempt(spec: dict) -> dict:
    """One attempt of a data_processing, system_command or user's task, its deadline enforced here:
    at `spec["timeout"]` seconds the attempt is cancelled (a command's process group killed,
    a data task's cancellation flag set) and reported as timeout, as the local executor
    does. Returns {"outcome": completed|failed|timeout|cancelled, ...}."""
    from runner.execution.attempt import AttemptContext, AttemptTimeout, Cancellation, TaskFailure
    from runner.execution.task_types import handler_for

    from distributed import get_worker

    identity = worker_identity()
    key = spec["key"]
    timeout = spec["timeout"]
    if spec.get("topic"):
        # Tells the submitter this attempt started here: a second start means a worker died.
        get_worker().log_event(spec["topic"], {"key": key, "worker": identity["address"]})
    cancellation = Cancellation()
    finished = threading.Event()
    cancellation.on_cancel(finished.set)
    with _LOCK:
        _ATTEMPTS[key] = cancellation
    workspace = _workspace("runner-worker-task-")
    user = "pickled" in spec or "plugin" in spec
    # A user's handler is told the task's id (UserTask.id); the built-ins need no task here.
    task = SimpleNamespace(id=spec["task_id"], task_type=spec["task_type"], description="") if user else None
    ctx = AttemptContext(task=task, alt=None, parameters=spec["parameters"], number=spec["number"],
                         deadline=time.monotonic() + timeout, mode=spec["mode"], workspace=workspace,
                         dependencies=spec["dependencies"], settings=spec["settings"], cancellation=cancellation,
                         seed=spec.get("seed"))
    report: dict = {}

    def work():
        try:
            handler = user_type_handler(spec) if user else handler_for(spec["task_type"])
            output = handler(ctx)
            if inspect.iscoroutine(output):
                output = _await(output, cancellation)
            report.update(outcome="completed", output=output)
        except AttemptTimeout as failure:
            report.update(outcome="timeout", error=str(failure))
        except TaskFailure as failure:
            report.update(outcome="failed", error=str(failure), permanent=failure.permanent,
                          retry_after=failure.retry_after)
        except BaseException as error:   # a handler's bug (SystemExit... too: else never reported) or an OS error
            report.update(outcome="failed", error=f"{type(error).__name__}: {error}", permanent=False)
        finally:
            finished.set()

    thread = threading.Thread(target=work, name=f"runner-attempt-{key}", daemon=True)
    thread.start()
    try:
        finished.wait(timeout)
        if not report:
            if cancellation.is_set():
                return {"outcome": "cancelled", "error": "cancelled", "metadata": {"worker": identity}}
            cancellation.cancel()
            return {"outcome": "timeout", "error": f"timed out after {timeout:g} s (stopped on the worker)",
                    "metadata": {"worker": identity, **ctx.metadata}}
        report["metadata"] = {"worker": identity, **ctx.metadata}
        return report
    finally:
        with _LOCK:
            _ATTEMPTS.pop(key, None)
        if not thread.is_alive():
            _remove(workspace)
        else:       # the handler still winds down after its cancellation: the directory goes then
            threading.Thread(target=lambda: (thread.join(), _remove(workspace)), daemon=True).start()


def cancel_attempt(key: str) -> bool:
    """Broadcast when the submitter abandons an attempt: cancels it if it runs here."""
    with _LOCK:
        cancellation = _ATTEMPTS.get(key)
    if cancellation is None:
        return False
    cancellation.cancel()
    return True
