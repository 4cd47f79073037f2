# Limits on ALT documents, and the one pass over the raw JSON text that enforces them.
#
# An ALT file is untrusted input. The checks here run on the bytes BEFORE orjson builds
# any Python object, so an oversized, too deeply nested or hostile document is refused
# without ever being materialised: a linear scan, no recursion, no allocation.

from libc.string cimport memchr, memcmp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
import os

from runner import settings

cdef extern from "string.h" nogil:
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)

# Defaults, and the environment variables that override them (the Python API's
# arguments override both).
DEFAULT_MAX_ALT_BYTES = 128 * 1024 * 1024     # RUNNER_MAX_ALT_BYTES: whole document
DEFAULT_MAX_TASKS = 1_000_000                 # RUNNER_MAX_TASKS: entries of "tasks"
DEFAULT_MAX_ALT_DEPTH = 64                    # RUNNER_MAX_ALT_DEPTH: nesting of arrays/objects
DEFAULT_MAX_STRING_BYTES = 1024 * 1024        # RUNNER_MAX_STRING_BYTES: one string, as JSON text
# RUNNER_MAX_JSON_VALUES: arrays, objects and the elements/members in them. The byte limit
# alone does not bound memory: "[{},{},...]" costs ~25x its size as Python objects. Real
# ALT files spend well over 16 bytes per value, so 8M covers any file under the byte limit,
# while bounding the parsed document to roughly 100 bytes x 8M in the worst case.
DEFAULT_MAX_JSON_VALUES = 8_000_000
LIMIT_VARIABLES = (
    ("max_bytes", "RUNNER_MAX_ALT_BYTES", DEFAULT_MAX_ALT_BYTES),
    ("max_tasks", "RUNNER_MAX_TASKS", DEFAULT_MAX_TASKS),
    ("max_depth", "RUNNER_MAX_ALT_DEPTH", DEFAULT_MAX_ALT_DEPTH),
    ("max_string_bytes", "RUNNER_MAX_STRING_BYTES", DEFAULT_MAX_STRING_BYTES),
    ("max_values", "RUNNER_MAX_JSON_VALUES", DEFAULT_MAX_JSON_VALUES),
)
# Integers beyond +-(2**53 - 1) are not exact in every JSON reader (RFC 7493, I-JSON), and
# orjson itself turns those beyond 64 bits into floats silently: they are refused.
cdef bytes MAX_SAFE_INTEGER = b"9007199254740991"
# The deepest nesting of arrays and objects any input may have: ALT documents (their limit,
# RUNNER_MAX_ALT_DEPTH, can be set up to it) and task results alike. Everything downstream
# writes what it was given a few levels deeper (a result sits two levels down in last.json)
# and orjson writes at most 254 levels: at 128 whatever was accepted can be written.
cdef enum:
    MAX_DEPTH_LIMIT = 128
MAX_NESTING = MAX_DEPTH_LIMIT


cdef class AltLimits:
    """How big an ALT document may be. Going past a limit is an AltValidationError."""

    cdef readonly Py_ssize_t max_bytes
    cdef readonly Py_ssize_t max_tasks
    cdef readonly Py_ssize_t max_depth
    cdef readonly Py_ssize_t max_string_bytes
    cdef readonly Py_ssize_t max_values

    def __init__(self, max_bytes=None, max_tasks=None, max_depth=None, max_string_bytes=None,
                 max_values=None):
        given = {"max_bytes": max_bytes, "max_tasks": max_tasks, "max_depth": max_depth,
                 "max_string_bytes": max_string_bytes, "max_values": max_values}
        for name, variable, default in LIMIT_VARIABLES:
            value = given[name]
            source = f"argument '{name}'"
            if value is None:
                raw = os.environ.get(variable)
                if raw is None or raw.strip() == "":
                    value = default
                else:
                    source = f"environment variable {variable}"
                    try:
                        value = int(raw.strip().replace("_", ""))
                    except ValueError:
                        raise ConfigurationError(f"{source}={settings.shown(raw)}: expected a positive integer") \
                            from None
            if type(value) is not int or not (1 <= value <= 2**62):
                shown = settings.shown(value) if isinstance(value, str) else shorten(value)
                raise ConfigurationError(f"{source}={shown}: expected a positive integer")
            if name == "max_depth" and value > MAX_DEPTH_LIMIT:
                raise ConfigurationError(f"{source}={value!r}: at most {MAX_DEPTH_LIMIT} "
                                         f"(deeper documents could not be written into a LAST file)")
            self._set(name, value)

    cdef void _set(self, str name, Py_ssize_t value):
        if name == "max_bytes":
            self.max_bytes = value
        elif name == "max_tasks":
            self.max_tasks = value
        elif name == "max_depth":
            self.max_depth = value
        elif name == "max_string_bytes":
            self.max_string_bytes = value
        else:
            self.max_values = value

    def __repr__(self):
        return (f"AltLimits(max_bytes={self.max_bytes}, max_tasks={self.max_tasks}, "
                f"max_depth={self.max_depth}, max_string_bytes={self.max_string_bytes}, "
                f"max_values={self.max_values})")


