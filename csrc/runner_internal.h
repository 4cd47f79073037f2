/*
 * Internal interfaces of the C shim (csrc/). Nothing here is exported from librunner.so:
 * the library is compiled with -fvisibility=hidden and csrc/librunner.map lists the exports.
 */
#ifndef RUNNER_INTERNAL_H
#define RUNNER_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#define RUNNER_API __attribute__((visibility("default")))

/* ---- errors.c: the per-thread last error ------------------------------------------ */

/* Sets this thread's error to "<fn>: <formatted message>" and its code to `code` (a
 * runner_error_code of runner_ffi.h). Needs no GIL. */
void runner_error_set(const char *fn, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A call that succeeded: this thread's error code becomes RUNNER_OK (the message stays,
 * as runner_ffi.h documents). Needs no GIL. */
void runner_error_succeeded(void);

/* This thread's error code: RUNNER_OK after a call that succeeded. Needs no GIL. */
int runner_error_code_now(void);

/* Sets this thread's error from the pending Python exception and clears it. Needs the GIL.
 * A RunnerError gives its message and its class's error_code; MemoryError
 * RUNNER_ERROR_OUT_OF_MEMORY; anything else is a bug, RUNNER_ERROR_INTERNAL, whose
 * traceback goes to the log (runner.errors.internal_error). */
void runner_error_from_python(const char *fn);

/* The same for a failure that is not the library's bug but its surroundings' (a Python
 * environment without the package): "<fn>: <context>: <Type>: <message>; <advice>". */
void runner_error_from_python_in(const char *fn, const char *context, const char *advice);

/* This thread's error text, owned by the thread; "" when none. Valid until the next call
 * that sets an error on this thread. Needs no GIL. */
const char *runner_error_text(size_t *length);

/* Remembers the core's RunnerError class, so that its messages and codes are passed on as
 * they are, and runner.errors.internal_error, which logs a bug's traceback. */
void runner_error_set_family(PyObject *runner_error_type, PyObject *internal_error);

/* ---- strings.c: the registry of strings handed to callers ------------------------- */

/* A NUL-terminated copy of data[0..length) that runner_free_string accepts; NULL when out
 * of memory. Needs no GIL. */
char *runner_string_new(const char *data, size_t length);

/* Releases s if the library handed it out and it is still outstanding: 1. Otherwise 0, and
 * nothing is touched. A released string is quarantined (freed some releases later), so
 * that malloc does not hand its address to a new string while a stale free may follow. */
int runner_string_release(char *s);

/* Frees every outstanding string, and the quarantine. Returns how many were outstanding. */
size_t runner_string_release_all(void);

/* ---- interpreter.c: CPython, the GIL and the core module -------------------------- */

/* Starts or attaches to CPython and loads the core, once. 1 on success, 0 with the
 * thread's error set. Safe to call from any thread, concurrently and repeatedly. */
int runner_interpreter_start(const char *fn);

/* Serialises runner_init and runner_cleanup, so that an init never interleaves with a
 * cleanup's release of the state and strings. Waiting releases the GIL if this thread holds
 * it (the holder of the lock may need the GIL), so it cannot deadlock against a call. */
void runner_lifecycle_lock(void);
void runner_lifecycle_unlock(void);

/* 1 once runner_interpreter_start succeeded and until runner_interpreter_mark_stopped. */
int runner_interpreter_ready(void);
void runner_interpreter_mark_stopped(void);

/* Takes and releases the GIL from any thread. A thread CPython has never seen gets a
 * thread state that lives as long as the thread (creating one per call costs ~7x more). */
PyGILState_STATE runner_gil_enter(void);
void runner_gil_leave(PyGILState_STATE state);

/* ---- task_types.c: task types written in C (runner_register_task_type) ------------- */

#include "runner_ffi.h"

/* One attempt of a C task type. It lives inside a core object (runner/doors/ffi_task_types.pxi)
 * that the attempt's cancellation callback keeps alive, so `cancelled` may be set from
 * another thread even after the handler returned. */
struct runner_task {
    const char *json;       /* the attempt as JSON: bytes owned by the core object */
    PyObject *output;       /* a new reference set by runner_task_set_output, or NULL */
    char *error;            /* malloc'd by runner_task_set_error, or NULL */
    int cancelled;          /* atomic: set by runner_task_mark_cancelled */
};

/* Calls handler(task, user_data); the caller has released the GIL. Returns what it returns. */
int runner_task_call(runner_task_handler handler, void *user_data, runner_task *task);

/* Sets task->cancelled (atomically: the handler's thread reads it without a lock). */
void runner_task_mark_cancelled(runner_task *task);

#endif
