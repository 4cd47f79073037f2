"""Task types: one registry of what each type of task runs, built-in or the user's own.

A task type is a name (parameters.task_type) and a handler `run(ctx: AttemptContext)`.
The five built-ins are registrations like any other, whose module is imported the first
time a run needs it (importing every handler up front cost each run the template engine
and the subprocess machinery). Users add theirs three ways:

- Python: `@runner.task_type(name, parameters=schema)` or `runner.register_task_type`,
  for this process; or `runner.run(alt, out, handlers={name: function})` for one run.
- Plugins: a distribution's entry point in the group `librunner.task_types`
  (`name = "pkg.module:function"`), loaded the first time a file uses that name, so
  installed plugins cost nothing to the runs that do not use them.
- C: runner_register_task_type (runner/doors/ffi_task_types.pxi).

A user's function is called with a UserTask (runner.execution.user_task): plain functions
on the run's worker threads, `async def` ones on the run's event loop.

The ALT parser asks check_parameters() about a type it does not know, so an unknown type
is refused and a user type's parameters are checked (against its JSON Schema) while the
file is validated, before anything runs.
"""
from __future__ import annotations

import contextlib
import contextvars
import inspect
import threading
from dataclasses import dataclass, field
from typing import Callable

from runner.errors import RunnerError

BUILT_IN_MODULES = {
    "ai_prompt": "runner.execution.ai_prompt",
    "data_processing": "runner.execution.data_processing",
    "file_operation": "runner.execution.file_operation",
    "system_command": "runner.execution.system_command",
    "generic": "runner.execution.generic",
}
INLINE_TYPES = frozenset({"generic"})   # run by the Scheduler itself outside chaos mode
# Types whose effects are outside the record (a command ran, a file changed): resume never
# repeats a completed one, and the journal commits their results at once.
SIDE_EFFECT_TYPES = frozenset({"system_command", "file_operation"})
ENTRY_POINT_GROUP = "librunner.task_types"
MAX_NAME_LENGTH = 128


class TaskTypeError(RunnerError, ValueError):
    """A registration that cannot be made (a built-in's name, a name that is not one, ...)."""


@dataclass(eq=False)
class TaskType:
    """One registered task type.

    origin: "built-in", "python" (registered in this process), "run" (a run's handlers=),
    "plugin" (an entry point of `distribution`) or "c" (registered through the C ABI).
    qualified_name and version are part of a task's resume key: a new version of the
    code that handles it makes an earlier result stale.
    """
    name: str
    origin: str
    run: Callable | None = None             # run(ctx) -> output; None until a built-in is imported
    function: Callable | None = None        # the user's function (task) -> output
    parameters: dict | None = None          # JSON Schema of the task's parameters
    qualified_name: str = ""
    distribution: str | None = None
    version: str | None = None
    is_async: bool = False
    module: str | None = None               # a built-in's module
    _validator: object = field(default=None, repr=False)

    def handler(self) -> Callable:
        if self.run is None:
            import importlib
            self.run = importlib.import_module(self.module).run
        return self.run

    def code_version(self) -> str | None:
        """The version of the code that handles this type: the one given, or that of the
        distribution that installed the function's top-level package (looked up once)."""
        if self.version is None and self.function is not None and self.origin != "built-in":
            top = (getattr(self.function, "__module__", None) or "").partition(".")[0]
            if top and top != "__main__":
                from importlib.metadata import PackageNotFoundError, packages_distributions, version
                names = packages_distributions().get(top) or []
                try:
                    self.version = version(names[0]) if names else ""
                except PackageNotFoundError:
                    self.version = ""
        return self.version or None

    def describe(self) -> dict:
        """How `python -m runner task-types --json` shows it."""
        return {"name": self.name, "origin": self.origin, "distribution": self.distribution,
                "version": self.version, "handler": self.qualified_name or self.module,
                "async": self.is_async, "parameters": self.parameters}

    def validator(self):
        if self._validator is None:
            from jsonschema import Draft202012Validator
            self._validator = Draft202012Validator(self.parameters)
        return self._validator


_LOCK = threading.Lock()
_REGISTRY: dict[str, TaskType] = {
    name: TaskType(name, "built-in", module=module, qualified_name=module + ".run")
    for name, module in BUILT_IN_MODULES.items()
}
_ENTRY_POINTS: dict | None = None           # name -> importlib.metadata.EntryPoint, read once
# The handlers= of the run being prepared on this thread (parsing its file sees them).
_RUN_HANDLERS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("runner_run_handlers", default=None)