cdef object text_error(const unsigned char *text, Py_ssize_t offset, str message):
    """An AltValidationError located by byte, line and column (the scan has no JSON pointer)."""
    cdef Py_ssize_t line = 1, column = 1, i
    for i in range(offset):
        if text[i] == 10:
            line += 1
            column = 1
        else:
            column += 1
    return AltValidationError([ValidationIssue(
        "", f"{message} (line {line}, column {column}, byte {offset})")])


cdef object too_many_values(const unsigned char *text, Py_ssize_t offset, Py_ssize_t limit):
    return text_error(text, offset, f"more than {limit} JSON values (RUNNER_MAX_JSON_VALUES)")


cdef inline bint blank(const unsigned char *text, Py_ssize_t start, Py_ssize_t end):
    """Only JSON whitespace in text[start:end]."""
    cdef unsigned char c
    while start < end:
        c = text[start]
        if not (c == 32 or c == 10 or c == 13 or c == 9):
            return False
        start += 1
    return True


cdef Py_ssize_t scan_json_text(bytes data, AltLimits limits, TaskSpans spans=None) except -1:
    """Checks the raw JSON text against the limits; returns the number of object members.

    The member count (colons outside strings) lets the parser detect duplicate keys after
    orjson, which keeps only the last of them, without a second parse. `spans`, when
    given, receives where the root object's "tasks" array and its elements are.
    """
    cdef const unsigned char *text = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i = 0, j, k, b, start, digits
    cdef Py_ssize_t depth = 0, members = 0, values = 1      # values: the root, members, elements
    cdef Py_ssize_t max_depth = limits.max_depth, max_string = limits.max_string_bytes
    cdef Py_ssize_t max_values = limits.max_values
    cdef char in_array[MAX_DEPTH_LIMIT + 2]                  # per open container: array or object
    cdef const unsigned char *found
    cdef unsigned char c
    # The root object's last key (for spans), and whether it was "tasks" with its value to come.
    cdef Py_ssize_t key_start = 0, key_end = -1, value_start = 0
    cdef bint tasks_key = False, in_tasks = False
    in_array[0] = 0
    if n > limits.max_bytes:
        raise AltValidationError([ValidationIssue(
            "", f"document is {n} bytes, more than the limit of {limits.max_bytes} (RUNNER_MAX_ALT_BYTES)")])
    found = <const unsigned char *>memchr(text, 0, n)
    if found != NULL:
        raise text_error(text, found - text, "NUL byte in the document: JSON text cannot contain one")
    # \u0000 inside a string: C hosts and command lines would cut the string there.
    j = 0
    while j < n:
        found = <const unsigned char *>memmem(text + j, n - j, b"\\u0000", 6)
        if found == NULL:
            break
        k = found - text
        b = k - 1
        while b >= 0 and text[b] == 92:
            b -= 1
        if (k - 1 - b) % 2 == 0:    # the backslash is not itself escaped
            raise text_error(text, k, "string contains the NUL character \\u0000, which is not allowed")
        j = k + 1
    while i < n:
        c = text[i]
        if c == 34:                 # '"': jump to the closing quote
            start = i + 1
            j = start
            while True:
                found = <const unsigned char *>memchr(text + j, 34, n - j)
                if found == NULL:
                    return members  # unterminated: orjson reports it with its position
                k = found - text
                b = k - 1
                while b >= start and text[b] == 92:
                    b -= 1
                if (k - 1 - b) % 2 == 0:
                    break
                j = k + 1
            if k - start > max_string:
                raise text_error(text, start - 1, f"string of {k - start} bytes, more than the limit of "
                                 f"{max_string} (RUNNER_MAX_STRING_BYTES)")
            if depth == 1:
                key_start, key_end = start, k
            i = k + 1
        elif c == 44:               # ',': in an array, one more element
            if in_array[depth]:
                values += 1
                if values > max_values:
                    raise too_many_values(text, i, max_values)
                if in_tasks and depth == 2:
                    spans.push(i + 1)
            i += 1
        elif c == 123 or c == 91:   # '{' '['
            if tasks_key and depth == 1 and c == 91 and blank(text, value_start, i):
                in_tasks = True     # the root's "tasks" array: its first element starts here
                spans.open = i
                spans.count = 0
                spans.push(i + 1)
            tasks_key = False
            depth += 1
            if depth > max_depth:
                raise text_error(text, i, f"nesting deeper than the limit of {max_depth} "
                                 "arrays/objects (RUNNER_MAX_ALT_DEPTH)")
            in_array[depth] = c == 91
            if c == 91:             # its first element, taken back at ']' if it is empty
                values += 1
                if values > max_values:
                    raise too_many_values(text, i, max_values)
            i += 1
        elif c == 93:               # ']'
            b = i - 1
            while b >= 0 and (text[b] == 32 or text[b] == 10 or text[b] == 13 or text[b] == 9):
                b -= 1
            if b >= 0 and text[b] == 91:
                values -= 1
            if in_tasks and depth == 2:
                in_tasks = False
                spans.close = i
                if b == spans.open:
                    spans.count = 0     # [] has no element
            if depth > 0:
                depth -= 1
            i += 1
        elif c == 125:              # '}'
            if in_tasks and depth == 2:
                in_tasks = False    # not JSON: '}' closing the array; the whole parse says so
            if depth > 0:
                depth -= 1
            i += 1
        elif c == 58:               # ':': a member, and its value
            if spans is not None and depth == 1 and not in_array[1]:
                tasks_key = key_end - key_start == 5 and memcmp(text + key_start, b"tasks", 5) == 0
                if tasks_key:
                    spans.keys += 1
                    value_start = i + 1
            members += 1
            values += 1
            if values > max_values:
                raise too_many_values(text, i, max_values)
            i += 1
        elif c == 45 or 48 <= c <= 57:   # a number
            j = i + 1 if c == 45 else i
            start = j
            while j < n and 48 <= text[j] <= 57:
                j += 1
            digits = j - start
            if not (j < n and (text[j] == 46 or text[j] == 101 or text[j] == 69)) and (
                    digits > 16 or (digits == 16 and text[start:j] > MAX_SAFE_INTEGER)):
                raise text_error(text, i, f"integer {text[i:min(j, i + 40)].decode()} is out of range: "
                                 "beyond +-(2**53 - 1) integers are not exact in JSON")
            while j < n and (48 <= text[j] <= 57 or text[j] == 46 or text[j] == 101 or text[j] == 69
                             or text[j] == 43 or text[j] == 45):
                j += 1
            i = j
        else:
            i += 1
    return members


