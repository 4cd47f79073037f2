"""Resuming a run from its LAST directory: keep what completed and is unchanged, run the rest.

The plan walks the (possibly edited) ALT file in dependency order. A task reuses its
earlier result when that result completed, nothing it depends on runs again, and its
cache key (runner.execution.task_keys) is the one the earlier run executed; otherwise it
runs, with the reason. Completed system_command and file_operation tasks have effects
outside the record, so they are reused even when edited, unless --force names them.
Reused results keep their times and carry metadata.reused_from, the LAST id of the run
that produced them; the new LAST file records execution.resumed_from.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from runner import librunner, settings as runner_settings
from runner.errors import JournalError, RunnerError
from runner.execution import journal as journal_file, processes, task_keys
from runner.execution.journal import RunState
from runner.execution.task_types import SIDE_EFFECT_TYPES

log = logging.getLogger("runner")

RESUME_WAIT_VARIABLE = "RUNNER_RESUME_WAIT_SECONDS"
DEFAULT_RESUME_WAIT_SECONDS = 30.0
STATUS_REASONS = {"failed": "failed", "timeout": "timed out", "cancelled": "cancelled", "skipped": "skipped",
                  "pending": "never reported"}


class PlannedTask(NamedTuple):
    task_id: str
    action: str             # "reuse" or "run"
    reason: str

    def line(self) -> str:
        return f"{self.action:<6} {self.task_id}" + (f"  ({self.reason})" if self.reason else "")


@dataclass
class ResumePlan:
    source: RunState
    alt: object                         # the AltFile that runs
    mode: str
    seed: int | None
    tasks: list[PlannedTask] = field(default_factory=list)
    # task index -> TaskResult; control flow: also instance id (s[2], c/s) -> its earlier
    # result (a dict), for the instances the run makes again (runner/execution/control.py)
    reuse: dict = field(default_factory=dict)
    asked: Path | None = None           # the directory asked for, when a resume of it is the one planned

    @property
    def carried_on(self) -> bool:
        """The plan is of a resume of the run asked for (latest_resume), not of that run."""
        return self.asked is not None and self.asked != self.source.directory

    @property
    def resumed_from(self) -> str:
        return self.source.last_id

    @property
    def nothing_to_do(self) -> bool:
        """The run finished (its last.json is written) and every task would be reused: a resume
        would only copy it."""
        return self.source.complete and all(task.action == "reuse" for task in self.tasks)

    def describe(self) -> str:
        runs = sum(1 for t in self.tasks if t.action == "run")
        head = (f"resume of {self.resumed_from}: {len(self.tasks) - runs} reused, {runs} to run "
                f"(mode {self.mode}{'' if self.seed is None else f', seed {self.seed}'})")
        if self.carried_on:
            head += f"\n(the latest resume of {self.asked.name}, which it carries on: {self.source.directory})"
        return "\n".join([head] + [t.line() for t in self.tasks])


class ResumeError(RunnerError, ValueError):
    """The directory cannot be resumed (what, where, why)."""


def _dependency_view(result: dict | None) -> dict:
    result = result or {}
    return {"status": result.get("status"), "output": result.get("output"), "error": result.get("error")}


def _keys(alt, mode: str, results: dict, ai: dict, code: dict, order=None) -> tuple[dict, dict]:
    """Each task's executed form and key as the run that produced `results` executed it."""
    forms, keys = {}, {}
    for task in order if order is not None else _topological(alt):
        deps = {d: _dependency_view(results.get(d)) for d in task.dependencies}
        forms[task.id] = form = task_keys.executed_form(task, alt, mode, deps, ai, code)
        keys[task.id] = task_keys.task_key(form, [keys.get(d) for d in task.dependencies])
    return forms, keys


def _topological(alt) -> list:
    """Tasks in an order where dependencies come first (the ALT file is validated acyclic)."""
    tasks = alt.tasks
    return [tasks[i] for i in librunner.DependencyGraph.of(alt).topological_order()]


