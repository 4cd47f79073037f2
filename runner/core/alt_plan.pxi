# Graph facts of a validated ALT file, for people (validate --plan) and for the rest of
# the system: order, parallel levels, roots, leaves, and the critical paths.

# A task without timeout_seconds may run this long in the worst case. It matches the
# executor's default (runner/execution/config.py, DEFAULT_TIMEOUT_SECONDS).
DEFAULT_TASK_TIMEOUT_SECONDS = 300.0


cpdef dict plan_alt_file(AltFile alt, double default_timeout=DEFAULT_TASK_TIMEOUT_SECONDS):
    """What running `alt` involves, as JSON-ready data (task ids, not indices).

    The worst case of a task is timeout_seconds (default_timeout when absent) times
    (retry_count + 1): every attempt runs into its timeout. The worst-case duration of
    the run is the heaviest chain of those, i.e. with unlimited parallelism. The expected
    time is expected_completion_time, else metadata.expected_completion_time (seconds).
    """
    if not (default_timeout > 0):
        raise ValueError(f"default_timeout must be a positive number of seconds, found {default_timeout}")
    cdef DependencyGraph graph = DependencyGraph.of(alt)
    cdef list ids = graph.ids
    cdef list weights = []
    cdef Task task
    cdef double timeout
    for task in alt.tasks:
        timeout = <double>task.timeout_seconds if task.timeout_seconds is not None else default_timeout
        weights.append(timeout * ((task.retry_count or 0) + 1))
    by_count, length = graph.critical_path()
    by_time, worst = graph.critical_path(weights)
    expected = alt.expected_completion_time
    if expected is None:
        # Files written for the original runner (the spec's fixture) keep it in metadata.
        expected = alt.metadata.get("expected_completion_time")
        if not is_number(expected) or expected < 0:
            expected = None
    return {
        "alt_file_id": alt.id,
        "tasks": graph.size,
        "dependencies": graph.dep_start[graph.size],
        "topological_order": [ids[i] for i in graph.topological_order()],
        "levels": [[ids[i] for i in group] for group in graph.level_groups()],
        "roots": [ids[i] for i in graph.roots()],
        "leaves": [ids[i] for i in graph.leaves()],
        "critical_path_by_count": [ids[i] for i in by_count],
        "critical_path_by_timeout": [ids[i] for i in by_time],
        "default_timeout_seconds": default_timeout,
        "worst_case_seconds": worst,
        "expected_completion_time": expected,
        "within_expected": None if expected is None else worst <= expected,
    }
