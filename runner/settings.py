"""The Runner Service's settings, read from RUNNER_* environment variables.

The words: *settings* are what the environment says (RUNNER_*, OTEL_* variables), read by
a `settings` module in each package that has variables of its own (runner.ai.settings,
runner.execution.settings, runner.service.settings, runner.trace.settings); *options* are
what a caller chooses for one run or one LAST directory (RunRequest, LastOptions in
runner.last.options, command-line flags), over the settings.

Read anew at each use (not cached at import), so a C host can change the environment
between calls. Invalid values raise ConfigurationError (runner.errors; also a ValueError) with the
variable, the value and what was expected. The readers (text, flag, integer, number, choice) serve every module that
has variables of its own.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import ConfigurationError

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


def text(name: str, environ=os.environ) -> str | None:
    """The variable's value without surrounding blanks; None when unset or empty."""
    return environ.get(name, "").strip() or None


SHOWN_VALUE_CHARACTERS = 80


def shown(raw: str) -> str:
    """A setting's value as an error message quotes it: whole when short, else its start and
    its length (a megabyte-long value must not make a megabyte-long message)."""
    if len(raw) <= SHOWN_VALUE_CHARACTERS:
        return repr(raw)
    return f"{raw[:SHOWN_VALUE_CHARACTERS]!r}... ({len(raw)} characters)"


def flag(name: str, default: bool = False, environ=os.environ) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name}={shown(raw)}: expected true or false")


def integer(name: str, default: int | None, environ=os.environ, *, minimum: int = 1,
            maximum: int | None = None) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ConfigurationError(f"{name}={shown(raw)}: expected a whole number {bounds}")
    return value


def number(name: str, default: float, environ=os.environ, *, minimum: float = 0.0,
           maximum: float = math.inf, above_minimum: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    low_ok = value > minimum if above_minimum else value >= minimum
    if not (low_ok and value <= maximum):  # NaN fails both
        if math.isinf(maximum):
            bounds = f"{'greater than' if above_minimum else 'at least'} {minimum:g}"
        else:
            bounds = f"in {'(' if above_minimum else '['}{minimum:g}, {maximum:g}]"
        raise ConfigurationError(f"{name}={shown(raw)}: expected a number {bounds}")
    return value


def choice(name: str, default: str, choices, environ=os.environ, aliases: dict | None = None) -> str:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    raw = (aliases or {}).get(raw, raw)
    if raw not in choices:
        raise ConfigurationError(f"{name}={shown(raw)}: expected one of {', '.join(choices)}")
    return raw


def log_level(environ=os.environ) -> int:
    return LOG_LEVELS[choice("RUNNER_LOG_LEVEL", DEFAULT_LOG_LEVEL, LOG_LEVELS, environ)]


def output_dir(explicit: str | os.PathLike | None = None, environ=os.environ) -> Path:
    """The directory LAST files go to: the caller's choice, else RUNNER_OUTPUT_DIR, else ./output."""
    if explicit:
        return Path(explicit)
    return Path(environ.get("RUNNER_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR)


def load(environ=os.environ) -> Settings:
    """Every setting, validated; ConfigurationError names the first bad variable."""
    return Settings(
        log_level=log_level(environ),
        max_concurrent_tasks=integer("RUNNER_MAX_CONCURRENT_TASKS", DEFAULT_MAX_CONCURRENT_TASKS, environ),
        output_dir=output_dir(None, environ),
        ai_service_url=text("RUNNER_AI_SERVICE_URL", environ),
        enable_compression=flag("RUNNER_ENABLE_COMPRESSION", False, environ),
    )
