/*
 * runner_ffi.h -- the C ABI of librunner, the ALT_LAS Runner Service.
 *
 * librunner parses ALT files (JSON documents listing tasks), collects task results and
 * writes LAST files (the record of a run). It is implemented in Cython on top of CPython
 * and shipped as one shared library, librunner.so.
 *
 * BUILDING
 *     cc app.c $(python -m runner config --cflags --libs)
 * --libs carries an rpath, so the program runs without LD_LIBRARY_PATH.
 *
 * CONVENTIONS (they hold for every function below unless its comment says otherwise)
 *
 *   Initialisation. Call runner_init() once before anything else. A function other than
 *   runner_init, runner_get_last_error, runner_free_string, runner_get_version and
 *   runner_cleanup called before runner_init (or after runner_cleanup) fails with the
 *   error "librunner is not initialised: call runner_init() first"; it never initialises
 *   lazily and never crashes.
 *
 *   Results. Functions returning int return 1 on success and 0 on failure. Functions
 *   returning char * return NULL on failure.
 *
 *   Errors. Every failure records a message and a code for the calling thread, read with
 *   runner_get_last_error() and runner_get_last_error_code(). Messages start with the
 *   function's name and say what failed and where, e.g. "runner_add_task_result: unknown
 *   task 'x' in ALT file 'demo'"; they are for people. The code (runner_error_code below)
 *   is for programs: branch on it, never on the text. Both are per thread: a failure on
 *   one thread never changes another thread's. A successful call sets the code to
 *   RUNNER_OK but does NOT clear the message (like errno): check the return value first,
 *   then the code, then the message. runner_get_last_error, runner_get_last_error_code
 *   and a runner_free_string that succeeds leave both as they are, so the message can be
 *   read and freed before the code is looked at.
 *
 *   Versions. RUNNER_ABI_VERSION ("MAJOR.MINOR.PATCH") and its parts below are the ABI
 *   this header describes; runner_get_version() gives the same numbers for the library
 *   actually loaded ("abi" is the major, "abi_version" the whole). A library with the
 *   same major and a minor at least the header's has every function the header declares.
 *
 *   Strings in. Arguments are NUL-terminated UTF-8, borrowed for the duration of the call
 *   only; the library keeps no pointer to them. A NULL argument is an error unless the
 *   function says what NULL means. Invalid UTF-8 or malformed JSON is an error.
 *
 *   Strings out. Every char * the library returns is NUL-terminated UTF-8 allocated by
 *   the library and owned by the caller, who releases it with runner_free_string(). Do
 *   not free() it. It stays valid until then, or until runner_cleanup() (which releases
 *   every string still outstanding).
 *
 *   Threads. Every function may be called from any thread at any time, concurrently,
 *   with or without the Python GIL held (ctypes.PyDLL keeps it). Each call takes the GIL
 *   itself, so calls into the core run one at a time; runner_get_last_error,
 *   runner_free_string and runner_get_version take no GIL. A thread may exit at any time
 *   after its calls return: the thread state and error buffer the library made for it are
 *   released when it exits.
 *
 *   Environment. The settings (RUNNER_*, OTEL_* variables) are read from the process
 *   environment as it is when a call starts, so a host may change them with setenv() or
 *   unsetenv() between calls, after runner_init too. Not during a call, nor while a run it
 *   started is going: setenv is not thread-safe in C, and a run's threads read the
 *   environment. A run (runner_execute_alt_file, runner_run_start, runner_resume) reads
 *   its settings when it starts and those of its LAST directory when it writes it: change
 *   them between runs. putenv() of a string that is then changed in place is not
 *   noticed: set a new one.
 *
 *   Hosts. From a C program, runner_init starts an embedded CPython that finds the Python
 *   environment librunner was installed into (RUNNER_PYTHON overrides it with the path of
 *   another environment's python). The host's signal handlers are left alone. Loaded by
 *   ctypes or cffi into a running Python, librunner uses that interpreter. The
 *   interpreter is never finalised by the library. Do not fork() while other threads are
 *   inside a call; fork+exec and posix_spawn are fine. The first system_command or
 *   `--dask local:N` cluster starts the library's one child process, its watchdog (it
 *   kills what a killed host leaves running); runner_cleanup ends and reaps it, so a host
 *   that waits for all its children is not kept waiting. A watchdog that died is a
 *   warning on the log, never a SIGPIPE.
 */
