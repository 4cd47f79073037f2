/*
 * Calls per second through the C ABI from a C host, beside a floor measured in the same
 * process: a loop that only takes and releases the GIL (PyGILState_Ensure/Release) on a
 * thread that keeps its thread state, which is the least any GIL-taking entry point can cost.
 * (Python.h is included for that floor only; a user program never needs it.)
 *
 *     ffi_overhead ROUNDS CALLS_PER_THREAD
 *
 * Prints one line per measurement: "<case> <threads> <calls> <seconds>". Rounds interleave
 * the cases so that machine noise hits them alike; run.py builds this and summarises.
 */
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner_ffi.h"

enum bench_case { GIL_FLOOR, ADD_TASK_RESULT, LAST_ERROR_AND_FREE, CASES };
static const char *case_names[CASES] = {"gil_floor", "add_task_result", "last_error_free"};

static const char RESULT[] = "{\"task_id\":\"task1\",\"status\":\"completed\"}";

typedef struct {
    enum bench_case which;
    long calls;
    int number;
    pthread_barrier_t *start_line;
    int failed;
    double started, finished; /* taken by the worker: the main thread may not be running */
} job;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *run_job(void *arg) {
    job *j = arg;
    char alt_id[32];
    snprintf(alt_id, sizeof alt_id, "bench_%d", j->number);
    /* Keep a thread state for the thread's life, as the library does for its callers. */
    PyGILState_STATE kept = PyGILState_Ensure();
    PyThreadState *saved = PyEval_SaveThread();
    /* Warm up, and leave a realistic message in this thread's error buffer. */
    if (!runner_add_task_result(alt_id, RESULT)) j->failed = 1;
    if (runner_add_task_result(alt_id, "{\"task_id\":\"no_such_task\",\"status\":\"completed\"}")) j->failed = 1;

    pthread_barrier_wait(j->start_line);
    j->started = now();
    switch (j->which) {
    case GIL_FLOOR:
        for (long i = 0; i < j->calls; i++) {
            PyGILState_STATE gil = PyGILState_Ensure();
            PyGILState_Release(gil);
        }
        break;
    case ADD_TASK_RESULT:
        for (long i = 0; i < j->calls; i++)
            if (!runner_add_task_result(alt_id, RESULT)) j->failed = 1;
        break;
    case LAST_ERROR_AND_FREE:
        for (long i = 0; i < j->calls; i++) runner_free_string(runner_get_last_error());
        break;
    default:
        break;
    }
    j->finished = now();
    PyEval_RestoreThread(saved);
    PyGILState_Release(kept);
    return NULL;
}

static double measure(enum bench_case which, int threads, long calls) {
    pthread_t ids[2];
    job jobs[2];
    pthread_barrier_t start_line;
    pthread_barrier_init(&start_line, NULL, threads + 1);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.which = which, .calls = calls, .number = t, .start_line = &start_line};
        pthread_create(&ids[t], NULL, run_job, &jobs[t]);
    }
    pthread_barrier_wait(&start_line);
    double first_start = 0, last_finish = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        if (jobs[t].failed) {
            fprintf(stderr, "%s: a call failed\n", case_names[which]);
            exit(1);
        }
        if (t == 0 || jobs[t].started < first_start) first_start = jobs[t].started;
        if (t == 0 || jobs[t].finished > last_finish) last_finish = jobs[t].finished;
    }
    double seconds = last_finish - first_start;
    pthread_barrier_destroy(&start_line);
    return seconds;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ROUNDS CALLS_PER_THREAD\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]);
    long calls = atol(argv[2]);
    if (!runner_init()) {
        char *error = runner_get_last_error();
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    for (int t = 0; t < 2; t++) {
        char alt[256];
        snprintf(alt, sizeof alt,
                 "{\"id\":\"bench_%d\",\"title\":\"FFI benchmark\",\"tasks\":["
                 "{\"id\":\"task1\",\"dependencies\":null},{\"id\":\"task2\",\"dependencies\":[\"task1\"]}]}",
                 t);
        if (!runner_parse_alt_file(alt)) return 1;
    }
    for (int r = 0; r < rounds; r++)
        for (int threads = 1; threads <= 2; threads++)
            for (int c = 0; c < CASES; c++) {
                double seconds = measure((enum bench_case)c, threads, calls);
                printf("%s %d %ld %.9f\n", case_names[c], threads, calls * threads, seconds);
                fflush(stdout);
            }
    runner_cleanup();
    return 0;
}
