# Task parameters: what each task type accepts, checked while the file is validated, so a
# misspelt operation or a broken prompt template is reported before anything runs (and
# before any AI call is paid for) instead of failing at its task's turn.
#
# The published form of these rules is runner/schemas/task-parameters.schema.json
# (`python -m runner schema task-parameters`); a test holds the two together. Mistakes
# that cannot work (wrong types, unknown operations, broken templates) are errors;
# parameters nobody reads are warnings, like unknown fields (errors with RUNNER_STRICT).

from runner.workspace import WorkspaceRefused, split_path

AI_PARAMETERS = ("task_type", "prompt", "model", "stream", "explore_samples", "sampling",
                 "temperature", "top_p", "max_tokens", "top_k", "seed", "stop")
SAMPLING_PARAMETERS = ("temperature", "top_p", "max_tokens", "top_k", "seed", "stop")
DATA_PARAMETERS = ("task_type", "input", "input_from", "input_path", "operations", "operation")
FILE_PARAMETERS = ("task_type", "operation", "path", "content")
COMMAND_PARAMETERS = ("task_type", "command")
DATA_OPERATIONS = {
    "filter": ("op", "field", "cmp", "value"),
    "map": ("op", "fields", "rename"),
    "reduce": ("op", "function", "field", "separator"),
    "sort": ("op", "by", "descending"),
    "group_by": ("op", "by", "aggregate"),
}
DATA_OPERATION_NAMES = tuple(DATA_OPERATIONS)
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "exists")
REDUCE_FUNCTIONS = ("count", "sum", "min", "max", "mean", "concat")
AGGREGATE_PARAMETERS = ("function", "field", "separator")
FILE_OPERATIONS = ("read", "write", "append", "delete", "list")
EXPLORE_MAX_SAMPLES = 10

cdef frozenset AI_PARAMETER_SET = frozenset(AI_PARAMETERS)
cdef frozenset SAMPLING_SET = frozenset(SAMPLING_PARAMETERS)
cdef frozenset DATA_PARAMETER_SET = frozenset(DATA_PARAMETERS)
cdef frozenset FILE_PARAMETER_SET = frozenset(FILE_PARAMETERS)
cdef frozenset COMMAND_PARAMETER_SET = frozenset(COMMAND_PARAMETERS)
cdef dict DATA_OPERATION_SETS = {name: frozenset(keys) for name, keys in DATA_OPERATIONS.items()}
cdef frozenset AGGREGATE_SET = frozenset(AGGREGATE_PARAMETERS)

# Two checks validation borrows from the execution layer, which registers them
# (register_parameter_checks, called by runner.execution.checks): the core imports nothing
# above it. Without them (runner.librunner used alone) see register_parameter_checks.
cdef object template_check = None       # prompt text -> (problem or None, [(name, line, column)])
cdef object task_type_check = None      # (type, parameters, base) -> (known, errors, warnings)


def register_parameter_checks(templates, task_types):
    """Installs the checks validation asks the execution layer for; runner.execution.checks
    calls it when the execution layer is imported (so do `import runner`'s names, the CLI,
    the service and the C ABI's runner_init).

    templates(text) -> (why the prompt template does not compile, or None; the dependencies
    it reads by name as (name, line, column)). task_types(type, parameters, base) ->
    (known, errors, warnings), each issue (json pointer, message, value), for a task type
    that is not built in.

    Until they are registered (the core used alone, runner.librunner imported by itself),
    prompt templates are not compiled at validation (a broken one fails its task when it
    runs), and a task type that is not built in is refused as unknown: no registry of task
    types is loaded to know it.
    """
    global template_check, task_type_check
    template_check = templates
    task_type_check = task_types
    TEMPLATE_VERDICTS.clear()


# Compiling a template costs ~0.1-1 ms: the verdicts of recent templates are kept, so a
# file repeating one template (or a host parsing the same file again) compiles it once.
from libc.math cimport INFINITY

cdef dict TEMPLATE_VERDICTS = {}
cdef Py_ssize_t TEMPLATE_VERDICTS_MAX = 1024
cdef tuple UNCHECKED_TEMPLATE = (None, [])


cdef tuple template_facts(str text):
    """(why a prompt template does not compile, or None; the dependencies it reads by name as
    (name, line, column)), from the registered check; (None, []) without one. Jinja2 is
    imported only by that check, for prompts that are templates (they contain '{{', '{%' or '{#')."""
    verdict = TEMPLATE_VERDICTS.get(text)
    if verdict is not None:
        return verdict
    if template_check is None:
        return UNCHECKED_TEMPLATE
    verdict = template_check(text)
    if len(TEMPLATE_VERDICTS) >= TEMPLATE_VERDICTS_MAX:
        TEMPLATE_VERDICTS.clear()
    TEMPLATE_VERDICTS[text] = verdict
    return verdict


