"""librunner: the ALT_LAS Runner Service, a Cython core shipped as librunner.so.

The Python API re-exports the compiled core (`runner.librunner`, loaded from
librunner.so). Names are resolved lazily: when a C host starts the core, the core
imports this package while it is itself still being initialised.
"""
from __future__ import annotations

_CORE_NAMES = frozenset((
    "__version__",
    "AltFile", "Task", "TaskResult", "DependencyGraph", "ValidationIssue",
    "RunnerError", "ConfigurationError", "UnknownIdError", "LastFileError",
    "DocumentError", "AltValidationError", "TaskResultError",
    "EXECUTION_MODES", "PRIORITIES", "TASK_TYPES", "TASK_STATUSES",
    "parse_alt_file", "parse_task_result", "task_result_from_dict", "validate_alt_document",
    "build_last_record",
    "AltLimits", "plan_alt_file", "DEFAULT_TASK_TIMEOUT_SECONDS", "write_last_file", "LastWriteResult", "LastOptions", "load_last",
    "RunStore",
))

__all__ = sorted(_CORE_NAMES - {"__version__"})


def __getattr__(name: str):
    if name in _CORE_NAMES:
        from runner import librunner

        return getattr(librunner, name)
    if name == "run":   # the executor is Python, not core: runner.execution.run
        from runner.execution import run

        return run
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
