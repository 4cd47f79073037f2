/*
 * Every runner_error_code, from a C host: the failure that gives it, its code, and RUNNER_OK
 * after the next call that succeeds (the message stays, as the header says).
 *
 *     error_codes OUTPUT_DIR      prints "<CODE NAME>: ok" per code and "error codes: ok"
 *
 * A bug (RUNNER_ERROR_INTERNAL) and a MemoryError (RUNNER_ERROR_OUT_OF_MEMORY) are made by
 * replacing a method of the library's run registry from Python (this host includes Python.h,
 * like embedded_probe.c), since no input of the ABI causes them. Needs
 * RUNNER_ENABLE_SYSTEM_COMMANDS=true and RUNNER_SYSTEM_COMMAND_ALLOWLIST=sleep (a run that
 * is still going when it is waited for, and one that runner_cleanup cancels).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    static char copy[1024];
    char *error = runner_get_last_error();
    snprintf(copy, sizeof copy, "%s", error ? error : "(NULL)");
    runner_free_string(error);
    return copy;
}

/* The thread's code is `expected`, and reading the message (and freeing it) left it so. */
static void expect(int expected, const char *name) {
    int before = runner_get_last_error_code();
    const char *message = error_text();
    int after = runner_get_last_error_code();
    if (before != expected || after != expected) {
        fprintf(stderr, "%s: expected code %d, found %d then %d (%s)\n", name, expected, before, after, message);
        failures++;
    } else {
        printf("%s: ok\n", name);
    }
}

static void run_python(const char *code) {
    PyGILState_STATE gil = PyGILState_Ensure();
    if (PyRun_SimpleString(code) != 0) {
        fprintf(stderr, "python failed: %s\n", code);
        failures++;
    }
    PyGILState_Release(gil);
}

static const char ALT[] =
    "{\"id\":\"codes\",\"title\":\"Codes\",\"tasks\":[{\"id\":\"a\",\"dependencies\":null}]}";
static const char SLOW[] =
    "{\"id\":\"slow\",\"title\":\"Slow\",\"tasks\":[{\"id\":\"sleeper\",\"description\":\"s\","
    "\"parameters\":{\"task_type\":\"system_command\",\"command\":[\"sleep\",\"30\"]}}]}";

static const char *output_dir;
static int cancelled_code = -1;

