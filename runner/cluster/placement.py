"""Heavy tasks of one ALT file on Dask workers, while the executor here stays in charge.

The executor (runner.execution.executor) keeps order, priorities, retries, chaos faults
and deadlines; for the CPU-bound types it calls DaskPlacement.run(ctx) on its attempt
thread instead of the handler, and that sends the attempt to a worker and waits. The
worker enforces the attempt's timeout itself (runner.cluster.on_worker.run_attempt); the
executor also abandons the attempt at its deadline, and the cancellation then reaches the
worker by broadcast. AI calls stay here: they are I/O-bound and share this process's
limiter.

Users' task types go to the workers too when their handler can travel: a plugin's by its
entry point's name (the worker loads the same plugin, which must be installed there at the
same version), a Python function by pickle (cloudpickle, as Dask sends functions: by
reference when its module is importable on the workers, else by value). One that cannot
(a function holding a lock or a connection, a type registered in C, whose handler lives in
this process) is refused before the run starts (for_run, a ConfigurationError).

A worker that dies during an attempt ends that attempt as failed, and the task's own
retry budget (retry_count, with its backoff) decides whether it runs again: each attempt
announces its start on a topic of this placement, and when Dask starts the same attempt
a second time (its worker died), the rerun is cancelled and the attempt reported failed.
"""
from __future__ import annotations

import threading
import uuid

from runner.execution.attempt import AttemptTimeout, TaskFailure

PLACED_TYPES = frozenset({"data_processing", "system_command"})


def _configuration_error(message: str):
    from runner import librunner
    return librunner.ConfigurationError(message)


def travelling_handler(kind) -> dict:
    """How a user's TaskType reaches a worker: {"plugin": distribution, "version": ...} (the
    worker loads the entry point by name) or {"pickled": bytes}; ConfigurationError naming
    the type when it cannot."""
    if kind.origin == "c":
        raise _configuration_error(
            f"task type {kind.name!r} is registered through the C ABI (runner_register_task_type): its handler "
            f"lives in this process and cannot run on a Dask worker; run the file without --dask")
    if kind.origin == "plugin":
        return {"plugin": kind.distribution, "version": kind.version}
    import cloudpickle
    try:
        pickled = cloudpickle.dumps(kind.function)
    except Exception as error:      # TypeError, PicklingError, RecursionError...: whatever pickle says
        raise _configuration_error(
            f"task type {kind.name!r}: its handler {kind.qualified_name} cannot be sent to the Dask workers: it "
            f"cannot be pickled ({type(error).__name__}: {error}); make it a module-level function that holds no "
            f"lock, open file or connection, or run the file without --dask") from None
    return {"pickled": pickled}


class RunPlacement:
    """A DaskPlacement for one run: the built-in heavy types and the run's user types that travel."""

    def __init__(self, dask: "DaskPlacement", travelling: dict):
        self.dask = dask
        self.travelling = travelling
        self.task_types = PLACED_TYPES | frozenset(travelling)

    def run(self, ctx):
        return self.dask.run(ctx, self.travelling.get(ctx.task.task_type))


class DaskPlacement:
    task_types = PLACED_TYPES

    def __init__(self, client):
        self.client = client
        self.topic = f"runner-attempt-started-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._started: dict[str, list[str]] = {}        # attempt key -> workers that started it
        self._changed: dict[str, threading.Event] = {}  # attempt key -> set when done or restarted
        self._told: dict[str, object] = {}              # attempt key -> its ctx.on_worker
        client.subscribe_topic(self.topic, self._attempt_started)

    def for_run(self, names, handlers: dict | None = None):
        """What places the attempts of a run whose tasks use the task types `names`: this
        placement, or one that also sends the run's user types to the workers.
        ConfigurationError (before anything runs) for a user type whose handler cannot go."""
        from runner.execution import task_types

        handlers = task_types.run_types(handlers)
        travelling = {}
        for name in sorted(names):
            if name in task_types.BUILT_IN_MODULES:
                continue
            try:
                kind = task_types.lookup(name, handlers)
            except task_types.TaskTypeError:
                continue        # a plugin that does not load: the run reports it, as without --dask
            if kind is not None:
                travelling[name] = travelling_handler(kind)
        return RunPlacement(self, travelling) if travelling else self

    def _attempt_started(self, event) -> None:
        """On the client's event loop: a worker began an attempt (see on_worker.run_attempt)."""
        _, message = event
        key = message["key"]
        with self._lock:
            workers = self._started.get(key)
            if workers is None:
                return                      # an attempt already over
            workers.append(message["worker"])
            restarted = len(workers) > 1
            changed = self._changed.get(key)
            tell = self._told.get(key)
        if restarted and changed is not None:
            changed.set()
        elif tell is not None:
            tell(message["worker"])          # the journal records where the attempt runs

    def run(self, ctx, handler: dict | None = None):
        """One attempt on a worker; handler: a user type's travelling_handler()."""
        from distributed import CancelledError

        from runner.cluster import on_worker

        key = f"runner-task-{uuid.uuid4().hex}"
        spec = {"key": key, "task_type": ctx.task.task_type, "parameters": ctx.parameters, "number": ctx.number,
                "mode": ctx.mode, "dependencies": ctx.dependencies, "settings": ctx.settings,
                "timeout": ctx.remaining(), "topic": self.topic}
        if handler is not None:
            spec.update(handler, task_id=ctx.task.id, seed=ctx.seed)
        changed = threading.Event()
        with self._lock:
            self._started[key] = []
            self._changed[key] = changed
            if ctx.on_worker is not None:
                self._told[key] = ctx.on_worker
        try:
            future = self.client.submit(on_worker.run_attempt, spec, key=key, pure=False)
            future.add_done_callback(lambda _: changed.set())
            ctx.cancellation.on_cancel(lambda: self._cancel(future, key))
            changed.wait()
            if not future.done():
                with self._lock:
                    lost = self._started[key][0]
                self._cancel(future, key)
                raise TaskFailure(f"the Dask worker running it ({lost}) died; Dask started it again elsewhere, "
                                  f"which counts against the task's retry budget")
        finally:
            with self._lock:
                self._started.pop(key, None)
                self._changed.pop(key, None)
                self._told.pop(key, None)
        try:
            answer = future.result()
        except CancelledError:
            raise TaskFailure("cancelled") from None
        except Exception as error:      # KilledWorker, a lost connection: retryable
            raise TaskFailure(f"on the Dask cluster: {type(error).__name__}: {error}") from None
        ctx.metadata.update(answer.get("metadata") or {})
        outcome = answer["outcome"]
        if outcome == "completed":
            return answer["output"]
        if outcome == "timeout":
            raise AttemptTimeout(answer["error"])
        raise TaskFailure(answer["error"], permanent=bool(answer.get("permanent")),
                          retry_after=answer.get("retry_after"))

    def _cancel(self, future, key: str) -> None:
        """Runs on the thread that cancels (the executor's loop): the calls to the cluster go
        to a thread of their own so the loop does not wait on the network."""
        from runner.cluster import on_worker

        def cancel():
            try:
                self.client.run(on_worker.cancel_attempt, key)
                future.cancel()
            except Exception:      # the cluster is gone: the worker enforces the deadline itself
                pass
        threading.Thread(target=cancel, name="runner-cancel-attempt", daemon=True).start()