#ifndef RUNNER_FFI_H
#define RUNNER_FFI_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ABI version (issue 24) -------------------------------------------------------
 * 1.0 the functions up to runner_resume; 1.1 C task types (runner_register_task_type,
 * runner_task_*); 1.2 error codes (runner_error_code, runner_get_last_error_code) and these
 * macros. RUNNER_ABI_VERSION_NUMBER is MAJOR * 1000000 + MINOR * 1000 + PATCH, for #if.
 */
#define RUNNER_ABI_VERSION_MAJOR 1
#define RUNNER_ABI_VERSION_MINOR 2
#define RUNNER_ABI_VERSION_PATCH 0
#define RUNNER_ABI_VERSION "1.2.0"
#define RUNNER_ABI_VERSION_NUMBER 1002000

/* ---- error codes (issue 24) -------------------------------------------------------
 * What runner_get_last_error_code() returns: RUNNER_OK after a call that succeeded, else
 * the kind of the failure its message describes. New codes may be added in a minor
 * version: treat an unknown one like RUNNER_ERROR_INTERNAL.
 */
typedef enum runner_error_code {
    RUNNER_OK = 0,
    RUNNER_ERROR_INVALID_ARGUMENT = 1,  /* NULL, not UTF-8, malformed JSON argument; a string not handed out */
    RUNNER_ERROR_NOT_INITIALISED = 2,   /* no runner_init (or after runner_cleanup); runner_init could not start */
    RUNNER_ERROR_INVALID_ALT = 3,       /* the ALT file is not valid (the message has the JSON pointer) */
    RUNNER_ERROR_NOT_FOUND = 4,         /* no ALT file, task, LAST file or run with that id */
    RUNNER_ERROR_CONFIGURATION = 5,     /* a RUNNER_* variable has an unusable value; a run's set-up failed its check */
    RUNNER_ERROR_IO = 6,                /* a file or directory could not be read or written */
    RUNNER_ERROR_CANCELLED = 7,         /* runner_cleanup stopped the call; what finished was written */
    RUNNER_ERROR_INTERNAL = 8,          /* a bug in librunner: the log has its traceback */
    RUNNER_ERROR_INVALID_TASK_RESULT = 9, /* a task result document that is not valid */
    RUNNER_ERROR_DELIVERY = 10,         /* the LAST file is written but not published (RUNNER_NATS_REQUIRED) */
    RUNNER_ERROR_TIMEOUT = 11,          /* runner_run_wait: the run was still running at the timeout */
    RUNNER_ERROR_OUT_OF_MEMORY = 12     /* an allocation failed */
} runner_error_code;
/* ---- end of issue 24's declarations ------------------------------------------------ */

/*
 * runner_init -- initialise the library.
 *
 * Starts or attaches to CPython, loads the core and reads the configuration from the
 * environment (RUNNER_LOG_LEVEL: trace, debug, info, warn or error; an invalid value
 * fails here). Safe to call concurrently and repeatedly: once it has succeeded, further
 * calls return 1 at once. After runner_cleanup() it may be called again; called while a
 * runner_cleanup() is in progress, it waits for that cleanup to end.
 *
 * From a C program, the embedded CPython uses the python named by RUNNER_PYTHON, else
 * that of the environment librunner.so is installed in (<prefix>/bin/pythonX.Y or
 * python3 beside <prefix>/lib/pythonX.Y/site-packages/runner/), else the interpreter
 * librunner was built with (an editable install). When that python's environment cannot
 * load the package, the error names it and where it came from.
 *
 * Returns 1 on success, 0 on failure (e.g. the running Python is not the one librunner
 * was built for, or the environment cannot be found); the thread's error says why.
 */
int runner_init(void);

