# Errors: one type per failure family, each carrying where (a JSON pointer) and what.

import reprlib

import orjson


class RunnerError(Exception):
    """Base of every error the library reports to its caller (not a bug in the library).

    The C shim passes these messages on as they are; any other exception is reported as
    an internal error with its type.
    """


class ConfigurationError(RunnerError):
    """An environment variable or option has a value the library cannot use."""


class PreflightError(ConfigurationError):
    """What must hold before a run starts does not (runner.execution.preflight): nothing ran."""


class UnknownIdError(RunnerError, LookupError):
    """An ALT, task or LAST id that the library does not hold."""


class LastFileError(RunnerError):
    """A LAST file could not be generated or written."""


class DeliveryError(LastFileError):
    """A LAST file was written but not published to the archive, with RUNNER_NATS_REQUIRED=true.

    `written` is the LastWriteResult: the LAST directory is complete on disk.
    """

    def __init__(self, str message, written):
        super().__init__(message)
        self.written = written


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


class DocumentError(RunnerError, ValueError):
    """A document (ALT file, task result) that is not valid; holds every issue found.

    str() gives the first issue and the total count, which is what the C ABI reports.
    """

    def __init__(self, str kind, list issues, Py_ssize_t total=-1):
        self.kind = kind
        self.issues = issues
        self.total = len(issues) if total < 0 else total
        first = str(issues[0]) if issues else "invalid"
        plural = "" if self.total == 1 else "s"
        super().__init__(f"{first} ({self.total} error{plural} in {kind})")


class AltValidationError(DocumentError):
    """An ALT file that cannot be run: malformed JSON, wrong types, unknown ids, cycles."""

    def __init__(self, list issues, Py_ssize_t total=-1):
        super().__init__("ALT file", issues, total)
        self.warnings = []      # unknown fields and parameters found beside the errors


class TaskResultError(DocumentError):
    """A task result that is malformed or names a task the ALT file does not have."""

    def __init__(self, list issues, Py_ssize_t total=-1):
        super().__init__("task result", issues, total)


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
