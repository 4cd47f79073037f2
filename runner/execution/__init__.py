"""Executing ALT files: the scheduler loop, attempts, retries, timeouts, modes and task types.

The run itself (RunRequest -> RunOutcome) is runner.execution.run; this package face only
hands its names on, resolved at first use, so importing one module of the layer (preflight,
task_types) does not load the whole run. The public `runner.run(alt, out, **options)` is
runner.execution.run.run, not re-exported here: the name `runner.execution.run` stays the module.

Importing the layer registers the checks validation asks it for (runner.execution.checks).
"""
from runner.execution import checks  # noqa: F401  (registers validation's checks in the core)

_RUN_NAMES = frozenset(("execute", "execute_request", "cancel_active_runs", "RunRequest", "RunOutcome",
                        "RunInterrupted"))

__all__ = ["execute", "execute_request", "cancel_active_runs", "RunRequest", "RunOutcome", "RunInterrupted",
           "modes"]


def __getattr__(name: str):
    if name in _RUN_NAMES:
        from runner.execution import run

        return getattr(run, name)
    raise AttributeError(f"module 'runner.execution' has no attribute {name!r}")
