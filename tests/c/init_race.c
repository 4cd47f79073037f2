/*
 * runner_init and runner_cleanup race with calls on other threads.
 *
 * Four threads parse and add results in a loop while a fifth cleans up and initialises
 * again. Each call must either succeed or fail with one of the errors that race can
 * explain (not initialised, its ALT file discarded by the cleanup, or the cleanup ran during
 * the call, as the header documents); no crash, no hang.
 * Every failure's message is checked. runner_cleanup releases every outstanding string,
 * so, as the header asks, no cleanup runs while a worker holds one: a worker reads its
 * error under a read lock that the cleaner takes for writing. The calls themselves race.
 *
 *     init_race ITERATIONS      exit 0 when every call behaved, 1 otherwise
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

#define WORKERS 4

static long iterations;
static int racing = 1;
static pthread_barrier_t loops_done;
static pthread_rwlock_t strings_in_use; /* read: a worker holds a string; write: a cleanup */

typedef struct {
    int number;
    long successes;
    long failures;
    int unexplained;
} worker;

/* 1 if this thread's last error, after a failed call of fn, is one the race explains. */
static int explained_failure(const char *fn, const char *alt_id) {
    char not_initialised[160], unknown[160], overlapped[160];
    snprintf(not_initialised, sizeof not_initialised, "%s: librunner is not initialised: call runner_init() first", fn);
    snprintf(overlapped, sizeof overlapped, "%s: runner_cleanup ran during this call: nothing was kept", fn);
    snprintf(unknown, sizeof unknown,
             "runner_add_task_result: unknown ALT file '%s' (parse it first with runner_parse_alt_file)", alt_id);
    pthread_rwlock_rdlock(&strings_in_use);
    char *error = runner_get_last_error();
    int explained = error != NULL && (strcmp(error, not_initialised) == 0 || strcmp(error, unknown) == 0 ||
                                       strcmp(error, overlapped) == 0);
    if (!explained) fprintf(stderr, "unexplained error: %s\n", error ? error : "(NULL)");
    runner_free_string(error);
    pthread_rwlock_unlock(&strings_in_use);
    return explained;
}

static void count(worker *w, const char *fn, const char *alt_id, int succeeded) {
    if (succeeded) {
        w->successes++;
    } else {
        w->failures++;
        w->unexplained += !explained_failure(fn, alt_id);
    }
}

static void *run_worker(void *arg) {
    worker *w = arg;
    char alt_id[32], alt_json[256];
    snprintf(alt_id, sizeof alt_id, "race_%d", w->number);
    snprintf(alt_json, sizeof alt_json,
             "{\"id\":\"%s\",\"title\":\"race\",\"tasks\":[{\"id\":\"a\",\"dependencies\":null}]}", alt_id);
    for (long i = 0; i < iterations; i++) {
        runner_init();
        count(w, "runner_parse_alt_file", alt_id, runner_parse_alt_file(alt_json));
        count(w, "runner_add_task_result", alt_id,
              runner_add_task_result(alt_id, "{\"task_id\":\"a\",\"status\":\"completed\"}"));
    }
    pthread_barrier_wait(&loops_done);
    return NULL;
}

static void *run_cleaner(void *arg) {
    (void)arg;
    long rounds = 0;
    while (__atomic_load_n(&racing, __ATOMIC_ACQUIRE)) {
        pthread_rwlock_wrlock(&strings_in_use);
        if (!runner_cleanup()) fprintf(stderr, "runner_cleanup failed\n");
        pthread_rwlock_unlock(&strings_in_use);
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
    /* Writer first: workers read their errors often, and must not starve the cleaner. */
    pthread_rwlockattr_t preference;
    pthread_rwlockattr_init(&preference);
    pthread_rwlockattr_setkind_np(&preference, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&strings_in_use, &preference);
    pthread_create(&cleaner, NULL, run_cleaner, NULL);
    for (int t = 0; t < WORKERS; t++) {
        state[t] = (worker){.number = t};
        pthread_create(&workers[t], NULL, run_worker, &state[t]);
    }
    pthread_barrier_wait(&loops_done);
    __atomic_store_n(&racing, 0, __ATOMIC_RELEASE);
    pthread_join(cleaner, NULL);
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