cdef inline bint is_template(str text):
    return u'{' in text and (u'{{' in text or u'{%' in text or u'{#' in text)


cpdef str command_problem(object argv):
    """What is wrong with a system_command's argv, or None (also checked when it runs)."""
    if isinstance(argv, str):
        return ("parameters.command must be an argv list of strings; a command line string is refused "
                "(commands never run through a shell)")
    if not isinstance(argv, list) or not argv:
        return f"parameters.command must be a non-empty list of strings, found {shorten(argv)}"
    for item in <list>argv:
        if not isinstance(item, str):
            return f"parameters.command must be a non-empty list of strings, found {shorten(argv)}"
        if u"\x00" in <str>item:
            return "parameters.command contains a NUL character"
    name = (<list>argv)[0]
    if not name:
        return "parameters.command[0] is empty: give a bare name or an absolute path"
    if u"/" in name and not name.startswith(u"/"):
        return f"parameters.command[0] {name!r}: give a bare name or an absolute path"
    return None


cdef class ParameterCheck:
    """The checks of one task's parameters; issues go to errors, unused names to warnings."""

    cdef Task task
    cdef str base
    cdef IssueList errors
    cdef IssueList warnings

    cdef void error(self, str key, str message, object value=None):
        self.errors.add(f"{self.base}/{key}" if key else self.base, message, value)

    cdef void wrong_type(self, str key, str expected, object value):
        self.errors.wrong_type(f"{self.base}/{key}", expected, value)

    cdef void one_of(self, str key, object value, tuple allowed, str what):
        """value must be one of `allowed` (a string): else an error with a suggestion."""
        if not isinstance(value, str):
            self.wrong_type(key, f"{what}, a string", value)
        elif value not in allowed:
            self.error(key, f"unknown {what} {value!r}{did_you_mean(value, allowed)}"
                       f" (expected one of {', '.join(allowed)})", value)

    cdef void unknown(self, dict doc, frozenset known, tuple names, str base):
        report_unknown_fields(doc, known, names, base, self.warnings, "parameter")

    cdef void number(self, dict doc, str key, str base, double low, double high, bint integer):
        if key not in doc:
            return
        value = doc[key]
        ok = is_integer(value) if integer else is_number(value)
        if not ok:
            self.errors.wrong_type(f"{base}/{key}", "integer" if integer else "number", value)
        elif not (low <= value <= high):
            self.errors.add(f"{base}/{key}", f"expected a number in [{low:g}, {high:g}], found {shorten(value)}", value)

    cdef void sampling(self, dict doc, str base):
        self.number(doc, "temperature", base, 0.0, INFINITY, False)
        self.number(doc, "top_p", base, 0.0, 1.0, False)
        self.number(doc, "max_tokens", base, 1.0, 9007199254740991.0, True)
        self.number(doc, "top_k", base, 1.0, 9007199254740991.0, True)
        self.number(doc, "seed", base, -INFINITY, INFINITY, True)
        stop = doc.get("stop")
        if "stop" in doc and not isinstance(stop, str) and not (
                isinstance(stop, list) and all(isinstance(s, str) for s in <list>stop)):
            self.errors.wrong_type(f"{base}/stop", "a string or an array of strings", stop)

    cdef void ai_prompt(self, dict params):
        prompt = params.get("prompt")
        if prompt is None:
            if "prompt" in params:
                self.wrong_type("prompt", "string", prompt)
            elif is_template(self.task.description):
                self.prompt_template(task_path(self.task.index, "description"), self.task.description)
        elif not isinstance(prompt, str):
            self.wrong_type("prompt", "string", prompt)
        elif is_template(<str>prompt):
            self.prompt_template(f"{self.base}/prompt", <str>prompt)
        model = params.get("model")
        if "model" in params and not isinstance(model, str):
            self.wrong_type("model", "string", model)
        stream = params.get("stream")
        if "stream" in params and not (stream is True or stream is False):
            self.wrong_type("stream", "boolean", stream)
        self.number(params, "explore_samples", self.base, 1.0, EXPLORE_MAX_SAMPLES, True)
        self.sampling(params, self.base)
        sampling = params.get("sampling")
        if "sampling" in params:
            if not isinstance(sampling, dict):
                self.wrong_type("sampling", "object", sampling)
            else:
                self.sampling(<dict>sampling, f"{self.base}/sampling")
                self.unknown(<dict>sampling, SAMPLING_SET, SAMPLING_PARAMETERS, f"{self.base}/sampling")
        # Templates may read any parameter (task.parameters.x): then nothing is unused.
        if not (isinstance(prompt, str) and u"parameters" in <str>prompt):
            self.unknown(params, AI_PARAMETER_SET, AI_PARAMETERS, self.base)

    cdef void prompt_template(self, str path, str text):
        """A prompt template compiles, and each dependency it reads by name is one."""
        problem, references = template_facts(text)
        if problem is not None:
            self.errors.add(path, problem, text)
            return
        dependencies = [dep for dep in self.task.dependencies if isinstance(dep, str)]
        for name, line, column in references:
            if name in dependencies:
                continue
            where = f"line {line}, column {column}" if column is not None else f"line {line}"
            if dependencies:
                hint = did_you_mean(name, tuple(dependencies)) or \
                    f" (its dependencies: {', '.join(dependencies)}; or add '{name}' to them)"
            else:
                hint = f" (the task has no dependencies: add '{name}' to its dependencies)"
            self.errors.add(path, f"prompt template at {where}: deps.{name}: '{name}' is not a dependency "
                            f"of this task{hint}", name)

    cdef void field_name(self, dict step, str key, str base, bint required):
        if key not in step and not required:
            return
        value = step.get(key)
        if not isinstance(value, str) or not value:
            self.errors.add(f"{base}/{key}", f"'{key}' must be a non-empty string, found {shorten(value)}", value)

    cdef void data_step(self, object step, str base):
        if not isinstance(step, dict):
            self.errors.wrong_type(base, "an operation object {\"op\": ...}", step)
            return
        name = (<dict>step).get("op")
        if name not in DATA_OPERATIONS:
            if name is None:
                self.errors.add(base, f"an operation needs an 'op' (one of {', '.join(DATA_OPERATION_NAMES)})")
            elif not isinstance(name, str):
                self.errors.wrong_type(f"{base}/op", "string", name)
            else:
                self.errors.add(f"{base}/op", f"unknown op {name!r}{did_you_mean(name, DATA_OPERATION_NAMES)}"
                                f" (expected one of {', '.join(DATA_OPERATION_NAMES)})", name)
            return
        if name == "filter":
            self.field_name(<dict>step, "field", base, True)
            cmp = (<dict>step).get("cmp")
            if "cmp" in <dict>step and cmp not in COMPARISONS:
                self.errors.add(f"{base}/cmp", f"unknown cmp {shorten(cmp) if not isinstance(cmp, str) else repr(cmp)}{did_you_mean(str(cmp), COMPARISONS)}"
                                f" (expected one of {', '.join(COMPARISONS)})", cmp)
        elif name == "map":
            fields = (<dict>step).get("fields")
            rename = (<dict>step).get("rename")
            if "fields" in <dict>step and not (isinstance(fields, list)
                                               and all(isinstance(f, str) for f in <list>fields)):
                self.errors.add(f"{base}/fields", f"'fields' must be a list of strings, found {shorten(fields)}", fields)
            if "rename" in <dict>step and not (isinstance(rename, dict)
                                           and all(isinstance(v, str) for v in (<dict>rename).values())):
                self.errors.add(f"{base}/rename", f"'rename' must map field names to new names, found {shorten(rename)}",
                                rename)
            if "fields" not in <dict>step and not rename:
                self.errors.add(base, "map needs 'fields' or 'rename'")
        elif name == "reduce":
            self.reduce_function(<dict>step, base)
        elif name == "sort":
            by = (<dict>step).get("by")
            keys = [by] if isinstance(by, str) else by
            if not keys or not isinstance(keys, list) or not all(isinstance(k, str) and k for k in <list>keys):
                self.errors.add(f"{base}/by", f"'by' must be a field name or a list of them, found {shorten(by)}", by)
            descending = (<dict>step).get("descending")
            if "descending" in <dict>step and not (descending is True or descending is False):
                self.errors.wrong_type(f"{base}/descending", "boolean", descending)
        else:  # group_by
            self.field_name(<dict>step, "by", base, True)
            aggregate = (<dict>step).get("aggregate")
            if "aggregate" in <dict>step:
                if not isinstance(aggregate, dict):
                    self.errors.add(f"{base}/aggregate", "'aggregate' must be an object {function, field}", aggregate)
                else:
                    self.reduce_function(<dict>aggregate, f"{base}/aggregate")
                    self.unknown(<dict>aggregate, AGGREGATE_SET, AGGREGATE_PARAMETERS, f"{base}/aggregate")
        self.unknown(<dict>step, <frozenset>DATA_OPERATION_SETS[name], DATA_OPERATIONS[name], base)

    cdef void reduce_function(self, dict step, str base):
        function = step.get("function")
        if function not in REDUCE_FUNCTIONS:
            if function is None:
                self.errors.add(f"{base}/function", f"needs a 'function' (one of {', '.join(REDUCE_FUNCTIONS)})")
            else:
                self.errors.add(f"{base}/function",
                                f"unknown function {shorten(function) if not isinstance(function, str) else repr(function)}{did_you_mean(str(function), REDUCE_FUNCTIONS)}"
                                f" (expected one of {', '.join(REDUCE_FUNCTIONS)})", function)
        self.field_name(step, "field", base, False)
        separator = step.get("separator")
        if "separator" in step and not isinstance(separator, str):
            self.errors.add(f"{base}/separator", "'separator' must be a string", separator)

    cdef void data_processing(self, dict params):
        steps = params.get("operations")
        if "operations" not in params and "operation" in params:
            self.data_step(params["operation"], f"{self.base}/operation")
        elif not isinstance(steps, list) or not steps:
            self.error("operations", "data_processing needs parameters.operations, a non-empty list", steps)
        else:
            for number, step in enumerate(<list>steps):
                self.data_step(step, f"{self.base}/operations/{number}")
        source = params.get("input_from")
        if "input_from" in params:
            if not isinstance(source, str):
                self.wrong_type("input_from", "a task id (string)", source)
            elif "input" not in params and source not in self.task.dependencies:
                self.error("input_from", f"{source!r} is not a dependency of this task", source)
        path = params.get("input_path")
        if "input_path" in params and not isinstance(path, str):
            self.wrong_type("input_path", "string", path)
        self.unknown(params, DATA_PARAMETER_SET, DATA_PARAMETERS, self.base)

    cdef void file_operation(self, dict params):
        operation = params.get("operation")
        if operation is None:
            self.error("operation", f"file_operation needs an 'operation' (one of {', '.join(FILE_OPERATIONS)})")
        else:
            self.one_of("operation", operation, FILE_OPERATIONS, "operation")
        path = params.get("path", "." if operation == "list" else None)
        try:
            split_path(path)
        except WorkspaceRefused as error:
            self.error("path", str(error), path)
        content = params.get("content")
        if "content" in params and not isinstance(content, str):
            self.wrong_type("content", "string", content)
        self.unknown(params, FILE_PARAMETER_SET, FILE_PARAMETERS, self.base)

    cdef void system_command(self, dict params):
        problem = command_problem(params.get("command"))
        if problem is not None:
            self.error("command", problem, params.get("command"))
        self.unknown(params, COMMAND_PARAMETER_SET, COMMAND_PARAMETERS, self.base)


