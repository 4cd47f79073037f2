"""Executing ALT files: the scheduler loop, attempts, retries, timeouts, modes and task types.

The run itself (RunRequest -> RunOutcome) is runner.execution.run; this package face only
hands its names on. The public `runner.run(alt, out, **options)` is runner.execution.run.run,
not re-exported here: the name `runner.execution.run` stays the module.
"""
from runner.execution import modes
from runner.execution.run import (RunInterrupted, RunOutcome, RunRequest, cancel_active_runs, execute,
                                  execute_request)

__all__ = ["execute", "execute_request", "cancel_active_runs", "RunRequest", "RunOutcome", "RunInterrupted",
           "modes"]
