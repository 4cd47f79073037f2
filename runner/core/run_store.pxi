# The run store: what the C ABI keeps between calls, by id.

import logging
from datetime import datetime, timezone

log = logging.getLogger("runner")


cdef str utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_last_id():
    """A new LAST id: a UUIDv7, so it sorts by creation time; a safe directory name. A run
    names its directory (and journal) with it before it starts."""
    return new_uuid7()


def checked_last_record(AltFile alt, dict results, execution=None, last_id=None, RunStatistics statistics=None):
    """The LAST record of `alt` and its task results, as a dict; the files are written by
    runner.last.write (write_last_file), which calls this.

    `results` maps task ids to TaskResult (dicts are checked with task_result_from_dict);
    a value of another type is a TaskResultError, a task the file does not have an
    UnknownIdError. `execution` holds the run's own facts (a dict, else LastFileError).
    last_id None: a new UUIDv7. statistics: the run's RunStatistics (a run's results were
    recorded through it): when it vouches for `results`, they are neither checked again
    (each went in as its task's TaskResult) nor read again for the statistics.
    """
    cdef dict checked = {}
    cdef TaskResult result
    if statistics is not None and statistics.vouches(alt, results):
        if execution is not None and not isinstance(execution, dict):
            raise LastFileError(f"execution must be a dict, found {type(execution).__name__}")
        return vouched_record(alt, results, last_id if last_id is not None else new_uuid7(), new_uuid7(),
                              utc_now(), execution, statistics)
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
    if last_id is None:
        last_id = new_uuid7()
    return build_last_record(alt, checked, last_id, new_uuid7(), utc_now(), execution)


# runner_get_warnings lists at most this many warnings in all (ALT file and task results),
# then one "... and N more warnings" entry: a host printing them is not flooded.
MAX_LISTED_WARNINGS = 1000


cdef class RunStore:
    """Parsed ALT files, their task results and generated LAST files, by id.

    Every method runs under the GIL and changes the dicts in single steps, so concurrent
    callers need no further lock; a LAST file is built from a snapshot of the results.
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
        cdef IssueList warnings = result_warnings(result) if result.stored_extra else None
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

    cpdef dict results_of(self, str alt_id):
        """A snapshot of the task results of a stored ALT file (what a LAST file is built from)."""
        self.alt_file(alt_id)
        return dict(self.results.get(alt_id) or {})

    cpdef keep_last(self, str last_id, bytes data, long since=-1):
        """Keeps a written LAST file's JSON for runner_get_last_file_json.

        since: the generation the caller started in; nothing is kept if a clear() came between."""
        self.check_generation(since)
        self.last_files[last_id] = data

    cpdef bytes last_json(self, str last_id):
        data = self.last_files.get(last_id)
        if data is None:
            raise UnknownIdError(f"unknown LAST file '{last_id}' (not generated since runner_init)")
        return data

    cpdef clear(self):
        self.generation += 1
        self.alt_files.clear()
        self.results.clear()
        self.last_files.clear()
        self.result_warnings.clear()


STORE = RunStore()
