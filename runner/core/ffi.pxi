# The doors the C shim (csrc/runner_ffi.c) calls, one per ABI function, with the GIL held.
# They turn C strings into Python values and hand back bytes; the shim owns C memory.

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.string cimport memcmp, strlen
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


cdef public object core_init():
    config = settings.load()       # ConfigurationError names a bad variable
    logs.configure(config.log_level)
    return None


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
    return STORE.generate_last(c_text(alt_id, "alt_id"), directory).encode()


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
    return orjson.dumps(STORE.batch(alt_ids, directory))


cdef public object core_cleanup():
    # Runs in progress (runner_execute_alt_file) are interrupted and waited for first, so
    # none hands out a string after the shim has released them all.
    cancel_runs_for_cleanup()
    cancel_background_runs()
    forget_c_task_types()
    STORE.clear()
    return None
