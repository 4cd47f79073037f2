# The run store: what the C ABI keeps between calls, by id.

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial

from runner import settings
from runner.last import options as last_options
from runner.last.options import LastOptions
from runner.last.reader import load_last
from runner.last.directory import LastWriteResult
# At load, not at the first generation: a module that defines dataclasses, imported by a C
# host's thread while another thread is importing typing, fails (dataclasses reads a
# half-initialised typing from sys.modules). It imports no NATS client by itself.
from runner.last import delivery

log = logging.getLogger("runner")


cdef str utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_last_id():
    """A new LAST id: a UUIDv7, so it sorts by creation time; a safe directory name. A run
    names its directory (and journal) with it before it starts."""
    return new_uuid7()


def write_last_file(AltFile alt, dict results, output_dir=None, *, execution=None, workspace=None,
                    options=None, last_id=None, **overrides):
    """Builds the LAST record of `alt` and writes its whole directory; returns a LastWriteResult.

    `results` maps task ids to TaskResult (dicts are checked with task_result_from_dict).
    `execution` holds the run's own facts (mode, seed, faults, max_concurrency, started_at,
    ended_at, wall_time_ms, interrupted); `workspace` is where file_operation tasks wrote.
    The products come from the RUNNER_* variables (runner.last.options), then `options`
    (a LastOptions) replaces them, then keyword overrides (compression=True, archive="zip",
    ...) replace single choices. output_dir None means RUNNER_OUTPUT_DIR, else ./output.
    last_id: the id of a run's journal directory, <output_dir>/<last_id>/, which exists
    already; the products are written into it, last.json last.
    With RUNNER_NATS_URL the written file is then published to the archive
    (runner.last.delivery); the outcome is in the result's `delivery`.
    """
    cdef dict checked = {}
    cdef TaskResult result
    # A bad RUNNER_* setting is a ConfigurationError naming the variable.
    chosen = options if options is not None else last_options.from_environment()
    if overrides:
        chosen = chosen.with_overrides(**overrides)
    publication = delivery.settings_from_environment()
    for task_id, value in results.items():
        if isinstance(value, TaskResult):
            result = <TaskResult>value
        elif isinstance(value, dict):
            result = task_result_from_dict(value, alt)
        else:
            raise TaskResultError([ValidationIssue(f"/{pointer_token(task_id)}",
                                                   f"expected a TaskResult, found {type(value).__name__}")])
        if result.task_id not in alt.task_index:
            raise UnknownIdError(f"unknown task '{result.task_id}' in ALT file '{alt.id}'")
        checked[result.task_id] = result
    if execution is not None and not isinstance(execution, dict):
        raise LastFileError(f"execution must be a dict, found {type(execution).__name__}")
    journaled = last_id is not None
    if not journaled:
        last_id = new_uuid7()
    record = build_last_record(alt, checked, last_id, new_uuid7(), utc_now(), execution)
    directory = settings.output_dir(output_dir)
    from runner.last.directory import write_directory
    try:
        written = write_directory(record, directory, chosen, workspace, into_existing=journaled)
    except OSError as error:
        raise LastFileError(f"cannot write the LAST file of '{alt.id}' under '{directory}': "
                            f"{error.strerror or error}") from error
    log.info("wrote %s (%s)", written.directory, record["status"], extra={"alt_id": alt.id, "last_id": last_id})
    if publication is not None:
        # Only once the directory is complete: publication can add to a LAST file, never lose it.
        written.delivery = delivery.deliver(written.record, written.directory, publication)
        if publication.required and not written.delivery["published"]:
            raise DeliveryError(f"{delivery.failure_text(written.delivery)}; the LAST file is written in "
                                f"{written.directory} (RUNNER_NATS_REQUIRED=true)", written)
    return written


def generate_or_error(RunStore store, output_dir, str alt_id):
    """One entry of a batch: a LAST id, or "ERROR: <message>"; never an exception, so one
    file's failure, even a bug, cannot take the other files of the batch down with it."""
    try:
        return store.generate_last(alt_id, output_dir)
    except RunnerError as error:
        return f"ERROR: {error}"
    except Exception as error:
        log.exception("generating the LAST file failed", extra={"alt_id": alt_id})
        return f"ERROR: internal error: {type(error).__name__}: {error}"


# runner_get_warnings lists at most this many warnings in all (ALT file and task results),
# then one "... and N more warnings" entry: a host printing them is not flooded.
MAX_LISTED_WARNINGS = 1000


