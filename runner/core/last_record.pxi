# The LAST record: what a run of an ALT file produced, as JSON-ready data.
# One typed pass over the tasks in topological order gives the counts, the run's span,
# the graph nodes and the critical path; it is the hot part of writing a LAST file.

from datetime import datetime, timezone
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cdef extern from "build_info.h":
    const char *RUNNER_VERSION

__version__ = RUNNER_VERSION.decode()
LAST_FORMAT_VERSION = "1.0"
UNSUCCESSFUL_STATUSES = ("failed", "timeout", "cancelled")


cdef object parse_time(object stamp):
    if stamp is None:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


cdef str rfc3339(object moment):
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


cdef str overall_status(Py_ssize_t completed, Py_ssize_t total):
    if completed == total:
        return "success"
    return "failure" if completed == 0 else "partial_success"


cdef inline bint uniform_utc(object stamp, Py_ssize_t length):
    """Stamps of one length ending in Z order like their times: compared as text, parsed once."""
    return type(stamp) is str and len(<str>stamp) == length and (<str>stamp).endswith("Z")


cdef class RunSpan:
    """The earliest start and latest completion among the results, found cheaply.

    Executors write every stamp in one format ("...T..:..:..(.fff)Z"); while that holds the
    stamps are compared as strings and only the two extremes are parsed.
    """
    cdef object earliest        # str while uniform, else datetime
    cdef object latest
    cdef Py_ssize_t length      # length of the uniform stamps, -1 before the first, -2 once mixed

    def __cinit__(self):
        self.length = -1

    cdef void add(self, object started, object finished) except *:
        if started is None and finished is None:
            return
        if self.length == -1:
            probe = started if started is not None else finished
            self.length = len(probe) if uniform_utc(probe, len(probe)) else -2
        if self.length >= 0:
            if (started is None or uniform_utc(started, self.length)) and \
                    (finished is None or uniform_utc(finished, self.length)):
                if started is not None and (self.earliest is None or started < self.earliest):
                    self.earliest = started
                if finished is not None and (self.latest is None or finished > self.latest):
                    self.latest = finished
                return
            self.length = -2
            self.earliest = parse_time(self.earliest)
            self.latest = parse_time(self.latest)
        started_at = parse_time(started)
        finished_at = parse_time(finished)
        if started_at is not None and (self.earliest is None or started_at < self.earliest):
            self.earliest = started_at
        if finished_at is not None and (self.latest is None or finished_at > self.latest):
            self.latest = finished_at

    cdef tuple bounds(self):
        if self.length >= 0:
            return parse_time(self.earliest), parse_time(self.latest)
        return self.earliest, self.latest


cdef void add_usage(dict tokens, object ai) except *:
    """Adds one metadata.ai entry to the per-model token totals."""
    if type(ai) is not dict:
        return
    model = (<dict>ai).get("model") or "unknown"
    entry = tokens.get(model)
    if entry is None:
        entry = tokens[model] = {"provider": (<dict>ai).get("provider"), "calls": 0,
                                 "prompt_tokens": 0, "completion_tokens": 0}
    entry["calls"] += 1
    for key in ("prompt_tokens", "completion_tokens"):
        value = (<dict>ai).get(key)
        if type(value) is int:
            entry[key] += value


cdef str describe_run(str title, Py_ssize_t total, dict counts, double success_rate, str status,
                      double wall_ms, list critical_ids, double critical_ms, Py_ssize_t retries):
    cdef Py_ssize_t completed = counts["completed"]
    cdef Py_ssize_t unsuccessful = sum(counts[s] for s in UNSUCCESSFUL_STATUSES)
    parts = [f"{title}: {completed} of {total} tasks completed"]
    if unsuccessful:
        detail = ", ".join(f"{counts[s]} {s}" for s in UNSUCCESSFUL_STATUSES if counts[s])
        parts.append(f", {unsuccessful} unsuccessful ({detail})")
    if counts["skipped"]:
        parts.append(f", {counts['skipped']} skipped")
    if counts["pending"]:
        parts.append(f", {counts['pending']} never reported")
    parts.append(f" ({success_rate:.2%} success, {status}) in {wall_ms / 1000.0:.3f} s")
    if critical_ids:
        parts.append(f"; critical path {len(critical_ids)} task{'s' if len(critical_ids) != 1 else ''}"
                     f" ({critical_ms / 1000.0:.3f} s)")
    if retries:
        parts.append(f"; {retries} retr{'ies' if retries != 1 else 'y'}")
    return "".join(parts) + "."


