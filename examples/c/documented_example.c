/*
 * The C example of the Runner Service specification, completed into a real program:
 * a real two-task ALT file and real task results in place of the "..." of the original.
 *
 * Build and run (no Python code of its own, no LD_LIBRARY_PATH, no PYTHONPATH):
 *     cc documented_example.c $(python -m runner config --cflags --libs) -o documented_example
 *     ./documented_example [output_dir]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runner_ffi.h"

#if RUNNER_ABI_VERSION_MAJOR != 1 || RUNNER_ABI_VERSION_MINOR < 2
#error "this example needs librunner's ABI 1.2 (error codes)"
#endif

int main(int argc, char **argv) {
    const char *output_dir = argc > 1 ? argv[1] : "/tmp/output";

    // The library loaded must have the ABI this program was compiled against
    char *version = runner_get_version();
    if (version == NULL || strstr(version, "\"abi_version\":\"" RUNNER_ABI_VERSION "\"") == NULL) {
        printf("Error: compiled against ABI %s, loaded %s\n", RUNNER_ABI_VERSION, version ? version : "(NULL)");
        return 1;
    }
    runner_free_string(version);

    // Initialize the FFI layer
    if (!runner_init()) {
        char* error = runner_get_last_error();
        printf("Error: %s\n", error);
        runner_free_string(error);
        return 1;
    }

    // Parse an ALT file
    const char* alt_json =
        "{\"id\":\"test_alt_file\",\"title\":\"Test ALT File\",\"mode\":\"normal\",\"tasks\":["
        "{\"id\":\"task1\",\"description\":\"First task\",\"dependencies\":null},"
        "{\"id\":\"task2\",\"description\":\"Second task\",\"dependencies\":[\"task1\"]}]}";
    int result = runner_parse_alt_file(alt_json);

    if (result == 0) {
        // The code is for the program (an invalid ALT file is not a missing library),
        // the message for people.
        int code = runner_get_last_error_code();
        char* error = runner_get_last_error();
        printf("Error %d%s: %s\n", code, code == RUNNER_ERROR_INVALID_ALT ? " (invalid ALT file)" : "", error);
        runner_free_string(error);
        return 1;
    }

    // Add task results
    const char* task_result = "{\"task_id\":\"task1\",\"status\":\"completed\",\"output\":{\"text\":\"Task 1 output\"}}";
    runner_add_task_result("test_alt_file", task_result);
    runner_add_task_result("test_alt_file", "{\"task_id\":\"task2\",\"status\":\"failed\",\"error\":\"Task 2 failed\"}");

    // Generate LAST file
    char* last_id = runner_generate_last_file("test_alt_file", output_dir);

    if (last_id != NULL) {
        printf("Generated LAST file: %s\n", last_id);

        // Get LAST file as JSON
        char* last_json = runner_get_last_file_json(last_id);

        if (last_json != NULL) {
            printf("LAST file JSON: %s\n", last_json);
            runner_free_string(last_json);
        }

        runner_free_string(last_id);
    } else {
        int code = runner_get_last_error_code();
        char* error = runner_get_last_error();
        printf("Error %d: %s\n", code, error);
        runner_free_string(error);
    }

    // Clean up
    runner_cleanup();

    return 0;
}