# ---- registering --------------------------------------------------------------------

def _check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise TaskTypeError(f"a task type's name must be a non-empty string, found {name!r}")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise TaskTypeError(f"task type name {name[:40]!r}: expected at most {MAX_NAME_LENGTH} printable characters")
    if name in BUILT_IN_MODULES:
        raise TaskTypeError(f"task type {name!r} is built in and cannot be replaced")
    return name


def _check_schema(name: str, parameters) -> dict | None:
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise TaskTypeError(f"task type {name!r}: parameters must be a JSON Schema (a dict), "
                            f"found {type(parameters).__name__}")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as error:
        raise TaskTypeError(f"task type {name!r}: its parameters schema is not a JSON Schema: {error.message}") from None
    return parameters


def user_type(name: str, function: Callable, *, parameters: dict | None = None, origin: str = "python",
              version: str | None = None, distribution: str | None = None) -> TaskType:
    """A TaskType for a user's function (not registered)."""
    _check_name(name)
    if not callable(function):
        raise TaskTypeError(f"task type {name!r}: the handler must be callable, found {type(function).__name__}")
    from runner.execution.user_task import handler_of
    parameters = _check_schema(name, parameters if parameters is not None else getattr(function, "task_parameters", None))
    qualified = f"{getattr(function, '__module__', None) or '?'}.{getattr(function, '__qualname__', type(function).__name__)}"
    is_async = inspect.iscoroutinefunction(function)
    kind = TaskType(name, origin, function=function, parameters=parameters, qualified_name=qualified,
                    distribution=distribution, version=version, is_async=is_async)
    kind.run = handler_of(kind)
    return kind


def register_task_type(name: str, function: Callable, *, parameters: dict | None = None,
                       version: str | None = None) -> TaskType:
    """Makes `name` a task type of this process, run by function(task) (see UserTask).

    parameters: a JSON Schema the tasks' parameters are checked against when a file is
    validated (parameters.task_type itself excepted). version: part of the tasks' resume
    key (a new version re-runs them); default the version of the distribution that
    installed the function's package, if any. Registering a name again replaces it; a
    built-in's name is refused.
    """
    kind = user_type(name, function, parameters=parameters, version=version)
    with _LOCK:
        _REGISTRY[name] = kind
    return kind


def task_type(name: str, *, parameters: dict | None = None, version: str | None = None):
    """Decorator: `@runner.task_type("translate", parameters={...})` registers the function."""
    def decorate(function):
        register_task_type(name, function, parameters=parameters, version=version)
        function.task_parameters = parameters
        return function
    return decorate


def register(kind: TaskType) -> None:
    """Adds a TaskType made elsewhere (the C ABI's registrations)."""
    _check_name(kind.name)
    with _LOCK:
        _REGISTRY[kind.name] = kind


def unregister(name: str) -> bool:
    """Removes a user's type (built-ins stay); True if there was one."""
    if name in BUILT_IN_MODULES:
        return False
    with _LOCK:
        return _REGISTRY.pop(name, None) is not None


def unregister_origin(origin: str) -> None:
    """Removes every type of one origin ("c": runner_cleanup forgets the host's handlers)."""
    with _LOCK:
        for name in [n for n, kind in _REGISTRY.items() if kind.origin == origin]:
            del _REGISTRY[name]


# ---- finding ------------------------------------------------------------------------

@contextlib.contextmanager
def run_handlers(handlers: dict | None):
    """While preparing a run: its handlers= are task types (parsing its file sees them)."""
    if not handlers:
        yield None
        return
    token = _RUN_HANDLERS.set(run_types(handlers))
    try:
        yield _RUN_HANDLERS.get()
    finally:
        _RUN_HANDLERS.reset(token)


def run_types(handlers: dict | None) -> dict[str, TaskType]:
    """A run's handlers= ({name: function or TaskType}) as TaskTypes."""
    if not handlers:
        return {}
    if not isinstance(handlers, dict):
        raise TaskTypeError(f"handlers must be a dict of task type name -> function, found {type(handlers).__name__}")
    return {name: value if isinstance(value, TaskType) else user_type(name, value, origin="run")
            for name, value in handlers.items()}


def _entry_points() -> dict:
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points
        found = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(point.name, point)   # the first on sys.path wins, as for imports
        _ENTRY_POINTS = found
    return _ENTRY_POINTS


