/*
 * The C ABI of include/runner_ffi.h: thin doors onto the Cython core.
 *
 * Each entry point checks its arguments, takes the GIL, calls one core_* function
 * (runner/doors/ffi.pxi), turns a Python exception into this thread's error, and copies
 * a returned string into the registry. No logic of the Runner Service lives here.
 */
#include <stdint.h>
#include <string.h>

#include "build_info.h"
#include "librunner.h"
#include "runner_ffi.h"
#include "runner_internal.h"

#define NOT_INITIALISED "librunner is not initialised: call runner_init() first"
#define RUNNER_STRINGIFY_(x) #x
#define RUNNER_STRINGIFY(x) RUNNER_STRINGIFY_(x)

#define REQUIRE_READY(fn, failure)                       \
    do {                                                 \
        if (!runner_interpreter_ready()) {               \
            runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "%s", NOT_INITIALISED); \
            return failure;                              \
        }                                                \
    } while (0)

#define REQUIRE_ARGUMENT(fn, name, failure)                  \
    do {                                                     \
        if ((name) == NULL) {                                \
            runner_error_set(fn, RUNNER_ERROR_INVALID_ARGUMENT, "argument '" #name "' is NULL"); \
            return failure;                                  \
        }                                                    \
    } while (0)

/* Takes the GIL for a call into the core and brings os.environ up to date with the C
 * environment: 1, or 0 with the thread's error set.
 * REQUIRE_READY looked without the GIL, so a runner_cleanup may have begun since. Cleanup
 * marks the library stopped before it takes the GIL, so looking again with the GIL held
 * means no call starts on state that cleanup is discarding. One atomic load, no lock:
 * it cannot deadlock and costs nothing next to taking the GIL. */
static int enter_core(const char *fn, PyGILState_STATE *gil) {
    *gil = runner_gil_enter();
    if (!runner_interpreter_ready()) {
        runner_gil_leave(*gil);
        runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "%s", NOT_INITIALISED);
        return 0;
    }
    /* The call reads its settings from the environment as it is now: a host's setenv since
     * the last call is copied into os.environ (runner/core/host_environment.pxi). */
    if (core_sync_environment() < 0) {
        runner_error_from_python(fn);
        runner_gil_leave(*gil);
        return 0;
    }
    return 1;
}

/* Finishes a call whose core function returned a bytes object (or NULL on error). */
static char *hand_out(const char *fn, PyObject *result) {
    char *copy = NULL;
    if (result == NULL) {
        runner_error_from_python(fn);
    } else if (!runner_interpreter_ready()) {
        /* A runner_cleanup began while the core worked (Python gives up the GIL now and
         * then): it releases every string it finds, so one made now could be freed under
         * the caller. With the GIL held, a ready library means cleanup has not yet taken
         * the GIL: the copy is made before its work, like that of a call that returned. */
        runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "%s", NOT_INITIALISED);
    } else if (!PyBytes_Check(result)) {
        runner_error_set(fn, RUNNER_ERROR_INTERNAL, "internal error: the core returned %s, not bytes",
                         Py_TYPE(result)->tp_name);
    } else {
        copy = runner_string_new(PyBytes_AS_STRING(result), (size_t)PyBytes_GET_SIZE(result));
        if (copy == NULL) runner_error_set(fn, RUNNER_ERROR_OUT_OF_MEMORY, "out of memory");
        else runner_error_succeeded();
    }
    Py_XDECREF(result);
    return copy;
}

/* Finishes a call whose core function returned any object (or NULL on error). */
static int succeeded(const char *fn, PyObject *result) {
    if (result == NULL) {
        runner_error_from_python(fn);
        return 0;
    }
    Py_DECREF(result);
    runner_error_succeeded();
    return 1;
}

RUNNER_API int runner_init(void) {
    int ok = runner_interpreter_start("runner_init");
    if (ok) runner_error_succeeded();
    return ok;
}

RUNNER_API char *runner_get_last_error(void) {
    size_t length;
    const char *text = runner_error_text(&length);
    return runner_string_new(text, length);
}

RUNNER_API int runner_get_last_error_code(void) { return runner_error_code_now(); }

RUNNER_API void runner_free_string(char *s) {
    if (s == NULL) return;
    if (!runner_string_release(s))
        runner_error_set("runner_free_string", RUNNER_ERROR_INVALID_ARGUMENT,
                         "refused %p: it was not handed out by librunner, or was freed already "
                         "(with ctypes, declare the restype c_void_p to free the original)",
                         (void *)s);
}

RUNNER_API int runner_parse_alt_file(const char *json) {
    static const char fn[] = "runner_parse_alt_file";
    REQUIRE_READY(fn, 0);
    REQUIRE_ARGUMENT(fn, json, 0);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return 0;
    int ok = succeeded(fn, core_parse_alt_file(json));
    runner_gil_leave(gil);
    return ok;
}

RUNNER_API int runner_add_task_result(const char *alt_id, const char *result_json) {
    static const char fn[] = "runner_add_task_result";
    REQUIRE_READY(fn, 0);
    REQUIRE_ARGUMENT(fn, alt_id, 0);
    REQUIRE_ARGUMENT(fn, result_json, 0);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return 0;
    int ok = succeeded(fn, core_add_task_result(alt_id, result_json));
    runner_gil_leave(gil);
    return ok;
}

