/*
 * The per-thread last error.
 *
 * Each thread owns one growable buffer, reached through a pthread key whose destructor
 * frees it when the thread exits (a __thread pointer would leak it). Reading and
 * setting never take the GIL or a lock, so a failure on one thread never touches
 * another thread's message.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"
#include "runner_internal.h"

typedef struct {
    size_t length;
    size_t capacity;
    char text[];
} error_buffer;

static pthread_key_t error_key;
static pthread_once_t error_key_once = PTHREAD_ONCE_INIT;
/* The same pointer, for reading without a call: the key is what frees it at thread exit.
 * initial-exec keeps the access a single load (the library is dlopen'ed, and a pointer
 * fits the static TLS that glibc reserves for that). */
static __thread error_buffer *current __attribute__((tls_model("initial-exec")));
/* The thread's runner_error_code: set with each message, RUNNER_OK after a success. */
static __thread int current_code __attribute__((tls_model("initial-exec")));
static PyObject *runner_error_family; /* borrowed for the process lifetime: the core is never unloaded */
static PyObject *report_internal;     /* runner.errors.internal_error, the same */

static void free_error_buffer(void *buffer) {
    /* At thread exit. The thread's TLS outlives its key destructors, so forget the pointer
     * too: an error set by a later destructor starts a new buffer, freed in glibc's next round. */
    if (current == buffer) current = NULL;
    free(buffer);
}

static void create_error_key(void) { pthread_key_create(&error_key, free_error_buffer); }

#define SMALL_BUFFER 256
#define LARGE_BUFFER 65536

static error_buffer *thread_buffer(size_t needed) {
    pthread_once(&error_key_once, create_error_key);
    error_buffer *buffer = current;
    /* Reuse the buffer unless it is too small, or is large (an error quoting a huge input)
     * and the new message is small: a thread should not keep megabytes for its life. */
    if (buffer != NULL && buffer->capacity >= needed + 1 &&
        (buffer->capacity <= LARGE_BUFFER || needed + 1 > buffer->capacity / 4))
        return buffer;
    size_t capacity = needed + 1 < SMALL_BUFFER ? SMALL_BUFFER : needed + 1;
    error_buffer *grown = realloc(buffer, sizeof(error_buffer) + capacity);
    if (grown == NULL) return buffer; /* keep the old message rather than lose it */
    grown->capacity = capacity;
    if (buffer == NULL) { grown->length = 0; grown->text[0] = '\0'; }
    pthread_setspecific(error_key, grown);
    current = grown;
    return grown;
}

static void store(const char *fn, const char *message, size_t message_length) {
    size_t fn_length = strlen(fn);
    size_t total = fn_length + 2 + message_length;
    error_buffer *buffer = thread_buffer(total);
    if (buffer == NULL) return;
    if (buffer->capacity < total + 1) { /* could not grow: keep what fits */
        total = buffer->capacity - 1;
    }
    char *out = buffer->text;
    size_t n = 0;
    for (size_t i = 0; i < fn_length && n < total; i++) out[n++] = fn[i];
    if (n < total) out[n++] = ':';
    if (n < total) out[n++] = ' ';
    for (size_t i = 0; i < message_length && n < total; i++) out[n++] = message[i];
    out[n] = '\0';
    buffer->length = n;
}

void runner_error_set(const char *fn, int code, const char *fmt, ...) {
    current_code = code;
    char small[512];
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (length < 0) length = 0;
    char *whole = NULL;
    if ((size_t)length >= sizeof small) {
        /* Paths in a message can be long: format it again at its full size if memory allows. */
        whole = malloc((size_t)length + 1);
        if (whole != NULL) {
            va_start(args, fmt);
            vsnprintf(whole, (size_t)length + 1, fmt, args);
            va_end(args);
        } else {
            length = sizeof small - 1;
        }
    }
    store(fn, whole ? whole : small, (size_t)length);
    free(whole);
}

