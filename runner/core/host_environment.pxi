# The process environment as a C host changes it, seen by the Python code of each call.
#
# CPython copies the process environment into os.environ once, when `os` is first imported:
# a C host's setenv() or unsetenv() after runner_init (or a ctypes caller's libc.setenv) is
# not seen there, though the settings (RUNNER_*, OTEL_*) are read from os.environ "at each
# call" (include/runner_ffi.h). So each call of the C ABI starts, with the GIL held, by
# copying what changed in the C `environ` since the last call into os.environ's mapping.
#
# Only the mapping (os.environ._data, bytes to bytes on POSIX, shared with os.environb) is
# changed, never the C environment: os.environ[k] = v would putenv() again what the host has
# just set, while the run's threads may be reading the environment in C (getaddrinfo,
# time zones). Noticing a change costs a look at the entry pointers: glibc's setenv and
# unsetenv replace or remove an entry's pointer, they never rewrite a string in place.

from libc.stdlib cimport malloc, free
import os
from libc.string cimport memcmp, memcpy

cdef extern from *:
    """
    extern char **environ;
    static char **runner_c_environ(void) { return environ; }
    """
    char **runner_c_environ()

cdef char **seen_entries = NULL         # the entry pointers of the C environment last mirrored
cdef Py_ssize_t seen_count = -1         # -1: never mirrored


cdef public int core_sync_environment() except -1:
    """Copies the C environment's changes since the last call into os.environ (the GIL held)."""
    global seen_entries, seen_count
    cdef char **entries = runner_c_environ()
    cdef Py_ssize_t i, count = 0
    if entries != NULL:
        while entries[count] != NULL:
            count += 1
    if count == seen_count and (count == 0 or memcmp(entries, seen_entries, count * sizeof(char *)) == 0):
        return 0
    mirrored = getattr(os.environ, "_data", None)
    if type(mirrored) is not dict:      # a Python host replaced os.environ: it is not CPython's copy
        return 0
    current = {}
    for i in range(count):
        key, found, value = (<bytes>entries[i]).partition(b"=")
        if found:
            current.setdefault(key, value)      # the first of two entries wins, as in os.environ
    cdef char **copy = <char **>malloc((count + 1) * sizeof(char *))
    if copy == NULL:
        raise MemoryError()
    memcpy(copy, entries, count * sizeof(char *))
    for key in [key for key in mirrored if key not in current]:
        del mirrored[key]
    for key, value in current.items():
        if mirrored.get(key) != value:
            mirrored[key] = value
    free(seen_entries)
    seen_entries, seen_count = copy, count
    return 0