RUNNER_API char *runner_generate_last_file(const char *alt_id, const char *output_dir) {
    static const char fn[] = "runner_generate_last_file";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, alt_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *last_id = hand_out(fn, core_generate_last_file(alt_id, output_dir));
    runner_gil_leave(gil);
    return last_id;
}

RUNNER_API char *runner_get_last_file_json(const char *last_id) {
    static const char fn[] = "runner_get_last_file_json";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, last_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *json = hand_out(fn, core_get_last_file_json(last_id));
    runner_gil_leave(gil);
    return json;
}

RUNNER_API char *runner_get_warnings(const char *alt_id) {
    static const char fn[] = "runner_get_warnings";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, alt_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *json = hand_out(fn, core_get_warnings(alt_id));
    runner_gil_leave(gil);
    return json;
}

RUNNER_API char *runner_batch_process(const char *alt_ids_json, const char *output_dir) {
    static const char fn[] = "runner_batch_process";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, alt_ids_json, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *json = hand_out(fn, core_batch_process(alt_ids_json, output_dir));
    runner_gil_leave(gil);
    return json;
}

RUNNER_API int runner_cleanup(void) {
    static const char fn[] = "runner_cleanup";
    int ok = 1;
    /* Held throughout: core_cleanup may wait up to 30 s for runs (giving up the GIL), and a
     * runner_init in that time must not start a session whose state and strings this
     * cleanup would then discard. The init waits, and finds the library empty. */
    runner_lifecycle_lock();
    if (runner_interpreter_ready()) {
        runner_interpreter_mark_stopped(); /* before the GIL: see enter_core and hand_out */
        PyGILState_STATE gil = runner_gil_enter();
        ok = succeeded(fn, core_cleanup());
        runner_gil_leave(gil);
    }
    runner_string_release_all();
    runner_lifecycle_unlock();
    if (ok) runner_error_succeeded();
    return ok;
}

RUNNER_API char *runner_get_version(void) {
    static const char version[] =
        "{\"name\":\"librunner\",\"version\":\"" RUNNER_VERSION "\","
        "\"python\":\"" RUNNER_BUILD_PYTHON_VERSION "\","
        "\"cython\":\"" RUNNER_BUILD_CYTHON_VERSION "\","
        "\"abi\":" RUNNER_STRINGIFY(RUNNER_ABI_VERSION_MAJOR) ","
        "\"abi_version\":\"" RUNNER_ABI_VERSION "\"}";
    char *copy = runner_string_new(version, sizeof version - 1);
    if (copy == NULL) runner_error_set("runner_get_version", RUNNER_ERROR_OUT_OF_MEMORY, "out of memory");
    else runner_error_succeeded();
    return copy;
}

RUNNER_API char *runner_execute_alt_file(const char *alt_id, const char *output_dir) {
    static const char fn[] = "runner_execute_alt_file";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, alt_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *last_id = hand_out(fn, core_execute_alt_file(alt_id, output_dir));
    runner_gil_leave(gil);
    return last_id;
}

/* ---- runs a C host drives, and resume (runner/doors/ffi_runs.pxi) ------------------- */

RUNNER_API char *runner_run_start(const char *alt_id, const char *output_dir) {
    static const char fn[] = "runner_run_start";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, alt_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *run_id = hand_out(fn, core_run_start(alt_id, output_dir));
    runner_gil_leave(gil);
    return run_id;
}

RUNNER_API char *runner_run_status(const char *run_id) {
    static const char fn[] = "runner_run_status";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, run_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *status = hand_out(fn, core_run_status(run_id));
    runner_gil_leave(gil);
    return status;
}

RUNNER_API char *runner_run_events(const char *run_id, long long after) {
    static const char fn[] = "runner_run_events";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, run_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *events = hand_out(fn, core_run_events(run_id, after));
    runner_gil_leave(gil);
    return events;
}

RUNNER_API int runner_run_cancel(const char *run_id) {
    static const char fn[] = "runner_run_cancel";
    REQUIRE_READY(fn, 0);
    REQUIRE_ARGUMENT(fn, run_id, 0);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return 0;
    int ok = succeeded(fn, core_run_cancel(run_id));
    runner_gil_leave(gil);
    return ok;
}

RUNNER_API char *runner_run_wait(const char *run_id, int timeout_ms) {
    static const char fn[] = "runner_run_wait";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, run_id, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *last_id = hand_out(fn, core_run_wait(run_id, timeout_ms));
    runner_gil_leave(gil);
    return last_id;
}

RUNNER_API char *runner_resume(const char *last_dir, const char *alt_json, const char *output_dir) {
    static const char fn[] = "runner_resume";
    REQUIRE_READY(fn, NULL);
    REQUIRE_ARGUMENT(fn, last_dir, NULL);
    PyGILState_STATE gil;
    if (!enter_core(fn, &gil)) return NULL;
    char *last_id = hand_out(fn, core_resume(last_dir, alt_json, output_dir));
    runner_gil_leave(gil);
    return last_id;
}
