"""librunner: the ALT_LAS Runner Service, a Cython core shipped as librunner.so.

The Python API re-exports the compiled core (`runner.librunner`, loaded from
librunner.so), LAST files on disk (runner.last) and runs (runner.execution). Names are
resolved lazily: when a C host starts the core, the core imports this package while it is
itself still being initialised. `runner.librunner` alone is the core without the layers
above it (librunner.register_parameter_checks says what its validation then skips).
"""
from __future__ import annotations

_CORE_NAMES = frozenset((
    "__version__",
    # errors
    "RunnerError", "ConfigurationError", "PreflightError", "UnknownIdError", "LastFileError", "DeliveryError",
    "CancelledError", "RefusedError", "ParameterError", "InternalError",
    "DocumentError", "AltValidationError", "TaskResultError", "ValidationIssue",
    # ALT files: model, validation, limits, graph, plan
    "AltFile", "Task", "EXECUTION_MODES", "PRIORITIES", "TASK_TYPES", "TASK_STATUSES",
    "parse_alt_file", "validate_alt_document", "AltLimits", "MAX_NESTING",
    "DependencyGraph", "plan_alt_file", "DEFAULT_TASK_TIMEOUT_SECONDS",
    # task results
    "TaskResult", "parse_task_result", "task_result_from_dict",
    # LAST files
    "build_last_record", "recorded_task_result", "last_json",
    # the store behind the C ABI
    "RunStore",
))
# LAST files on disk: plain Python, runner.last
_LAST_NAMES = {"write_last_file": "write", "LastWriteResult": "directory", "LastOptions": "options",
               "load_last": "reader"}
_EXECUTION_NAMES = frozenset(("run", "RunRequest", "RunOutcome"))  # plain Python: runner.execution.run
_RESUME_NAMES = frozenset(("resume",))  # plain Python: runner.execution.resume
_CLUSTER_NAMES = frozenset(("run_many",))  # plain Python: runner.cluster (distributed only with dask=)
_TASK_TYPE_NAMES = frozenset(("task_type", "register_task_type"))  # runner.execution.task_types

__all__ = sorted((_CORE_NAMES | _LAST_NAMES.keys() | _EXECUTION_NAMES | _RESUME_NAMES | _CLUSTER_NAMES | _TASK_TYPE_NAMES) - {"__version__"})


def __getattr__(name: str):
    if name in _CORE_NAMES:
        from runner import librunner
        # The package validates as the CLI does: prompt templates and task types that are not
        # built in are checked through the execution layer, which registers the checks.
        import runner.execution  # noqa: F401

        return getattr(librunner, name)
    if name in _LAST_NAMES:
        from importlib import import_module

        return getattr(import_module(f"runner.last.{_LAST_NAMES[name]}"), name)
    if name in _EXECUTION_NAMES:
        from runner.execution import run

        return getattr(run, name)
    if name in _RESUME_NAMES:
        from runner.execution import resume

        return getattr(resume, name)
    if name in _TASK_TYPE_NAMES:
        from runner.execution import task_types

        return getattr(task_types, name)
    if name in _CLUSTER_NAMES:
        from runner import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
