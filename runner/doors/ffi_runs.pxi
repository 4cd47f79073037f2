# The doors of the runs a C host drives (runner_run_*) and of runner_resume. The runs go
# on in the library's own threads (runner.execution.background); these doors only start,
# read, cancel and wait, each a short call except the waits, which release the GIL.


cdef object background_run(const char *run_id):
    from runner.execution.background import RUNS     # here: runner.execution imports this module
    return RUNS.get(c_text(run_id, "run_id"))


cdef void keep_outcome(object outcome, str alt_key=None, AltFile alt=None):
    """A finished run's LAST JSON for runner_get_last_file_json, its results as the file's."""
    cdef RunStore store = <RunStore>STORE
    if alt is not None and store.alt_files.get(alt_key) is alt:
        store.results[alt_key] = dict(outcome.results)
    store.last_files[outcome.last_id] = outcome.json


cdef public object core_run_start(const char *alt_id, const char *output_dir):
    cdef str key = c_text(alt_id, "alt_id")
    cdef AltFile alt = STORE.alt_file(key)
    directory = c_output_dir(output_dir)
    from runner.execution.background import RUNS     # here: runner.execution imports this module
    return RUNS.start(alt, directory).id.encode()


cdef public object core_run_status(const char *run_id):
    return orjson.dumps(background_run(run_id).status())


cdef public object core_run_events(const char *run_id, long long after):
    return orjson.dumps(background_run(run_id).events_after(after))


cdef public object core_run_cancel(const char *run_id):
    background_run(run_id).cancel()
    return None


cdef public object core_run_wait(const char *run_id, int timeout_ms):
    global abi_runs
    run = background_run(run_id)
    cdef long generation = cleanup_generation
    abi_runs += 1       # runner_cleanup waits for the waits to return
    try:
        if not run.wait(None if timeout_ms < 0 else timeout_ms / 1000.0):
            raise RunnerError("still running", category="timeout")
        if generation != cleanup_generation:
            raise CancelledError(f"interrupted by runner_cleanup: the run's LAST file is {run.directory}")
        if run.last_id is None:
            raise RunnerError(f"the run failed: {run.error}", category=run.error_category or "internal")
        if run.outcome is not None:
            keep_outcome(run.outcome, run.alt_id, run.alt)
        answer = run.last_id.encode()
    finally:
        abi_runs -= 1
    return answer


cdef public object core_resume(const char *last_dir, const char *alt_json, const char *output_dir):
    global abi_runs
    cdef str directory = c_text(last_dir, "last_dir")
    source = None if alt_json == NULL else c_bytes(alt_json)
    out = c_output_dir(output_dir)
    cdef long generation = cleanup_generation
    abi_runs += 1
    try:
        from runner.execution.resume import resume     # here: runner.execution imports this module
        outcome = resume(directory, source, out)       # a ResumeError is a RunnerError
        if generation != cleanup_generation:
            raise CancelledError(f"interrupted by runner_cleanup: the LAST file {outcome.last_id} was written "
                              f"to {outcome.directory}")
        keep_outcome(outcome)
        answer = outcome.last_id.encode()
    finally:
        abi_runs -= 1
    return answer


cdef object cancel_background_runs():
    """runner_cleanup: every run a C host started is cancelled and waited for, then forgotten."""
    background = sys.modules.get("runner.execution.background")
    if background is not None:
        background.RUNS.cancel_all(CLEANUP_WAIT_SECONDS)
        background.RUNS.clear()
    return None
