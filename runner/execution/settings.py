"""Execution settings, read from RUNNER_* environment variables at the start of each run.

Invalid values raise ConfigurationError naming the variable, the value and what was
expected; a C host may change the environment between runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from runner import settings

DEFAULT_TIMEOUT_SECONDS = 300.0        # a task without timeout_seconds
DEFAULT_RETRY_BASE_SECONDS = 0.5       # first backoff cap: base * 2**(attempt - 1)
DEFAULT_RETRY_MAX_SECONDS = 30.0       # no backoff longer than this
DEFAULT_GRACE_SECONDS = 2.0            # running tasks' time to stop on interruption
DEFAULT_CHAOS_FAULT_RATE = 0.2         # fraction of attempts given a fault in chaos mode
DEFAULT_OUTPUT_CAP_BYTES = 1 << 20     # stdout / stderr kept per system command
DEFAULT_MAX_LOOP_ITERATIONS = 1000     # iterations of one loop (control flow)
DEFAULT_MAX_CALL_DEPTH = 16            # nested function calls (control flow)
# Task instances that loops and calls may make in one run, all constructs together: the two
# limits above bound one loop and one level each, not their product (three nested loops of
# 1000 make a billion), and a service runs documents from callers it does not trust.
DEFAULT_MAX_TASK_INSTANCES = 100_000


@dataclass(frozen=True)
class ExecutionSettings:
    max_concurrency: int
    default_timeout: float
    retry_base: float
    retry_max: float
    grace_seconds: float
    chaos_fault_rate: float
    system_commands_enabled: bool
    command_allowlist: tuple[str, ...]
    output_cap_bytes: int
    max_loop_iterations: int = DEFAULT_MAX_LOOP_ITERATIONS
    max_call_depth: int = DEFAULT_MAX_CALL_DEPTH
    max_task_instances: int = DEFAULT_MAX_TASK_INSTANCES


def load(environ=os.environ) -> ExecutionSettings:
    """Every execution setting, validated; ValueError names the first bad variable."""
    allowlist = tuple(part.strip() for part in environ.get("RUNNER_SYSTEM_COMMAND_ALLOWLIST", "").split(",")
                      if part.strip())
    return ExecutionSettings(
        max_concurrency=settings.load(environ).max_concurrent_tasks,
        default_timeout=settings.number("RUNNER_DEFAULT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, environ,
                                        maximum=7 * 24 * 3600, above_minimum=True),
        retry_base=settings.number("RUNNER_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS, environ, maximum=3600),
        retry_max=settings.number("RUNNER_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS, environ, maximum=24 * 3600),
        grace_seconds=settings.number("RUNNER_GRACE_SECONDS", DEFAULT_GRACE_SECONDS, environ, maximum=600),
        chaos_fault_rate=settings.number("RUNNER_CHAOS_FAULT_RATE", DEFAULT_CHAOS_FAULT_RATE, environ, maximum=1),
        system_commands_enabled=settings.flag("RUNNER_ENABLE_SYSTEM_COMMANDS", False, environ),
        command_allowlist=allowlist,
        output_cap_bytes=settings.integer("RUNNER_COMMAND_OUTPUT_CAP_BYTES", DEFAULT_OUTPUT_CAP_BYTES, environ,
                                          maximum=1 << 30),
        max_loop_iterations=settings.integer("RUNNER_MAX_LOOP_ITERATIONS", DEFAULT_MAX_LOOP_ITERATIONS, environ,
                                             maximum=100_000_000),
        max_call_depth=settings.integer("RUNNER_MAX_CALL_DEPTH", DEFAULT_MAX_CALL_DEPTH, environ, maximum=10_000),
        max_task_instances=settings.integer("RUNNER_MAX_TASK_INSTANCES", DEFAULT_MAX_TASK_INSTANCES, environ,
                                            maximum=100_000_000),
    )
