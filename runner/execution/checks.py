"""The checks validation asks the execution layer for, handed to the core on import.

The core (runner.librunner) validates ALT files but imports nothing above it. Two checks
need this layer: prompt templates are compiled by runner.execution.prompt_templates (Jinja2),
and the task types that are not built in are known to runner.execution.task_types
(registered functions, plugins, a run's handlers=). Importing the execution layer imports
this module, which registers both (librunner.register_parameter_checks); so do the names
of `import runner`, the CLI, the service and the C ABI's runner_init. What the core does
without them is said in register_parameter_checks.
"""
from __future__ import annotations

from runner import librunner


def template_facts(text: str) -> tuple:
    # Here, not at the top: Jinja2 is loaded only for files whose prompts are templates (load time).
    from runner.execution.prompt_templates import template_facts as compiled_facts

    return compiled_facts(text)


def task_type_parameters(name: str, parameters: dict, base: str) -> tuple:
    # Here, not at the top: the registry and its plugins' entry points are read only for files
    # that use a type that is not built in (load time).
    from runner.execution.task_types import check_parameters

    return check_parameters(name, parameters, base)


librunner.register_parameter_checks(template_facts, task_type_parameters)
