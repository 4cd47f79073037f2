# The doors the C shim (csrc/runner_ffi.c) calls, one per ABI function, with the GIL held.
# They turn C strings into Python values and hand back bytes; the shim owns C memory.

from libc.string cimport strlen
from runner import logs


cdef inline bytes c_bytes(const char *text):
    return text[:strlen(text)]


cdef str c_text(const char *text, str argument):
    cdef bytes raw = text[:strlen(text)]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunnerError(f"argument '{argument}' is not valid UTF-8 (byte {error.start})") from None


cdef public object core_init():
    try:
        config = settings.load()
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    logs.configure(config.log_level)
    return None


cdef public object core_parse_alt_file(const char *json):
    STORE.store_alt(parse_alt_file(c_bytes(json)))
    return None


cdef public object core_add_task_result(const char *alt_id, const char *result_json):
    STORE.add_result(c_text(alt_id, "alt_id"), c_bytes(result_json))
    return None


cdef public object core_generate_last_file(const char *alt_id, const char *output_dir):
    directory = None if output_dir == NULL else c_text(output_dir, "output_dir")
    return STORE.generate_last(c_text(alt_id, "alt_id"), directory).encode()


cdef public object core_get_last_file_json(const char *last_id):
    return STORE.last_json(c_text(last_id, "last_id"))


cdef public object core_batch_process(const char *alt_ids_json, const char *output_dir):
    try:
        alt_ids = orjson.loads(c_bytes(alt_ids_json))
    except orjson.JSONDecodeError as error:
        raise RunnerError(f"alt_ids_json is not JSON: {error}") from None
    if not isinstance(alt_ids, list) or any(not isinstance(alt_id, str) for alt_id in alt_ids):
        raise RunnerError(f"alt_ids_json must be a JSON array of ALT ids (strings), found {shorten(alt_ids)}")
    directory = None if output_dir == NULL else c_text(output_dir, "output_dir")
    return orjson.dumps(STORE.batch(alt_ids, directory))


cdef public object core_cleanup():
    STORE.clear()
    return None