/*
 * runner_get_last_error -- the calling thread's most recent error message.
 *
 * Returns a new copy of the message, owned by the caller (free with runner_free_string),
 * or "" if no call on this thread has failed yet. Returns NULL only when out of memory.
 * Needs no runner_init and no GIL; never changes the stored message.
 */
char *runner_get_last_error(void);

/*
 * runner_get_last_error_code -- the calling thread's most recent error code.
 *
 * Returns a runner_error_code: RUNNER_OK if the thread's most recent call succeeded (or
 * none was made), otherwise the code of the failure whose message runner_get_last_error
 * gives. Needs no runner_init and no GIL; never changes the stored code or message.
 */
int runner_get_last_error_code(void);

/*
 * runner_free_string -- release a string returned by the library.
 *
 * NULL is a no-op. A pointer the library did not hand out is refused: nothing is freed,
 * the heap is untouched and the thread's error says so. A pointer already released is
 * refused the same way as long as no runner_cleanup ran and fewer than 64 strings, of
 * less than 1 MiB in all (the string itself included), were released since. After that,
 * its address may belong to a new string, which a stale free would release: free each
 * string once.
 * (ctypes with restype = c_char_p hands Python a copy; passing that copy back is refused
 * and the original is released by runner_cleanup. Declare restype = c_void_p to free
 * strings one by one.) Needs no runner_init and no GIL.
 */
void runner_free_string(char *s);

/*
 * runner_parse_alt_file -- parse, validate and store an ALT file.
 *
 * json is an ALT file: a JSON object with at least "id", "title" and "tasks" (each task
 * with an "id"; "dependencies" an array of task ids or null). It is validated in full:
 * types, enums, duplicate task ids, unknown dependencies and cycles. The file is stored
 * under its id; parsing a file with an id already stored replaces it and discards the
 * task results stored for the old version.
 *
 * Untrusted input is bounded by limits read from the environment at each call:
 * RUNNER_MAX_ALT_BYTES (default 128 MiB, checked before the text is copied),
 * RUNNER_MAX_TASKS (1000000), RUNNER_MAX_ALT_DEPTH (64), RUNNER_MAX_STRING_BYTES (1 MiB)
 * and RUNNER_MAX_JSON_VALUES (8000000). Duplicate object keys, "\u0000", NUL bytes,
 * NaN/Infinity and integers beyond +-(2^53-1) are refused. `python -m runner schema alt`
 * prints the JSON Schema of the format.
 *
 * The parameters of each task are checked against its type
 * (`python -m runner schema task-parameters`): wrong types, unknown data operations,
 * malformed file operations and commands, prompt templates that do not compile. Unknown
 * fields and unused parameters are kept and listed by runner_get_warnings; with
 * RUNNER_STRICT=true they are errors.
 *
 * The segmentation service's ALT files are accepted too: YAML or JSON with a "segments"
 * list instead of "tasks" (README, "ALT files of the segmentation service"). Text that
 * does not start like JSON is read as YAML, safely (no object-building tags, aliases
 * counted as expanded) and under the same limits; errors then point at the segment,
 * e.g. "segments[3].dependencies[0]: unknown segment 'x'".
 *
 * Returns 1 on success. Returns 0 if json is NULL, not UTF-8, not JSON or not a valid
 * ALT file; the error names the first problem with its JSON-pointer path and the total
 * count, e.g. "runner_parse_alt_file: /tasks/1/dependencies/0: unknown task 'fetch_dta'
 * (did you mean 'fetch_data'?) (1 error in ALT file)".
 */
int runner_parse_alt_file(const char *json);

