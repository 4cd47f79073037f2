"""The sampling settings a caller may pass to `complete`, checked before anything is sent.

Each provider sends the ones its API knows, within its ranges (see their `sendable`;
`sent_sampling` tells a caller what will be sent); the checks here make a task's typo
a clear ParameterError instead of a 400 from the service.
"""
from __future__ import annotations

import math

from runner.errors import ParameterError

SETTINGS = ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop")
MAX_STOP_SEQUENCES = 4      # OpenAI's limit, the smallest of the supported services


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ParameterError(f"sampling.{name}: expected a number of at least 0, found {value!r}")
    return float(value)


def _whole(name: str, value, least: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (least is not None and value < least):
        floor = f" of at least {least}" if least is not None else ""
        raise ParameterError(f"sampling.{name}: expected a whole number{floor}, found {value!r}")
    return value


def _stop(value) -> list[str]:
    stops = [value] if isinstance(value, str) else value
    if (not isinstance(stops, list) or not 1 <= len(stops) <= MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and s for s in stops)):
        raise ParameterError(f"sampling.stop: expected a non-empty string or a list of 1 to {MAX_STOP_SEQUENCES} "
                         f"non-empty strings, found {value!r}")
    return stops


def checked_sampling(sampling: dict | None) -> dict:
    """The settings with None values dropped; ParameterError naming the first bad one."""
    if sampling is None:
        return {}
    if not isinstance(sampling, dict):
        raise ParameterError(f"sampling: expected an object, found {type(sampling).__name__}")
    checked = {}
    for name, value in sampling.items():
        if value is None:
            continue
        if name in ("temperature", "top_p"):
            checked[name] = _number(name, value)
        elif name in ("max_tokens", "top_k"):
            checked[name] = _whole(name, value, 1)
        elif name == "seed":
            checked[name] = _whole(name, value, None)
        elif name == "stop":
            checked[name] = _stop(value)
        else:
            raise ParameterError(f"sampling.{name}: unknown setting (expected one of {', '.join(SETTINGS)})")
    return checked
