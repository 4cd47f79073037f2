# The LAST record: what a run of an ALT file produced, as JSON-ready data.

from datetime import datetime

cdef extern from "build_info.h":
    const char *RUNNER_VERSION

__version__ = RUNNER_VERSION.decode()
LAST_FORMAT_VERSION = "1.0"


cdef object parse_time(object stamp):
    if stamp is None:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


cdef str overall_status(Py_ssize_t completed, Py_ssize_t total):
    if completed == total:
        return "success"
    return "failure" if completed == 0 else "partial_success"


cpdef dict build_last_record(AltFile alt, dict results, str last_id, str execution_id, str generated_at):
    """The LAST record of `alt` given its task results (task id -> TaskResult).

    Tasks without a result are recorded as pending. Times come from the results: the
    run spans the earliest start to the latest completion; without timestamps,
    execution_time_ms is the sum of the tasks' durations.
    """
    cdef DependencyGraph graph = DependencyGraph.of(alt)
    cdef list levels = graph.levels()
    cdef dict counts = dict.fromkeys(TASK_STATUSES, 0)
    cdef dict task_results = {}
    cdef list nodes = []
    cdef dict task_extra = {}
    cdef Task task
    cdef TaskResult result
    cdef double task_time_ms = 0.0
    earliest = latest = None
    for task in alt.tasks:
        result = results.get(task.id)
        if result is None:
            result = pending_result(task.id)
        counts[result.status] += 1
        task_results[task.id] = result.to_dict()
        if result.duration_ms is not None:
            task_time_ms += result.duration_ms
        started = parse_time(result.started_at)
        finished = parse_time(result.completed_at)
        if started is not None and (earliest is None or started < earliest):
            earliest = started
        if finished is not None and (latest is None or finished > latest):
            latest = finished
        nodes.append({"id": task.id, "description": task.description, "status": result.status,
                      "level": levels[task.index], "started_at": result.started_at,
                      "completed_at": result.completed_at, "duration_ms": result.duration_ms})
        if task.extra:
            task_extra[task.id] = task.extra

    cdef Py_ssize_t total = len(alt.tasks)
    cdef Py_ssize_t completed = counts["completed"]
    cdef Py_ssize_t unsuccessful = counts["failed"] + counts["timeout"] + counts["cancelled"]
    if earliest is not None and latest is not None and latest >= earliest:
        execution_time_ms = (latest - earliest).total_seconds() * 1000.0
    else:
        execution_time_ms = task_time_ms
    success_rate = <double>completed / total if total else 0.0
    status = overall_status(completed, total)
    edges = [{"from": dependency, "to": dependent, "type": "dependency"}
             for dependency, dependent in graph.edges()]
    summary = (f"{alt.title}: {completed} of {total} tasks completed"
               f"{f', {unsuccessful} unsuccessful' if unsuccessful else ''}"
               f"{f', {counts['pending']} never reported' if counts['pending'] else ''}"
               f" ({success_rate:.2%} success, {status})")
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
        "start_time": earliest.isoformat() if earliest is not None else generated_at,
        "end_time": latest.isoformat() if latest is not None else generated_at,
        "created_at": generated_at,
        "task_results": task_results,
        "statistics": {
            "total_tasks": total,
            "status_counts": counts,
            "success_rate": success_rate,
            "execution_time_ms": execution_time_ms,
            "total_task_time_ms": task_time_ms,
        },
        "artifacts": [],
        "execution_graph": {"nodes": nodes, "edges": edges},
        "summary": summary,
        "metadata": {
            "alt_file": alt.header(),
            "alt_extra_fields": alt.extra,
            "task_extra_fields": task_extra,
            "generator": {"name": "librunner", "version": __version__},
        },
    }
