# Task types written in C (runner_register_task_type): the core's side of csrc/task_types.c.
#
# A C type is registered in the registry of task types (runner.execution.task_types) like
# any other, with a CTaskHandler as its run(ctx). The executor calls it on a worker
# thread; it calls the C handler with the GIL released, so C handlers run in parallel.

from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdlib cimport free

cdef extern from "runner_internal.h":
    ctypedef struct runner_task:
        const char *json
        PyObject *output
        char *error
        int cancelled
    ctypedef int (*runner_task_handler)(runner_task *task, void *user_data) noexcept nogil
    int runner_task_call(runner_task_handler handler, void *user_data, runner_task *task) nogil
    void runner_task_mark_cancelled(runner_task *task) nogil


cdef class CTaskAttempt:
    """The runner_task of one attempt. The attempt's Cancellation holds `cancel`, so the
    struct outlives the handler call for as long as a late cancel may touch it."""

    cdef runner_task task      # zeroed by the allocation
    cdef bytes json

    def cancel(self):
        runner_task_mark_cancelled(&self.task)

    def __dealloc__(self):
        Py_XDECREF(self.task.output)
        free(self.task.error)


cdef class CTaskHandler:
    """run(ctx) of a task type written in C."""

    cdef runner_task_handler handler
    cdef void *user_data
    cdef readonly str name

    def __call__(self, ctx):
        cdef CTaskAttempt attempt = CTaskAttempt.__new__(CTaskAttempt)
        cdef int returned
        parameters = ctx.parameters
        if "task_type" in parameters:
            parameters = {k: v for k, v in parameters.items() if k != "task_type"}
        attempt.json = orjson.dumps({
            "id": ctx.task.id if ctx.task is not None else None, "parameters": parameters,
            "deps": {k: v.get("output") for k, v in ctx.dependencies.items()}, "attempt": ctx.number})
        attempt.task.json = attempt.json        # a bytes object always ends with a NUL
        ctx.cancellation.on_cancel(attempt.cancel)
        # Without the GIL: the handler is the host's C code, and other handlers, the
        # executor's loop and the host's other calls go on while it works.
        with nogil:
            returned = runner_task_call(self.handler, self.user_data, &attempt.task)
        if returned != 0:
            from runner.execution.attempt import TaskFailure    # here: runner.execution imports this module
            if attempt.task.error != NULL:
                message = (<bytes>attempt.task.error).decode("utf-8", "replace")
            else:
                message = f"handler returned {returned}"
            raise TaskFailure(message)
        if attempt.task.output == NULL:
            return None
        return <object>attempt.task.output


cdef public object core_register_task_type(const char *type_name, void *handler, void *user_data):
    cdef str name = c_text(type_name, "type_name")
    cdef CTaskHandler run = CTaskHandler.__new__(CTaskHandler)
    run.handler = <runner_task_handler>handler
    run.user_data = user_data
    run.name = name
    from runner.execution import task_types     # here: runner.execution imports this module
    # A TaskTypeError (a built-in's name, a name that is not one) is a RunnerError.
    task_types.register(task_types.TaskType(name, "c", run=run, qualified_name=f"c:{name}"))
    return None


cdef public object core_task_output(const char *output_json):
    try:
        return orjson.loads(c_bytes(output_json))
    except orjson.JSONDecodeError as error:
        raise RunnerError(f"output_json is not JSON: {error}") from None


cdef object forget_c_task_types():
    """runner_cleanup: the host's handlers and user_data may go with it."""
    task_types = sys.modules.get("runner.execution.task_types")
    if task_types is not None:
        task_types.unregister_origin("c")
