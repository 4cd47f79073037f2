/*
 * Two runs a C host drives: started at once, watched through their events, one
 * cancelled, the other waited for; then runner_resume of the cancelled one.
 *
 *     runs OUTPUT_DIR      prints "runs: ok" and exits 0 when every check held
 *
 * "slow" has a `sleep 30` command: it is cancelled once its events show the command
 * started. "quick" (three generic tasks in a chain and a streamed echo answer) is
 * waited for: first with a timeout of 0 ms while it may still run, then without one.
 * Needs RUNNER_ENABLE_SYSTEM_COMMANDS=true and RUNNER_SYSTEM_COMMAND_ALLOWLIST=sleep.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner_ffi.h"

static int failures;

#define CHECK(condition)                                                                  \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

static char *error_text(void) {
    static char copy[512];
    char *error = runner_get_last_error();
    snprintf(copy, sizeof copy, "%s", error ? error : "(NULL)");
    runner_free_string(error);
    return copy;
}

static const char SLOW[] =
    "{\"id\":\"slow\",\"title\":\"Slow\",\"tasks\":["
    "{\"id\":\"first\",\"description\":\"f\",\"parameters\":{\"task_type\":\"generic\"}},"
    "{\"id\":\"sleeper\",\"description\":\"s\",\"dependencies\":[\"first\"],"
    "\"parameters\":{\"task_type\":\"system_command\",\"command\":[\"sleep\",\"30\"]}},"
    "{\"id\":\"never\",\"description\":\"n\",\"dependencies\":[\"sleeper\"]}]}";

static const char QUICK[] =
    "{\"id\":\"quick\",\"title\":\"Quick\",\"tasks\":["
    "{\"id\":\"a\",\"description\":\"a\",\"parameters\":{\"task_type\":\"generic\"}},"
    "{\"id\":\"b\",\"description\":\"b\",\"dependencies\":[\"a\"],\"parameters\":{\"task_type\":\"generic\"}},"
    "{\"id\":\"c\",\"description\":\"c\",\"dependencies\":[\"b\"],\"parameters\":{\"task_type\":\"generic\"}},"
    "{\"id\":\"talk\",\"description\":\"one two three\",\"parameters\":{\"stream\":true}}]}";

/* Polls run_id's events until one contains `needle`; returns the last seq seen, or -1. */
static long long wait_for_event(const char *run_id, const char *needle, long long after) {
    for (int i = 0; i < 3000; i++) {
        char *events = runner_run_events(run_id, after);
        if (events == NULL) {
            fprintf(stderr, "runner_run_events: %s\n", error_text());
            return -1;
        }
        int found = strstr(events, needle) != NULL;
        /* The seq of the last event in the array, to poll from there next. */
        const char *last = NULL, *cursor = events;
        while ((cursor = strstr(cursor, "\"seq\":")) != NULL) last = cursor++;
        if (last != NULL) after = atoll(last + 6);
        runner_free_string(events);
        if (found) return after;
        usleep(10000);
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: runs OUTPUT_DIR\n");
        return 2;
    }
    const char *out = argv[1];
    CHECK(runner_init() == 1);
    CHECK(runner_parse_alt_file(SLOW) == 1);
    CHECK(runner_parse_alt_file(QUICK) == 1);

    char *slow = runner_run_start("slow", out);
    char *quick = runner_run_start("quick", out);
    CHECK(slow != NULL && quick != NULL);
    if (slow == NULL || quick == NULL) return 1;
    CHECK(strncmp(slow, "run_", 4) == 0 && strcmp(slow, quick) != 0);

    /* The slow run's command has started: cancel that run only. */
    long long seen = wait_for_event(slow, "\"task_started\",\"task_id\":\"sleeper\"", 0);
    CHECK(seen > 0);
    char *waited = runner_run_wait(slow, 0);
    CHECK(waited == NULL && strcmp(error_text(), "runner_run_wait: still running") == 0);
    CHECK(runner_run_cancel(slow) == 1);
    CHECK(runner_run_cancel(slow) == 1);            /* twice: still fine */

    /* The quick run: its streamed pieces arrive as events; then its LAST id. */
    CHECK(wait_for_event(quick, "\"task_output\"", 0) > 0);
    char *quick_last = runner_run_wait(quick, -1);
    CHECK(quick_last != NULL);
    char *status = runner_run_status(quick);
    CHECK(status != NULL && strstr(status, "\"state\":\"completed\"") != NULL);
    CHECK(status != NULL && strstr(status, "\"completed\":4") != NULL);
    CHECK(status != NULL && quick_last != NULL && strstr(status, quick_last) != NULL);
    runner_free_string(status);
    if (quick_last != NULL) {
        char *json = runner_get_last_file_json(quick_last);
        CHECK(json != NULL && strstr(json, "echo: one two three") != NULL);
        runner_free_string(json);
    }

    char *slow_last = runner_run_wait(slow, 60000);
    CHECK(slow_last != NULL);
    status = runner_run_status(slow);
    CHECK(status != NULL && strstr(status, "\"state\":\"interrupted\"") != NULL);
    CHECK(status != NULL && strstr(status, "\"sleeper\":\"cancelled\"") != NULL);
    CHECK(status != NULL && strstr(status, "\"first\":\"completed\"") != NULL);
    runner_free_string(status);

    /* Resume the cancelled run from its directory, with the command made quick. */
    if (slow_last != NULL) {
        char directory[4096];
        snprintf(directory, sizeof directory, "%s/%s", out, slow_last);
        char edited[sizeof SLOW];
        memcpy(edited, SLOW, sizeof SLOW);
        char *thirty = strstr(edited, "\"30\"");
        if (thirty != NULL) memcpy(thirty, "\"0\" ", 4);
        char *resumed = runner_resume(directory, edited, NULL);
        CHECK(resumed != NULL);
        if (resumed == NULL) fprintf(stderr, "runner_resume: %s\n", error_text());
        if (resumed != NULL) {
            char *json = runner_get_last_file_json(resumed);
            CHECK(json != NULL && strstr(json, slow_last) != NULL);          /* resumed_from */
            CHECK(json != NULL && strstr(json, "\"success_rate\":1.0") != NULL);
            runner_free_string(json);
        }
        runner_free_string(resumed);
    }

    /* Errors name the function and the run. */
    CHECK(runner_run_status("run_nope") == NULL);
    CHECK(strcmp(error_text(), "runner_run_status: unknown run 'run_nope'") == 0);
    CHECK(runner_run_cancel(NULL) == 0);
    CHECK(runner_resume("/nonexistent/dir", NULL, NULL) == NULL);
    CHECK(strstr(error_text(), "runner_resume: /nonexistent/dir: no journal.jsonl") != NULL);

    runner_free_string(slow);
    runner_free_string(quick);
    runner_free_string(quick_last);
    runner_free_string(slow_last);

    /* A run still going when the host cleans up: cancelled, its LAST file written. */
    CHECK(runner_parse_alt_file(SLOW) == 1);
    char *left = runner_run_start("slow", out);
    CHECK(left != NULL && wait_for_event(left, "\"task_id\":\"sleeper\"", 0) > 0);
    runner_free_string(left);
    CHECK(runner_cleanup() == 1);
    if (failures == 0) printf("runs: ok\n");
    return failures == 0 ? 0 : 1;
}