cdef void check_user_task_type(dict params, str kind, str base, IssueList errors, IssueList warnings) except *:
    """A type that is not built in: the registry of task types (runner.execution.task_types,
    through the registered check) knows it (a registered function, an installed plugin, the
    run's handlers=) and checks its parameters against the type's schema, or it is refused
    with suggestions. Without a registered check it is refused as unknown."""
    if task_type_check is None:
        errors.add(f"{base}/task_type", f"unknown task type {kind!r}: it is not built in, and no registry of "
                   "task types is loaded (runner.librunner is used alone: import runner)", kind)
        return
    known, found_errors, found_warnings = task_type_check(kind, params, base)
    for path, message, value in found_errors:
        errors.add(path, message, value)
    for path, message, value in found_warnings:
        warnings.issues.append(ValidationIssue(path, message, value))


cdef void check_parameters(Task task, object kind, IssueList errors, IssueList warnings) except *:
    """Checks task.parameters for its task type (generic takes anything)."""
    if kind == "generic":
        return      # nothing to check: no checker made, no path formatted (most tasks of big files)
    cdef ParameterCheck check = ParameterCheck.__new__(ParameterCheck)
    check.task = task
    check.base = task_path(task.index, "parameters")
    check.errors = errors
    check.warnings = warnings
    if kind is None or kind == "ai_prompt":
        check.ai_prompt(task._parameters)
    elif kind == "data_processing":
        check.data_processing(task._parameters)
    elif kind == "file_operation":
        check.file_operation(task._parameters)
    elif kind == "system_command":
        check.system_command(task._parameters)
