"""Many ALT files in one call: in parallel on this machine, or each on a Dask worker.

Every file gets a FileOutcome: its LAST directory, or the error that kept it from running.
Files are read and parsed here first, so an unreadable or invalid file costs no worker.
With Dask, a worker runs the whole file and sends back its results, execution facts and
the workspace files its artifacts need; this process writes every LAST directory, once
per file, whichever worker (or second worker, after one died) produced it.

Interruption (Ctrl-C, SIGTERM, or interrupt()) cancels files not started, stops running
ones (their grace period applies) and still writes the LAST files of what finished.
"""
from __future__ import annotations

import os
import queue
import signal
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runner import settings as runner_settings
from runner.cluster import travelling_settings
from runner.workspace import remove_tree_quietly

DEFAULT_JOBS = 4
POLL_SECONDS = 0.2
# After an interruption, how long beyond the grace period answers from workers are awaited.
ANSWER_MARGIN_SECONDS = 5.0
NOT_STARTED = "interrupted before it started"


@dataclass
class FileOutcome:
    path: str
    directory: Path | None = None
    error: str | None = None
    all_completed: bool = False
    interrupted: bool = False
    summary: str = ""

    @property
    def entry(self) -> str:
        return str(self.directory) if self.directory is not None else f"ERROR: {self.error}"


class FilesInterrupted(KeyboardInterrupt):
    """Ctrl-C during run_files/run_many: raised once the LAST files of what finished are
    written; `outcomes` and `entries` are what the call would have returned."""

    def __init__(self, outcomes: list[FileOutcome]):
        super().__init__("the files were interrupted")
        self.outcomes = outcomes
        self.entries = entries(outcomes)


@dataclass
class _Loaded:
    path: str
    data: bytes
    alt: object


def entries(outcomes: list[FileOutcome]) -> dict[str, str]:
    """{file: LAST directory or "ERROR: ..."}; a file given twice gets "file (2)", ..."""
    mapping: dict[str, str] = {}
    for outcome in outcomes:
        key, number = outcome.path, 2
        while key in mapping:
            key, number = f"{outcome.path} ({number})", number + 1
        mapping[key] = outcome.entry
    return mapping


def _error(message: str):
    from runner import librunner
    return librunner.ConfigurationError(message)


def _check_options(mode, max_concurrency, seed, jobs, environ):
    """Every option and RUNNER_* setting, checked before any file runs."""
    from runner import librunner
    from runner.execution import settings as execution_settings
    from runner.last import options as last_options

    execution_settings.load(environ)       # ConfigurationError names a bad variable
    last_options.from_environment(environ)
    if mode is not None and mode not in librunner.EXECUTION_MODES:
        raise _error(f"mode {mode!r}: expected one of {', '.join(librunner.EXECUTION_MODES)}")
    for name, value, minimum in (("max_concurrency", max_concurrency, 1), ("seed", seed, 0), ("jobs", jobs, 1)):
        if value is not None and (type(value) is not int or value < minimum):
            raise _error(f"{name} {value!r}: expected a whole number of at least {minimum}")


def _load(path: str) -> _Loaded | FileOutcome:
    from runner import AltValidationError, RunnerError, parse_alt_file

    from runner.alt_input import AltInputError, read_alt_input

    try:
        data = read_alt_input(path)
    except (AltInputError, RunnerError) as error:   # RunnerError: a bad RUNNER_MAX_ALT_BYTES
        return FileOutcome(path, error=f"{path}: {error}")
    try:
        return _Loaded(path, data, parse_alt_file(data))
    except AltValidationError as error:
        first = error.issues[0] if error.issues else ""
        return FileOutcome(path, error=f"{path}: invalid ({error.total} error{'s' if error.total != 1 else ''}): "
                                       f"{first}")
    except RunnerError as error:
        return FileOutcome(path, error=f"{path}: {error}")


