# The doors the C shim (csrc/runner_ffi.c) calls, one per ABI function, with the GIL held.
# They turn C strings into Python values and hand back bytes; the shim owns C memory.
# Doors, not core: they call the layers above the core (runner.last, runner.execution),
# which import this module, so those are imported inside the doors, never at load.

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.string cimport memcmp, strlen
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from runner import logs


cdef inline bytes c_bytes(const char *text):
    return text[:strlen(text)]


cdef str c_text(const char *text, str argument):
    try:
        return text[:strlen(text)].decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunnerError(f"argument '{argument}' is not valid UTF-8 (byte {error.start})") from None


cdef object c_output_dir(const char *output_dir):
    """The output_dir argument: None (the default directory) for NULL; an empty string
    names no directory and is refused rather than silently taken for NULL."""
    if output_dir == NULL:
        return None
    if output_dir[0] == 0:
        raise RunnerError("argument 'output_dir' is an empty string: pass NULL for the default "
                          "($RUNNER_OUTPUT_DIR, else ./output)")
    return c_text(output_dir, "output_dir")


# Callers send many results to a few ALT files. Keeping the last ids decoded saves decoding
# and hashing the same id on every call (a str caches its hash); a hit is a length check
# and a memcmp against the str's own UTF-8. Only touched with the GIL held.
cdef enum:
    RECENT_IDS = 8
cdef list recent_alt_ids = [""] * RECENT_IDS
cdef Py_ssize_t next_recent_slot = 0


cdef str alt_id_text(const char *alt_id):
    global next_recent_slot
    cdef Py_ssize_t length = <Py_ssize_t>strlen(alt_id), known_length
    cdef const char *known_utf8
    cdef str known
    for known in recent_alt_ids:
        known_utf8 = PyUnicode_AsUTF8AndSize(known, &known_length)
        if known_length == length and memcmp(known_utf8, alt_id, <size_t>length) == 0:
            return known
    known = c_text(alt_id, "alt_id")
    recent_alt_ids[next_recent_slot] = known
    next_recent_slot = (next_recent_slot + 1) % RECENT_IDS
    return known


# runner.last.write (writes LAST directories) and runner.last.options, imported by runner_init,
# which runs before any other door: not when this module loads (runner.last imports it),
# nor at a door's first call (a module defining dataclasses, imported by a C host's thread
# while another thread imports typing, fails: dataclasses reads a half-initialised typing).
# runner_init imports the execution layer's package too: it registers validation's checks
# (prompt templates, task types that are not built in; runner.execution.checks), so a C
# host's runner_parse_alt_file validates as the CLI does. Its executor loads at the first run.
cdef object last_writing = None
cdef object last_options = None


cdef public object core_init():
    global last_writing, last_options
    config = settings.load()       # ConfigurationError names a bad variable
    logs.configure(config.log_level)
    from runner.last import options, write
    import runner.execution.checks      # registers validation's checks in the core
    last_writing, last_options = write, options
    return None


cdef str generate_last(RunStore store, str alt_id, object output_dir):
    """Writes <output_dir>/<last id>/ from a stored ALT file and its results; the LAST id."""
    cdef long since = store.generation
    cdef AltFile alt = store.alt_file(alt_id)
    written = last_writing.write_last_file(alt, store.results_of(alt_id), output_dir)
    store.keep_last(written.last_id, written.json, since)
    return written.last_id


def generate_or_error(RunStore store, output_dir, str alt_id):
    """One entry of a batch: a LAST id, or "ERROR: <message>"; never an exception, so one
    file's failure, even a bug, cannot take the other files of the batch down with it."""
    try:
        return generate_last(store, alt_id, output_dir)
    except RunnerError as error:
        return f"ERROR: {error}"
    except Exception as error:
        log.exception("generating the LAST file failed", extra={"alt_id": alt_id})
        return f"ERROR: internal error: {type(error).__name__}: {error}"


cdef dict batch(RunStore store, list alt_ids, object output_dir):
    """ALT id -> new LAST id, or "ERROR: <message>"; one failure does not stop the rest.

    The files are generated in parallel, at most RUNNER_LAST_WORKERS at a time.
    """
    workers = last_options.from_environment().workers
    generate = partial(generate_or_error, store, output_dir)
    unique = list(dict.fromkeys(alt_ids))
    if len(unique) <= 1 or workers == 1:
        return {alt_id: generate(alt_id) for alt_id in unique}
    with ThreadPoolExecutor(min(workers, len(unique)), thread_name_prefix="last-batch") as pool:
        return dict(zip(unique, pool.map(generate, unique)))


cdef public object core_parse_alt_file(const char *json):
    # The size limit is checked before the C string is copied into Python, so an oversized
    # document from a C host is refused without doubling its memory.
    cdef AltLimits limits = AltLimits()
    cdef Py_ssize_t length = <Py_ssize_t>strlen(json)
    if length > limits.max_bytes:
        raise AltValidationError([ValidationIssue(
            "", f"document is {length} bytes, more than the limit of {limits.max_bytes} (RUNNER_MAX_ALT_BYTES)")])
    cdef long since = (<RunStore>STORE).generation
    (<RunStore>STORE).store_alt(parse_alt_file(json[:length], limits=limits), since)
    return None


cdef public object core_add_task_result(const char *alt_id, const char *result_json):
    # The hot door (one call per task): a typed store makes add_result a C call, not a
    # method lookup and a Python-level call.
    (<RunStore>STORE).add_result(alt_id_text(alt_id), c_bytes(result_json))
    return None


cdef public object core_generate_last_file(const char *alt_id, const char *output_dir):
    directory = c_output_dir(output_dir)
    return generate_last(<RunStore>STORE, c_text(alt_id, "alt_id"), directory).encode()


cdef public object core_get_last_file_json(const char *last_id):
    return STORE.last_json(c_text(last_id, "last_id"))


cdef public object core_get_warnings(const char *alt_id):
    return orjson.dumps(STORE.warnings(c_text(alt_id, "alt_id")))


cdef public object core_batch_process(const char *alt_ids_json, const char *output_dir):
    try:
        alt_ids = orjson.loads(c_bytes(alt_ids_json))
    except orjson.JSONDecodeError as error:
        raise RunnerError(f"alt_ids_json is not JSON: {error}") from None
    if not isinstance(alt_ids, list) or any(not isinstance(alt_id, str) for alt_id in alt_ids):
        raise RunnerError(f"alt_ids_json must be a JSON array of ALT ids (strings), found {shorten(alt_ids)}")
    directory = c_output_dir(output_dir)
    return orjson.dumps(batch(<RunStore>STORE, alt_ids, directory))


cdef public object core_cleanup():
    # Runs in progress (runner_execute_alt_file) are interrupted and waited for first, so
    # none hands out a string after the shim has released them all.
    cancel_runs_for_cleanup()
    cancel_background_runs()
    # The watchdog process (started by the first command or Dask cluster) is a child of the
    # host: it is ended and reaped, so a host waiting for its children is not kept waiting.
    watchdog = sys.modules.get("runner.execution.watchdog")
    if watchdog is not None:
        watchdog.stop()
    forget_c_task_types()
    STORE.clear()
    return None
