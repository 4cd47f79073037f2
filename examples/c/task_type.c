/*
 * A C host with task types of its own: librunner schedules the tasks, retries and times
 * them out, writes the journal and the LAST file; the host only says what a task does.
 *
 * Build and run:
 *     cc task_type.c $(python -m runner config --cflags --libs) -lpthread -o task_type
 *     ./task_type OUTPUT_DIR [TASKS]
 *
 * It registers three types and runs one file that uses them, 8 tasks at a time:
 *   word_count  counts the words of parameters.text. The first 8 calls wait for each
 *               other: they can only all arrive if handlers really run in parallel
 *               (librunner calls them without the GIL).
 *   flaky       fails its first attempt without a message, and its task's retry_count
 *               gives it a second one.
 *   patient     works until runner_task_cancelled says stop (its timeout_seconds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner_ffi.h"

#define PARALLEL 8

static long calls;      /* every handler call, counted through user_data */
static int arrived;     /* word_count calls that reached the meeting point */

static int report_error(const char *what) {
    char *error = runner_get_last_error();
    fprintf(stderr, "%s failed: %s\n", what, error);
    runner_free_string(error);
    return 1;
}

static void pause_briefly(void) {
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
}

/* A real host parses runner_task_json with its JSON library (cJSON, jansson, ...); this
 * example finds parameters.text by hand to stay self-contained. */
static int word_count(runner_task *task, void *user_data) {
    __atomic_add_fetch((long *)user_data, 1, __ATOMIC_RELAXED);
    if (__atomic_add_fetch(&arrived, 1, __ATOMIC_ACQ_REL) <= PARALLEL) {
        while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < PARALLEL && !runner_task_cancelled(task))
            pause_briefly();
    }
    const char *text = strstr(runner_task_json(task), "\"text\":\"");
    if (text == NULL) {
        runner_task_set_error(task, "parameters.text is missing");
        return 1;
    }
    int words = 0, in_word = 0;
    for (const char *p = text + 8; *p != '\0' && *p != '"'; p++) {
        if (*p == ' ') in_word = 0;
        else if (!in_word) in_word = 1, words++;
    }
    char output[64];
    snprintf(output, sizeof output, "{\"words\":%d,\"parallel\":%s}", words,
             __atomic_load_n(&arrived, __ATOMIC_ACQUIRE) >= PARALLEL ? "true" : "false");
    return runner_task_set_output(task, output) ? 0 : 1;
}

static int flaky(runner_task *task, void *user_data) {
    __atomic_add_fetch((long *)user_data, 1, __ATOMIC_RELAXED);
    if (strstr(runner_task_json(task), "\"attempt\":1}") != NULL) return 3; /* "handler returned 3" */
    if (runner_task_set_output(task, "{not json")) return 1;                 /* refused, and said why */
    char *why = runner_get_last_error();
    int named = strstr(why, "runner_task_set_output") != NULL;
    runner_free_string(why);
    return named && runner_task_set_output(task, "\"second time lucky\"") ? 0 : 1;
}

static int patient(runner_task *task, void *user_data) {
    __atomic_add_fetch((long *)user_data, 1, __ATOMIC_RELAXED);
    while (!runner_task_cancelled(task)) pause_briefly();
    runner_task_set_error(task, "stopped when asked");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR [TASKS]\n", argv[0]);
        return 2;
    }
    int count = argc > 2 ? atoi(argv[2]) : 32;
    if (count < PARALLEL) count = PARALLEL;
    setenv("RUNNER_MAX_CONCURRENT_TASKS", "8", 0);
    if (!runner_init()) return report_error("runner_init");

    /* What is refused, and says so. */
    if (runner_register_task_type(NULL, word_count, NULL) || runner_register_task_type("", word_count, NULL) ||
        runner_register_task_type("generic", word_count, NULL) || runner_register_task_type("x", NULL, NULL) ||
        runner_task_json(NULL) != NULL || runner_task_set_output(NULL, "1") || runner_task_cancelled(NULL)) {
        fprintf(stderr, "a bad registration or a NULL task was accepted\n");
        return 1;
    }
    char *refusal = runner_get_last_error();
    printf("refusals: %s\n", strstr(refusal, "runner_task_set_output") ? "ok" : refusal);
    runner_free_string(refusal);

    if (!runner_register_task_type("word_count", word_count, &calls) ||
        !runner_register_task_type("flaky", flaky, &calls) || !runner_register_task_type("patient", patient, &calls))
        return report_error("runner_register_task_type");

    size_t size = 256 + (size_t)count * 160;
    char *alt = malloc(size);
    if (alt == NULL) return 1;
    int used = snprintf(alt, size, "{\"id\":\"c_types\",\"title\":\"C task types\",\"tasks\":[");
    for (int i = 0; i < count; i++)
        used += snprintf(alt + used, size - used,
                         "{\"id\":\"w%d\",\"description\":\"count\",\"timeout_seconds\":120,"
                         "\"parameters\":{\"task_type\":\"word_count\",\"text\":\"task %d has %s words\"}},",
                         i, i, i % 2 ? "five" : "four or more");
    snprintf(alt + used, size - used,
             "{\"id\":\"flaky\",\"description\":\"f\",\"dependencies\":[\"w0\"],\"retry_count\":1,"
             "\"parameters\":{\"task_type\":\"flaky\"}},"
             "{\"id\":\"patient\",\"description\":\"p\",\"dependencies\":[\"w0\"],\"timeout_seconds\":0.3,"
             "\"parameters\":{\"task_type\":\"patient\"}}]}");
    int parsed = runner_parse_alt_file(alt);
    free(alt);
    if (!parsed) return report_error("runner_parse_alt_file");

    char *last_id = runner_execute_alt_file("c_types", argv[1]);
    if (last_id == NULL) return report_error("runner_execute_alt_file");
    printf("LAST file: %s\n", last_id);
    printf("handler calls: %ld\n", __atomic_load_n(&calls, __ATOMIC_RELAXED));
    runner_free_string(last_id);
    return runner_cleanup() ? 0 : report_error("runner_cleanup");
}