class Stop:
    """The interruption of a whole call: a flag, what to do when it is raised, and the signal
    that raised it (None when none did)."""

    def __init__(self):
        self.signal_name: str | None = None
        self.event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_stop(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)
            raised = self.event.is_set()
        if raised:
            callback()

    def __call__(self, number=None, _frame=None) -> None:
        with self._lock:
            if self.event.is_set():
                return
            if number is not None:
                self.signal_name = signal.Signals(number).name
            self.event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


@contextmanager
def _signals(stop: Stop, enabled: bool):
    """Ctrl-C and SIGTERM raise `stop` instead of killing the process (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_files(files, output_dir=None, *, mode: str | None = None, max_concurrency: int | None = None,
              seed: int | None = None, jobs: int | None = None, dask: str | None = None,
              environ=os.environ, handle_signals: bool = False,
              on_file: Callable[[FileOutcome], None] | None = None, stop: Stop | None = None) -> list[FileOutcome]:
    """A FileOutcome per file, in the order given (see the module's docstring)."""
    from runner.cluster import connection

    files = [os.fspath(path) for path in files]
    _check_options(mode, max_concurrency, seed, jobs, environ)
    # Where every file's LAST directory goes, from `environ` as every other setting, on this
    # machine and from a cluster alike, fixed now (a chdir meanwhile does not move it).
    output_dir = runner_settings.output_dir(output_dir, environ).absolute()
    address = connection.chosen_address(dask, environ)
    if address is not None:
        connection.local_workers(address)           # a malformed address fails before files are read
        connection.import_distributed()
    stop = stop or Stop()
    loaded = [_load(path) for path in files]
    outcomes: list[FileOutcome | None] = [item if isinstance(item, FileOutcome) else None for item in loaded]
    for outcome in outcomes:
        if outcome is not None and on_file is not None:
            on_file(outcome)
    todo = [(position, item) for position, item in enumerate(loaded) if isinstance(item, _Loaded)]
    options = {"mode": mode, "max_concurrency": max_concurrency, "seed": seed}

    def finished(position: int, outcome: FileOutcome) -> None:
        outcomes[position] = outcome
        if on_file is not None:
            on_file(outcome)

    with _signals(stop, handle_signals):
        if address is None:
            _run_here(todo, output_dir, options, jobs or DEFAULT_JOBS, environ, stop, finished)
        else:
            with connection.connect(address, environ) as client:
                _run_on_cluster(client, todo, output_dir, options, environ, stop, finished)
    outcomes = [outcome or FileOutcome(path, error=NOT_STARTED, interrupted=True)
                for path, outcome in zip(files, outcomes)]
    if stop.signal_name == "SIGINT" and not handle_signals:
        raise FilesInterrupted(outcomes)
    return outcomes


# ---- on this machine ------------------------------------------------------------------

def _run_here(todo, output_dir, options, jobs, environ, stop, finished) -> None:
    from runner import RunnerError
    from runner.execution.run import JOURNAL_FAILURE, RunRequest, execute_request

    def run_one(item: _Loaded) -> FileOutcome:
        if stop.event.is_set():
            return FileOutcome(item.path, error=NOT_STARTED, interrupted=True)
        try:
            outcome = execute_request(RunRequest(
                item.alt, output_dir, environ=environ, alt_file=Path(item.path).resolve(),
                on_execution=lambda execution: stop.on_stop(execution.interrupt), **options))
        except RunnerError as error:
            return FileOutcome(item.path, error=f"{item.path}: {error}")
        # Stopped by its journal's disk, not by a signal: a file whose tasks did not all complete.
        return FileOutcome(item.path, outcome.directory, all_completed=outcome.all_completed,
                           interrupted=outcome.interrupted and outcome.signal_name != JOURNAL_FAILURE,
                           summary=outcome.lean_record.get("summary", ""))

    with ThreadPoolExecutor(max(1, min(jobs, len(todo) or 1)), thread_name_prefix="runner-file") as pool:
        pending = {pool.submit(run_one, item): position for position, item in todo}
        while pending:
            # A bounded wait: signal handlers run on the main thread between waits.
            try:
                done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:       # Ctrl-C without handle_signals: stop, then wind down
                stop(signal.SIGINT)
                continue
            for future in done:
                finished(pending.pop(future), future.result())


# ---- on a Dask cluster ----------------------------------------------------------------

def _run_on_cluster(client, todo, output_dir, options, environ, stop, finished) -> None:
    from runner.cluster import on_worker
    from runner.execution import settings as execution_settings
    from runner.last import options as last_options

    submission = uuid.uuid4().hex
    travelled = travelling_settings.of_submitter(environ)
    futures = {}
    for position, item in todo:
        future = client.submit(on_worker.run_file, item.data, options["mode"], options["max_concurrency"],
                               options["seed"], travelled, submission, pure=False,
                               key=f"runner-file-{position}-{submission}")
        futures[future] = (position, item)
    stop.on_stop(lambda: _interrupt_workers(client, submission))
    grace = execution_settings.load(environ).grace_seconds
    answers: queue.SimpleQueue = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(answers.put)
    answer_by = None
    # LAST directories are written here as answers arrive, RUNNER_LAST_WORKERS at once.
    writers = ThreadPoolExecutor(last_options.from_environment(environ).workers, thread_name_prefix="runner-last")
    written = []
    try:
        pending = set(futures)
        while pending:
            if stop.event.is_set() and answer_by is None:
                answer_by = time.monotonic() + grace + ANSWER_MARGIN_SECONDS
            if answer_by is not None and time.monotonic() > answer_by:
                client.cancel(list(pending))
                for future in pending:
                    position, item = futures[future]
                    finished(position, FileOutcome(item.path, error="interrupted: its worker did not answer in time",
                                                   interrupted=True))
                break
            try:
                # A bounded wait: signal handlers run on the main thread between waits.
                future = answers.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            except KeyboardInterrupt:       # Ctrl-C without handle_signals: stop, then wind down
                stop(signal.SIGINT)
                continue
            pending.discard(future)
            position, item = futures[future]
            written.append(writers.submit(_write_returned, future, item, output_dir, position, finished))
    finally:
        writers.shutdown(wait=True)
    for job in written:
        job.result()


def _interrupt_workers(client, submission: str) -> None:
    from runner.cluster import on_worker

    def broadcast():
        try:
            client.run(on_worker.interrupt_submission, submission)
        except Exception:      # a worker gone meanwhile: the others were told
            pass
    threading.Thread(target=broadcast, name="runner-interrupt", daemon=True).start()


def _write_returned(future, item: _Loaded, output_dir, position: int, finished) -> None:
    """Writes the LAST directory of one file a worker ran (this process, once per file)."""
    from runner import RunnerError, write_last_file
    from runner.cluster.shipped_files import unpack
    from runner.execution import watchdog
    from runner.workspace import WorkspaceRefused

    try:
        answer = future.result()
    except Exception as error:       # the worker died too often (KilledWorker), or could not run it
        finished(position, FileOutcome(item.path, error=f"{item.path}: on the Dask cluster: "
                                                        f"{type(error).__name__}: {error}"))
        return
    if answer.get("not_started"):
        finished(position, FileOutcome(item.path, error=NOT_STARTED, interrupted=True))
        return
    if "error" in answer:
        finished(position, FileOutcome(item.path, error=f"{item.path}: {answer['error']}"))
        return
    workspace = Path(tempfile.mkdtemp(prefix="runner-returned-"))
    watchdog.guard_path(workspace)
    try:
        unpack(answer["files"], workspace)
        written = write_last_file(item.alt, answer["results"], output_dir, execution=answer["execution"],
                                  workspace=workspace)
    except (RunnerError, OSError, WorkspaceRefused) as error:
        finished(position, FileOutcome(item.path, error=f"{item.path}: cannot write its LAST directory: {error}"))
        return
    finally:
        remove_tree_quietly(workspace)
        watchdog.release_path(workspace)
    results = answer["results"]
    finished(position, FileOutcome(item.path, Path(written.directory),
                                   all_completed=all(r.get("status") == "completed" for r in results.values()),
                                   interrupted=bool(answer["execution"].get("interrupted")),
                                   summary=written.lean_record.get("summary", "")))