@contextlib.contextmanager
def _collection_paused():
    """Planning makes a few objects per task and no reference cycles: with the cyclic GC on,
    a journal of 100k results paid more for collections walking them than for the plan."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _dependents(alt, start: str) -> set:
    """start and every task that depends on it, directly or not."""
    children: dict[str, list] = {}
    for task in alt.tasks:
        for dep in task.dependencies:
            children.setdefault(dep, []).append(task.id)
    seen, stack = {start}, [start]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def plan(directory, alt_source: bytes | None = None, *, only_failed: bool = False, from_task: str | None = None,
         force=(), environ=os.environ, _claimed: bool = False) -> ResumePlan:
    """The plan of resuming the run in `directory`, with an edited ALT file when alt_source is given;
    of its latest resume when a resume of it began (latest_resume). _claimed: the caller holds
    the journal's lock (resume), so a lock taken is not a live run."""
    latest = latest_resume(directory)
    with _collection_paused():
        chosen = _plan(latest, alt_source, only_failed, from_task, force, environ, _claimed, Path(directory))
    chosen.asked = Path(directory)
    return chosen


def _plan(directory, alt_source, only_failed, from_task, force, environ, _claimed, asked) -> ResumePlan:
    from runner.execution.run import ai_facts

    directory = Path(directory)
    if not (directory / "journal.jsonl").is_file():
        raise ResumeError(f"{directory}: no journal.jsonl: not the LAST directory of a run "
                          "(only runs write a journal; batch and generated LAST files cannot be resumed)")
    try:
        source = RunState(directory)
        old_source = source.alt_source()
    except (OSError, JournalError) as error:
        raise ResumeError(f"{directory}: cannot read the run's journal or alt.json: {error}") from None
    if source.live and not _claimed:
        raise ResumeError(_busy(directory, source.start, asked))
    if not source.start:
        raise ResumeError(f"{directory}: the run was killed before its journal's first record: nothing to resume")
    if source.complete and source.ended is None:
        # A LAST file, and a journal without the run_ended record its run commits before writing
        # it: the journal's writes stopped at one the disk refused.
        _add_completed_from_last_file(source)
    old_alt = librunner.parse_alt_file(old_source)
    edited = alt_source is not None and alt_source != old_source
    alt = librunner.parse_alt_file(alt_source) if edited else old_alt
    for name, wanted in (("--from", [] if from_task is None else [from_task]), ("--force", list(force))):
        for task_id in wanted:
            if task_id == "":
                raise ResumeError(f"{name}: an empty task id names no task")
            if task_id not in alt.task_index:
                raise ResumeError(f"{name} {task_id}: no such task in ALT file '{alt.id}'")
    mode = source.start.get("mode") or alt.mode
    old_code = source.start.get("task_types")
    old_code = old_code if isinstance(old_code, dict) else {}
    current_ai = ai_facts(environ)
    order = _topological(alt)
    # The same ALT document, AI service and task types' code as the earlier run: a task whose
    # dependencies are all reused is executed exactly as it was, so its key is the earlier one
    # without computing either (the keys of 100k tasks cost several times reading the journal).
    same_inputs = not edited and current_ai == (source.start.get("ai") or {}) and \
        task_keys.code_facts(alt.task_types()) == old_code
    if same_inputs:
        old_forms = old_keys = {}
    else:
        old_forms, old_keys = _keys(old_alt, mode, source.results, source.start.get("ai") or {}, old_code,
                                    order if old_alt is alt else None)
    rerun_from = _dependents(alt, from_task) if from_task else set()
    forced = set(force)
    result = ResumePlan(source, alt, mode, source.start.get("seed"))
    runs: set = set()
    reused_results: dict = {}
    reused_at: list = []                            # task indexes of reused_results, in the same order
    planned: list = [None] * len(alt.tasks)        # in file order
    # The common resume: the same inputs, nothing forced. A completed task none of whose
    # dependencies re-runs is reused as it is, decided here without the general rules below.
    plain = same_inputs and not forced and from_task is None
    earlier = source.results
    for task in order:
        if plain:
            old = earlier.get(task.id)
            if old is not None and old.get("status") == "completed" and \
                    not (runs and any(d in runs for d in task.dependencies)):
                reused_results[task.id] = old
                reused_at.append(task.index)
                planned[task.index] = PlannedTask(task.id, "reuse", "")
                continue
        old = source.results.get(task.id) if task.id in old_alt.task_index else None
        action, reason = "run", ""
        rerun_deps = [d for d in task.dependencies if d in runs] if runs else ()
        # A completed command or file operation is kept even when edited, but only as the
        # same type of task: one that was something else never had that effect.
        side_effect = task.task_type in SIDE_EFFECT_TYPES and task.id in old_alt.task_index \
            and old_alt.task_index[task.id].task_type == task.task_type
        if task.id in forced:
            reason = "--force"
        elif task.id == from_task:
            reason = "--from"
        elif side_effect and task.id in source.segments and (old is None or old.get("status") != "completed"):
            # A loop's or call's segment that is a command or a file operation: its own task
            # completed (segment_completed), its construct did not. The effect stands; the
            # construct runs again from the segment's output.
            action, reason = "reuse", f"its own {task.task_type} completed; its construct runs again"
            old = {"task_id": task.id, "status": "completed", "output": source.segments[task.id], "error": None,
                   "metadata": {"task_type": task.task_type}}
        elif old is None:
            reason = "not in the earlier run" if task.id not in old_alt.task_index else \
                interrupted_attempt(source.running[task.id]) if task.id in source.running else "never started"
        elif old.get("status") != "completed":
            reason = STATUS_REASONS.get(old.get("status"), str(old.get("status")))
        elif side_effect:
            action = "reuse"
            if not same_inputs:
                deps = {d: _dependency_view(reused_results.get(d, source.results.get(d))) for d in task.dependencies}
            if not same_inputs and task_keys.executed_form(task, alt, mode, deps, current_ai) != old_forms.get(task.id):
                reason = f"edited, but a completed {task.task_type} is not repeated without --force"
            elif rerun_deps or task.id in rerun_from:
                reason = f"a completed {task.task_type} is not repeated without --force"
        elif task.id in rerun_from:
            reason = f"--from {from_task}"
        elif rerun_deps:
            reason = f"dependency {rerun_deps[0]} re-runs"
        elif only_failed or same_inputs:
            action = "reuse"
        else:
            deps = {d: _dependency_view(reused_results.get(d)) for d in task.dependencies}
            form = task_keys.executed_form(task, alt, mode, deps, current_ai)
            if task_keys.task_key(form, [old_keys.get(d) for d in task.dependencies]) == old_keys.get(task.id):
                action = "reuse"
            else:
                reason = task_keys.what_changed(old_forms.get(task.id, {}), form)
        if action == "reuse":
            reused_results[task.id] = old
            reused_at.append(task.index)
        else:
            runs.add(task.id)
        planned[task.index] = PlannedTask(task.id, action, reason)
    result.tasks = planned
    # Checked by the core as any result, with where they came from, in one call.
    result.reuse = dict(zip(reused_at, _reused(source, list(reused_results.values()), alt)))
    if getattr(alt, "control", None) is not None:
        result.reuse.update(_reused_instances(source, alt, old_alt, forced, rerun_from, edited))
    return result


