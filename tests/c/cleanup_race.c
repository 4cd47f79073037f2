/*
 * runner_init while runner_cleanup is still waiting for a run.
 *
 * One thread runs a slow ALT file (a `sleep 3` command); the main thread calls
 * runner_cleanup on another thread, waits until cleanup has marked the library stopped
 * (a call fails with "not initialised"), then starts a new session at once: runner_init,
 * parse, generate a LAST file. Cleanup is still waiting for the run then. The new session
 * must not be wiped by that cleanup: its LAST id stays a live string, its ALT file and
 * LAST file stay stored (its init waits for the cleanup to end).
 *
 *     cleanup_race OUTPUT_DIR      prints "cleanup-race: ok" and exits 0 when every check held
 *
 * Needs RUNNER_ENABLE_SYSTEM_COMMANDS=true and RUNNER_SYSTEM_COMMAND_ALLOWLIST=sleep.
 */
#include <dirent.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner_ffi.h"

static const char *output_dir;
static int cleanup_finished; /* __atomic */
static int failures;

#define CHECK(condition)                                                                  \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

static void print_error(const char *what) {
    char *error = runner_get_last_error();
    fprintf(stderr, "%s: %s\n", what, error ? error : "(NULL)");
    runner_free_string(error);
}

static void *run_slow_file(void *arg) {
    (void)arg;
    /* Interrupted by the cleanup: NULL, with an error naming the LAST file written. */
    runner_free_string(runner_execute_alt_file("slow", output_dir));
    return NULL;
}

static void *clean_up(void *arg) {
    (void)arg;
    if (!runner_cleanup()) {
        print_error("cleanup during the run");
        failures++;
    }
    __atomic_store_n(&cleanup_finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* 1 once a call fails because the library is marked stopped. */
static int library_stopped(void) {
    if (runner_add_task_result("slow", "{\"task_id\":\"a\",\"status\":\"pending\"}")) return 0;
    char *error = runner_get_last_error();
    int stopped = error && strstr(error, "librunner is not initialised") != NULL;
    runner_free_string(error);
    return stopped;
}

/* 1 once a child process of ours runs `name` (the run has started its command). */
static int child_running(const char *name) {
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    int found = 0;
    while (proc != NULL && !found && (entry = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)entry->d_name[0])) continue;
        char path[300], command[64], state;
        int pid, parent;
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *stat = fopen(path, "r");
        if (stat == NULL) continue;
        if (fscanf(stat, "%d (%63[^)]) %c %d", &pid, command, &state, &parent) == 4)
            found = parent == getpid() && strcmp(command, name) == 0;
        fclose(stat);
    }
    if (proc != NULL) closedir(proc);
    return found;
}

int main(int argc, char **argv) {
    output_dir = argc > 1 ? argv[1] : "/tmp";
    CHECK(runner_init() == 1);
    CHECK(runner_parse_alt_file("{\"id\":\"slow\",\"title\":\"t\",\"tasks\":[{\"id\":\"a\",\"parameters\":"
                                "{\"task_type\":\"system_command\",\"command\":[\"sleep\",\"3\"]}}]}") == 1);
    /* A first, quick run loads the executor, so that the slow run starts at once. */
    CHECK(runner_parse_alt_file("{\"id\":\"warm\",\"title\":\"t\",\"tasks\":[{\"id\":\"a\",\"parameters\":"
                                "{\"task_type\":\"generic\"}}]}") == 1);
    char *warm = runner_execute_alt_file("warm", output_dir);
    CHECK(warm != NULL);
    runner_free_string(warm);
    pthread_t runner_thread, cleaner;
    pthread_create(&runner_thread, NULL, run_slow_file, NULL);
    /* Let the run start its command: a fixed sleep was too short under valgrind. */
    for (int waited = 0; waited < 30000 && !child_running("sleep"); waited++) usleep(1000);
    pthread_create(&cleaner, NULL, clean_up, NULL);
    while (!library_stopped()) usleep(1000);

    /* A new session while cleanup waits for the run (it gives the command 0.5 s of grace). */
    if (__atomic_load_n(&cleanup_finished, __ATOMIC_ACQUIRE)) {
        fprintf(stderr, "runner_cleanup ended before the new session began: the race was not exercised\n");
        failures++;
    }
    CHECK(runner_init() == 1);
    CHECK(runner_parse_alt_file("{\"id\":\"new\",\"title\":\"t\",\"tasks\":[{\"id\":\"a\"}]}") == 1);
    char *last_id = runner_generate_last_file("new", output_dir);
    CHECK(last_id != NULL);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", last_id ? last_id : "");
    pthread_join(cleaner, NULL);
    pthread_join(runner_thread, NULL);

    /* Everything of the new session survived the old cleanup. */
    CHECK(last_id != NULL && strcmp(last_id, copy) == 0 && strlen(copy) == 36 /* a UUIDv7 */
          && copy[8] == '-' && copy[13] == '-' && copy[14] == '7');
    runner_free_string(last_id);
    CHECK(runner_parse_alt_file("[]") == 0); /* a known error, to see that the free succeeds */
    runner_free_string(last_id);             /* a second time: refused only if the first was accepted */
    char *error = runner_get_last_error();
    CHECK(error != NULL && strstr(error, "runner_free_string: refused") == error);
    runner_free_string(error);
    if (!runner_add_task_result("new", "{\"task_id\":\"a\",\"status\":\"completed\"}")) {
        print_error("add result to the new session's ALT file");
        failures++;
    }
    char *json = runner_get_last_file_json(copy);
    if (json == NULL) {
        print_error("JSON of the new session's LAST file");
        failures++;
    }
    runner_free_string(json);
    CHECK(runner_cleanup() == 1);
    if (failures == 0) printf("cleanup-race: ok\n");
    return failures == 0 ? 0 : 1;
}
