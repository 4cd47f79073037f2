/*
 * Eight threads hammer the C ABI at once, mixing successes and failures.
 *
 * Every failure a thread causes names something only that thread uses (its ALT id, a task
 * id or LAST id with the thread and iteration numbers, malformed JSON whose error position
 * depends on the thread), so a message leaking from another thread is a mismatch. Threads
 * also free strings handed out on other threads, and try foreign and double frees.
 *
 *     stress ITERATIONS OUTPUT_DIR      exit 0 when every check held, 1 otherwise
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

#define THREADS 8

static pthread_barrier_t start_line;
static long iterations;
static const char *output_dir;
static char *mailbox[THREADS]; /* strings handed from thread t to thread t+1 to free */

typedef struct {
    int number;
    long checks;
    long mismatches;
} worker;

static void mismatch(worker *w, const char *what, const char *expected, const char *found) {
    w->mismatches++;
    if (w->mismatches <= 5)
        fprintf(stderr, "thread %d: %s\n  expected: %s\n  found:    %s\n", w->number, what, expected,
                found ? found : "(NULL)");
}

/* Checks that this thread's last error is `expected` (or starts with it when prefix). */
static void expect_error(worker *w, const char *what, const char *expected, int prefix) {
    char *error = runner_get_last_error();
    w->checks++;
    if (error == NULL || (prefix ? strncmp(error, expected, strlen(expected)) != 0 : strcmp(error, expected) != 0))
        mismatch(w, what, expected, error);
    runner_free_string(error);
}

static void expect(worker *w, const char *what, int condition) {
    w->checks++;
    if (!condition) mismatch(w, what, "true", "false");
}

