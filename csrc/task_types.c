/*
 * Task types written in C: the doors of runner_register_task_type and of the runner_task_*
 * functions a handler calls (include/runner_ffi.h).
 *
 * The core (runner/doors/ffi_task_types.pxi) calls a handler through runner_task_call with
 * the GIL released, so C handlers of different tasks run in parallel. Hence the task_*
 * functions take no GIL, except runner_task_set_output, which parses the JSON with the
 * core's parser (the output must obey the same rules as any task result).
 */
#include <stdlib.h>
#include <string.h>

#include "librunner.h"
#include "runner_ffi.h"
#include "runner_internal.h"

int runner_task_call(runner_task_handler handler, void *user_data, runner_task *task) {
    return handler(task, user_data);
}

void runner_task_mark_cancelled(runner_task *task) { __atomic_store_n(&task->cancelled, 1, __ATOMIC_RELEASE); }

RUNNER_API int runner_register_task_type(const char *type_name, runner_task_handler handler, void *user_data) {
    static const char fn[] = "runner_register_task_type";
    if (!runner_interpreter_ready()) {
        runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "librunner is not initialised: call runner_init() first");
        return 0;
    }
    if (type_name == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT, "argument 'type_name' is NULL");
        return 0;
    }
    if (handler == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT,
                         "argument 'handler' is NULL: give the function that runs the type's tasks");
        return 0;
    }
    PyGILState_STATE gil = runner_gil_enter();
    int ok = 0;
    if (!runner_interpreter_ready()) {
        runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "librunner is not initialised: call runner_init() first");
    } else {
        PyObject *result = core_register_task_type(type_name, (void *)handler, user_data);
        if (result == NULL) {
            runner_error_from_python(fn);
        } else {
            Py_DECREF(result);
            runner_error_succeeded();
            ok = 1;
        }
    }
    runner_gil_leave(gil);
    return ok;
}

RUNNER_API const char *runner_task_json(runner_task *task) {
    if (task == NULL) {
        runner_error_set("runner_task_json", RUNNER_ERROR_INVALID_ARGUMENT, "argument 'task' is NULL");
        return NULL;
    }
    runner_error_succeeded();
    return task->json;
}

RUNNER_API int runner_task_set_output(runner_task *task, const char *output_json) {
    static const char fn[] = "runner_task_set_output";
    if (task == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT, "argument 'task' is NULL");
        return 0;
    }
    if (output_json == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT,
                         "argument 'output_json' is NULL (for a null output, pass \"null\")");
        return 0;
    }
    /* A handler runs on a librunner worker thread, which CPython knows: taking the GIL
     * restores its own thread state. */
    PyGILState_STATE gil = runner_gil_enter();
    PyObject *value = core_task_output(output_json);
    int ok = value != NULL;
    if (ok) {
        Py_XDECREF(task->output);
        task->output = value;
        runner_error_succeeded();
    } else {
        runner_error_from_python(fn);
    }
    runner_gil_leave(gil);
    return ok;
}

RUNNER_API int runner_task_set_error(runner_task *task, const char *message) {
    static const char fn[] = "runner_task_set_error";
    if (task == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT, "argument 'task' is NULL");
        return 0;
    }
    char *copy = NULL;
    if (message != NULL) {
        copy = strdup(message);
        if (copy == NULL) {
            runner_error_set(fn, RUNNER_ERROR_OUT_OF_MEMORY, "out of memory");
            return 0;
        }
    }
    free(task->error);
    task->error = copy;
    runner_error_succeeded();
    return 1;
}

RUNNER_API int runner_task_cancelled(const runner_task *task) {
    if (task == NULL) return 0;
    return __atomic_load_n(&task->cancelled, __ATOMIC_ACQUIRE);
}