def _add_completed_from_last_file(source: RunState) -> None:
    """The results the run's LAST file holds as completed and its journal does not, added to
    `source` as journal results. The journal's writes end at the first its disk refuses; the
    run then stops (Journal.when_failed), and its LAST file holds the refused commit's results
    and those of the attempts that ended meanwhile: without them, a resume would run those
    tasks' commands again (review 29, D1). ResumeError when the LAST file cannot be read."""
    from runner.errors import LastFileError
    from runner.last.reader import load_last

    path = source.directory / "last.json"
    try:
        results = load_last(path).get("task_results")
    except LastFileError as error:
        raise ResumeError(f"{path}: the run's LAST file cannot be read ({error}): it may hold results its journal "
                          "does not") from None
    if not isinstance(results, dict):
        raise ResumeError(f"{path}: task_results is not an object")
    for task_id, written in results.items():
        if not isinstance(written, dict):
            continue
        metadata = written.get("metadata")
        segment = metadata.get("segment_completed") if isinstance(metadata, dict) else None
        if isinstance(segment, dict) and "output" in segment and task_id not in source.segments:
            # A construct the run's stop cancelled after its segment's own effect (Execution).
            source.segments[task_id] = segment["output"]
        if written.get("status") != "completed":
            continue
        if (source.results.get(task_id) or {}).get("status") == "completed":
            continue
        # The LAST file's spelling of a result (runner/core/last_record.pxi: result_dict) as the journal's.
        result = {key: value for key, value in written.items()
                  if key not in ("start_time", "end_time", "exact_duration_ms", "skipped")}
        result.update(task_id=task_id, started_at=written.get("start_time"), completed_at=written.get("end_time"),
                      duration_ms=written.get("exact_duration_ms", written.get("duration_ms")))
        source.results[task_id] = result
        source.running.pop(task_id, None)