/*
 * runner_get_warnings -- what a stored ALT file and its task results contain that the
 * runner does not use.
 *
 * Fields of the ALT file, of its tasks and of the task results added with
 * runner_add_task_result that the runner does not know, and task parameters that the
 * task's type does not read, are kept (they are copied into the LAST file) and listed
 * here, each with the known name it most likely stands for:
 *     [{"path":"/tasks/1/depends_on","message":"unknown field (did you mean 'dependencies'?)"},
 *      {"path":"/task_results/a/cost","message":"unknown field"}]
 * Paths are JSON Pointers (RFC 6901: "~" is written "~0" and "/" "~1" in a key). The
 * array is empty when there is nothing to report. At most 100 warnings of the ALT file
 * and 100 of each task result are kept, and at most 1000 are listed in all; when any
 * were left out, the last entry counts them:
 *     {"path":"/","message":"... and 2000 more warnings"}
 * With RUNNER_STRICT=true in the
 * environment, runner_parse_alt_file and runner_add_task_result refuse such input instead
 * (their error names the first unknown field).
 *
 * Returns a new string (caller frees with runner_free_string), or NULL if alt_id is NULL,
 * not valid UTF-8 or not a stored ALT file. Any thread, like every function.
 */
char *runner_get_warnings(const char *alt_id);

/*
 * runner_add_task_result -- record the result of one task of a stored ALT file.
 *
 * result_json is a JSON object with "task_id" and "status" (pending, running, completed,
 * failed, cancelled, timeout or skipped), and optionally "output" (any JSON), "error"
 * (a string), "started_at"/"completed_at" (RFC 3339, within years 0001-9999 once in UTC)
 * and "duration_ms" (0 to 2^53-1). The original ALT_LAS runner's TaskResult is read as
 * well: its "start_time"/"end_time" are the task's times (either name; both must name
 * the same instant), its "execution_id" is kept, and a missing duration_ms is computed
 * from the two times. The whole object nests at most 128 levels of arrays and objects
 * (itself the first) and holds no integer beyond +-(2^53-1), so every result stored can be
 * written into a LAST file exactly (the executor fails a task whose output breaks either
 * rule, with the same error). A later
 * result for the same task replaces the earlier one.
 *
 * Returns 1 on success. Returns 0 if an argument is NULL, alt_id is not a stored ALT
 * file, the task is not in it, or the result is malformed (the error names where, e.g.
 * "/output/a/0: nested deeper than 128 levels ...").
 */
int runner_add_task_result(const char *alt_id, const char *result_json);

/*
 * runner_generate_last_file -- write the LAST file of a stored ALT file and its results.
 *
 * Writes <output_dir>/<last_id>/last.json atomically (never a partial file). output_dir
 * NULL means $RUNNER_OUTPUT_DIR, or "./output" when unset; it is created if missing. An
 * empty string names no directory and is refused (NULL is the way to ask for the default).
 * Tasks without a result are recorded as "pending". The stored results are kept, so
 * generating again gives a second LAST file with a new id.
 *
 * With RUNNER_NATS_URL set, the written file is then published to the archive on NATS
 * (at most 3 attempts of RUNNER_NATS_TIMEOUT seconds; the outcome in delivery.json beside
 * last.json). A failed publication is not a failure of this call, unless
 * RUNNER_NATS_REQUIRED=true: then NULL, with an error naming the directory written.
 *
 * Returns the new LAST id, a 36-character UUID (version 7: later ids sort later), which
 * the caller frees with runner_free_string; or NULL on failure: alt_id NULL or unknown,
 * output_dir empty or not writable.
 */
char *runner_generate_last_file(const char *alt_id, const char *output_dir);

/*
 * runner_get_last_file_json -- the JSON of a LAST file generated since runner_init.
 *
 * It is the original ALT_LAS runner's LastFile (its serde model reads it) with
 * librunner's additions: id, execution_id (UUIDs), alt_file_id, title, mode, persona,
 * status ("success", "partialsuccess" or "failure"), success_rate (completed tasks /
 * tasks in the ALT file, 0..1), execution_time_ms (an integer), start_time, end_time,
 * tags, priority, task_results (an object keyed by task id), artifacts,
 * execution_graph ({"nodes": [...], "edges": [...]}), summary, metadata and version.
 * README.md ("LAST files and the original runner") gives the mapping.
 *
 * Returns a new string (caller frees with runner_free_string), or NULL if last_id is
 * NULL or not a LAST file generated by this process since the last runner_cleanup.
 */
char *runner_get_last_file_json(const char *last_id);

