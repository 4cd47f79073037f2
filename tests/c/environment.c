/*
 * A C host changing a setting with setenv() and unsetenv() after runner_init: the next call
 * reads it (include/runner_ffi.h, "Environment"), though CPython copied the environment
 * into os.environ when it started.
 *
 *     environment      prints one "<step>: ok" line per step and "environment: ok"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

static const char TWO_TASKS[] = "{\"id\":\"env\",\"title\":\"Env\",\"tasks\":["
                                "{\"id\":\"a\",\"dependencies\":null},{\"id\":\"b\",\"dependencies\":[\"a\"]}]}";
static int failures;

/* Parses TWO_TASKS; the outcome must be `expected` (1 or 0), the error contain `needle`. */
static void parse(const char *step, int expected, int code, const char *needle) {
    int ok = runner_parse_alt_file(TWO_TASKS);
    int found = runner_get_last_error_code();
    char *error = runner_get_last_error();
    const char *text = error ? error : "(NULL)";
    if (ok != expected || found != code || (needle && !strstr(text, needle))) {
        fprintf(stderr, "%s: returned %d, code %d (%s)\n", step, ok, found, text);
        failures++;
    } else {
        printf("%s: ok\n", step);
    }
    runner_free_string(error);
}

int main(void) {
    if (!runner_init()) {
        char *error = runner_get_last_error();
        fprintf(stderr, "runner_init: %s\n", error ? error : "(NULL)");
        return 1;
    }
    parse("default limits", 1, RUNNER_OK, NULL);
    setenv("RUNNER_MAX_TASKS", "1", 1);
    parse("RUNNER_MAX_TASKS=1 set after runner_init", 0, RUNNER_ERROR_INVALID_ALT, "RUNNER_MAX_TASKS");
    setenv("RUNNER_MAX_TASKS", "none", 1);
    parse("RUNNER_MAX_TASKS=none", 0, RUNNER_ERROR_CONFIGURATION, "RUNNER_MAX_TASKS='none'");
    setenv("RUNNER_MAX_TASKS", "2", 1);
    parse("RUNNER_MAX_TASKS=2", 1, RUNNER_OK, NULL);
    setenv("RUNNER_MAX_TASKS", "1", 1);
    unsetenv("RUNNER_MAX_TASKS");
    parse("RUNNER_MAX_TASKS unset", 1, RUNNER_OK, NULL);
    if (!runner_cleanup()) failures++;
    setenv("RUNNER_LOG_LEVEL", "loud", 1);      /* read by runner_init: a second init sees it */
    if (runner_init()) {
        fprintf(stderr, "runner_init after setenv RUNNER_LOG_LEVEL=loud succeeded\n");
        failures++;
    } else {
        printf("RUNNER_LOG_LEVEL=loud before a second runner_init: ok\n");
    }
    if (failures) return 1;
    printf("environment: ok\n");
    return 0;
}