def _reused(source: RunState, docs: list, alt) -> list:
    """The earlier results `docs` as TaskResults the resume records, checked by the core as
    any result is; one that is not valid (the journal was edited) is a ResumeError naming
    its task and where the journal holds it (_refused)."""
    try:
        return librunner.reused_task_results(docs, alt, source.last_id)
    except librunner.TaskResultError:
        # A result made from a segment_completed record is a new dict; the others are the
        # journal's own (RunState.results).
        raise _refused(source, [(doc, doc.get("task_id"), "task_results" if doc is source.results.get(
            doc.get("task_id")) else "segment_completed") for doc in docs], alt) from None


def _refused(source: RunState, candidates: list, alt) -> ResumeError:
    """The error for earlier results one of which the core refuses: `candidates` are (result
    dict, the id of a task of `alt` it is checked as, the type of the journal record that
    holds it: task_results or segment_completed). Checked again one by one (an error path
    only), the one named is the first the journal holds: a short row may take a field of the
    row before it, which is then the one at fault."""
    refused = {}
    for doc, checked_as, kind in candidates:
        try:
            librunner.task_result_from_dict({**doc, "task_id": checked_as}, alt)
        except librunner.TaskResultError as error:
            refused.setdefault(doc.get("task_id"), (error, kind))
    order = {task_id: number for number, task_id in enumerate(source.results)}
    task_id = min(refused, key=lambda name: order.get(name, len(order)), default=None)
    if task_id is None:
        return ResumeError(f"{source.directory / journal_file.JOURNAL_NAME}: an earlier result cannot be reused")
    error, kind = refused[task_id]
    line = source.record_line(task_id, kind) if isinstance(task_id, str) else None
    where = f"{source.directory / journal_file.JOURNAL_NAME}" + (f": line {line}" if line else "")
    what = "the earlier result" if kind == "task_results" else "the output its segment recorded (segment_completed)"
    return ResumeError(f"{where}: {what} of task {task_id!r} cannot be reused, the journal may have been edited: "
                       f"{error}")


def _constructs(task_id: str, results: dict) -> set:
    """The template an instance was made from and every loop, call and template above it
    (an instance of a function's body made by a call made by a loop names all three)."""
    names, seen = set(), set()
    while task_id is not None and task_id not in seen:
        seen.add(task_id)
        old = results.get(task_id)
        control = ((old.get("metadata") or {}).get("control") if isinstance(old, dict) else None) or {}
        names.update(name for name in (control.get("of"), control.get("loop")) if isinstance(name, str))
        call = control.get("call")
        task_id = call if isinstance(call, str) and call != task_id else None
    return names