/*
 * runner_batch_process -- generate the LAST files of many stored ALT files.
 *
 * alt_ids_json is a JSON array of ALT ids; output_dir is as for
 * runner_generate_last_file. One id failing does not stop the others.
 *
 * Returns a JSON object mapping each ALT id to its new LAST id, or to
 * "ERROR: <message>" for an id that failed (caller frees with runner_free_string).
 * Returns NULL only for the call as a whole: alt_ids_json NULL or not a JSON array of
 * strings, output_dir empty or not UTF-8, or an invalid RUNNER_LAST_WORKERS; each case
 * is named in the thread's error. A failure of one ALT id, even an internal one, is its
 * "ERROR: ..." entry, never NULL.
 */
char *runner_batch_process(const char *alt_ids_json, const char *output_dir);

/*
 * runner_cleanup -- release the library's state.
 *
 * Runs in progress are interrupted first (runner_execute_alt_file, runner_resume, and
 * every run started by runner_run_start, which is cancelled and waited for until its
 * LAST file is written; run ids become unknown). Then discards every stored ALT file,
 * task result and LAST file (files on disk stay) and releases every string still
 * outstanding: pointers returned earlier become invalid. The interpreter is not
 * finalised, and runner_init() may be called again afterwards. Call it when no other
 * thread is using the library's strings. A call that overlaps it on another thread
 * either completes before it, or fails with the "not initialised" error, or fails with
 * "runner_cleanup ran during this call: nothing was kept" (it began before the cleanup
 * and stored nothing after it); a string such a call does return is released with the
 * others. Safe without runner_init.
 *
 * Returns 1 on success, 0 on failure.
 */
int runner_cleanup(void);

/*
 * runner_get_version -- version information as JSON.
 *
 * Returns e.g. {"name":"librunner","version":"0.1.0","python":"3.11.7","cython":"3.3.1",
 * "abi":1,"abi_version":"1.2.0"}: the library version, the Python and Cython versions it
 * was built with, and its ABI (RUNNER_ABI_VERSION_MAJOR and RUNNER_ABI_VERSION of the
 * header it was built with) (caller frees with runner_free_string). Needs no runner_init
 * and no GIL.
 */
char *runner_get_version(void);

/*
 * runner_execute_alt_file -- run every task of a stored ALT file and write its LAST file.
 *
 * Executes the tasks of alt_id (stored by runner_parse_alt_file) in dependency order,
 * by priority among ready tasks, at most $RUNNER_MAX_CONCURRENT_TASKS at once (default
 * 8), in the file's mode (normal, dream, explore or chaos), with each task's
 * timeout_seconds ($RUNNER_DEFAULT_TIMEOUT_SECONDS, default 300) and retry_count. The
 * dependents of a task that failed, timed out or was cancelled are recorded as skipped.
 * Task types and their configuration (RUNNER_ENABLE_SYSTEM_COMMANDS, the AI service
 * variables, ...) are described in the README. Tasks work in a new temporary
 * workspace directory, removed after the run; the files they wrote are copied into the
 * LAST directory as artifacts. A run interrupted (runner_cleanup, a signal) keeps its
 * workspace for runner_resume, which removes it at its end.
 *
 * Then writes <output_dir>/<last_id>/ as runner_generate_last_file does (output_dir
 * NULL means $RUNNER_OUTPUT_DIR, else "./output"; an empty string is refused before
 * any task runs), records the results as the ALT
 * file's task results (replacing earlier ones), and keeps the LAST JSON for
 * runner_get_last_file_json.
 *
 * Blocks until the run ends. It may be called from any thread; while it waits for
 * tasks the GIL is released, so other threads' calls proceed. runner_cleanup from
 * another thread interrupts the run: pending tasks are cancelled, running ones get a
 * grace period ($RUNNER_GRACE_SECONDS, default 2), the LAST file of what finished is
 * still written, and runner_cleanup waits (up to 30 s) until this call has returned.
 *
 * Before the first task, the set-up is checked once (runner/execution/preflight.py):
 * output_dir can be created and written, the RUNNER_AI_* configuration is usable when the
 * file has AI tasks (URL form, provider, key form), and system_command tasks are enabled
 * and their programs allowed. If a check fails, nothing runs and no AI call is made: the
 * call returns NULL with an error naming every problem, e.g.
 * "runner_execute_alt_file: cannot start the run: output directory 'out' is not a directory".
 *
 * Returns the new LAST id (caller frees with runner_free_string) whether or not every
 * task completed: the LAST file says which did. Returns NULL if alt_id is NULL, not
 * valid UTF-8 or not a stored ALT file, if a RUNNER_* variable has an unusable value,
 * if the AI service check before the first task fails (provider kserve: the server is
 * down or not ready, does not serve a model an AI task uses, or an AI task has no model;
 * no task runs and no LAST file is written, and the error says which),
 * if the LAST file cannot be written, or if runner_cleanup interrupted the run (the
 * error then names the LAST file that was written: cleanup releases every outstanding
 * string, so no id is handed out).
 */
