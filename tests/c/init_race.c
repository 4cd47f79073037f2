/*
 * runner_init and runner_cleanup race with calls on other threads.
 *
 * Four threads parse and add results in a loop while a fifth cleans up and initialises
 * again. Each call must either succeed or fail with one of the errors that race can
 * explain (not initialised, or its ALT file discarded by the cleanup); no crash, no hang.
 * Workers read their last error only once the cleaner has stopped, as the header asks
 * (runner_cleanup releases every outstanding string).
 *
 *     init_race ITERATIONS      exit 0 when every call behaved, 1 otherwise
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

#define WORKERS 4

static long iterations;
static int racing = 1;
static pthread_barrier_t loops_done, cleaner_stopped;

typedef struct {
    int number;
    long successes;
    long failures;
    int unexplained;
} worker;

/* 1 if this thread's last error is one the race explains, or none at all. */
static int explained_error(const char *alt_id) {
    char *error = runner_get_last_error();
    char unknown[160];
    snprintf(unknown, sizeof unknown,
             "runner_add_task_result: unknown ALT file '%s' (parse it first with runner_parse_alt_file)", alt_id);
    int explained = error != NULL &&
                    (strcmp(error, "") == 0 || strcmp(error, unknown) == 0 ||
                     strcmp(error, "runner_parse_alt_file: librunner is not initialised: call runner_init() first") == 0 ||
                     strcmp(error, "runner_add_task_result: librunner is not initialised: call runner_init() first") == 0);
    if (!explained) fprintf(stderr, "unexplained error: %s\n", error ? error : "(NULL)");
    runner_free_string(error);
    return explained;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    char alt_id[32], alt_json[256];
    snprintf(alt_id, sizeof alt_id, "race_%d", w->number);
    snprintf(alt_json, sizeof alt_json,
             "{\"id\":\"%s\",\"title\":\"race\",\"tasks\":[{\"id\":\"a\",\"dependencies\":null}]}", alt_id);
    for (long i = 0; i < iterations; i++) {
        runner_init();
        if (runner_parse_alt_file(alt_json)) w->successes++; else w->failures++;
        if (runner_add_task_result(alt_id, "{\"task_id\":\"a\",\"status\":\"completed\"}")) w->successes++;
        else w->failures++;
    }
    pthread_barrier_wait(&loops_done);
    pthread_barrier_wait(&cleaner_stopped);
    w->unexplained = !explained_error(alt_id);
    return NULL;
}

static void *run_cleaner(void *arg) {
    (void)arg;
    long rounds = 0;
    while (__atomic_load_n(&racing, __ATOMIC_ACQUIRE)) {
        if (!runner_cleanup()) fprintf(stderr, "runner_cleanup failed\n");
        runner_init();
        rounds++;
    }
    printf("cleanups: %s\n", rounds > 0 ? "some" : "none");
    return NULL;
}

int main(int argc, char **argv) {
    iterations = argc > 1 ? atol(argv[1]) : 1000;
    pthread_t workers[WORKERS], cleaner;
    worker state[WORKERS];
    if (!runner_init()) return 1;
    pthread_barrier_init(&loops_done, NULL, WORKERS + 1);
    pthread_barrier_init(&cleaner_stopped, NULL, WORKERS + 1);
    pthread_create(&cleaner, NULL, run_cleaner, NULL);
    for (int t = 0; t < WORKERS; t++) {
        state[t] = (worker){.number = t};
        pthread_create(&workers[t], NULL, run_worker, &state[t]);
    }
    pthread_barrier_wait(&loops_done);
    __atomic_store_n(&racing, 0, __ATOMIC_RELEASE);
    pthread_join(cleaner, NULL);
    pthread_barrier_wait(&cleaner_stopped);
    for (int t = 0; t < WORKERS; t++) pthread_join(workers[t], NULL);

    /* After the race: the library works as if freshly initialised. */
    int ok = 1;
    ok &= runner_init() == 1;
    ok &= runner_parse_alt_file("{\"id\":\"after\",\"title\":\"t\",\"tasks\":[{\"id\":\"a\"}]}") == 1;
    ok &= runner_add_task_result("after", "{\"task_id\":\"a\",\"status\":\"completed\"}") == 1;
    char *last_id = runner_generate_last_file("after", argc > 2 ? argv[2] : "/tmp");
    ok &= last_id != NULL;
    runner_free_string(last_id);
    ok &= runner_cleanup() == 1;
    long successes = 0, failures = 0;
    for (int t = 0; t < WORKERS; t++) {
        successes += state[t].successes;
        failures += state[t].failures;
        ok &= !state[t].unexplained;
    }
    printf("calls: %ld, after the race: %s\n", successes + failures, ok ? "ok" : "BROKEN");
    return ok ? 0 : 1;
}