def _reused_instances(source, alt, old_alt, forced: set, rerun_from: set, edited: bool) -> dict:
    """The completed instances of loops and calls the resumed run reuses when it makes them
    again (same id): instances exist only once their loop or call has made them, so the run
    re-evaluates conditions and loops and finds these. A completed command or file operation
    is reused unless it, its template, or a loop or call that made it is forced (--force),
    as flat tasks are: even in an edited file, even after --from. Other instances are
    reused unless the file was edited or --force/--from re-runs one of those."""
    reused = {}
    for task_id, old in source.results.items():
        if task_id in alt.task_index or not isinstance(old, dict) or old.get("status") != "completed":
            continue
        names = _constructs(task_id, source.results)
        if names & forced:
            continue
        task_type = (old.get("metadata") or {}).get("task_type")
        template = alt.task_index.get(((old.get("metadata") or {}).get("control") or {}).get("of"))
        side_effect = task_type in SIDE_EFFECT_TYPES and template is not None and template.task_type == task_type
        if not side_effect and (edited or names & rerun_from):
            continue
        doc = dict(old)
        doc["metadata"] = {**(doc.get("metadata") or {}), "reused_from": source.last_id}
        reused[task_id] = doc
    # Checked now as any result is (as its template's would be: the instance itself exists
    # only once its loop or call makes it again), so an edited one is refused before anything
    # runs rather than left out, which would run its command again.
    if reused and alt.tasks:
        probe = alt.tasks[0].id
        candidates = []
        for doc in reused.values():
            template = ((doc.get("metadata") or {}).get("control") or {}).get("of")
            candidates.append((doc, template if template in alt.task_index else probe, "task_results"))
        for doc, checked_as, _ in candidates:
            try:
                librunner.task_result_from_dict({**doc, "task_id": checked_as}, alt)
            except librunner.TaskResultError:
                raise _refused(source, candidates, alt) from None
    return reused


def interrupted_attempt(attempt: int) -> str:
    """What happened to a task whose attempt started and never ended, in an interrupted run:
    `show` and `resume --dry-run` say it alike."""
    return f"interrupted: attempt {attempt} started, never finished"


def _resume_wait(environ) -> float:
    """RUNNER_RESUME_WAIT_SECONDS, or a ResumeError saying what is wrong with it."""
    try:
        return runner_settings.number(RESUME_WAIT_VARIABLE, DEFAULT_RESUME_WAIT_SECONDS, environ, maximum=86400.0)
    except ValueError as error:
        raise ResumeError(str(error)) from None


def _stop_earlier_commands(live: list, wait: float) -> None:
    """Commands the earlier run started that still ran when the resume began (`live`: killed
    with SIGKILL, it could not stop them; the journal names their process groups): a second
    copy never starts beside one. They are waited for, at most `wait` seconds
    (RUNNER_RESUME_WAIT_SECONDS), then their groups are killed; either way the log says so.
    One that ended meanwhile never reported its outcome: its task runs again, as the plan says."""
    if not live:
        return
    for record in live:
        log.warning("resume: %s of the interrupted run is still running; waiting up to %g s (%s) for it to end",
                    processes.describe(record), wait, RESUME_WAIT_VARIABLE)
    remaining = processes.wait_for(live, wait)
    for record in live:
        if record in remaining:
            processes.kill([record])
            log.warning("resume: killed %s after %g s: it runs again from the start", processes.describe(record),
                        wait)
        else:
            log.warning("resume: %s ended; its outcome was never recorded, so its task runs again",
                        processes.describe(record))


# The journals resumed by this process now, by (device, inode): another thread's resume of the
# same run finds the lock held by its own pid, which /proc/locks cannot tell from the run's.
_RESUMING: set = set()
_RESUMING_LOCK = threading.Lock()