char *runner_execute_alt_file(const char *alt_id, const char *output_dir);

/*
 * runner_run_start -- start running a stored ALT file in the library's own thread.
 *
 * Runs alt_id (stored by runner_parse_alt_file) exactly as runner_execute_alt_file
 * does, LAST directory under output_dir included (NULL: $RUNNER_OUTPUT_DIR, else
 * "./output"), but returns at once: the run goes on in a thread of the library. Watch it
 * with runner_run_status and runner_run_events, stop it with runner_run_cancel, collect
 * its LAST id with runner_run_wait. Several runs may go at once, of the same or of
 * different ALT files. runner_execute_alt_file behaves as runner_run_start followed by
 * runner_run_wait with no timeout.
 *
 * Returns the run id ("run_" and 32 hex digits; caller frees with runner_free_string),
 * valid until runner_cleanup. Returns NULL if alt_id is NULL, not valid UTF-8 or not a
 * stored ALT file, or output_dir is empty or not valid UTF-8. Problems met once the run goes
 * (a RUNNER_* variable with an unusable value, an unwritable output directory) are
 * reported by runner_run_wait and runner_run_status. Any thread may call it.
 */
char *runner_run_start(const char *alt_id, const char *output_dir);

/*
 * runner_run_status -- where a run started by runner_run_start is, as JSON.
 *
 * {"run_id", "alt_id", "state": "starting"|"running"|"completed"|"interrupted"|"failed",
 *  "counts": {"pending", "running", "completed", "failed", "timeout", "cancelled",
 *  "skipped"}, "tasks": {task id: status}, "events": number of events so far,
 *  "last_id": the LAST id once the LAST file is written (else null), "directory",
 *  "error": why a failed run failed (else null)}. "completed" means the run ended and
 * its LAST file was written, whatever its tasks' outcomes; "interrupted" that
 * runner_run_cancel (or runner_cleanup) stopped it and its LAST file was written.
 *
 * Returns the JSON (caller frees with runner_free_string), or NULL if run_id is NULL or
 * not a run of this library since the last runner_cleanup ("unknown run '<id>'").
 * Any thread may call it, while the run goes on.
 */
char *runner_run_status(const char *run_id);

/*
 * runner_run_events -- the events of a run numbered after `after`, as a JSON array.
 *
 * Each event is an object with "seq" (1, 2, 3, ... in the order they happened),
 * "event" ("run_started", "task_started", "task_retrying", "task_output",
 * "task_finished", "run_finished"), "task_id" (null for the run's own events) and the
 * event's details: "attempt", "status" and "error" of a finished task, "text" of a
 * streamed piece (tasks with parameters.stream true), "total", "done", "running",
 * "failed", "skipped". Pass 0 for every event, then the last "seq" seen to poll for
 * newer ones; an empty array ("[]") means nothing new. The latest 32768 to 65536 events
 * of each run are kept until runner_cleanup (several readers may each read them); a
 * reader that falls further behind sees a gap in "seq".
 *
 * Returns the JSON (caller frees with runner_free_string), or NULL if run_id is NULL or
 * unknown. Any thread may call it.
 */
char *runner_run_events(const char *run_id, long long after);

