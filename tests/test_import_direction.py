"""Which way the layers import: the compiled core imports nothing above it.

The core (runner/core/*.pxi, compiled into runner.librunner) computes: ALT models,
validation, the LAST record and its JSON. Above it, runner.last writes LAST files,
runner.execution runs them, runner.ai calls models, and the doors (runner.commands,
runner.service, the C ABI's runner/doors) call all of them. A core module importing a
layer above it brings back the librunner <-> runner.last cycle that imports hidden inside
functions used to hold together. Validation borrows two checks from the execution layer
through a hook it registers (librunner.register_parameter_checks), not an import.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

from conftest import REPO

ABOVE_THE_CORE = ("runner.last", "runner.execution", "runner.ai", "runner.commands", "runner.service")
CORE_FILES = sorted((REPO / "runner" / "core").glob("*.pxi")) + sorted((REPO / "runner" / "core").glob("*.pxd"))

FROM = re.compile(r"^\s*from\s+([\w.]+)\s+c?import\s+(.*)$")
IMPORT = re.compile(r"^\s*c?import\s+(.*)$")
DYNAMIC = re.compile(r"""(?:import_module|__import__)\(\s*[rbf]?["']([\w.]+)""")


def imported_modules(text: str) -> list[tuple[int, str]]:
    """(line, module) for each module a Cython or Python source imports, at any depth of a
    function; `from runner import x` counts as runner.x (x may be a submodule)."""
    found = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number].split("#", 1)[0]
        start = number + 1
        if "(" in line and ")" not in line and (FROM.match(line) or IMPORT.match(line)):
            while ")" not in line and number + 1 < len(lines):      # from x import (a,\n b)
                number += 1
                line += " " + lines[number].split("#", 1)[0]
        number += 1
        names = lambda listed: [part.split()[0] for part in listed.replace("(", " ").replace(")", " ").split(",")
                                if part.strip()]
        matched = FROM.match(line)
        if matched:
            module = matched.group(1)
            found.append((start, module))
            found.extend((start, f"{module}.{name}") for name in names(matched.group(2)))
            continue
        matched = IMPORT.match(line)
        if matched:
            found.extend((start, name) for name in names(matched.group(1)))
        found.extend((start, module) for module in DYNAMIC.findall(line))
    return found


def is_above_the_core(module: str) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in ABOVE_THE_CORE)


def test_no_core_module_imports_a_layer_above_it():
    assert len(CORE_FILES) > 10
    refused = [f"{path.relative_to(REPO)}:{line}: imports {module}"
               for path in CORE_FILES for line, module in imported_modules(path.read_text())
               if is_above_the_core(module)]
    assert refused == []


def test_the_reader_of_imports_sees_them_at_any_depth():
    # The rule above is only as good as this reader: it must see the forms the core uses.
    text = ("from runner.errors import (\n    RunnerError,\n    ConfigurationError)\n"
            "def f():\n    from runner import last, settings\n    import runner.ai.client as c\n"
            "    mod = importlib.import_module('runner.commands.run')\n"
            "cdef g():\n    from runner.execution.templates import template_facts  # lazy\n")
    modules = {module for _, module in imported_modules(text)}
    assert {"runner.errors", "runner.last", "runner.ai.client", "runner.commands.run",
            "runner.execution.templates"} <= modules
    assert [module for module in modules if is_above_the_core(module)]
    errors_pxi = (REPO / "runner" / "core" / "errors.pxi").read_text()
    assert "runner.errors" in {module for _, module in imported_modules(errors_pxi)}


# The C ABI's doors that start runs, resume, register task types and write LAST files:
# they need the layers above the core, so they live in runner/doors (compiled into the
# same library), not in runner/core.
DOORS = ("core_init", "core_generate_last_file", "core_batch_process", "core_execute_alt_file", "core_run_start",
         "core_resume", "core_register_task_type")


def defined_doors(paths) -> set[str]:
    return {name for path in paths for name in re.findall(r"^cdef public \w+ (core_\w+)\(", path.read_text(), re.M)}


def test_the_doors_of_the_c_abi_are_not_in_the_core():
    assert defined_doors(CORE_FILES) & set(DOORS) == set()
    assert defined_doors((REPO / "runner" / "doors").glob("*.pxi")) >= set(DOORS)


def loaded_after(code: str) -> list[str]:
    completed = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                               capture_output=True, text=True, timeout=120, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def test_loading_the_core_loads_no_layer_above_it():
    loaded = loaded_after("import runner.librunner")
    assert "runner.librunner" in loaded
    assert [module for module in loaded if is_above_the_core(module)] == []


def test_the_error_family_imports_nothing_of_runner():
    # runner.errors is the bottom: the core re-exports it and every layer raises from it.
    tree = ast.parse((REPO / "runner" / "errors.py").read_text())
    imported = [node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                if node.level or (node.module or "").split(".")[0] == "runner"]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names if alias.name.split(".")[0] == "runner"]
    assert imported == []
    assert [module for module in loaded_after("import runner.errors") if module.startswith("runner.")] == \
        ["runner.errors"]


BROKEN_TEMPLATE = {"id": "t", "title": "t", "tasks": [{"id": "a", "parameters": {"prompt": "Say {{ task.id"}}]}
PLUGIN_TYPE = {"id": "p", "title": "p", "tasks": [{"id": "a", "parameters": {"task_type": "translate"}}]}


def test_the_core_alone_skips_templates_and_refuses_types_it_cannot_know():
    # What register_parameter_checks says: without the execution layer's checks, a prompt
    # template is not compiled at validation, and a type that is not built in is refused.
    # The package (`import runner`) registers them, as the CLI, the service and the C ABI do.
    code = f"""
import json
from runner import librunner
librunner.parse_alt_file({json.dumps(json.dumps(BROKEN_TEMPLATE))})
try:
    librunner.parse_alt_file({json.dumps(json.dumps(PLUGIN_TYPE))})
except librunner.AltValidationError as error:
    print("alone:", error.issues[0].path, error.issues[0].message)
import runner
try:
    runner.parse_alt_file({json.dumps(json.dumps(BROKEN_TEMPLATE))})
except runner.AltValidationError as error:
    print("registered:", error.issues[0].path)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    alone, registered = completed.stdout.splitlines()
    assert alone.startswith("alone: /tasks/0/parameters/task_type unknown task type 'translate'")
    assert "no registry of task types is loaded" in alone
    assert registered == "registered: /tasks/0/parameters/prompt"