def _load_plugin(name: str) -> TaskType | None:
    point = _entry_points().get(name)
    if point is None or name in BUILT_IN_MODULES:
        return None
    dist = getattr(point, "dist", None)
    dist_name = getattr(dist, "name", None) if dist is not None else None
    version = getattr(dist, "version", None) if dist is not None else None
    try:
        function = point.load()
    except Exception as error:
        raise TaskTypeError(f"task type {name!r}: the plugin {dist_name or '?'} could not be loaded "
                            f"({point.value}): {type(error).__name__}: {error}") from None
    kind = user_type(name, function, origin="plugin", version=version, distribution=dist_name)
    with _LOCK:
        # A plugin's module may register its types itself on import: the entry point wins.
        _REGISTRY[name] = kind
    return kind


def lookup(name: str, handlers: dict | None = None) -> TaskType | None:
    """The task type `name`: a run's handlers first, then this process's registry, then an
    installed plugin (loaded now). None when no such type exists."""
    if handlers:
        kind = handlers.get(name)
        if kind is not None:
            return kind
    scoped = _RUN_HANDLERS.get()
    if scoped:
        kind = scoped.get(name)
        if kind is not None:
            return kind
    kind = _REGISTRY.get(name)
    if kind is None and isinstance(name, str):
        kind = _load_plugin(name)
    return kind


def handler_for(name: str, handlers: dict | None = None) -> Callable | None:
    """The run(ctx) of task type `name` (importing a built-in's module the first time); None
    for an unknown type."""
    kind = lookup(name, handlers)
    return None if kind is None else kind.handler()


def known_names(handlers: dict | None = None) -> list[str]:
    """Every type a file may use now: built-ins, registered, installed plugins, the run's."""
    names = dict.fromkeys(BUILT_IN_MODULES)
    names.update(dict.fromkeys(_REGISTRY))
    names.update(dict.fromkeys(_entry_points()))
    names.update(dict.fromkeys(_RUN_HANDLERS.get() or {}))
    names.update(dict.fromkeys(handlers or {}))
    return list(names)


def all_types(load_plugins: bool = True) -> list[TaskType]:
    """Every task type, for `task-types`: plugins are loaded to show their parameters."""
    kinds = dict(_REGISTRY)
    for name in _entry_points():
        if name not in kinds and load_plugins:
            kinds[name] = _load_plugin(name)
    return list(kinds.values())


def code_facts(names, handlers: dict | None = None) -> dict:
    """{name: {handler, version, origin, distribution}} of the user's types among `names`
    (built-ins left out): what a run's journal records, and resume compares."""
    facts = {}
    for name in names:
        if name in BUILT_IN_MODULES or name in facts:
            continue
        try:
            kind = lookup(name, handlers)
        except TaskTypeError:
            kind = None
        facts[name] = None if kind is None else {
            "handler": kind.qualified_name, "version": kind.code_version(), "origin": kind.origin,
            "distribution": kind.distribution}
    return facts


def unknown_type_message(name: str, handlers: dict | None = None) -> str:
    import difflib
    known = known_names(handlers)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"expected one of {', '.join(known)}, found {name!r} ({hint}is a plugin missing?)"


# ---- checking a file's parameters (called by the ALT parser) -------------------------

def check_parameters(name: str, parameters: dict, base: str) -> tuple[bool, list, list]:
    """For a type the parser does not know as a built-in: (known, errors, warnings), each
    issue (json pointer, message, value). An unknown type is one error at base/task_type."""
    try:
        kind = lookup(name)
    except TaskTypeError as error:
        return False, [(f"{base}/task_type", str(error), name)], []
    if kind is None:
        return False, [(f"{base}/task_type", unknown_type_message(name), name)], []
    if kind.parameters is None:
        return True, [], []
    schema = kind.parameters
    given = {key: value for key, value in parameters.items() if key != "task_type"}
    errors = []
    for error in sorted(kind.validator().iter_errors(given), key=lambda e: list(e.absolute_path)):
        pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path)
        errors.append((base + pointer, error.message, error.instance))
    warnings = []
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else None
    if properties is not None and schema.get("additionalProperties", True) is not False:
        import difflib
        known = tuple(properties)
        for key in given:
            if key not in properties:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                warnings.append((f"{base}/{key}", f"unknown parameter{hint}", given[key]))
    return True, errors, warnings


def refresh_plugins() -> None:
    """Reads the installed entry points again (after installing a plugin in this process)."""
    global _ENTRY_POINTS
    _ENTRY_POINTS = None