/*
 * runner_run_cancel -- stop one run started by runner_run_start.
 *
 * Pending tasks are cancelled, running ones get the grace period ($RUNNER_GRACE_SECONDS,
 * default 2) and are then cancelled; the LAST file of what finished is still written
 * (execution.interrupted true), and the run's state becomes "interrupted". Other runs
 * go on. Returns at once: runner_run_wait waits for the LAST file. Cancelling a run that
 * has ended, or twice, does nothing and succeeds.
 *
 * Returns 1, or 0 if run_id is NULL or unknown. Any thread may call it.
 */
int runner_run_cancel(const char *run_id);

/*
 * runner_run_wait -- wait until a run has ended and its LAST file is written.
 *
 * Waits at most timeout_ms milliseconds (a negative timeout waits for as long as the
 * run takes; 0 only looks). The GIL is released while waiting, so other threads' calls
 * proceed. A run that ended keeps answering: its LAST JSON is then also available to
 * runner_get_last_file_json, and its results become the ALT file's task results.
 *
 * Returns the LAST id (caller frees with runner_free_string). Returns NULL with the error
 * "runner_run_wait: still running" when the timeout passed first; NULL if run_id is NULL
 * or unknown, if the run failed (the error says why: an unusable RUNNER_* variable, an
 * unwritable output directory), or if runner_cleanup interrupted it. Any thread may
 * call it, and several threads may wait for one run.
 */
char *runner_run_wait(const char *run_id, int timeout_ms);

/*
 * runner_resume -- finish or redo a run from its LAST directory, without paying twice.
 *
 * last_dir is the LAST directory of a run (finished, or interrupted, even by kill -9: it
 * holds the run's journal.jsonl and alt.json). Completed results of unchanged tasks are
 * kept; failed, timed-out, cancelled, skipped and never-started tasks run. alt_json, if
 * not NULL, is an edited version of the ALT file: exactly the changed tasks (prompt
 * after templating, model, sampling, parameters, type) and their dependents re-run.
 * Completed system_command and file_operation tasks are never repeated, and every result
 * reused is in the new journal before any task runs (control-flow instances included), so
 * a resume killed in turn loses none. The one exception is the window between a command's
 * or file operation's effect and its result reaching the journal (a write and an fsync,
 * started at once: from a command's end p50 4 ms, p99 16 ms on a loaded 2-core machine; see
 * the README's "Durable runs"), and a command still running at a kill: such a task runs
 * again, once per kill. The run uses
 * the earlier run's mode, seed and (if it still exists and is a temporary workspace the
 * library made; never another path a journal names) workspace, and writes a new
 * LAST directory under output_dir (NULL: beside last_dir) whose execution.resumed_from
 * is the earlier LAST id; reused results carry metadata.reused_from. Blocks until the
 * run ends; runner_cleanup interrupts it as it does runner_execute_alt_file.
 *
 * The earlier run's commands still running are waited for and its directory cleaned only
 * once the resume's checks have passed: a refused resume changes nothing.
 *
 * Returns the new LAST id (caller frees with runner_free_string). Returns NULL if
 * last_dir is NULL or holds no journal (the error says why), if output_dir is empty
 * (pass NULL for the default), if the run there is still going, if another resume works
 * in the temporary workspace it would take over (an interrupted resume of the same run
 * kept it too), if alt_json is not a valid ALT file, or if the LAST file cannot be written.
 * Any thread may call it.
 */
char *runner_resume(const char *last_dir, const char *alt_json, const char *output_dir);

/* ==== TASK TYPES WRITTEN IN C (issue 19) ==================================================
 *
 * A C host registers its own task type: a function librunner calls for each attempt of
 * each task whose parameters.task_type names it, with the scheduling, dependencies,
 * retries (retry_count), timeouts (timeout_seconds), journal, resume and LAST file of any
 * task. Files stored by runner_parse_alt_file may use the type once it is registered,
 * and runner_execute_alt_file, runner_run_start and runner_resume run it.
 *
 *     static int shout(runner_task *task, void *user_data) {
 *         const char *json = runner_task_json(task);   // {"id", "parameters", "deps", "attempt"}
 *         ...
 *         if (failed) { runner_task_set_error(task, "no text given"); return 1; }
 *         return runner_task_set_output(task, "{\"text\":\"HEY\"}") ? 0 : 1;
 *     }
 *     runner_register_task_type("shout", shout, NULL);
 *
 * examples/c/task_type.c is a whole host.
 */

