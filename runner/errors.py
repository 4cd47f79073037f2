"""The library's one error family, at the bottom of the package: every layer may import it.

An error a caller can cause (a bad document, an unusable setting, an unknown id, a file
that cannot be written) is a RunnerError: it has a `category` (the C ABI's error code, see
include/runner_ffi.h), a `pointer` (a JSON pointer or path into what was wrong) where there
is one, and a message that says what was expected and what was found. Callers catch
RunnerError, or the subclass they handle; nothing converts a ValueError into one.

Anything else that escapes the library is a bug: `internal_error` logs it with its
traceback and gives the short text a caller sees (category "internal").

The compiled core re-exports these names (runner.librunner), so `runner.RunnerError` and
`runner.librunner.RunnerError` are the same class. This module imports nothing of runner.
(`category` and not `kind`: AIServiceError.kind already names the transport's failure,
"http" or "deadline", and DocumentError.kind the document, "ALT file".)
"""
from __future__ import annotations

import logging

log = logging.getLogger("runner")

# The C ABI's runner_error_code values (include/runner_ffi.h), by category. 0 is RUNNER_OK.
ERROR_CODES = {
    "invalid_argument": 1,      # an argument the caller passed is unusable (NULL, not UTF-8, bad JSON)
    "not_initialised": 2,       # runner_init was not called, or failed (set by the C shim)
    "invalid_alt": 3,           # an ALT document or its prompt templates are not valid
    "not_found": 4,             # an ALT, task, LAST or run id the library does not hold
    "configuration": 5,         # an environment variable or option has an unusable value
    "io": 6,                    # a file or directory could not be read or written
    "cancelled": 7,             # runner_cleanup or a cancel stopped the call
    "internal": 8,              # a bug in the library: its traceback is in the log
    "invalid_task_result": 9,   # a task result document that is not valid
    "delivery": 10,             # the LAST file is written but not published (RUNNER_NATS_REQUIRED)
    "timeout": 11,              # a wait ended before what it waited for (runner_run_wait)
    "out_of_memory": 12,        # set by the C shim for a MemoryError or a failed allocation
}


class RunnerError(Exception):
    """Base of every error the library reports to its caller that is not a bug in the library.

    The C shim passes the message on as it is, with `error_code`, the code of `category`
    (each subclass gets it when it is defined). `category=` gives one error another
    category than its class's (a run that failed says why it failed).
    """

    category = "invalid_argument"
    error_code = ERROR_CODES["invalid_argument"]
    pointer: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.error_code = ERROR_CODES[cls.category]      # a KeyError here: a category with no code

    def __init__(self, message: str = "", *, pointer: str | None = None, category: str | None = None):
        super().__init__(message)
        if pointer is not None:
            self.pointer = pointer
        if category is not None:
            self.category, self.error_code = category, ERROR_CODES[category]

    @property
    def message(self) -> str:
        return str(self)


class ConfigurationError(RunnerError, ValueError):
    """An environment variable or option has a value the library cannot use.

    Also a ValueError: the settings readers (runner.settings, runner.ai.settings) have
    always raised one, and their callers' `except ValueError` keeps working.
    """

    category = "configuration"


class PreflightError(ConfigurationError):
    """What must hold before a run starts does not (runner.execution.preflight): nothing ran."""


class UnknownIdError(RunnerError, LookupError):
    """An ALT, task or LAST id that the library does not hold."""

    category = "not_found"


class LastFileError(RunnerError):
    """A LAST file could not be generated or written."""

    category = "io"


class DeliveryError(LastFileError):
    """A LAST file was written but not published to the archive, with RUNNER_NATS_REQUIRED=true.

    `written` is the LastWriteResult: the LAST directory is complete on disk.
    """

    category = "delivery"

    def __init__(self, message: str, written):
        super().__init__(message)
        self.written = written


class JournalError(RunnerError):
    """A run's journal (journal.jsonl) or its alt.json that cannot be read as one: not a
    regular file, not a run's journal, or a line its readers cannot use (the file may have
    been edited). `pointer` is the file and line at fault, e.g. "journal.jsonl:7"."""

    category = "io"


class CancelledError(RunnerError):
    """A call stopped by runner_cleanup or a cancel; what finished was written."""

    category = "cancelled"


class RefusedError(RunnerError):
    """A path or artifact the library refuses to touch (outside the workspace, not a regular file)."""

    category = "io"


class ParameterError(RunnerError, ValueError):
    """A task parameter or ALT metadata value the task cannot use (sampling settings, a
    model name, explore_samples); found when the task runs, which then fails permanently."""

    category = "invalid_alt"


class ControlFlowError(RunnerError):
    """A condition, a `$name` or a loop of a task's control flow could not be evaluated when
    the task was to start (values of different types compared, a name with no value yet,
    a for_each over what is not an array); that task fails with this message."""

    category = "invalid_alt"


class DocumentError(RunnerError, ValueError):
    """A document (ALT file, task result) that is not valid; holds every issue found.

    str() gives the first issue and the total count, which is what the C ABI reports;
    `pointer` is the first issue's path.
    """

    def __init__(self, kind: str, issues: list, total: int = -1):
        self.kind = kind
        self.issues = issues
        self.total = len(issues) if total < 0 else total
        first = str(issues[0]) if issues else "invalid"
        plural = "" if self.total == 1 else "s"
        super().__init__(f"{first} ({self.total} error{plural} in {kind})",
                         pointer=(issues[0].path or "/") if issues else None)


class AltValidationError(DocumentError):
    """An ALT file that cannot be run: malformed JSON, wrong types, unknown ids, cycles."""

    category = "invalid_alt"

    def __init__(self, issues: list, total: int = -1):
        super().__init__("ALT file", issues, total)
        self.warnings = []      # unknown fields and parameters found beside the errors


class TaskResultError(DocumentError):
    """A task result that is malformed or names a task the ALT file does not have."""

    category = "invalid_task_result"

    def __init__(self, issues: list, total: int = -1):
        super().__init__("task result", issues, total)


class InternalError(Exception):
    """A bug in the library, as its caller sees it: not a RunnerError, its traceback is in the log."""

    category = "internal"
    error_code = ERROR_CODES["internal"]


def internal_error(error: BaseException, where: str) -> InternalError:
    """The InternalError a caller gets for `error`, a bug: logged here with its traceback
    (what the caller sees names only its type and message)."""
    log.error("internal error in %s: %s: %s", where, type(error).__name__, error,
              exc_info=(type(error), error, error.__traceback__))
    internal = InternalError(f"internal error: {type(error).__name__}: {error}")
    internal.__cause__ = error
    return internal


def error_code(error: BaseException) -> int:
    """The C ABI's runner_error_code of an exception: its category's, else internal."""
    if isinstance(error, RunnerError):
        return error.error_code
    if isinstance(error, MemoryError):
        return ERROR_CODES["out_of_memory"]
    return ERROR_CODES["internal"]


__all__ = ["ERROR_CODES", "RunnerError", "ConfigurationError", "PreflightError", "UnknownIdError",
           "LastFileError", "DeliveryError", "JournalError", "CancelledError", "RefusedError", "ParameterError", "ControlFlowError",
           "DocumentError",
           "AltValidationError", "TaskResultError", "InternalError", "internal_error", "error_code"]
