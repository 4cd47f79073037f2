/*
 * A C host and the watchdog process librunner starts with its first command
 * (runner/execution/watchdog.py). A C host keeps SIGPIPE's default action, may fork
 * without exec, and may wait for all its children.
 *
 *     watchdog_host OUT dead-watchdog   the watchdog is killed; the next command still runs
 *                                       (a warning, never a SIGPIPE): prints "second run: ok"
 *     watchdog_host OUT cleanup         runner_cleanup ends and reaps the watchdog: wait()
 *                                       finds no child left: prints "no children left"
 *     watchdog_host OUT fork-cleanup    forks a child without exec (it holds a copy of the
 *                                       watchdog's socket and sleeps), then runner_cleanup
 *                                       ends and reaps the watchdog: prints "cleaned", ends
 *                                       the child
 *     watchdog_host OUT fork            forks a child without exec (it holds a copy of the
 *                                       watchdog's socket and sleeps), starts a run of
 *                                       `sleep 4242`, prints "ready <child pid>" and waits
 *                                       for the test to kill -9 it
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner_ffi.h"

static const char ECHO[] = "{\"id\":\"echo\",\"title\":\"echo\",\"tasks\":[{\"id\":\"c\",\"description\":\"d\","
                           "\"parameters\":{\"task_type\":\"system_command\",\"command\":[\"echo\",\"hi\"]}}]}";
static const char SLEEP[] = "{\"id\":\"sleep\",\"title\":\"sleep\",\"tasks\":[{\"id\":\"s\",\"description\":\"d\","
                            "\"timeout_seconds\":9000,"
                            "\"parameters\":{\"task_type\":\"system_command\",\"command\":[\"sleep\",\"4242\"]}}]}";

static int fail(const char *step) {
    char *error = runner_get_last_error();
    fprintf(stderr, "%s: %s\n", step, error ? error : "(NULL)");
    runner_free_string(error);
    return 1;
}

/* The host's child whose command line names watchdog_process.py; 0 if none. */
static pid_t watchdog_pid(void) {
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    pid_t found = 0;
    while (proc && (entry = readdir(proc)) != NULL) {
        char path[300], line[4096];
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *stat = fopen(path, "r");
        if (!stat) continue;
        int parent = 0;
        if (fgets(line, sizeof line, stat)) {
            char *end = strrchr(line, ')');
            if (end) sscanf(end + 4, "%d", &parent);
        }
        fclose(stat);
        if (parent != getpid()) continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        FILE *cmdline = fopen(path, "r");
        if (!cmdline) continue;
        size_t size = fread(line, 1, sizeof line - 1, cmdline);
        fclose(cmdline);
        for (size_t i = 0; i < size; i++) if (line[i] == '\0') line[i] = ' ';
        line[size] = '\0';
        if (strstr(line, "watchdog_process.py")) found = (pid_t)atoi(entry->d_name);
    }
    if (proc) closedir(proc);
    return found;
}

static int run_echo(const char *out) {
    char *last = runner_execute_alt_file("echo", out);
    if (!last) return 0;
    runner_free_string(last);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: watchdog_host OUT dead-watchdog|cleanup|fork-cleanup|fork\n");
        return 2;
    }
    const char *out = argv[1], *mode = argv[2];
    if (!runner_init()) return fail("runner_init");
    if (!runner_parse_alt_file(ECHO) || !runner_parse_alt_file(SLEEP)) return fail("runner_parse_alt_file");
    if (!run_echo(out)) return fail("first run");
    pid_t watchdog = watchdog_pid();
    if (watchdog == 0) {
        fprintf(stderr, "no watchdog after a command ran\n");
        return 1;
    }
    if (strcmp(mode, "dead-watchdog") == 0) {
        kill(watchdog, SIGKILL);
        waitpid(watchdog, NULL, 0);
        if (!run_echo(out)) return fail("second run");
        printf("second run: ok\n");
        return runner_cleanup() ? 0 : fail("runner_cleanup");
    }
    if (strcmp(mode, "cleanup") == 0) {
        if (!runner_cleanup()) return fail("runner_cleanup");
        alarm(60);      /* a wait that never ends is the failure: SIGALRM ends the program */
        while (wait(NULL) > 0) {}
        if (errno != ECHILD) {
            perror("wait");
            return 1;
        }
        printf("no children left\n");
        return 0;
    }
    if (strcmp(mode, "fork-cleanup") == 0) {
        pid_t child = fork();
        if (child == 0) {       /* a helper of the host: no exec, no librunner call */
            sleep(600);
            _exit(0);
        }
        int cleaned = runner_cleanup();
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        if (!cleaned) return fail("runner_cleanup");
        if (waitpid(watchdog, NULL, WNOHANG) != -1 || errno != ECHILD) {
            fprintf(stderr, "the watchdog was not reaped by runner_cleanup\n");
            return 1;
        }
        printf("cleaned\n");
        return 0;
    }
    if (strcmp(mode, "fork") == 0) {
        pid_t child = fork();
        if (child == 0) {       /* a helper of the host: no exec, no librunner call */
            sleep(600);
            _exit(0);
        }
        char *run = runner_run_start("sleep", out);
        if (!run) return fail("runner_run_start");
        printf("ready %d\n", (int)child);
        fflush(stdout);
        pause();        /* until the test's kill -9 */
        return 1;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
