"""One run of an ALT file: what is asked (RunRequest), what it produced (RunOutcome), and the
steps between them (settings checked, AI service checked, journal started, signals handled,
the executor run, the LAST directory written, the temporary workspace removed).

Every door builds a RunRequest and calls `execute_request`: the CLI (runner.commands.run),
the C ABI (runner_execute_alt_file, runner_run_start), resume (runner.execution.resume),
many files (runner.cluster) and the HTTP service. `execute(alt, out, **options)` is the same
call with the request's fields as keywords (tests, benchmarks, Python users), and
`run(alt, out, **options)` is the public `runner.run`, which returns the LAST record.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import signal
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import orjson

from runner import librunner, settings as runner_settings
from runner.ai import check_record_path, recording, replay_client, replaying
from runner.ai.preflight import check_ai_service
from runner.ai.settings import settings_from_environment
from runner.errors import ConfigurationError, DeliveryError, LastFileError
from runner.execution import settings as execution_settings
from runner.execution.executor import Execution, default_workspace
from runner.execution.journal import FORMAT as JOURNAL_FORMAT
from runner.execution.run_directory import RUN_DIRECTORY_NAME, open_run_directory
from runner.execution.task_types import run_handlers
from runner.last import delivery
from runner.last.directory import WrittenLast
from runner.last.write import write_last_file
from runner.trace import live
from runner.workspace import remove_tree

log = logging.getLogger("runner")

# How long the end of a run waits for abandoned attempts before leaving the removal of
# its temporary workspace to the last of them. They were cancelled, so most end at once.
WORKSPACE_RELEASE_SECONDS = 0.5

# The runs in progress in this process, for runner_cleanup (cancel_active_runs).
_ACTIVE: set = set()
_ACTIVE_LOCK = threading.Lock()


# execution.interrupted_by of a run stopped because its journal could not be written (Journal.when_failed).
JOURNAL_FAILURE = "a journal write failure"


@dataclass(frozen=True)
class RunRequest:
    """Everything one run is asked to do; built by each door, never changed after.

    alt: an AltFile, a dict or JSON text/bytes. output_dir: where the LAST directory goes
    (default RUNNER_OUTPUT_DIR, else ./output). mode overrides the file's mode;
    max_concurrency defaults to RUNNER_MAX_CONCURRENT_TASKS; seed fixes chaos mode's faults.
    workspace is where file_operation and system_command tasks work (default: a temporary
    directory, removed once the LAST directory, which holds the files tasks wrote as
    artifacts, is written and no abandoned attempt still works in it). on_event(dict)
    receives the run's events; stream asks AI tasks to stream. ai_client replaces the one
    made from RUNNER_AI_*. handle_sigint (main thread only): Ctrl-C and SIGTERM stop the
    run cleanly instead of raising at once. write=False skips the LAST file (benchmarks, or
    a Dask worker whose submitter writes it). journal (default: write) creates the LAST
    directory at the start with journal.jsonl and alt.json (runner.execution.journal);
    alt_file is the path the journal names. reuse (task index -> TaskResult), resumed_from,
    temporary_workspace and last_id (the LAST id the run takes, chosen by a resume so that the
    run it resumes records it first) serve resume (runner.execution.resume). placement runs some
    task types elsewhere (see Execution); on_execution(Execution) is called before the run
    starts, so another thread can interrupt() it. environ: the RUNNER_* variables the run
    reads (default os.environ). handlers ({task type: function}) are task types of this run
    only (runner.execution.task_types), found before those registered in the process. The run
    is traced (runner.trace.live) when OTEL_* configures an OTLP endpoint or it joins a trace:
    traceparent (a W3C header's value, e.g. from a service request), else the TRACEPARENT
    variable.
    """

    alt: Any
    output_dir: str | os.PathLike | None = None
    mode: str | None = None
    max_concurrency: int | None = None
    seed: int | None = None
    workspace: str | os.PathLike | None = None
    on_event: Callable[[dict], None] | None = None
    stream: bool = False
    ai_client: Any = None
    handle_sigint: bool = False
    write: bool = True
    journal: bool | None = None
    alt_file: str | os.PathLike | None = None
    environ: Mapping[str, str] | None = None
    reuse: dict | None = None
    resumed_from: str | None = None
    temporary_workspace: bool | None = None
    placement: Any = None
    on_execution: Callable[[Execution], None] | None = None
    handlers: dict | None = None
    traceparent: str | None = None
    last_id: str | None = None
    # The run does not go on without its journal: a start the disk refuses stops it before its
    # first attempt with an effect (Journal.when_failed). A resume's, and the service's runs.
    journal_required: bool = False
    # The caller will not run this AltFile again: its source bytes are let go of once alt.json
    # is written (AltFile.release_source), not kept to the end of the run.
    release_source: bool = False
    # Called once every check of the run has passed (its output directory made), just before
    # its journal begins: resume stops the earlier run's commands and cleans its directory
    # there, so that a request refused for any reason (a workspace, an output directory, a
    # setting, the AI service) has changed nothing.
    before_start: Callable[[], None] | None = None


@dataclass
class RunOutcome(WrittenLast):
    """What a run produced: the LAST file written, and the results and facts it records."""
    last_id: str
    directory: Path
    # The LAST record as the core made it (see LastWriteResult): its summary fields are read
    # here; `record` makes its task results as dicts when first asked for.
    lean_record: dict
    json_data: bytes | None     # None: last.json's bytes are read from the file when asked for (json)
    results: dict
    # What the executor observed (started_at, ended_at, interrupted, faults, preparation
    # timings...): the LAST record's "execution" section.
    facts: dict
    workspace: Path
    delivery: dict | None = None       # the publication to the archive (RUNNER_NATS_URL)
    # The run's temporary workspace was kept for its resume (an interrupted run): see
    # discard_kept_workspace.
    workspace_kept: bool = False

    @property
    def interrupted(self) -> bool:
        return bool(self.facts.get("interrupted"))

    @property
    def signal_name(self) -> str | None:
        """"SIGTERM" when a SIGTERM stopped the run (the CLI then exits 143, not 130), "SIGINT",
        or JOURNAL_FAILURE when the run stopped because its journal could not be written."""
        return self.facts.get("interrupted_by")

    @property
    def all_completed(self) -> bool:
        # Every task has a result once a run ends (skipped and cancelled ones included). A
        # task that control flow chose not to run (a condition false, a branch not taken,
        # or a dependency of such) is done as written.
        return all(r.status == "completed" or (r.status == "skipped" and r.metadata.get("skipped_by_condition") is True)
                   for r in self.results.values())


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during run(): raised after the LAST file of what finished was written."""

    def __init__(self, outcome: RunOutcome):
        super().__init__("the run was interrupted")
        self.outcome = outcome


def execute(alt, output_dir=None, **options) -> RunOutcome:
    """Runs every task of `alt` and writes its LAST directory; options are RunRequest's fields."""
    return execute_request(RunRequest(alt, output_dir, **options))


def run(alt, output_dir=None, **options) -> dict:
    """runner.run: executes `alt` and returns its LAST record (options: RunRequest's fields)."""
    return execute_request(RunRequest(alt, output_dir, **options)).record


def execute_request(request: RunRequest) -> RunOutcome:
    """Runs the request: settings and the AI service checked before the first task (a
    ConfigurationError, nothing ran), then the run; returns its RunOutcome."""
    environ = os.environ if request.environ is None else request.environ
    alt, settings, mode, cap = _prepare(request, environ)
    if request.placement is not None:
        # The run's own placement: its user types' handlers sent to the workers, or a
        # ConfigurationError naming one that cannot go, before anything runs.
        placed = request.placement.for_run(alt.task_types(), request.handlers)
        if placed is not request.placement:
            request = replace(request, placement=placed)
    # Where the run's directory goes, fixed now: its journal is started on a thread of its
    # own and its LAST file written at the end, after the process may have changed its
    # working directory.
    request = replace(request, output_dir=runner_settings.output_dir(request.output_dir, environ).absolute())
    tracing = live.start(environ, request.traceparent)     # ConfigurationError for an unusable OTEL_*
    checked_client = _checked_ai_client(alt, request.ai_client, environ)
    try:
        return _execute(request, alt, settings, mode, cap, environ, request.ai_client or checked_client, tracing)
    finally:
        if checked_client is not None:
            checked_client.close()


def _prepare(request: RunRequest, environ):
    alt = request.alt
    if isinstance(alt, (bytes, str)):
        with run_handlers(request.handlers):        # the file may use the run's own task types
            alt = librunner.parse_alt_file(alt)
    elif isinstance(alt, dict):
        with run_handlers(request.handlers):
            alt = librunner.parse_alt_file(orjson.dumps(alt))
    elif not isinstance(alt, librunner.AltFile):
        raise TypeError(f"alt must be an AltFile, a dict or JSON, found {type(alt).__name__}")
    settings = execution_settings.load(environ)
    # Checked again when the LAST file is written; here, so a bad setting stops the run
    # before any work (and before its journal directory is made).
    delivery.settings_from_environment()
    mode = request.mode or alt.mode
    if mode not in librunner.EXECUTION_MODES:
        raise ConfigurationError(f"mode {mode!r}: expected one of {', '.join(librunner.EXECUTION_MODES)}")
    cap = settings.max_concurrency if request.max_concurrency is None else request.max_concurrency
    if type(cap) is not int or cap < 1:
        raise ConfigurationError(f"max_concurrency {cap!r}: expected a whole number of at least 1")
    seed = request.seed
    if seed is not None and (type(seed) is not int or seed < 0):
        raise ConfigurationError(f"seed {seed!r}: expected a whole number >= 0")
    last_id = request.last_id
    if last_id is not None and not (type(last_id) is str and RUN_DIRECTORY_NAME.fullmatch(last_id)):
        raise ConfigurationError(f"last_id {last_id!r}: expected a LAST id (a UUID, as librunner.next_last_id makes)")
    return alt, settings, mode, cap


def ai_facts(environ) -> dict:
    """The AI service a run uses, as its journal records it: no URL (it may hold a password), no key."""
    try:
        ai = settings_from_environment(environ)
    except ConfigurationError as error:
        return {"error": str(error)}
    return {"provider": ai.provider, "model": ai.default_model}


def _checked_ai_client(alt, ai_client, environ):
    """The AI service check before any task runs (runner.ai.preflight); the client it made, if any.
    A ConfigurationError (RUNNER_AI_*, the cassette, the service's answer) stops the run."""
    if "ai_prompt" not in alt.task_types():
        return None
    if replaying(environ):
        # A replay makes no connection, not even to check the service; its cassette is
        # loaded and checked now, so a bad one is refused before any task.
        if ai_client is not None:
            return None
        try:
            ai_config = settings_from_environment(environ)
        except ConfigurationError:
            return None     # each AI task reports it, as it always did
        return replay_client(ai_config, environ)
    made = check_ai_service(alt, ai_client, environ)
    if made is None and ai_client is None:
        check_record_path(environ)
    return recording(made, environ) if made is not None else None


def _start_journal(request: RunRequest, alt, execution, workspace, temporary_workspace, environ, tracing):
    """Creates the run's directory and its locked journal, whose writer thread writes alt.json
    and the journal's first lines (the run_started record and the results a resume reuses);
    returns (last id, journal) at once. The executor's first attempt with an effect outside
    the record waits for them to be on disk (Journal.wait_started); inline tasks do not."""
    alt_json = alt.source
    if alt_json is None:
        alt_json = orjson.dumps(alt.to_dict())
    last_id = request.last_id or librunner.next_last_id()
    directory = runner_settings.output_dir(request.output_dir)
    try:
        journal = open_run_directory(directory, last_id, alt_json, workspace)
    except OSError as error:
        raise _no_last_directory(alt, directory, error) from None
    try:
        started = _run_started(request, alt, execution, last_id, workspace, temporary_workspace, environ, tracing)
        reused = execution.reused_at_start()
    except BaseException:
        journal.release()       # nothing was written: no run began
        with contextlib.suppress(OSError):
            journal.directory.rmdir()
        raise
    journal.start(started, *reused, required=request.journal_required)
    if request.release_source:
        alt.release_source()
    return last_id, journal


def _make_output_dir(alt, output_dir) -> None:
    """The output directory made (as the journal's start makes it) and writable, or the
    LastFileError its start would raise."""
    directory = runner_settings.output_dir(output_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as error:
        raise _no_last_directory(alt, directory, error) from None


def _no_last_directory(alt, directory: Path, error: OSError) -> LastFileError:
    return LastFileError(f"cannot create the LAST directory of '{alt.id}' under '{directory}': "
                         f"{error.strerror or error}")


def _run_started(request: RunRequest, alt, execution, last_id, workspace, temporary_workspace, environ,
                 tracing) -> dict:
    """The journal's first record: what the run is, how it runs, where."""
    started = {
        "type": "run_started", "format": JOURNAL_FORMAT, "last_id": last_id, "alt_id": alt.id,
        "alt_file": None if request.alt_file is None else str(request.alt_file),
        "alt_sha256": None,     # filled in by the journal's writer
        "mode": execution.mode, "seed": execution.seed, "max_concurrency": execution.cap,
        # Its fields as they are (a flat dataclass; orjson writes the tuple as asdict's copy),
        # not dataclasses.asdict, which deep-copies each: 0.13 ms of every run's start.
        "settings": dict(vars(execution.settings)), "ai": ai_facts(environ),
        "task_types": execution.user_type_facts(),
        "workspace": str(workspace), "temporary_workspace": temporary_workspace,
        "resumed_from": request.resumed_from, "pid": os.getpid(), "started_at": librunner.utc_stamp(),
    }
    if tracing is not None:
        started["trace"] = tracing.ids.facts()      # the trace of an interrupted run (runner trace DIR)
    return started


def _execute(request: RunRequest, alt, settings, mode, cap, environ, ai_client, tracing) -> RunOutcome:
    temporary_workspace = request.temporary_workspace
    if temporary_workspace is None:
        temporary_workspace = request.workspace is None
    workspace = _callers_workspace(request)
    if workspace is None:
        workspace = default_workspace()
    on_event = request.on_event
    if tracing is not None and tracing.exporting:
        on_event = live.fan_out(on_event, tracing)
    execution = Execution(alt, settings=settings, mode=mode, max_concurrency=cap, seed=request.seed,
                          workspace=workspace, on_event=on_event, stream=request.stream,
                          ai_client=ai_client, environ=environ, reuse=request.reuse, placement=request.placement,
                          handlers=request.handlers, trace=tracing.ids if tracing is not None else None)
    if request.on_execution is not None:
        request.on_execution(execution)
    write = request.write
    journaling = write if request.journal is None else request.journal
    run_journal = last_id = None
    if request.before_start is not None:
        # Before the journal's start, whose directory is the one check left: a signal here stops
        # the process as before any run, leaving no new directory a later resume could take
        # for the run (it would not know the commands the earlier run left running).
        try:
            if journaling or write:
                _make_output_dir(alt, request.output_dir)
            request.before_start()
        except BaseException:
            if request.workspace is None:
                _remove_workspace(workspace)
            raise
    if journaling:
        try:
            last_id, run_journal = _start_journal(request, alt, execution, workspace, temporary_workspace, environ,
                                                  tracing)
        except BaseException:
            if request.workspace is None:   # made for this run (resume's adopted one is the earlier run's)
                _remove_workspace(workspace)
            raise
        execution.journal = run_journal
    previous_handlers = {}
    stopped_by = []
    facts = outcome = None
    last_written = False    # its LAST file written (or none asked for): the run has ended
    if request.handle_sigint and threading.current_thread() is threading.main_thread():
        def stop(number, _frame):
            stopped_by.append(signal.Signals(number).name)
            execution.interrupt()
        for number in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[number] = signal.signal(number, stop)
    if run_journal is not None:
        def journal_failed():
            stopped_by.append(JOURNAL_FAILURE)
            execution.interrupt()
        run_journal.when_failed(journal_failed)
    with _ACTIVE_LOCK:
        _ACTIVE.add(execution)
    try:
        # The handlers stay until the LAST directory is written: a SIGTERM or Ctrl-C that
        # arrives while it is written lets it finish (the run is over; the signal has nothing
        # left to stop) instead of killing the process with no last.json and its workspace
        # left behind (tests/test_kill_matrix.py).
        results, facts = execution.execute()
        keyboard = facts.pop("keyboard_interrupt", False)
        if stopped_by:
            facts["interrupted_by"] = stopped_by[0]
        if request.resumed_from is not None:
            facts["resumed_from"] = request.resumed_from
        if tracing is not None:
            facts.update(tracing.ids.facts())
        if run_journal is not None:
            run_journal.write({"type": "run_ended", "interrupted": facts["interrupted"],
                               "ended_at": facts["ended_at"]})
            run_journal.finish()
            if run_journal.warnings:
                # What the journal could not keep, said in the LAST file too (and on the log at once).
                facts["journal_warnings"] = list(run_journal.warnings)
        if not write:
            last_written = True
            outcome = RunOutcome(last_id or "", Path(), {}, b"", results, facts, workspace)
        else:
            try:
                written = write_last_file(execution.alt, results, request.output_dir, execution=facts,
                                          workspace=workspace, last_id=last_id, statistics=execution.statistics)
            except LastFileError as error:
                last_written = isinstance(error, DeliveryError)     # written; its publication failed
                if isinstance(error, DeliveryError) or run_journal is None or run_journal.error is None:
                    raise
                # Neither the LAST file nor a whole journal: the results are lost, and the
                # error says so (the CLI's exit code too: 5, not 4).
                lost = LastFileError(f"{error}; the run's journal could not be written either "
                                     f"({run_journal.error.strerror or run_journal.error}): its results are "
                                     "not on disk")
                lost.journal_kept = False
                raise lost from None
            last_written = True
            outcome = RunOutcome(written.last_id, Path(written.directory), written.lean_record, written.json_data,
                                 results, facts, workspace, written.delivery)
    finally:
        if tracing is not None and facts is not None:
            # After the LAST file (a collector never holds it back), bounded by
            # RUNNER_TRACE_FLUSH_SECONDS; a SIGTERM meanwhile still finds the run's handler.
            tracing.finish(outcome.lean_record if outcome is not None else None,
                           {**facts, "alt_id": alt.id, "total": len(alt.tasks)}, dict(execution.counts))
        for number, previous in previous_handlers.items():
            signal.signal(number, previous)
        if run_journal is not None:
            run_journal.close()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(execution)
        execution.written.set()     # cancel_active_runs waits for this, LAST file included
        if temporary_workspace and _resumable(request, run_journal, facts, last_written,
                                              outcome is not None and outcome.all_completed):
            # The files its tasks wrote are what the tasks its resume runs may read: kept, as a
            # run killed with -9 keeps them, until a resume ends (or discard_kept_workspace).
            if outcome is not None:
                outcome.workspace_kept = True
            if run_journal.began:
                log.warning("the run was not finished: its temporary workspace %s is kept for its resume "
                            "(python -m runner resume %s), which removes it at its end", workspace,
                            run_journal.directory)
            else:
                log.warning("the resume did not begin: the workspace %s it took over is kept for the run it "
                            "resumed (%s), which a resume of it carries on in", workspace, request.resumed_from)
        elif temporary_workspace:
            # The files tasks listed as written were copied into the LAST directory as
            # artifacts; a temporary workspace is not left behind in /tmp. An attempt
            # abandoned at its deadline may still be working in it (a thread cannot be
            # killed): the directory goes when the last such thread ends, not under it.
            execution.after_attempts(lambda: _remove_workspace(workspace),
                                     WORKSPACE_RELEASE_SECONDS)
    if keyboard:
        raise RunInterrupted(outcome)
    return outcome


def _resumable(request: RunRequest, run_journal, facts, last_written: bool, all_completed: bool) -> bool:
    """Whether a resume may follow the run, so its temporary workspace stays: its journal began
    and the run was interrupted (by a signal, a cancel, its journal's disk: Journal.when_failed)
    or did not end as a run ends (an error, its LAST file not written), with a task left to
    run. A resume whose journal never began took over the workspace of the run it resumes,
    which stays resumable."""
    if run_journal is None or all_completed:
        return False
    if not run_journal.began:
        return request.resumed_from is not None and request.workspace is not None     # taken over, not made
    return facts is None or not last_written or bool(facts.get("interrupted"))


def discard_kept_workspace(outcome: RunOutcome) -> None:
    """Removes the temporary workspace an interrupted run kept for its resume, for a caller
    that will not resume it (the service, for a run cancelled by its user)."""
    if outcome.workspace_kept:
        outcome.workspace_kept = False
        _remove_workspace(outcome.workspace)


def _callers_workspace(request: RunRequest) -> Path | None:
    """The workspace the request names, checked and made (_make_workspace), as an absolute
    path; None when it names none (the run makes a temporary one)."""
    if request.workspace is None:
        return None
    if not os.fspath(request.workspace):
        raise ConfigurationError("workspace '': an empty path (it would be the current directory)")
    workspace = Path(os.fsdecode(request.workspace))
    try:
        str(workspace).encode()
    except UnicodeEncodeError:      # bytes not UTF-8: the journal, JSON, could not record where the run worked
        raise ConfigurationError(f"workspace {str(workspace)!r}: its path is not UTF-8 text, which the run's "
                                 "journal must record to resume it") from None
    _make_workspace(workspace)
    # Absolute from here on: the journal records it, and a resume refuses a relative path
    # (it would name another folder from another directory).
    return workspace.absolute()


def _make_workspace(workspace: Path) -> None:
    """The caller's workspace, made when it is not there, with the folders above it that are
    not (as mkdir -p): one that cannot be (a file in its way, no permission, a name too long)
    stops the run before anything ran, saying where and why. A name of more characters than
    the file system allows is refused before any folder is made (_check_names); a folder
    made before a later one failed (no permission in it, a full disk, a name of fewer
    characters but too many bytes) stays, as mkdir -p leaves it: removing it could pull it
    from under another run that began to use it meanwhile (review 20)."""
    try:
        if workspace.is_dir():      # a stat: mkdir's exist_ok raised and caught an error (~25-50 us)
            return
        missing = [workspace]
        missing += itertools.takewhile(lambda folder: not folder.exists(), workspace.parents)
        _check_names(missing, missing[-1].parent)
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise
                # made meanwhile by someone else: theirs, and as good
    except (OSError, ValueError) as error:      # ValueError: a NUL in the path
        where = f"workspace {str(workspace)!r}"
        blocked = None
        if isinstance(error, FileExistsError):
            blocked = Path(error.filename) if error.filename else workspace
        elif isinstance(error, NotADirectoryError):     # a file above it: the nearest folder there is
            blocked = _nearest_existing(workspace)
            if blocked is not None and blocked.is_dir():
                blocked = None      # the file was replaced by a folder meanwhile: mkdir's word stands
        if blocked == workspace:
            raise ConfigurationError(f"{where}: it is not a directory") from None
        if blocked is not None:
            raise ConfigurationError(f"{where}: {str(blocked)!r} is in its way and is not a directory") from None
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigurationError(f"{where}: it cannot be made ({reason})") from None


def _nearest_existing(path: Path) -> Path | None:
    """The nearest of path's parents that exists, None when none can be looked at (a folder
    that cannot be searched on the way: its error is mkdir's to say)."""
    try:
        return next((folder for folder in path.parents if folder.exists()), None)
    except OSError:
        return None


def _check_names(folders: list[Path], existing: Path) -> None:
    """OSError(ENAMETOOLONG) when a folder's name has more characters than the file system
    under `existing` allows bytes or UTF-16 units (whichever it counts: every name has at
    least as many of either as characters): found before the first of them is made. Other
    names too long for it are mkdir's to refuse."""
    try:
        longest = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return      # not known here: mkdir says so itself
    if longest <= 0:
        return      # not known either (some FUSE file systems say 0)
    for folder in folders:
        if len(folder.name) > longest:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(folder))


def _remove_workspace(workspace: Path) -> None:
    """The end of a run's temporary workspace: a failure to remove it is logged, never the
    run's outcome (every task has ended and the LAST file is written by now)."""
    try:
        remove_tree(workspace)
    except OSError as error:
        log.warning("could not remove the temporary workspace %s: %s", workspace, error.strerror or error)


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
