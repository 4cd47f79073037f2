"""The Runner Service's configuration, read from RUNNER_* environment variables.

Read anew at each use (not cached at import), so a C host can change the environment
between calls. Invalid values raise ValueError with the variable, the value and what
was expected.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOG_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}
DEFAULT_LOG_LEVEL = "warn"
DEFAULT_MAX_CONCURRENT_TASKS = 8
DEFAULT_OUTPUT_DIR = "./output"


@dataclass(frozen=True)
class Settings:
    log_level: int
    max_concurrent_tasks: int
    output_dir: Path
    ai_service_url: str | None
    enable_compression: bool


def _flag(name: str, environ) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={raw!r}: expected true or false")


def _positive_int(name: str, default: int, environ) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name}={raw!r}: expected a whole number of at least 1")
    return value


def log_level(environ=os.environ) -> int:
    raw = environ.get("RUNNER_LOG_LEVEL", "").strip().lower() or DEFAULT_LOG_LEVEL
    if raw not in LOG_LEVELS:
        raise ValueError(f"RUNNER_LOG_LEVEL={raw!r}: expected one of {', '.join(LOG_LEVELS)}")
    return LOG_LEVELS[raw]


def output_dir(explicit: str | os.PathLike | None = None, environ=os.environ) -> Path:
    """The directory LAST files go to: the caller's choice, else RUNNER_OUTPUT_DIR, else ./output."""
    if explicit:
        return Path(explicit)
    return Path(environ.get("RUNNER_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR)


def load(environ=os.environ) -> Settings:
    """Every setting, validated; ValueError names the first bad variable."""
    return Settings(
        log_level=log_level(environ),
        max_concurrent_tasks=_positive_int("RUNNER_MAX_CONCURRENT_TASKS", DEFAULT_MAX_CONCURRENT_TASKS, environ),
        output_dir=output_dir(None, environ),
        ai_service_url=environ.get("RUNNER_AI_SERVICE_URL") or None,
        enable_compression=_flag("RUNNER_ENABLE_COMPRESSION", environ),
    )