cdef Py_ssize_t count_members(object value, Py_ssize_t depth) except -1:
    """Members of every object inside `value` (the parsed counterpart of scan_json_text)."""
    cdef Py_ssize_t total = 0
    cdef type kind = type(value)
    if kind is dict:
        total = len(<dict>value)
        for item in (<dict>value).values():
            kind = type(item)
            if kind is dict or kind is list:
                total += count_members(item, depth + 1)
    elif kind is list:
        for item in <list>value:
            kind = type(item)
            if kind is dict or kind is list:
                total += count_members(item, depth + 1)
    return total


class _Duplicates(dict):
    """A JSON object in which the stdlib parser saw a key twice (error path only)."""
    duplicate = None


def _pairs_to_object(pairs):
    out = _Duplicates() if len({key for key, _ in pairs}) != len(pairs) else {}
    for key, value in pairs:
        if key in out and type(out) is _Duplicates and out.duplicate is None:
            out.duplicate = key
        out[key] = value
    return out


cdef object find_duplicate_key(object value, str path):
    """(pointer, key) of the first object with a repeated key, or None."""
    if type(value) is _Duplicates:
        return path, value.duplicate
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_duplicate_key(item, f"{path}/{pointer_token(key)}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_duplicate_key(item, f"{path}/{i}")
            if found is not None:
                return found
    return None


cdef object duplicate_key_error(bytes data):
    """The error for a document whose objects repeat a key. Rule: refused, never 'last wins',
    because other JSON readers would pick a different value than the one validated here."""
    import json
    try:
        located = find_duplicate_key(json.loads(data, object_pairs_hook=_pairs_to_object), "")
    except RecursionError:      # only with RUNNER_MAX_ALT_DEPTH near 1000: no path then
        located = None
    if located is None:
        return AltValidationError([ValidationIssue("", "an object repeats a key")])
    path, key = located
    return AltValidationError([ValidationIssue(
        path, f"key '{key}' appears twice in this object: duplicate keys are not allowed", key)])
