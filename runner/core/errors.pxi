# Errors: one type per failure family, each carrying where (a JSON pointer) and what.

import reprlib

import orjson


# The exception classes are plain Python at the bottom of the package (runner/errors.py),
# so every layer raises and catches the same family; the core re-exports them.
from runner.errors import (
    AltValidationError, CancelledError, ConfigurationError, ControlFlowError, DeliveryError, DocumentError,
    InternalError,
    LastFileError, ParameterError, PreflightError, RefusedError, RunnerError, TaskResultError, UnknownIdError,
    error_code, internal_error)


cdef class ValidationIssue:
    """One problem in a document: where it is (a JSON pointer), what was wrong, the value found."""

    cdef readonly str path
    cdef readonly str message
    cdef readonly object value
    # The id of the task (or segment) the path is in, when the document gives it: set once
    # the whole document has been checked (sorted_issues), for messages meant for people.
    cdef public object task_id

    def __init__(self, str path, str message, value=None, task_id=None):
        self.path = path
        self.message = message
        self.value = value
        self.task_id = task_id

    def __str__(self):
        return f"{self.path or '/'}: {self.message}"

    def __repr__(self):
        return f"ValidationIssue({self.path!r}, {self.message!r})"

    def described(self):
        """The issue for people: `/tasks/4/parameters/prompt (task 'fetch'): ...`."""
        if self.task_id is None:
            return str(self)
        return f"{self.path or '/'} (task '{self.task_id}'): {self.message}"

    def to_dict(self):
        found = {"path": self.path or "/", "message": self.message, "value": shorten(self.value)}
        if self.task_id is not None:
            found["task_id"] = self.task_id
        return found


cdef str pointer_token(object key):
    """One JSON-pointer reference token (RFC 6901): '~' and '/' escaped."""
    cdef str token = str(key)
    if "~" in token or "/" in token:
        token = token.replace("~", "~0").replace("/", "~1")
    return token


cpdef str shorten(object value, Py_ssize_t limit=60):
    """A value as short JSON text for an error message."""
    if value is None:
        return "null"
    try:
        text = orjson.dumps(value, default=repr).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Too deep for orjson or not JSON at all: reprlib bounds depth and size, where a
        # plain repr() of a hostile value could recurse or grow without limit.
        text = reprlib.repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
