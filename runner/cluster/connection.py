"""Reaching a Dask cluster: an existing scheduler by address, or a LocalCluster for the command.

`--dask tcp://host:port` (or $RUNNER_DASK_SCHEDULER) connects to a running scheduler;
`--dask local:N` starts N worker processes on 127.0.0.1 and closes them afterwards. A
scheduler that cannot be reached, or has no worker, is one ConfigurationError before any
work is submitted. `distributed` is imported here only, when --dask is used.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from contextlib import contextmanager

from runner import settings
from runner.execution import watchdog
from runner.workspace import remove_tree_quietly

SCHEDULER_VARIABLE = "RUNNER_DASK_SCHEDULER"
CONNECT_TIMEOUT_VARIABLE = "RUNNER_DASK_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_LOCAL_WORKERS = 64
INSTALL_HINT = ("--dask needs the 'distributed' package, which is not installed: "
                "pip install 'librunner[dask]'")
_ADDRESS = re.compile(r"(tcp|tls|ws|wss)://[^\s/]+:\d{1,5}")
_LOCAL = re.compile(r"local:(\d{1,3})")


def _error(message: str):
    from runner import librunner
    return librunner.ConfigurationError(message)


def chosen_address(option: str | None, environ=os.environ) -> str | None:
    """The --dask option, else $RUNNER_DASK_SCHEDULER, else None (run on this machine)."""
    if option is not None:
        return option
    return settings.text(SCHEDULER_VARIABLE, environ)


def local_workers(address: str) -> int | None:
    """N for "local:N", None for a scheduler address; ConfigurationError for anything else."""
    match = _LOCAL.fullmatch(address)
    if match:
        count = int(match.group(1))
        if not 1 <= count <= MAX_LOCAL_WORKERS:
            raise _error(f"--dask {address!r}: local:N needs 1 <= N <= {MAX_LOCAL_WORKERS}")
        return count
    if not _ADDRESS.fullmatch(address):
        raise _error(f"--dask {address!r}: expected a scheduler address such as tcp://HOST:8786, "
                     f"or local:N for N worker processes on this machine")
    return None


def import_distributed():
    from runner import extras

    missing = extras.problem("dask", "--dask")
    if missing is not None:
        raise _error(missing)
    try:
        import distributed
    except ImportError:
        raise _error(INSTALL_HINT) from None
    return distributed


@contextmanager
def connect(address: str, environ=os.environ):
    """A distributed.Client for `address`, closed (with its LocalCluster) on leaving."""
    count = local_workers(address)
    timeout = settings.number(CONNECT_TIMEOUT_VARIABLE, DEFAULT_CONNECT_TIMEOUT, environ,
                              maximum=3600, above_minimum=True)
    distributed = import_distributed()
    cluster = None
    client = None
    scratch = None
    workers: list[int] = []
    try:
        if count is not None:
            # The workers' scratch space (dask-scratch-space, spilled data) goes in a directory
            # of the command's own, removed with the cluster: a run leaves $TMPDIR as it found it.
            scratch = tempfile.mkdtemp(prefix="runner-dask-")
            # A kill -9 of this process: its watchdog kills the workers and removes the scratch.
            watchdog.guard_path(scratch)
            # One thread per worker: a worker runs one ALT file at a time (the file's own
            # tasks run on threads of its executor); more files at once means more workers.
            import dask

            with dask.config.set({"temporary-directory": scratch}):   # the scheduler's too
                cluster = distributed.LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                   silence_logs=logging.ERROR, local_directory=scratch)
            workers = _worker_processes(cluster)
            for pid in workers:
                watchdog.guard_process(pid)
            client = distributed.Client(cluster, set_as_default=False, timeout=timeout)
        else:
            try:
                client = distributed.Client(address, set_as_default=False, timeout=timeout)
            except (OSError, TimeoutError) as error:
                raise _error(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                             f"({type(error).__name__}: {error}); is `dask scheduler` running there?") from None
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                raise _error(f"the Dask scheduler at {address} has no worker after {timeout:g} s; "
                             f"start one with `dask worker {address}`") from None
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        for pid in workers:
            watchdog.release_process(pid)
        if scratch is not None:
            remove_tree_quietly(scratch)
            watchdog.release_path(scratch)


def _worker_processes(cluster) -> list[int]:
    """The pids of a LocalCluster's worker processes (its scheduler runs in this process).
    Each also ends by itself when this process dies (distributed's own pipe to its parent);
    the watchdog makes sure, and removes the scratch they leave."""
    pids = []
    for nanny in cluster.workers.values():
        pid = getattr(nanny, "pid", None)
        if isinstance(pid, int) and pid > 1:
            pids.append(pid)
    return pids