def _journal_key(directory: Path):
    try:
        info = os.stat(directory / journal_file.JOURNAL_NAME)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _busy(directory: Path, start: dict, asked: Path | None = None) -> str:
    """Why a directory whose journal is locked cannot be resumed: its run, or a resume of it, is
    going. asked: the directory the caller named, when `directory` is the resume carrying it on."""
    holder = journal_file.lock_holder(directory / journal_file.JOURNAL_NAME)
    if asked is not None and asked != directory:
        return (f"{asked}: the run is being resumed by pid {holder or start.get('pid')} (as {directory}); "
                "wait for its end")
    with _RESUMING_LOCK:
        resumed_here = _journal_key(directory) in _RESUMING
    if resumed_here:
        return (f"{directory}: the run is being resumed by another thread of this process (pid {os.getpid()}); "
                "wait for its end")
    if holder is not None and holder != start.get("pid"):
        return f"{directory}: the run is being resumed by pid {holder}; wait for its end"
    return (f"{directory}: the run is still going (pid {holder or start.get('pid')}); "
            "stop it first or wait for its end")


def _lock_workspace(workspace: Path) -> int | None:
    """An exclusive lock on the temporary workspace a resume takes over (its descriptor), or
    a ResumeError when another resume holds it. Where the file system has no such locks
    (ENOLCK, EOPNOTSUPP on some network and FUSE mounts) the resume goes on without one,
    as it did before there was one."""
    try:
        fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise ResumeError(f"{workspace}: cannot open the run's workspace: {error.strerror or error}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ResumeError(f"{workspace}: the run's workspace is in use by another resume of it (or of a "
                          "resume of it); wait for its end") from None
    except OSError as error:
        os.close(fd)
        log.warning("resume: the workspace %s cannot be locked (%s): another resume could work in it meanwhile",
                    workspace, error.strerror or error)
        return None
    return fd


def _claim(directory: Path, asked: Path | None = None) -> int | None:
    """The lock of the run's journal, held by a resume for its whole run (journal.claim)."""
    try:
        return journal_file.claim(directory / journal_file.JOURNAL_NAME)
    except BlockingIOError:
        try:
            start = RunState(directory).start
        except (OSError, JournalError):
            start = {}
        raise ResumeError(_busy(directory, start, asked)) from None
    except OSError as error:
        raise ResumeError(f"{directory}: cannot open the run's journal: {error.strerror or error}") from None


def latest_resume(directory) -> Path:
    """The run that carries on the one in `directory`: the latest resume of it whose journal
    began, then the latest resume of that one, and so on; `directory` itself when no resume of
    it began. A resume that began may have run commands, and resuming the run it resumed again
    would run them twice (review 29): resume and plan go on from here instead. A resume records
    itself in the run it resumes before its own journal begins (_resume_in); a record is
    followed only to a directory whose journal's first record is that resume's, of this run."""
    from runner.execution.run_directory import run_start

    current, seen = Path(directory), set()
    while True:
        seen.add(os.path.realpath(current))
        start = run_start(current)
        if start is None:
            return current
        try:
            recorded = journal_file.resumes_recorded(current / journal_file.JOURNAL_NAME)
        except (OSError, JournalError):
            return current      # the plan of it says what is wrong
        following = next((record["directory"] for record in reversed(recorded) if began(record, start["last_id"])),
                         None)
        if following is None or os.path.realpath(following) in seen:
            return current
        current = Path(following)


def began(record: dict, resumed: str) -> bool:
    """Whether the resumed_by `record` of the run whose LAST id is `resumed` names a resume of
    it whose journal began: its directory's journal starts with that resume's run_started."""
    from runner.execution.run_directory import run_start

    named, last_id = record.get("directory"), record.get("last_id")
    if not isinstance(named, str) or not isinstance(last_id, str):
        return False
    later = run_start(Path(named))
    return later is not None and later.get("last_id") == last_id and later.get("resumed_from") == resumed


def resume(directory, alt_source: bytes | None = None, output_dir=None, *, only_failed: bool = False,
           from_task: str | None = None, force=(), workspace=None, alt_file=None, environ=os.environ,
           **options):
    """Runs the plan: a new LAST directory (a new id) beside the old one unless output_dir says
    otherwise; returns the RunOutcome. Runs in the earlier run's workspace when it still exists
    and this library made it (runner.execution.run_directory.library_workspace). A run that a
    resume already took on is carried on from that resume's directory (latest_resume), with
    the locks of both held."""
    directory = Path(directory)
    with contextlib.ExitStack() as holding:
        claimed = _hold(holding, directory)
        latest = latest_resume(directory)
        if latest != directory:
            log.info("resume: %s was resumed by %s: resuming that run", directory, latest)
            claimed = _hold(holding, latest, directory)
        return _resume(latest, alt_source, output_dir, only_failed, from_task, force, workspace, alt_file,
                       environ, claimed, options)


