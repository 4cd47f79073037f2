/*
 * A C host that also looks inside the embedded CPython (so it includes Python.h, which a
 * user program never needs), for what the C ABI alone cannot show.
 *
 *     embedded_probe stdout       Python writes to stdout, then the host exits without
 *                                 runner_cleanup: the text must still arrive (a pipe).
 *     embedded_probe threads N    N short-lived threads each call the library and exit:
 *                                 no crash, and the thread states they got are deleted.
 *     embedded_probe nogil        while this thread holds the GIL, another thread reads
 *                                 its error, frees strings and gets the version: none of
 *                                 them may wait for the GIL (it would hang).
 */
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

static int count_thread_states(void) {
    PyGILState_STATE gil = PyGILState_Ensure();
    int count = 0;
    for (PyThreadState *t = PyInterpreterState_ThreadHead(PyInterpreterState_Main()); t; t = PyThreadState_Next(t))
        count++;
    PyGILState_Release(gil);
    return count;
}

static void *call_once(void *arg) {
    (void)arg;
    /* A failing call: it takes the GIL and sets this thread's error buffer. */
    runner_add_task_result("no_such_alt", "{\"task_id\":\"a\",\"status\":\"completed\"}");
    return NULL;
}

static void *use_gil_free_functions(void *arg) {
    int *ok = arg;
    runner_free_string(runner_get_last_error());
    char *version = runner_get_version();
    *ok = version != NULL && strstr(version, "\"name\":\"librunner\"") != NULL;
    runner_free_string(version);
    runner_free_string(version); /* refused: still no GIL */
    char *error = runner_get_last_error();
    *ok = *ok && error != NULL && strncmp(error, "runner_free_string: refused ", 28) == 0;
    runner_free_string(error);
    return NULL;
}

int main(int argc, char **argv) {
    if (!runner_init()) {
        char *error = runner_get_last_error();
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "stdout") == 0) {
        PyGILState_STATE gil = PyGILState_Ensure();
        /* No newline: even a line-buffered stdout would keep this. */
        PyRun_SimpleString("import sys; sys.stdout.write('written by the embedded Python')");
        PyGILState_Release(gil);
        return 0; /* no runner_cleanup */
    }
    if (argc > 2 && strcmp(argv[1], "threads") == 0) {
        int before = count_thread_states();
        int n = atoi(argv[2]);
        for (int i = 0; i < n; i++) {
            pthread_t thread;
            pthread_create(&thread, NULL, call_once, NULL);
            pthread_join(thread, NULL);
        }
        int after = count_thread_states();
        printf("thread states before: %d, after %d threads: %d\n", before, n, after);
        return after == before ? 0 : 1;
    }
    if (argc > 1 && strcmp(argv[1], "nogil") == 0) {
        int ok = 0;
        pthread_t thread;
        PyGILState_STATE gil = PyGILState_Ensure(); /* held until the other thread is done */
        pthread_create(&thread, NULL, use_gil_free_functions, &ok);
        pthread_join(thread, NULL);
        PyGILState_Release(gil);
        printf("without the GIL: %s\n", ok ? "ok" : "wrong results");
        return ok ? 0 : 1;
    }
    fprintf(stderr, "usage: %s stdout | threads N | nogil\n", argv[0]);
    return 2;
}
