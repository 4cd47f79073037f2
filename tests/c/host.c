/*
 * A C host with no Python of its own, checking how librunner behaves inside it.
 *
 *     host signals        runner_init leaves SIGINT, SIGPIPE and SIGXFSZ as the host set them
 *     host before-init    every function but the documented few fails cleanly before runner_init
 *     host reinit         runner_init -> runner_cleanup -> runner_init works; state is gone
 *     host huge           a 4 MB id: its error is reported whole, and later ones are exact
 *     host init           just runner_init; prints the error when it fails
 *
 * Prints "<scenario>: ok" and exits 0 when every check held; otherwise says which failed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_ffi.h"

static int failures;

#define CHECK(condition)                                                     \
    do {                                                                     \
        if (!(condition)) {                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* 1 if this thread's last error is exactly `expected`. */
static int error_is(const char *expected) {
    char *error = runner_get_last_error();
    int same = error != NULL && strcmp(error, expected) == 0;
    if (!same) fprintf(stderr, "expected error: %s\nfound:          %s\n", expected, error ? error : "(NULL)");
    runner_free_string(error);
    return same;
}

/* 1 if this thread's last error starts with `prefix`. */
static int error_starts(const char *prefix) {
    char *error = runner_get_last_error();
    int same = error != NULL && strncmp(error, prefix, strlen(prefix)) == 0;
    if (!same) fprintf(stderr, "expected error: %s...\nfound:          %s\n", prefix, error ? error : "(NULL)");
    runner_free_string(error);
    return same;
}

static const char ALT[] =
    "{\"id\":\"host_alt\",\"title\":\"Host\",\"tasks\":[{\"id\":\"a\",\"dependencies\":null},"
    "{\"id\":\"b\",\"dependencies\":[\"a\"]}]}";
static const char RESULT[] = "{\"task_id\":\"a\",\"status\":\"completed\"}";

static volatile sig_atomic_t interrupted;
static void on_interrupt(int signal_number) { (void)signal_number; interrupted = 1; }

static int scenario_signals(void) {
    /* CPython's own handlers would take SIGINT (when at its default) and ignore SIGPIPE and
     * SIGXFSZ; an embedded library must leave all of them as the host set them. */
    struct sigaction ours = {0}, now;
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);

    CHECK(runner_init() == 1);
    CHECK(runner_parse_alt_file(ALT) == 1); /* the core is loaded and has run */

    sigaction(SIGINT, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);
    sigaction(SIGPIPE, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);
    sigaction(SIGXFSZ, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);

    /* A handler the host installs afterwards is the one that runs. */
    ours.sa_handler = on_interrupt;
    sigemptyset(&ours.sa_mask);
    sigaction(SIGINT, &ours, NULL);
    CHECK(runner_add_task_result("host_alt", RESULT) == 1);
    sigaction(SIGINT, NULL, &now);
    CHECK(now.sa_handler == on_interrupt);
    raise(SIGINT);
    CHECK(interrupted == 1);
    CHECK(runner_cleanup() == 1);
    return 0;
}

static int scenario_before_init(void) {
    static const char not_ready[] = "librunner is not initialised: call runner_init() first";
    char expected[256];
#define EXPECT_NOT_READY(fn)                                        \
    snprintf(expected, sizeof expected, "%s: %s", fn, not_ready); \
    CHECK(error_is(expected))

    CHECK(runner_parse_alt_file(ALT) == 0);
    EXPECT_NOT_READY("runner_parse_alt_file");
    CHECK(runner_add_task_result("host_alt", RESULT) == 0);
    EXPECT_NOT_READY("runner_add_task_result");
    CHECK(runner_generate_last_file("host_alt", "/nonexistent") == NULL);
    EXPECT_NOT_READY("runner_generate_last_file");
    CHECK(runner_get_last_file_json("last_x") == NULL);
    EXPECT_NOT_READY("runner_get_last_file_json");
    CHECK(runner_batch_process("[\"host_alt\"]", NULL) == NULL);
    EXPECT_NOT_READY("runner_batch_process");

    /* The documented few work without runner_init. */
    char *version = runner_get_version();
    CHECK(version != NULL && strstr(version, "\"name\":\"librunner\"") != NULL);
    runner_free_string(version);
    runner_free_string(NULL);
    CHECK(runner_cleanup() == 1);
    CHECK(runner_parse_alt_file(ALT) == 0); /* cleanup did not initialise either */
    EXPECT_NOT_READY("runner_parse_alt_file");
    return 0;
}