cpdef dict build_last_record(AltFile alt, dict results, str last_id, str execution_id, str generated_at,
                             dict execution=None):
    """The LAST record of `alt` given its task results (task id -> TaskResult).

    Tasks without a result are recorded as pending. The run's wall time comes from
    `execution` (the executor's own clock) when given, else from the results: the
    earliest start to the latest completion; without timestamps it is the sum of the
    tasks' durations. Artifacts are added by the writer, which extracts them.
    """
    cdef DependencyGraph graph = DependencyGraph.of(alt)
    cdef Py_ssize_t n = graph.size, i, k, position
    cdef list order = graph.topological_order()
    cdef list tasks = alt.tasks
    cdef list by_index = [None] * n          # TaskResult per task index
    cdef list nodes = [None] * n
    cdef dict task_results = {}
    cdef dict counts = dict.fromkeys(TASK_STATUSES, 0)
    cdef dict task_extra = {}
    cdef dict tokens = {}
    cdef list retried = []
    cdef Task task
    cdef TaskResult result
    cdef RunSpan span = RunSpan()
    cdef double task_time_ms = 0.0, duration, best
    cdef Py_ssize_t retries = 0, attempts_count, completed, total = n
    cdef int v, d, best_dep, level, deepest
    cdef dict metadata
    cdef int *levels = <int *>PyMem_Malloc((n + 1) * sizeof(int))
    cdef int *previous = <int *>PyMem_Malloc((n + 1) * sizeof(int))   # critical predecessor
    cdef double *finish = <double *>PyMem_Malloc((n + 1) * sizeof(double))  # longest path ending here
    if not (levels and previous and finish):
        PyMem_Free(levels); PyMem_Free(previous); PyMem_Free(finish)
        raise MemoryError()
    try:
        # Results in file order: task_results keeps the ALT file's order.
        for i in range(n):
            task = <Task>tasks[i]
            result = results.get(task.id)
            if result is None:
                result = pending_result(task.id)
            by_index[i] = result
            task_results[task.id] = result.to_dict()
            if task.extra:
                task_extra[task.id] = task.extra
        for position in range(n):
            v = <int>order[position]
            task = <Task>tasks[v]
            result = <TaskResult>by_index[v]
            counts[result.status] += 1
            span.add(result.started_at, result.completed_at)
            duration = <double>result.duration_ms if result.duration_ms is not None else 0.0
            task_time_ms += duration
            metadata = result.metadata
            if metadata:
                attempts = metadata.get("attempts")
                if type(attempts) is list and len(<list>attempts) > 1:
                    attempts_count = len(<list>attempts)
                    retries += attempts_count - 1
                    retried.append({"task_id": task.id, "attempts": attempts_count})
                ai = metadata.get("ai")
                if ai is not None:
                    add_usage(tokens, ai)
            # Level and critical path: every dependency precedes v in `order`.
            level = 0
            best = 0.0
            best_dep = -1
            for k in range(graph.dep_start[v], graph.dep_start[v + 1]):
                d = graph.dep_list[k]
                if levels[d] + 1 > level:
                    level = levels[d] + 1
                if best_dep < 0 or finish[d] > best:
                    best = finish[d]
                    best_dep = d
            levels[v] = level
            previous[v] = best_dep
            finish[v] = best + duration
            nodes[v] = {"id": task.id, "description": task.description, "status": result.status,
                        "task_type": task.parameters.get("task_type", "ai_prompt"), "level": level,
                        "started_at": result.started_at, "completed_at": result.completed_at,
                        "duration_ms": result.duration_ms}
        critical_ids = []
        critical_ms = 0.0
        if n:
            deepest = 0
            for i in range(1, n):
                if finish[i] > finish[deepest]:
                    deepest = i
            critical_ms = finish[deepest]
            v = deepest
            while v >= 0:
                critical_ids.append(graph.ids[v])
                v = previous[v]
            critical_ids.reverse()
    finally:
        PyMem_Free(levels)
        PyMem_Free(previous)
        PyMem_Free(finish)

    earliest, latest = span.bounds()
    execution = dict(execution) if execution else {}
    start_time = parse_time(execution.get("started_at")) or earliest
    end_time = parse_time(execution.get("ended_at")) or latest
    wall = execution.get("wall_time_ms")
    if isinstance(wall, (int, float)) and not isinstance(wall, bool) and wall >= 0:
        execution_time_ms = float(wall)
    elif start_time is not None and end_time is not None and end_time >= start_time:
        execution_time_ms = (end_time - start_time).total_seconds() * 1000.0
    else:
        execution_time_ms = task_time_ms
    completed = counts["completed"]
    success_rate = <double>completed / total if total else 0.0
    status = overall_status(completed, total)
    parallelism = task_time_ms / execution_time_ms if execution_time_ms > 0 else (1.0 if task_time_ms == 0 else 0.0)
    edges = [{"from": dependency, "to": dependent, "type": "dependency"}
             for dependency, dependent in graph.edges()]
    summary = describe_run(alt.title, total, counts, success_rate, status, execution_time_ms,
                           critical_ids, critical_ms, retries)
    execution.setdefault("mode", alt.mode)
    return {
        "id": last_id,
        "execution_id": execution_id,
        "version": LAST_FORMAT_VERSION,
        "alt_file_id": alt.id,
        "alt_file_version": alt.version,
        "title": alt.title,
        "mode": alt.mode,
        "persona": alt.persona,
        "status": status,
        "success_rate": success_rate,
        "execution_time_ms": execution_time_ms,
        "start_time": rfc3339(start_time) if start_time is not None else generated_at,
        "end_time": rfc3339(end_time) if end_time is not None else generated_at,
        "created_at": generated_at,
        "task_results": task_results,
        "statistics": {
            "total_tasks": total,
            "status_counts": counts,
            "success_rate": success_rate,
            "execution_time_ms": execution_time_ms,
            "total_task_time_ms": task_time_ms,
            "parallelism": parallelism,
            "critical_path": {"task_ids": critical_ids, "duration_ms": critical_ms},
            "retries": {"total": retries, "tasks": retried},
            "tokens": tokens,
            "levels": (max(node["level"] for node in nodes) + 1) if n else 0,
        },
        "artifacts": [],
        "execution_graph": {"nodes": nodes, "edges": edges},
        "execution": execution,
        "summary": summary,
        "metadata": {
            "alt_file": alt.header(),
            "alt_extra_fields": alt.extra,
            "task_extra_fields": task_extra,
            "generator": {"name": "librunner", "version": __version__},
        },
    }