static void *execute_slow(void *unused) {
    (void)unused;
    char *last_id = runner_execute_alt_file("slow", output_dir);
    cancelled_code = runner_get_last_error_code();
    if (last_id != NULL) fprintf(stderr, "the cancelled run handed out %s\n", last_id);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: error_codes OUTPUT_DIR\n");
        return 2;
    }
    output_dir = argv[1];
    char path[4096];

    CHECK(runner_get_last_error_code() == RUNNER_OK); /* no call yet */
    CHECK(runner_parse_alt_file(ALT) == 0);
    expect(RUNNER_ERROR_NOT_INITIALISED, "RUNNER_ERROR_NOT_INITIALISED");

    CHECK(runner_init() == 1);
    expect(RUNNER_OK, "RUNNER_OK");

    CHECK(runner_parse_alt_file(NULL) == 0);
    expect(RUNNER_ERROR_INVALID_ARGUMENT, "RUNNER_ERROR_INVALID_ARGUMENT");

    CHECK(runner_parse_alt_file("{\"id\":\"codes\",\"tasks\":[]") == 0);
    expect(RUNNER_ERROR_INVALID_ALT, "RUNNER_ERROR_INVALID_ALT");

    /* A success sets RUNNER_OK and leaves the message of the failure before it. */
    CHECK(runner_parse_alt_file(ALT) == 1);
    CHECK(runner_get_last_error_code() == RUNNER_OK);
    CHECK(strncmp(error_text(), "runner_parse_alt_file: ", 23) == 0);

    CHECK(runner_generate_last_file("no_such_file", output_dir) == NULL);
    expect(RUNNER_ERROR_NOT_FOUND, "RUNNER_ERROR_NOT_FOUND");

    CHECK(runner_add_task_result("codes", "{\"task_id\":\"a\",\"status\":\"perhaps\"}") == 0);
    expect(RUNNER_ERROR_INVALID_TASK_RESULT, "RUNNER_ERROR_INVALID_TASK_RESULT");

    /* The embedded Python read the environment when runner_init started it: a variable
     * changed since is set through os.environ. */
    run_python("import os; os.environ['RUNNER_ARCHIVE'] = 'rar'");
    CHECK(runner_generate_last_file("codes", output_dir) == NULL);
    expect(RUNNER_ERROR_CONFIGURATION, "RUNNER_ERROR_CONFIGURATION");
    run_python("import os; del os.environ['RUNNER_ARCHIVE']");

    snprintf(path, sizeof path, "%s/a_file", output_dir);
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    if (file) fclose(file);
    snprintf(path, sizeof path, "%s/a_file/below", output_dir);
    CHECK(runner_generate_last_file("codes", path) == NULL); /* a directory under a file */
    expect(RUNNER_ERROR_IO, "RUNNER_ERROR_IO");

    run_python("import os\n"   /* nothing listens on port 1 */
               "os.environ.update(RUNNER_NATS_URL='nats://127.0.0.1:1', RUNNER_NATS_REQUIRED='true')\n");
    char *written = runner_generate_last_file("codes", output_dir);
    CHECK(written == NULL);
    expect(RUNNER_ERROR_DELIVERY, "RUNNER_ERROR_DELIVERY");
    runner_free_string(written);
    run_python("import os\n"
               "del os.environ['RUNNER_NATS_URL'], os.environ['RUNNER_NATS_REQUIRED']\n");

    CHECK(runner_parse_alt_file(SLOW) == 1);
    char *run_id = runner_run_start("slow", output_dir);
    CHECK(run_id != NULL);
    CHECK(runner_run_wait(run_id, 0) == NULL);
    expect(RUNNER_ERROR_TIMEOUT, "RUNNER_ERROR_TIMEOUT");
    CHECK(runner_run_cancel(run_id) == 1);
    char *ended = runner_run_wait(run_id, -1);
    CHECK(ended != NULL);
    runner_free_string(ended);
    runner_free_string(run_id);

    run_python("import runner.execution.background as b\n"
               "b.Runs.get = lambda self, run_id: 1 / 0\n");
    CHECK(runner_run_status("any") == NULL);
    expect(RUNNER_ERROR_INTERNAL, "RUNNER_ERROR_INTERNAL");
    CHECK(strstr(error_text(), "internal error: ZeroDivisionError") != NULL);

    run_python("import runner.execution.background as b\n"
               "def short(self, run_id):\n"
               "    raise MemoryError()\n"
               "b.Runs.get = short\n");
    CHECK(runner_run_status("any") == NULL);
    expect(RUNNER_ERROR_OUT_OF_MEMORY, "RUNNER_ERROR_OUT_OF_MEMORY");

    /* A run that runner_cleanup interrupts: its caller, on another thread, gets CANCELLED. */
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, execute_slow, NULL) == 0);
    usleep(500 * 1000); /* the run is under way: its sleep has started */
    CHECK(runner_cleanup() == 1);
    pthread_join(thread, NULL);
    if (cancelled_code == RUNNER_ERROR_CANCELLED) printf("RUNNER_ERROR_CANCELLED: ok\n");
    else {
        fprintf(stderr, "RUNNER_ERROR_CANCELLED: found %d\n", cancelled_code);
        failures++;
    }
    expect(RUNNER_OK, "RUNNER_OK after runner_cleanup");

    if (failures) {
        fprintf(stderr, "error codes: %d check(s) failed\n", failures);
        return 1;
    }
    printf("error codes: ok\n");
    return 0;
}