static int scenario_reinit(const char *output_dir) {
    CHECK(runner_init() == 1);
    CHECK(runner_init() == 1); /* repeated: returns 1 at once */
    CHECK(runner_parse_alt_file(ALT) == 1);
    CHECK(runner_add_task_result("host_alt", RESULT) == 1);
    char *last_id = runner_generate_last_file("host_alt", output_dir);
    CHECK(last_id != NULL);
    char saved_id[128];
    snprintf(saved_id, sizeof saved_id, "%s", last_id ? last_id : "");
    char *outstanding = runner_get_version(); /* released by runner_cleanup */
    CHECK(outstanding != NULL);

    CHECK(runner_cleanup() == 1);
    runner_free_string(last_id); /* released by cleanup already: refused, no crash */
    CHECK(error_starts("runner_free_string: refused ")); /* ...and the refusal is reported */
    CHECK(runner_add_task_result("host_alt", RESULT) == 0);
    CHECK(error_is("runner_add_task_result: librunner is not initialised: call runner_init() first"));

    CHECK(runner_init() == 1);
    char *json = runner_get_last_file_json(saved_id);
    CHECK(json == NULL);
    char expected[256];
    snprintf(expected, sizeof expected,
             "runner_get_last_file_json: unknown LAST file '%s' (not generated since runner_init)", saved_id);
    CHECK(error_is(expected));
    CHECK(runner_add_task_result("host_alt", RESULT) == 0);
    CHECK(error_is("runner_add_task_result: unknown ALT file 'host_alt' (parse it first with runner_parse_alt_file)"));
    CHECK(runner_parse_alt_file(ALT) == 1);
    CHECK(runner_add_task_result("host_alt", RESULT) == 1);
    last_id = runner_generate_last_file("host_alt", output_dir);
    CHECK(last_id != NULL && strcmp(last_id, saved_id) != 0);
    runner_free_string(last_id);
    CHECK(runner_cleanup() == 1);
    return 0;
}

static int scenario_huge(void) {
    enum { SIZE = 4 << 20 };
    CHECK(runner_init() == 1);
    char *id = malloc(SIZE + 1);
    memset(id, 'h', SIZE);
    id[SIZE] = '\0';
    CHECK(runner_add_task_result(id, RESULT) == 0);
    char *error = runner_get_last_error();
    static const char before[] = "runner_add_task_result: unknown ALT file '";
    static const char after[] = "' (parse it first with runner_parse_alt_file)";
    CHECK(error != NULL && strlen(error) == strlen(before) + SIZE + strlen(after));
    CHECK(error != NULL && strncmp(error, before, strlen(before)) == 0);
    CHECK(error != NULL && strcmp(error + strlen(before) + SIZE, after) == 0);
    runner_free_string(error);
    free(id);
    CHECK(runner_add_task_result("small", NULL) == 0);
    CHECK(error_is("runner_add_task_result: argument 'result_json' is NULL"));
    CHECK(runner_cleanup() == 1);
    return 0;
}

static int scenario_init(void) {
    if (runner_init()) return 0;
    char *error = runner_get_last_error();
    printf("%s\n", error);
    runner_free_string(error);
    return 1;
}

int main(int argc, char **argv) {
    const char *scenario = argc > 1 ? argv[1] : "";
    int status;
    if (strcmp(scenario, "signals") == 0) status = scenario_signals();
    else if (strcmp(scenario, "before-init") == 0) status = scenario_before_init();
    else if (strcmp(scenario, "reinit") == 0 && argc > 2) status = scenario_reinit(argv[2]);
    else if (strcmp(scenario, "huge") == 0) status = scenario_huge();
    else if (strcmp(scenario, "init") == 0) status = scenario_init();
    else {
        fprintf(stderr, "usage: %s signals|before-init|reinit OUTPUT_DIR|huge|init\n", argv[0]);
        return 2;
    }
    if (status != 0 || failures != 0) return 1;
    printf("%s: ok\n", scenario);
    return 0;
}
