"""Task types and the module whose `run(ctx)` does each, imported when a run first needs it.

Importing every handler up front cost each run the template engine and subprocess
machinery even when its file has no prompt or command. The preparation step
(runner.execution.preparation) loads the handlers of the types a file uses before the
run's clock starts; handler_for loads any other on demand.
"""
from __future__ import annotations

import importlib
from typing import Callable

MODULES = {
    "ai_prompt": "runner.execution.ai_prompt",
    "data_processing": "runner.execution.data_processing",
    "file_operation": "runner.execution.file_operation",
    "system_command": "runner.execution.system_command",
    "generic": "runner.execution.generic",
}
INLINE_TYPES = frozenset({"generic"})   # run by the Scheduler itself outside chaos mode
HANDLERS: dict[str, Callable] = {}      # task type -> run(ctx), filled by handler_for


def handler_for(task_type: str) -> Callable | None:
    """The handler of `task_type`, importing its module the first time; None for an unknown type."""
    handler = HANDLERS.get(task_type)
    if handler is None and task_type in MODULES:
        handler = HANDLERS[task_type] = importlib.import_module(MODULES[task_type]).run
    return handler