void runner_error_set_family(PyObject *runner_error_type, PyObject *internal_error) {
    runner_error_family = runner_error_type;
    report_internal = internal_error;
}

void runner_error_succeeded(void) { current_code = RUNNER_OK; }

int runner_error_code_now(void) { return current_code; }

/* The pending Python exception, fetched and cleared: its type (a new reference, NULL when
 * there was none) and its message, which lives as long as *text (a new reference or NULL).
 * With exception != NULL, *exception is the exception object holding its traceback (a new
 * reference or NULL). */
static PyObject *fetch_exception(const char **message, PyObject **text, PyObject **exception) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    *text = NULL;
    if (exception != NULL) *exception = NULL;
    *message = "failed without a Python exception";
    if (type == NULL) return NULL;
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL) PyException_SetTraceback(value, traceback);
    *text = value ? PyObject_Str(value) : NULL;
    *message = *text ? PyUnicode_AsUTF8(*text) : NULL;
    if (*message == NULL) {
        PyErr_Clear();
        *message = "(the error message could not be read)";
    }
    PyErr_Clear();
    if (exception != NULL) *exception = value;
    else Py_XDECREF(value);
    Py_XDECREF(traceback);
    return type;
}

/* The runner_error_code a RunnerError carries (its class's error_code, an int). */
static int family_code(PyObject *exception, PyObject *type) {
    PyObject *code = PyObject_GetAttrString(exception ? exception : type, "error_code");
    long value = code && PyLong_Check(code) ? PyLong_AsLong(code) : -1;
    Py_XDECREF(code);
    PyErr_Clear();
    return value > 0 && value <= INT32_MAX ? (int)value : RUNNER_ERROR_INTERNAL;
}

/* A bug: its traceback to the library's log, through runner.errors.internal_error. */
static void log_internal(PyObject *exception, const char *fn) {
    if (report_internal == NULL || exception == NULL) return;
    PyObject *made = PyObject_CallFunction(report_internal, "Os", exception, fn);
    Py_XDECREF(made);
    PyErr_Clear(); /* logging must never turn into a second error */
}

static const char *type_name(PyObject *type) { return PyType_Check(type) ? ((PyTypeObject *)type)->tp_name : "?"; }

void runner_error_from_python(const char *fn) {
    const char *message;
    PyObject *text, *exception, *type = fetch_exception(&message, &text, &exception);
    if (type == NULL) {
        runner_error_set(fn, RUNNER_ERROR_INTERNAL, "internal error: failed without a Python exception");
        return;
    }
    int ours = runner_error_family && PyType_Check(type) &&
               PyObject_IsSubclass(type, runner_error_family) == 1;
    PyErr_Clear();
    if (ours) {
        current_code = family_code(exception, type);
        store(fn, message, strlen(message));
    } else if (PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
        runner_error_set(fn, RUNNER_ERROR_OUT_OF_MEMORY, "out of memory");
    } else {
        /* A bug in the library rather than bad input: say so, with the exception type; the
         * log gets its traceback. */
        runner_error_set(fn, RUNNER_ERROR_INTERNAL, "internal error: %s: %.400s", type_name(type), message);
        log_internal(exception, fn);
    }
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(exception);
    Py_DECREF(type);
}

void runner_error_from_python_in(const char *fn, const char *context, const char *advice) {
    const char *message;
    PyObject *text, *type = fetch_exception(&message, &text, NULL);
    runner_error_set(fn, RUNNER_ERROR_NOT_INITIALISED, "%s: %s%s%.400s; %s", context,
                     type ? type_name(type) : "", type ? ": " : "", message,
                     advice);
    Py_XDECREF(text);
    Py_XDECREF(type);
}

const char *runner_error_text(size_t *length) {
    error_buffer *buffer = current;
    if (buffer == NULL) { *length = 0; return ""; }
    *length = buffer->length;
    return buffer->text;
}
