"""`task-types [--json]`: every task type a file may use, where it comes from, its parameters.

Built-ins, the installed plugins (entry points `librunner.task_types`, loaded here to show
their parameters) and types registered by the process (none, for the CLI).
"""
import dataclasses
import json

DESCRIPTION = """\
List the task types a file may use: the five built-ins, those of installed plugins (entry
points in the group librunner.task_types, imported here to show their parameters), each
with where it comes from, the function that runs it and its parameters."""
EPILOG = """\
examples:
  python -m runner task-types
  python -m runner task-types --json

exit codes:
  0  every type listed
  1  an installed plugin could not be loaded (it is listed with the reason)"""


def built_in_parameters(name: str) -> dict | None:
    """A built-in's parameters as a schema naming them (the full rules: `schema task-parameters`)."""
    from runner import librunner
    names = {"ai_prompt": librunner.AI_PARAMETERS, "data_processing": librunner.DATA_PARAMETERS,
             "file_operation": librunner.FILE_PARAMETERS, "system_command": librunner.COMMAND_PARAMETERS}.get(name)
    if names is None:
        return None
    return {"type": "object", "properties": {n: {} for n in names if n != "task_type"}}


def main(args) -> int:
    from runner.execution import task_types

    kinds, problems = [], []
    for name in task_types.known_names():
        try:
            kind = task_types.lookup(name)
            if kind.origin == "built-in" and kind.parameters is None:
                kind = dataclasses.replace(kind, parameters=built_in_parameters(name))
            kinds.append(kind)
        except task_types.TaskTypeError as error:
            problems.append({"name": name, "error": str(error)})
    if args.json:
        print(json.dumps({"task_types": [k.describe() for k in kinds], "unloadable": problems}, indent=2))
        return 1 if problems else 0
    for kind in kinds:
        origin = kind.origin if kind.distribution is None else \
            f"plugin {kind.distribution}{'' if kind.version is None else ' ' + kind.version}"
        names = ", ".join(kind.parameters.get("properties", {})) if isinstance(kind.parameters, dict) else ""
        print(f"{kind.name:<18} {origin:<28} {kind.qualified_name}" + (f"  parameters: {names}" if names else ""))
    for problem in problems:
        print(f"{problem['name']:<18} cannot be loaded: {problem['error']}")
    return 1 if problems else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("task-types", help="list the task types: built-in, from plugins, with parameters",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--json", action="store_true", help="print them as JSON")
    parser.set_defaults(func=main)