def _hold(holding: contextlib.ExitStack, directory: Path, asked: Path | None = None) -> bool:
    """The journal's lock of the run in `directory` taken for the resume's life (released by
    `holding`), and the run marked as resumed by this process; False when it has no journal.
    asked: the directory the caller named, when `directory` carries it on (for the refusal)."""
    held = _claim(directory, asked)
    if held is None:
        return False
    holding.callback(os.close, held)
    key = _journal_key(directory)
    with _RESUMING_LOCK:
        _RESUMING.add(key)

    def forget():
        with _RESUMING_LOCK:
            _RESUMING.discard(key)
    holding.callback(forget)
    return True


def _resume(directory, alt_source, output_dir, only_failed, from_task, force, workspace, alt_file, environ,
            claimed, options):
    from runner.execution.run_directory import callers_workspace, library_workspace

    from runner.execution.task_types import run_handlers
    with run_handlers(options.get("handlers")):      # the file may use the run's own task types
        chosen = plan(directory, alt_source, only_failed=only_failed, from_task=from_task, force=force,
                      environ=environ, _claimed=claimed)
    temporary = None
    if workspace is None:
        # The journal is not trusted with a path: a temporary workspace this library made is
        # adopted (and removed at the end); the caller's own workspace (run --workspace W) is
        # continued in, never removed, when it is still a directory of this user.
        workspace, temporary = library_workspace(chosen.source.start), True
        if workspace is None and chosen.source.start.get("temporary_workspace") is False:
            try:
                workspace = callers_workspace(directory, chosen.source.start)
            except ValueError as error:
                raise ResumeError(str(error)) from None
            temporary = workspace is None
    # Held until the run ends: another resume of the same chain of runs (an earlier or later
    # one, interrupted, names the same kept workspace) is refused instead of sharing it.
    adopted = _lock_workspace(workspace) if temporary and workspace is not None else None
    try:
        return _resume_in(directory, chosen, workspace, temporary, output_dir, alt_file, environ, options)
    finally:
        if adopted is not None:
            os.close(adopted)


def _resume_in(directory, chosen, workspace, temporary, output_dir, alt_file, environ, options):
    """The resume's run, its workspace chosen (and held when taken over)."""
    from runner.execution.run import RunRequest, execute_request
    from runner.execution.run_directory import clean_dead_run

    live = processes.live(chosen.source.processes)      # read with the journal, once
    wait = _resume_wait(environ) if live else 0.0
    last_id = librunner.next_last_id()
    out = runner_settings.output_dir(output_dir if output_dir is not None else directory.parent, environ).absolute()

    def before_start():
        # Once the run has passed every check, before its journal begins: a request refused
        # (a workspace, an output directory, a setting) changes nothing here.
        _stop_earlier_commands(live, wait)
        clean_dead_run(directory, keep_workspace=True)
        # The earlier run points at this one before it runs anything, durably: a later resume
        # of it carries this one on (latest_resume) instead of running again what this one
        # does, and `show` of it says where it went.
        try:
            journal_file.record_resume(directory, last_id, out / last_id, librunner.utc_stamp())
        except OSError as error:
            raise ResumeError(f"{directory}: cannot record the resume in the run's journal "
                              f"({error.strerror or error}): nothing ran (a later resume of the run would not "
                              "know of this one, and run again what it did)") from None

    return execute_request(RunRequest(
        chosen.alt, out, mode=chosen.mode, seed=chosen.seed, workspace=workspace, temporary_workspace=temporary,
        reuse=chosen.reuse, resumed_from=chosen.resumed_from, alt_file=alt_file, environ=environ,
        before_start=before_start, last_id=last_id, journal_required=True, **options))