/* One attempt of one task, as a handler sees it. Opaque; valid only during the handler
 * call it is given to: keep no pointer to it, nor to what runner_task_json returns. */
typedef struct runner_task runner_task;

/* A task type's handler. Returns 0 when the attempt succeeded (its output is what
 * runner_task_set_output last set, or null), non-zero when it failed (its error is what
 * runner_task_set_error last set, else "handler returned N"). */
typedef int (*runner_task_handler)(runner_task *task, void *user_data);

/*
 * runner_register_task_type -- make type_name a task type run by handler.
 *
 * handler is called as handler(task, user_data) once per attempt, on a librunner worker
 * thread, WITHOUT the Python GIL held: handlers of different tasks run in parallel (up
 * to the run's max_concurrency), so a handler and what it touches through user_data
 * must be thread-safe. Calls into librunner from inside a handler are allowed (they take
 * the GIL themselves). A handler should return soon after runner_task_cancelled turns 1:
 * at its deadline the attempt is recorded as timeout and whatever the handler sets
 * afterwards is dropped, but a thread cannot be killed, so the call goes on until it
 * returns, and user_data must stay valid until it does.
 *
 * user_data is passed as it is and never freed or read by librunner. Registering a name
 * again replaces its handler for the runs that start afterwards. The type lasts until
 * runner_cleanup, which forgets every type registered in C.
 *
 * Returns 1, or 0 if the library is not initialised, type_name is NULL, empty, not
 * UTF-8, longer than 128 characters, not printable, or the name of a built-in type (ai_prompt,
 * data_processing, file_operation, system_command, generic), or handler is NULL. The
 * thread's error says why. Any thread may call it.
 */
int runner_register_task_type(const char *type_name, runner_task_handler handler, void *user_data);

/*
 * runner_task_json -- the attempt, as JSON: {"id": task id, "parameters": the task's
 * parameters without task_type, "deps": {dependency id: its output}, "attempt": 1, 2, ...}.
 *
 * Owned by librunner, valid until the handler returns; do not free it. Returns NULL (and
 * sets the thread's error) if task is NULL. Needs no GIL; call it from the handler's thread.
 */
const char *runner_task_json(runner_task *task);

/*
 * runner_task_set_output -- the attempt's output (any JSON value: object, array, string,
 * number, true, false, null).
 *
 * output_json is copied (parsed now); a later call replaces an earlier one. Returns 1, or
 * 0 if task or output_json is NULL or output_json is not valid JSON within the limits of
 * a task result (the thread's error says where it is wrong; an earlier output stays).
 * Takes the GIL for the time it parses. Call it from the handler's thread, before the
 * handler returns.
 */
int runner_task_set_output(runner_task *task, const char *output_json);

/*
 * runner_task_set_error -- the attempt's error message, recorded when the handler returns
 * non-zero (then the attempt failed, and is retried if the task's retry_count allows).
 *
 * message (UTF-8; invalid bytes are replaced) is copied; a later call replaces an earlier
 * one; NULL clears it. Returns 1, or 0 if task is NULL or memory runs out. Needs no GIL;
 * call it from the handler's thread, before the handler returns.
 */
int runner_task_set_error(runner_task *task, const char *message);

/*
 * runner_task_cancelled -- 1 once the attempt should stop (its deadline passed, the run
 * was cancelled or interrupted, runner_cleanup began), else 0. 0 for a NULL task.
 *
 * Needs no GIL and takes no lock (one atomic load): poll it in long loops.
 */
int runner_task_cancelled(const runner_task *task);

/* ==== END OF TASK TYPES WRITTEN IN C ===================================================== */

#ifdef __cplusplus
}
#endif

#endif /* RUNNER_FFI_H */