static void *run_worker(void *arg) {
    worker *w = arg;
    int t = w->number;
    char alt_id[32], alt_json[256], text[128], expected[512];
    snprintf(alt_id, sizeof alt_id, "alt_t%d", t);
    snprintf(alt_json, sizeof alt_json,
             "{\"id\":\"%s\",\"title\":\"thread %d\",\"tasks\":[{\"id\":\"a\",\"dependencies\":null},"
             "{\"id\":\"b\",\"dependencies\":[\"a\"]}]}",
             alt_id, t);

    pthread_barrier_wait(&start_line);
    expect(w, "runner_init from all threads at once", runner_init() == 1);
    expect(w, "parse own ALT file", runner_parse_alt_file(alt_json) == 1);
    char *last_error = strdup("");

    for (long i = 0; i < iterations; i++) {
        switch (i % 8) {
        case 0: /* a success leaves the thread's last error as it was */
            expect(w, "add a result", runner_add_task_result(alt_id, "{\"task_id\":\"a\",\"status\":\"completed\"}") == 1);
            expect_error(w, "error kept after a success", last_error, 0);
            break;
        case 1:
            snprintf(text, sizeof text, "missing_t%d_%ld", t, i);
            expect(w, "unknown ALT id", runner_add_task_result(text, "{\"task_id\":\"a\",\"status\":\"completed\"}") == 0);
            snprintf(expected, sizeof expected,
                     "runner_add_task_result: unknown ALT file '%s' (parse it first with runner_parse_alt_file)", text);
            expect_error(w, "unknown ALT id", expected, 0);
            free(last_error);
            last_error = strdup(expected);
            break;
        case 2:
            snprintf(text, sizeof text, "{\"task_id\":\"x_t%d_%ld\",\"status\":\"failed\"}", t, i);
            expect(w, "unknown task", runner_add_task_result(alt_id, text) == 0);
            snprintf(expected, sizeof expected,
                     "runner_add_task_result: unknown task 'x_t%d_%ld' in ALT file '%s'", t, i, alt_id);
            expect_error(w, "unknown task", expected, 0);
            free(last_error);
            last_error = strdup(expected);
            break;
        case 3: /* malformed JSON; the reported position depends on the thread */
            snprintf(text, sizeof text, "{%*snot json", t + 1, "");
            expect(w, "malformed JSON", runner_add_task_result(alt_id, text) == 0);
            snprintf(expected, sizeof expected,
                     "runner_add_task_result: /: invalid JSON: unexpected character, expected a string key: "
                     "line 1 column %d (char %d) (1 error in task result)", t + 3, t + 2);
            expect_error(w, "malformed JSON", expected, 0);
            free(last_error);
            last_error = strdup(expected);
            break;
        case 4:
            expect(w, "NULL alt_id", runner_add_task_result(NULL, "{}") == 0);
            expect_error(w, "NULL alt_id", "runner_add_task_result: argument 'alt_id' is NULL", 0);
            expect(w, "NULL json", runner_parse_alt_file(NULL) == 0);
            expect_error(w, "NULL json", "runner_parse_alt_file: argument 'json' is NULL", 0);
            free(last_error);
            last_error = strdup("runner_parse_alt_file: argument 'json' is NULL");
            break;
        case 5: {
            snprintf(text, sizeof text, "last_t%d_%ld", t, i);
            char *json = runner_get_last_file_json(text);
            expect(w, "unknown LAST id", json == NULL);
            snprintf(expected, sizeof expected,
                     "runner_get_last_file_json: unknown LAST file '%s' (not generated since runner_init)", text);
            expect_error(w, "unknown LAST id", expected, 0);
            free(last_error);
            last_error = strdup(expected);
            break;
        }
        case 6: { /* hand a string to the next thread, free the one the previous thread left */
            char *version = runner_get_version();
            expect(w, "version", version != NULL && strncmp(version, "{\"name\":\"librunner\"", 19) == 0);
            char *left = __atomic_exchange_n(&mailbox[(t + 1) % THREADS], version, __ATOMIC_ACQ_REL);
            runner_free_string(left);
            expect_error(w, "a string from another thread is freed without complaint", last_error, 0);
            break;
        }
        case 7: { /* foreign and double frees are refused, and say so */
            char *copy = runner_get_version();
            runner_free_string(copy);
            runner_free_string(copy); /* double free: refused, the heap untouched */
            expect_error(w, "double free refused", "runner_free_string: refused ", 1);
            char foreign[] = "not from librunner";
            runner_free_string(foreign);
            expect_error(w, "foreign pointer refused", "runner_free_string: refused ", 1);
            expect(w, "foreign string untouched", strcmp(foreign, "not from librunner") == 0);
            char *heap = malloc(32);
            runner_free_string(heap);
            free(heap); /* still ours: the library must not have freed it */
            free(last_error);
            last_error = runner_get_last_error();
            char *owned = strdup(last_error);
            runner_free_string(last_error);
            last_error = owned;
            break;
        }
        }
    }

    char *last_id = runner_generate_last_file(alt_id, output_dir);
    expect(w, "generate a LAST file", last_id != NULL);
    if (last_id != NULL) {
        char *json = runner_get_last_file_json(last_id);
        snprintf(expected, sizeof expected, "\"alt_file_id\":\"%s\"", alt_id);
        expect(w, "the LAST file is this thread's", json != NULL && strstr(json, expected) != NULL);
        runner_free_string(json);
        runner_free_string(last_id);
    }
    free(last_error);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ITERATIONS OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    iterations = atol(argv[1]);
    output_dir = argv[2];
    pthread_t threads[THREADS];
    worker workers[THREADS];
    pthread_barrier_init(&start_line, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){.number = t};
        pthread_create(&threads[t], NULL, run_worker, &workers[t]);
    }
    long checks = 0, mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        checks += workers[t].checks;
        mismatches += workers[t].mismatches;
    }
    for (int t = 0; t < THREADS; t++) runner_free_string(mailbox[t]);
    int cleaned = runner_cleanup();
    pthread_barrier_destroy(&start_line);
    printf("stress: %d threads, %ld iterations each, %ld checks, %ld mismatches\n", THREADS, iterations, checks,
           mismatches);
    return mismatches == 0 && cleaned == 1 ? 0 : 1;
}
