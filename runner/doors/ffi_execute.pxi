# The door of runner_execute_alt_file: runs a stored ALT file and keeps its LAST JSON, so
# runner_get_last_file_json works on it like on a generated one.

import sys
import time

cdef int abi_runs = 0                   # calls inside core_execute_alt_file; the GIL guards it
cdef long cleanup_generation = 0        # bumped by each runner_cleanup
CLEANUP_WAIT_SECONDS = 30.0


cdef public object core_execute_alt_file(const char *alt_id, const char *output_dir):
    # The executor waits for its tasks in Python (queue and event waits), which releases
    # the GIL: other threads' calls into the library proceed during a long run.
    global abi_runs
    cdef str key = c_text(alt_id, "alt_id")
    cdef AltFile alt = STORE.alt_file(key)
    cdef RunStore store = <RunStore>STORE
    cdef long generation = cleanup_generation
    directory = c_output_dir(output_dir)
    abi_runs += 1   # before the import, which may release the GIL: cleanup must wait for us
    try:
        # Here: runner.execution imports this module; its executor loads at the first run.
        from runner.execution import preflight
        from runner.execution.run import RunRequest, execute_request
        preflight.check(alt, directory)        # nothing runs, no AI call, if this fails
        outcome = execute_request(RunRequest(alt, directory))
        if generation != cleanup_generation:
            # runner_cleanup releases every string it finds outstanding: a LAST id handed
            # out now would dangle, so the caller gets an error that names the file instead.
            raise CancelledError(f"interrupted by runner_cleanup: pending tasks were cancelled and the LAST "
                              f"file {outcome.last_id} was written to {outcome.directory}")
        if store.alt_files.get(key) is alt:
            # Re-parsing the id during the run replaced the file and dropped its results:
            # the old version's results must not land on the new one.
            store.results[key] = dict(outcome.results)
        store.last_files[outcome.last_id] = outcome.json
        answer = outcome.last_id.encode()
        outcome = None
    finally:
        # Last step before the shim copies the answer with the GIL still held: once
        # cancel_runs_for_cleanup sees zero, no run can hand out a string any more.
        abi_runs -= 1
    return answer


cdef object cancel_runs_for_cleanup():
    """runner_cleanup during runs: interrupt them (pending tasks cancelled, running ones
    given the grace period), let them write their LAST files, wait until they returned."""
    global cleanup_generation
    cleanup_generation += 1
    deadline = time.monotonic() + CLEANUP_WAIT_SECONDS
    cdef bint first_call = True    # it waits for the grace period; later calls do not wait
    while time.monotonic() < deadline:
        # sys.modules holds runner.execution.run from the start of its import: a run that is
        # still importing it has no cancel_active_runs yet, and registers itself later.
        cancel = getattr(sys.modules.get("runner.execution.run"), "cancel_active_runs", None)
        if cancel is not None:
            if first_call:
                cancel()
                first_call = False
            else:
                cancel(0)
        if abi_runs == 0:
            break
        time.sleep(0.005)       # releases the GIL so the runs can finish
    return None