cdef class RunStore:
    """Parsed ALT files, their task results and generated LAST files, by id.

    Every method runs under the GIL and changes the dicts in single steps, so concurrent
    callers need no further lock; generate_last works on a snapshot of the results.
    A call can still be paused mid-way (CPython switches threads every few milliseconds):
    `generation` counts clear() calls, and a call that began before a clear() stores nothing
    after it, so a runner_cleanup really leaves the next session empty.
    """

    cdef dict alt_files     # ALT id -> AltFile
    cdef dict results       # ALT id -> {task id -> TaskResult}
    cdef dict last_files    # LAST id -> JSON bytes
    cdef dict result_warnings   # ALT id -> {task id -> [ValidationIssue]}: unknown fields of results
    cdef readonly long generation

    def __cinit__(self):
        self.alt_files = {}
        self.results = {}
        self.last_files = {}
        self.result_warnings = {}

    cdef void check_generation(self, long since) except *:
        if since >= 0 and since != self.generation:
            raise RunnerError("runner_cleanup ran during this call: nothing was kept")

    cpdef AltFile store_alt(self, AltFile alt, long since=-1):
        """Keeps `alt` under its id, replacing (with its results) any file of that id.

        since: the generation the caller started in (the C ABI's doors pass it)."""
        self.check_generation(since)
        replaced = alt.id in self.alt_files
        self.alt_files[alt.id] = alt
        self.results[alt.id] = {}
        self.result_warnings.pop(alt.id, None)
        log.debug("stored ALT file (%d tasks%s)", len(alt.tasks), ", replacing the previous one" if replaced else "",
                  extra={"alt_id": alt.id})
        return alt

    cpdef AltFile alt_file(self, str alt_id):
        alt = self.alt_files.get(alt_id)
        if alt is None:
            raise UnknownIdError(f"unknown ALT file '{alt_id}' (parse it first with runner_parse_alt_file)")
        return alt

    cpdef TaskResult add_result(self, str alt_id, object data):
        cdef long since = self.generation
        cdef AltFile alt = self.alt_file(alt_id)
        cdef TaskResult result = parse_task_result(data, alt)
        cdef IssueList warnings = result_warnings(result) if result.extra else None
        if warnings is not None and not warnings.total:
            warnings = None
        if warnings is not None and strict_from_environment():
            raise TaskResultError(warnings.issues, warnings.total)
        self.check_generation(since)
        cdef dict results = self.results.get(alt_id)
        if results is None:
            results = self.results[alt_id] = {}
        results[result.task_id] = result
        if warnings or alt_id in self.result_warnings:
            by_task = self.result_warnings.setdefault(alt_id, {})
            if warnings:
                by_task[result.task_id] = warnings
            else:
                by_task.pop(result.task_id, None)    # a later result replaces the earlier one
        return result

    cpdef list warnings(self, str alt_id):
        """The warnings of a stored ALT file and of its task results: [{"path", "message"}],
        at most MAX_LISTED_WARNINGS of them, then one entry counting those left out."""
        cdef AltFile alt = self.alt_file(alt_id)
        cdef IssueList listed
        cdef Py_ssize_t total = max(alt.warning_total, len(alt.warnings))
        found = list(alt.warnings)
        for listed in (self.result_warnings.get(alt_id) or {}).values():
            found.extend(listed.issues)
            total += listed.total
        out = [{"path": issue.path or "/", "message": issue.message} for issue in found[:MAX_LISTED_WARNINGS]]
        if total > len(out):
            out.append({"path": "/", "message": f"... and {total - len(out)} more warnings"})
        return out

    cpdef str generate_last(self, str alt_id, object output_dir):
        """Builds the LAST record, writes <output_dir>/<last id>/last.json, returns the LAST id."""
        cdef long since = self.generation
        cdef AltFile alt = self.alt_file(alt_id)
        cdef dict results = dict(self.results.get(alt_id) or {})
        written = write_last_file(alt, results, output_dir)
        self.check_generation(since)
        self.last_files[written.last_id] = written.json
        return written.last_id

    cpdef bytes last_json(self, str last_id):
        data = self.last_files.get(last_id)
        if data is None:
            raise UnknownIdError(f"unknown LAST file '{last_id}' (not generated since runner_init)")
        return data

    cpdef dict batch(self, list alt_ids, object output_dir):
        """ALT id -> new LAST id, or "ERROR: <message>"; one failure does not stop the rest.

        The files are generated in parallel, at most RUNNER_LAST_WORKERS at a time.
        """
        workers = last_options.from_environment().workers
        generate = partial(generate_or_error, self, output_dir)
        unique = list(dict.fromkeys(alt_ids))
        if len(unique) <= 1 or workers == 1:
            return {alt_id: generate(alt_id) for alt_id in unique}
        with ThreadPoolExecutor(min(workers, len(unique)), thread_name_prefix="last-batch") as pool:
            return dict(zip(unique, pool.map(generate, unique)))

    cpdef clear(self):
        self.generation += 1
        self.alt_files.clear()
        self.results.clear()
        self.last_files.clear()
        self.result_warnings.clear()


STORE = RunStore()
