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


def _number(name: str, default: float, environ, *, low: float, high: float, low_open: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > low if low_open else value >= low) or not value <= high:
        bound = "(" if low_open else "["
        raise ValueError(f"{name}={raw!r}: expected a number in {bound}{low:g}, {high:g}]")
    return value


def load(environ=os.environ) -> ExecutionSettings:
    """Every execution setting, validated; ValueError names the first bad variable."""
    allowlist = tuple(part.strip() for part in environ.get("RUNNER_SYSTEM_COMMAND_ALLOWLIST", "").split(",")
                      if part.strip())
    return ExecutionSettings(
        max_concurrency=settings.load(environ).max_concurrent_tasks,
        default_timeout=_number("RUNNER_DEFAULT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, environ,
                                low=0, high=7 * 24 * 3600, low_open=True),
        retry_base=_number("RUNNER_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS, environ, low=0, high=3600),
        retry_max=_number("RUNNER_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS, environ, low=0, high=24 * 3600),
        grace_seconds=_number("RUNNER_GRACE_SECONDS", DEFAULT_GRACE_SECONDS, environ, low=0, high=600),
        chaos_fault_rate=_number("RUNNER_CHAOS_FAULT_RATE", DEFAULT_CHAOS_FAULT_RATE, environ, low=0, high=1),
        system_commands_enabled=settings._flag("RUNNER_ENABLE_SYSTEM_COMMANDS", environ),
        command_allowlist=allowlist,
        output_cap_bytes=int(_number("RUNNER_COMMAND_OUTPUT_CAP_BYTES", DEFAULT_OUTPUT_CAP_BYTES, environ,
                                     low=1, high=1 << 30)),
    )
