# Control flow: one model, spelt two ways (issue 20).
#
# Design. The native format writes top-level `variables`, a task's `when` and a task's
# `for_each`; the segmentation service's v2.0 dialect writes `global_variables`, a
# segment's `variables`, `condition` (a branch), `loop` (for_each, for_range, while),
# `function_def`, `functions` and `function_call`. Both readers fill one ControlPlan,
# checked once by check_control_plan (names, bodies, owners, functions, step 0, cycles):
#
#   ControlPlan.variables   global names -> values (native `variables`, v2.0 `global_variables`)
#   ControlPlan.local       task id -> its own variables (v2.0 segment `variables`)
#   ControlPlan.when        task id -> Condition: false skips the task ("condition false")
#   ControlPlan.constructs  task id -> Construct (branch, for_each, for_range, while, call)
#   ControlPlan.functions   name -> Function (parameters, body)
#   ControlPlan.owner       body task id -> carrier task id; templates: loop and function
#                           bodies (and what they own), which never run as themselves
#
# Execution (runner/execution/control.py) is dynamic mapping over this plan: the run's
# AltFile holds the tasks that are not templates, with their implied dependencies; a
# construct, once its carrier's own task has completed, either releases held body tasks
# (a branch) or appends instances of its body to the run (a loop iteration `s[i]`, a
# call `c/s`) into the same Scheduler, grouped, and the carrier completes when its group
# has ended. Instances are Tasks like any other, so the journal, the LAST record, the
# graph, the report and the timeline show them. A construct whose body lists its own
# carrier (`for_each` on a native task; a v2.0 loop or branch naming its own segment)
# has no task of its own: the carrier is the body (a loop maps it; a branch guards it).
#
# Names: `x` or `x.a.b` (a path into the value). Resolution, innermost first: loop
# variables and function parameters, the task's own and its owners' variables, call
# results (result_variable), other segments' variables, globals, then task ids (a task's
# output). Naming a task's output or a call's result_variable makes the task wait for
# the one that produces it (an implied dependency). `$name` in content and parameters is
# replaced when the task starts (a whole-string `$name` keeps the JSON type); `$$` is a
# literal `$`. Documents without control flow keep `$` as plain text.

import re as _re

CONDITION_OPERATORS = ("eq", "neq", "gt", "lt", "gte", "lte", "contains", "not_contains", "starts_with",
                       "ends_with", "and", "or", "not")
cdef frozenset LOGICAL = frozenset(("and", "or", "not"))
LOOP_TYPES = ("for_each", "for_range", "while")
VARIABLE_TYPES = ("string", "number", "boolean", "array", "object", "any")
cdef object VARIABLE_NAME = _re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# `$name`, `$a.b.c` or `$$`. A path token may hold what a task id holds, but `.`
# separates the tokens.
cdef object REFERENCE = _re.compile(r"\$(\$|[A-Za-z_][A-Za-z0-9_:\-]*(?:\.[A-Za-z0-9_:\-]+)*)")


cdef class Condition:
    """operator with left (a name, or a Condition for and/or/not) and right (a literal, a
    name written "$name", or a Condition)."""
    cdef readonly str operator
    cdef readonly object left
    cdef readonly object right
    cdef readonly bint right_is_name
    cdef readonly str path

    def names(self):
        """Every name it reads, with the pointer where it is written."""
        out = []
        if isinstance(self.left, Condition):
            out.extend((<Condition>self.left).names())
        elif self.left is not None:
            out.append((self.left, self.path + "/left"))
        if isinstance(self.right, Condition):
            out.extend((<Condition>self.right).names())
        elif self.right_is_name:
            out.append((self.right, self.path + "/right"))
        return out


cdef class Construct:
    cdef readonly str kind             # branch, for_each, for_range, while, call
    cdef readonly str carrier          # the task that carries it
    cdef readonly str path
    cdef readonly Condition condition  # branch, while
    cdef readonly list if_body
    cdef readonly list else_body
    cdef readonly list body            # loops
    cdef readonly str variable         # loops
    cdef readonly str iterable         # for_each: a name
    cdef readonly object start, end, step
    cdef readonly str function         # call
    cdef readonly dict arguments
    cdef readonly str result_variable
    cdef readonly bint member          # the carrier is in its own body: no task of its own
    cdef readonly str canonical        # the construct as written (equal ones are one construct)

    def all_body(self):
        if self.kind == "branch":
            return list(self.if_body) + list(self.else_body)
        return list(self.body or [])


cdef class Function:
    cdef readonly str name
    cdef readonly list parameters      # [(name, default, required)]
    cdef readonly list body
    cdef readonly str path
    cdef readonly str return_type      # one of VARIABLE_TYPES; "any" when not given


cdef class ControlPlan:
    cdef readonly dict variables       # global name -> value
    cdef readonly dict variable_paths
    cdef readonly dict local           # task id -> {name: value}
    cdef readonly dict when            # task id -> Condition
    cdef readonly dict constructs      # task id -> Construct
    cdef readonly dict functions       # name -> Function
    cdef readonly dict owner           # body task id -> carrier id (or "function:<name>")
    cdef readonly set templates        # ids that never run as themselves
    cdef readonly dict implied         # task id -> [dependency ids the plan adds]
    cdef readonly dict references      # task id -> True when its content/parameters hold $names
    cdef readonly dict results         # result_variable -> call carrier id
    cdef readonly dict task_paths      # task id -> its pointer base ("/tasks/3")
    cdef readonly bint substitutes     # the document uses control flow: `$` is read

    def __cinit__(self):
        self.variables = {}
        self.variable_paths = {}
        self.local = {}
        self.when = {}
        self.constructs = {}
        self.functions = {}
        self.owner = {}
        self.templates = set()
        self.implied = {}
        self.references = {}
        self.results = {}
        self.task_paths = {}
        self.substitutes = False

    def is_empty(self):
        return not (self.variables or self.local or self.when or self.constructs or self.functions)

    def function_of(self, str task_id):
        """The function whose body holds this task (through its owners), or None."""
        seen = 0
        while task_id in self.owner and seen < 10000:
            carrier = self.owner[task_id]
            if carrier.startswith("function:"):
                return carrier[9:]
            task_id = carrier
            seen += 1
        return None

    def enclosing(self, str task_id):
        """The constructs around a task, innermost first (carrier ids; 'function:f')."""
        out = []
        seen = 0
        while task_id in self.owner and seen < 10000:
            task_id = self.owner[task_id]
            out.append(task_id)
            if task_id.startswith("function:"):
                break
            seen += 1
        return out


# ---- reading -------------------------------------------------------------------------------

cdef object read_name(object raw, str path, IssueList issues, str what):
    """A name `x` or `x.a.b` (a leading `$` is allowed); None (issue recorded) otherwise."""
    if isinstance(raw, str) and raw.startswith("$") and not raw.startswith("$$"):
        raw = raw[1:]
    if not isinstance(raw, str) or not raw:
        issues.wrong_type(path, f"{what} (a variable or segment name)", raw)
        return None
    first = (<str>raw).split(".", 1)[0]
    if not (VARIABLE_NAME.match(first) or is_identifier(first)):
        issues.add(path, f"invalid name {shorten(raw)}: {what} is a variable or segment name", raw)
        return None
    return raw


cdef Condition read_condition(object raw, str path, IssueList issues):
    cdef Condition out
    if not isinstance(raw, dict):
        issues.wrong_type(path, "a condition object {operator, left, right}", raw)
        return None
    cdef dict doc = <dict>raw
    operator = doc.get("operator")
    if not isinstance(operator, str) or operator not in CONDITION_OPERATORS:
        issues.add(path + "/operator", f"expected one of {', '.join(CONDITION_OPERATORS)}, found "
                   f"{shorten(operator)}{did_you_mean(str(operator), CONDITION_OPERATORS) if isinstance(operator, str) else ''}",
                   operator)
        return None
    for key in doc:
        if key not in ("operator", "left", "right"):
            issues.add(f"{path}/{pointer_token(key)}", f"unknown field of a condition{did_you_mean(str(key), ('left', 'operator', 'right'))}", doc[key])
    out = Condition.__new__(Condition)
    out.operator = operator
    out.path = path
    out.right_is_name = False
    left = doc.get("left")
    right = doc.get("right")
    if operator in ("and", "or"):
        out.left = read_condition(left, path + "/left", issues)
        out.right = read_condition(right, path + "/right", issues)
        return out
    if operator == "not":
        if "right" in doc and right is not None:
            issues.add(path + "/right", "'not' takes only a left side", right)
        out.left = read_condition(left, path + "/left", issues) if isinstance(left, dict) else \
            read_name(left, path + "/left", issues, "the left side")
        out.right = None
        return out
    if "left" not in doc:
        issues.add(path, f"operator '{operator}' needs a 'left' (a name)")
    else:
        out.left = read_name(left, path + "/left", issues, "the left side")
    if "right" not in doc:
        issues.add(path, f"operator '{operator}' needs a 'right' (a JSON value, or \"$name\")")
    elif isinstance(right, str) and right.startswith("$") and not right.startswith("$$"):
        out.right = read_name(right, path + "/right", issues, "the right side")
        out.right_is_name = True
    elif isinstance(right, str) and right.startswith("$$"):
        out.right = right[1:]
    else:
        out.right = right
    return out


cdef list read_body(object raw, str path, IssueList issues):
    if raw is None:
        return []
    if not isinstance(raw, list):
        issues.wrong_type(path, "an array of segment ids", raw)
        return []
    out = []
    for k, item in enumerate(<list>raw):
        if not isinstance(item, str):
            issues.wrong_type(f"{path}/{k}", "a segment id (string)", item)
        else:
            out.append(item)
    return out


cdef Construct new_construct(str kind, str carrier, str path, object raw):
    cdef Construct c = Construct.__new__(Construct)
    c.kind = kind
    c.carrier = carrier
    c.path = path
    c.if_body = []
    c.else_body = []
    c.body = []
    c.arguments = {}
    c.member = False
    try:
        c.canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        c.canonical = ""
    return c


cdef Construct read_branch(object raw, str carrier, str path, IssueList issues):
    if not isinstance(raw, dict):
        issues.wrong_type(path, "a branch object {condition, if_body, else_body}", raw)
        return None
    cdef Construct c = new_construct("branch", carrier, path, raw)
    c.condition = read_condition((<dict>raw).get("condition"), path + "/condition", issues)
    if "if_body" not in <dict>raw:
        issues.add(path, "a branch needs an 'if_body' (segment ids)")
    c.if_body = read_body((<dict>raw).get("if_body"), path + "/if_body", issues)
    c.else_body = read_body((<dict>raw).get("else_body"), path + "/else_body", issues)
    return c


cdef Construct read_loop(object raw, str carrier, str path, IssueList issues, bint native):
    if not isinstance(raw, dict):
        issues.wrong_type(path, "a loop object" if not native else "an object {variable, iterable}", raw)
        return None
    cdef dict doc = <dict>raw
    kind = "for_each" if native else doc.get("type")
    if kind not in LOOP_TYPES:
        issues.add(path + "/type", f"expected one of {', '.join(LOOP_TYPES)}, found {shorten(kind)}", kind)
        return None
    cdef Construct c = new_construct(kind, carrier, path, raw)
    variable = doc.get("variable")
    if kind != "while" or variable is not None:
        if not isinstance(variable, str) or VARIABLE_NAME.match(variable) is None:
            issues.add(path + "/variable", f"a {kind} loop needs a 'variable': a name of letters, digits and _, "
                       f"found {shorten(variable)}", variable)
        else:
            c.variable = variable
    if kind == "for_each":
        if "iterable" not in doc or doc.get("iterable") is None:
            issues.add(path, "a for_each loop needs an 'iterable' (the name of an array)")
        else:
            c.iterable = read_name(doc.get("iterable"), path + "/iterable", issues, "the iterable")
    elif kind == "for_range":
        for key in ("start", "end"):
            value = doc.get(key)
            if not is_integer(value):
                issues.add(f"{path}/{key}", f"a for_range loop needs an integer '{key}', found {shorten(value)}", value)
        step = doc.get("step", 1)
        if step is None:
            step = 1
        if not is_integer(step):
            issues.wrong_type(path + "/step", "integer", step)
        elif step == 0:
            issues.add(path + "/step", "step 0 never reaches the end: use a positive or negative step", step)
        c.start, c.end, c.step = doc.get("start"), doc.get("end"), step
        if is_integer(c.start):
            c.start = int(c.start)
        if is_integer(c.end):
            c.end = int(c.end)
        if is_integer(c.step):
            c.step = int(c.step)
    else:
        c.condition = read_condition(doc.get("condition"), path + "/condition", issues)
    if native:
        for key in doc:
            if key not in ("variable", "iterable"):
                issues.add(f"{path}/{pointer_token(key)}",
                           f"unknown field of for_each{did_you_mean(str(key), ('iterable', 'variable'))}", doc[key])
        c.body = [carrier]
        c.member = True
    else:
        if "body" not in doc:
            issues.add(path, "a loop needs a 'body' (segment ids)")
        c.body = read_body(doc.get("body"), path + "/body", issues)
    return c


cdef Construct read_call(object raw, str carrier, str path, IssueList issues):
    if not isinstance(raw, dict):
        issues.wrong_type(path, "a function call object {function_name, arguments, result_variable}", raw)
        return None
    cdef dict doc = <dict>raw
    cdef Construct c = new_construct("call", carrier, path, raw)
    name = doc.get("function_name")
    if not isinstance(name, str) or not name:
        issues.add(path + "/function_name", f"a call needs a 'function_name', found {shorten(name)}", name)
    else:
        c.function = name
    arguments = doc.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        issues.wrong_type(path + "/arguments", "object", arguments)
        arguments = {}
    c.arguments = arguments
    result = doc.get("result_variable")
    if result is not None:
        if not isinstance(result, str) or VARIABLE_NAME.match(result) is None:
            issues.add(path + "/result_variable", f"expected a name of letters, digits and _, found {shorten(result)}",
                       result)
        else:
            c.result_variable = result
    return c


cdef Function read_function(object raw, str path, IssueList issues):
    if not isinstance(raw, dict):
        issues.wrong_type(path, "a function object {name, parameters, body}", raw)
        return None
    cdef dict doc = <dict>raw
    cdef Function f = Function.__new__(Function)
    f.path = path
    name = doc.get("name")
    if not isinstance(name, str) or VARIABLE_NAME.match(name) is None:
        issues.add(path + "/name", f"a function needs a 'name' of letters, digits and _, found {shorten(name)}", name)
        return None
    f.name = name
    f.parameters = []
    raw_parameters = doc.get("parameters") or []
    if not isinstance(raw_parameters, list):
        issues.wrong_type(path + "/parameters", "an array of parameters", raw_parameters)
        raw_parameters = []
    seen = set()
    for k, item in enumerate(raw_parameters):
        where = f"{path}/parameters/{k}"
        if not isinstance(item, dict) or not isinstance((<dict>item).get("name"), str) \
                or VARIABLE_NAME.match((<dict>item)["name"]) is None:
            issues.add(where, f"a parameter is an object with a 'name' of letters, digits and _, found {shorten(item)}",
                       item)
            continue
        pname = (<dict>item)["name"]
        if pname in seen:
            issues.add(where + "/name", f"parameter '{pname}' is given twice", pname)
            continue
        seen.add(pname)
        required = (<dict>item).get("required", True)
        if required is None:
            required = True
        if not (required is True or required is False):
            issues.wrong_type(where + "/required", "boolean", required)
            required = True
        default = (<dict>item).get("default_value")
        # A parameter with a default is optional whatever `required` says: the default binds.
        f.parameters.append((pname, default, bool(required) and default is None))
    if "body" not in doc:
        issues.add(path, "a function needs a 'body' (segment ids)")
    f.body = read_body(doc.get("body"), path + "/body", issues)
    return_type = doc.get("return_type")
    if return_type is None:
        f.return_type = "any"
    elif return_type not in VARIABLE_TYPES:
        issues.add(path + "/return_type", f"expected one of {', '.join(VARIABLE_TYPES)}, found {shorten(return_type)}",
                   return_type)
        f.return_type = "any"
    else:
        f.return_type = return_type
    return f


def type_of_value(object value):
    """A value's type in the words of variables and return types (number for any number)."""
    return value_type(value)


cdef dict read_variables_list(object raw, str path, IssueList issues, dict paths):
    """v2.0 [{name, type, value, description}] -> {name: value}."""
    cdef dict out = {}
    if raw is None:
        return out
    if not isinstance(raw, list):
        issues.wrong_type(path, "an array of variables {name, type, value}", raw)
        return out
    for k, item in enumerate(<list>raw):
        where = f"{path}/{k}"
        if not isinstance(item, dict):
            issues.wrong_type(where, "a variable object {name, type, value}", item)
            continue
        name = (<dict>item).get("name")
        if not isinstance(name, str) or VARIABLE_NAME.match(name) is None:
            issues.add(where + "/name", f"a variable needs a 'name' of letters, digits and _, found {shorten(name)}",
                       name)
            continue
        if name in out:
            issues.add(where + "/name", f"variable '{name}' is defined twice here", name)
            continue
        kind = (<dict>item).get("type", "string")
        value = (<dict>item).get("value")
        if kind not in VARIABLE_TYPES:
            issues.add(where + "/type", f"expected one of {', '.join(VARIABLE_TYPES)}, found {shorten(kind)}", kind)
        elif value is not None and kind != "any" and value_type(value) != kind:
            issues.add(where + "/value", f"variable '{name}' is of type {kind}, its value is {value_type(value)} "
                       f"{shorten(value)}", value)
        out[name] = value
        paths[name] = where
    return out


cdef str value_type(object value):
    """The JSON type of a value for conditions: number covers integers and fractions."""
    cdef str kind = json_type(value)
    return "number" if kind == "integer" else kind


cdef void add_construct(ControlPlan plan, Construct c, IssueList issues):
    if c is None or c.carrier is None:
        return
    if c.carrier in plan.constructs:
        issues.add(c.path, f"segment '{c.carrier}' carries two constructs (branch, loop or call): one per segment",
                   None)
        return
    plan.constructs[c.carrier] = c


cdef ControlPlan read_native_control(dict doc, list tasks, IssueList issues):
    """The plan of a native document's `variables`, `when` and `for_each`; None when it has none."""
    cdef ControlPlan plan = None
    cdef Task task
    raw = doc.get("variables")
    if raw is not None:
        plan = ControlPlan()
        if not isinstance(raw, dict):
            issues.wrong_type("/variables", "an object {name: value}", raw)
        else:
            for name, value in (<dict>raw).items():
                if VARIABLE_NAME.match(name) is None:
                    issues.add(f"/variables/{pointer_token(name)}",
                               f"invalid variable name {shorten(name)}: use letters, digits and _, not starting "
                               "with a digit", name)
                    continue
                plan.variables[name] = value
                plan.variable_paths[name] = f"/variables/{pointer_token(name)}"
    for task in tasks:
        if not task._extra or task.id is None:
            continue
        if "when" in task._extra or "for_each" in task._extra:
            if plan is None:
                plan = ControlPlan()
            base = task_path(task.index, "")
            if "when" in task._extra:
                cond = read_condition(task._extra["when"], base + "/when", issues)
                if cond is not None:
                    plan.when[task.id] = cond
            if "for_each" in task._extra:
                add_construct(plan, read_loop(task._extra["for_each"], task.id, base + "/for_each", issues, True),
                              issues)
    if plan is not None:
        plan.substitutes = True
    return plan


# ---- checking -------------------------------------------------------------------------------

cdef class NameCheck:
    """The names a task can read at validation, and the implied dependencies they make."""
    cdef ControlPlan plan
    cdef dict task_index
    cdef dict segment_names        # name -> [segment ids defining it in `variables`]
    cdef IssueList issues

    cdef list known_for(self, str task_id):
        """The scoped names: loop variables, parameters, the task's own and its owners' variables."""
        names = []
        for carrier in self.plan.enclosing(task_id):
            if carrier.startswith("function:"):
                f = self.plan.functions.get(carrier[9:])
                if f is not None:
                    names.extend(p[0] for p in (<Function>f).parameters)
            else:
                c = self.plan.constructs.get(carrier)
                if c is not None and (<Construct>c).variable:
                    names.append((<Construct>c).variable)
                names.extend(self.plan.local.get(carrier, {}))
        own = self.plan.constructs.get(task_id)
        if own is not None and (<Construct>own).member and (<Construct>own).variable:
            names.append((<Construct>own).variable)
        names.extend(self.plan.local.get(task_id, {}))
        return names

    cdef void check(self, str task_id, str name, str path, bint loop_variable_visible=False,
                    bint own_output=False):
        """A name read by task_id: known, or a validation issue with a suggestion. Reading a
        task's output or a call's result_variable makes an implied dependency."""
        cdef list parts = name.split(".")
        first = parts[0]
        known = self.known_for(task_id)
        if loop_variable_visible:
            c = self.plan.constructs.get(task_id)
            if c is not None and (<Construct>c).variable:
                known.append((<Construct>c).variable)
        if first in known:
            return
        if first in self.plan.results:
            self.depend(task_id, self.plan.results[first], path)
            return
        if first in self.segment_names:
            if len(self.segment_names[first]) > 1:
                self.issues.add(path, f"variable '{first}' is defined by several segments "
                                f"({', '.join(repr(s) for s in self.segment_names[first])}): rename one", name)
            return
        if first in self.plan.variables:
            return
        # A task id, possibly with dots of its own: the longest prefix that is one.
        for cut in range(len(parts), 0, -1):
            candidate = ".".join(parts[:cut])
            if candidate in self.task_index:
                if candidate == task_id:
                    if not own_output:
                        self.issues.add(path, f"segment '{task_id}' reads its own output before it has one", name)
                    return
                self.depend(task_id, candidate, path)
                return
        pool = known + list(self.plan.results) + list(self.segment_names) + list(self.plan.variables)
        if len(self.task_index) < 5000:
            pool += list(self.task_index)
        self.issues.add(path, f"undefined name '{first}': not a variable, loop variable, parameter, "
                        f"result_variable or segment id{did_you_mean(first, tuple(pool))}", name)

    cdef void depend(self, str reader, str target, str path):
        """reader reads target's output: target must have ended first."""
        plan = self.plan
        if target == reader:
            return
        chain = plan.enclosing(reader)
        if target in chain:
            return                  # an owner: its task has run before its body
        if target in plan.templates:
            if same_scope(plan, reader, target):
                add_implied(plan, reader, target)
            else:
                self.issues.add(path, f"'{target}' runs only inside its {scope_word(plan, target)}: "
                                f"read '{outermost(plan, target)}' instead", target)
            return
        waiter = waiting_task(plan, reader)
        if waiter is None or waiter == target or target in plan.enclosing(waiter):
            return
        add_implied(plan, waiter, target)


cdef void add_implied(ControlPlan plan, str task_id, str target):
    deps = plan.implied.setdefault(task_id, [])
    if target not in deps:
        deps.append(target)


cdef object waiting_task(ControlPlan plan, str task_id):
    """Who waits for what task_id reads from outside its body: itself when it runs in the
    run's own graph, else the outermost carrier of its body; None inside a function (a
    function body reads what has ended when it is called)."""
    waiter = task_id
    for carrier in plan.enclosing(task_id):
        if waiter not in plan.templates:
            return waiter
        if carrier.startswith("function:"):
            return None
        waiter = carrier
    return waiter if waiter not in plan.templates else None


cdef object instantiator(ControlPlan plan, str task_id):
    """The innermost loop or function around a task (what makes its instances), or None."""
    for carrier in plan.enclosing(task_id):
        if carrier.startswith("function:"):
            return carrier
        c = plan.constructs.get(carrier)
        if c is not None and (<Construct>c).kind != "branch":
            return carrier
    return None


cdef void check_control_plan(ControlPlan plan, list tasks, dict task_index, IssueList issues):
    """Bodies, owners, functions and names of a plan; fills owner, templates and implied."""
    cdef Task task
    cdef Construct c, other
    cdef Function f
    for task in tasks:
        if task.id is not None:
            plan.task_paths[task.id] = task_path(task.index, "")
    # Functions: bodies name known segments, owned once.
    for name, f in plan.functions.items():
        for k, member in enumerate(f.body):
            if member not in task_index:
                issues.add(f"{f.path}/body/{k}", f"function '{name}': unknown segment '{member}'"
                           f"{suggest(member, task_index, issues)}", member)
                continue
            own(plan, member, "function:" + name, f"{f.path}/body/{k}", issues)
            plan.templates.add(member)
    # Constructs: bodies name known segments. A construct written identically on several
    # segments that are all in its bodies is one construct (v2.0 writes a branch on each of
    # its members).
    shared = {}
    for carrier, c in plan.constructs.items():
        if c.kind == "call":
            if c.function is not None and c.function not in plan.functions:
                issues.add(c.path + "/function_name", f"unknown function '{c.function}'"
                           f"{did_you_mean(c.function, tuple(plan.functions))}", c.function)
            elif c.function is not None:
                check_arguments(plan, c, issues)
            if c.result_variable is not None:
                if c.result_variable in plan.results:
                    issues.add(c.path + "/result_variable",
                               f"result_variable '{c.result_variable}' is also set by segment "
                               f"'{plan.results[c.result_variable]}'", c.result_variable)
                else:
                    plan.results[c.result_variable] = carrier
            continue
        body = c.all_body()
        if carrier in body:
            c.member = True
        for key, members in (("if_body", c.if_body), ("else_body", c.else_body), ("body", c.body)):
            for k, member in enumerate(members):
                where = f"{c.path}/{key}/{k}"
                if member not in task_index:
                    issues.add(where, f"unknown segment '{member}'{suggest(member, task_index, issues)}", member)
                    continue
                if member == carrier:
                    continue
                if c.member and c.kind == "branch" and member in plan.constructs and \
                        (<Construct>plan.constructs[member]).canonical == c.canonical:
                    continue        # the same branch, written on that member too
                own(plan, member, carrier, where, issues)
                if c.kind != "branch":
                    plan.templates.add(member)
        if c.member and c.kind == "branch":
            shared.setdefault(c.canonical, []).append(carrier)
    # Templates own what their body members own, transitively.
    changed = True
    while changed:
        changed = False
        for member, carrier in plan.owner.items():
            if member not in plan.templates and (carrier in plan.templates or carrier.startswith("function:")):
                plan.templates.add(member)
                changed = True
    # Names.
    segment_names = {}
    for task_id, names in plan.local.items():
        for name in names:
            segment_names.setdefault(name, []).append(task_id)
    cdef NameCheck names_check = NameCheck.__new__(NameCheck)
    names_check.plan = plan
    names_check.task_index = task_index
    names_check.segment_names = segment_names
    names_check.issues = issues
    for task_id, cond in plan.when.items():
        for name, where in (<Condition>cond).names():
            names_check.check(task_id, name, where)
    for carrier, c in plan.constructs.items():
        # A construct with a task of its own starts once that task has completed: it may
        # read the task's output.
        own_output = not c.member
        if c.condition is not None:
            for name, where in c.condition.names():
                names_check.check(carrier, name, where, c.kind == "while", own_output)
        if c.iterable is not None:
            names_check.check(carrier, c.iterable, c.path + "/iterable", False, own_output)
        if c.kind == "call":
            for key, value in c.arguments.items():
                for name in references_in(value):
                    names_check.check(carrier, name, f"{c.path}/arguments/{pointer_token(key)}", False, own_output)
    if plan.substitutes:
        for task in tasks:
            if task.id is None:
                continue
            base = task_path(task.index, "")
            found = False
            for name in references_in(task.description):
                names_check.check(task.id, name, base + "/description", True)
                found = True
            for key, value in task._parameters.items():
                for name in references_in(value):
                    names_check.check(task.id, name, f"{base}/parameters/{pointer_token(key)}", True)
                    found = True
            if found:
                plan.references[task.id] = True
    # Dependencies: nothing outside a template's scope may depend on a template (it runs
    # only as instances); a body member's dependency on its owner is the construct's order.
    for task in tasks:
        if task.id is None:
            continue
        for k, dep in enumerate(task.dependencies):
            if not isinstance(dep, str) or dep not in task_index:
                continue
            if dep in plan.templates and not same_scope(plan, task.id, dep):
                issues.add(f"{task_path(task.index, 'dependencies')}/{k}",
                           f"'{dep}' runs only inside its {scope_word(plan, dep)}: depend on "
                           f"'{outermost(plan, dep)}' instead", dep)
            elif task.id in plan.templates and dep not in plan.templates and dep not in plan.enclosing(task.id):
                # A body's dependency outside the body: the body's carrier waits for it.
                waiter = waiting_task(plan, task.id)
                if waiter is not None and waiter != dep and dep not in plan.enclosing(waiter):
                    add_implied(plan, waiter, dep)


cdef void own(ControlPlan plan, str member, str carrier, str where, IssueList issues):
    first = plan.owner.get(member)
    if first is not None and first != carrier:
        issues.add(where, f"segment '{member}' is owned twice: by "
                   f"{owner_words(first)} and by {owner_words(carrier)} (a segment belongs to one body)", member)
        return
    plan.owner[member] = carrier


cdef str owner_words(str carrier):
    return f"function '{carrier[9:]}'" if carrier.startswith("function:") else f"segment '{carrier}'"


cdef bint same_scope(ControlPlan plan, str reader, str template):
    """Whether reader runs inside the instance that makes template's instances."""
    maker = instantiator(plan, template)
    return maker is None or maker in plan.enclosing(reader) or maker == reader


cdef str outermost(ControlPlan plan, str task_id):
    outer = plan.enclosing(task_id)
    if not outer:
        return task_id
    last = outer[len(outer) - 1]
    return last[9:] if last.startswith("function:") else last


cdef str scope_word(ControlPlan plan, str task_id):
    outer = plan.enclosing(task_id)
    if outer and outer[len(outer) - 1].startswith("function:"):
        return "function's body"
    return "loop's body"


cdef void check_arguments(ControlPlan plan, Construct c, IssueList issues):
    cdef Function f = <Function>plan.functions[c.function]
    names = [p[0] for p in f.parameters]
    for key in c.arguments:
        if key not in names:
            issues.add(f"{c.path}/arguments/{pointer_token(key)}", f"function '{f.name}' has no parameter '{key}'"
                       f"{did_you_mean(str(key), tuple(names))}", key)
    for pname, default, required in f.parameters:
        if required and pname not in c.arguments:
            issues.add(c.path + "/arguments", f"function '{f.name}' needs its argument '{pname}'", None)


cdef list references_in(object value):
    """The names `$name` in a string, or in the strings of an array or object."""
    cdef list out = []
    if isinstance(value, str):
        if "$" in <str>value:
            for match in REFERENCE.finditer(<str>value):
                if match.group(1) != "$":
                    out.append(match.group(1))
    elif isinstance(value, list):
        for item in <list>value:
            out.extend(references_in(item))
    elif isinstance(value, dict):
        for item in (<dict>value).values():
            out.extend(references_in(item))
    return out


cdef object find_effective_cycle(list tasks, ControlPlan plan):
    """A cycle through explicit and implied dependencies, as a list of ids; None if none."""
    cdef Task task
    deps = {}
    for task in tasks:
        deps[task.id] = [d for d in task.dependencies if isinstance(d, str)] + plan.implied.get(task.id, [])
    state = {}
    for start in deps:
        if start in state:
            continue
        stack = [(start, iter(deps.get(start, ())))]
        state[start] = 1
        path = [start]
        while stack:
            node, edges = stack[len(stack) - 1]
            advanced = False
            for nxt in edges:
                if nxt not in deps:
                    continue
                s = state.get(nxt)
                if s == 1:
                    return path[path.index(nxt):] + [nxt]
                if s is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(deps[nxt])))
                    path.append(nxt)
                    advanced = True
                    break
            if not advanced:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


cdef void finish_control_plan(AltFile alt, ControlPlan plan, IssueList issues, bint check_cycles):
    """Checks a plan against its file's tasks (beside the file's other errors) and attaches
    it; check_cycles: no cycle was found among the written dependencies."""
    cdef Py_ssize_t before = issues.total
    check_control_plan(plan, alt.tasks, alt.task_index, issues)
    if issues.total != before or not check_cycles:
        return
    cycle = find_effective_cycle(alt.tasks, plan)
    if cycle is not None:
        task = <Task>alt.task_index[cycle[0]]
        issues.add(task_path(task.index, "dependencies"),
                   "dependency cycle (with the dependencies names imply): " + " -> ".join(cycle), cycle)
        return
    alt.control = plan


# ---- run time: names, conditions, substitution -----------------------------------------------

cdef class Scope:
    """The names of one instance: its variables, the ids its siblings have in this instance,
    and the instance's place (prefix for calls, suffix for loop iterations)."""
    cdef readonly Scope parent
    cdef readonly dict variables
    cdef readonly dict ids             # template id -> instance id, within this instance
    cdef readonly str prefix
    cdef readonly str suffix
    cdef readonly int depth            # calls
    cdef readonly dict control         # metadata.control of the tasks made in it

    def __init__(self, Scope parent=None, dict variables=None, dict ids=None, str prefix="", str suffix="",
                 int depth=0, dict control=None):
        self.parent = parent
        self.variables = variables if variables is not None else {}
        self.ids = ids if ids is not None else {}
        self.prefix = prefix
        self.suffix = suffix
        self.depth = depth
        self.control = control

    def instance_id(self, str template):
        found = self.ids.get(template)
        if found is not None:
            return found
        return self.prefix + template + self.suffix

    def child(self, dict variables, dict ids, str prefix, str suffix, int depth, dict control):
        return Scope(self, variables, ids, prefix, suffix, depth, control)


MISSING = object()


def resolve_name(str name, Scope scope, ControlPlan plan, dict globals_now, object results, dict task_index):
    """The value of a name at run time; ControlFlowError names what is missing."""
    cdef list parts = name.split(".")
    first = parts[0]
    cdef Scope s = scope
    value = MISSING
    while s is not None:
        if first in s.variables:
            value = s.variables[first]
            break
        s = s.parent
    rest = parts[1:]
    if value is MISSING and first in globals_now:
        value = globals_now[first]
    if value is MISSING:
        for cut in range(len(parts), 0, -1):
            candidate = ".".join(parts[:cut])
            if candidate in task_index or (scope is not None and candidate in (<Scope>scope).ids):
                instance = scope.instance_id(candidate) if scope is not None else candidate
                # A sibling in an outer instance (a loop body reading a segment of its
                # enclosing iteration): look outwards.
                s = scope
                while s is not None and candidate not in s.ids:
                    s = s.parent
                if s is not None:
                    instance = s.ids[candidate]
                elif candidate not in task_index:
                    break
                else:
                    instance = candidate
                result = results.get(instance)
                if result is None or result.status != "completed":
                    state = "has not run" if result is None else f"is {result.status}"
                    raise ControlFlowError(f"'{name}': segment '{instance}' {state}, it has no output")
                value = result.output
                rest = parts[cut:]
                break
    if value is MISSING:
        raise ControlFlowError(f"undefined name '{first}'")
    for key in rest:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise ControlFlowError(f"'{name}': no '{key}' in {value_type(value)} {shorten(value)}")
    return value


def parse_condition(object raw):
    """A condition object -> Condition; AltValidationError lists what is wrong with it."""
    cdef IssueList issues = IssueList()
    cond = read_condition(raw, "", issues)
    if issues.total or cond is None:
        raise AltValidationError(issues.issues, issues.total)
    return cond


cdef str both_types(str operator, object left, object right):
    return (f"operator '{operator}' compares {value_type(left)} {shorten(left, 40)} with "
            f"{value_type(right)} {shorten(right, 40)}: different types")


def evaluate_condition(Condition cond, lookup):
    """True or False; ControlFlowError for a comparison of different types or a missing name.
    lookup(name) -> value."""
    op = cond.operator
    if op == "and":
        return bool(evaluate_condition(cond.left, lookup)) and bool(evaluate_condition(cond.right, lookup))
    if op == "or":
        return bool(evaluate_condition(cond.left, lookup)) or bool(evaluate_condition(cond.right, lookup))
    if op == "not":
        if isinstance(cond.left, Condition):
            return not evaluate_condition(cond.left, lookup)
        value = lookup(cond.left)
        if not (value is True or value is False):
            raise ControlFlowError(f"operator 'not' needs a boolean, '{cond.left}' is "
                                   f"{value_type(value)} {shorten(value, 40)}")
        return not value
    left = lookup(cond.left)
    right = lookup(cond.right) if cond.right_is_name else cond.right
    lt, rt = value_type(left), value_type(right)
    if op in ("eq", "neq"):
        if lt != rt:
            raise ControlFlowError(both_types(op, left, right))
        return (left == right) if op == "eq" else (left != right)
    if op in ("gt", "lt", "gte", "lte"):
        if lt != rt or lt not in ("number", "string"):
            if lt == rt:
                raise ControlFlowError(f"operator '{op}' orders numbers or strings, found two {lt}s")
            raise ControlFlowError(both_types(op, left, right))
        if op == "gt":
            return left > right
        if op == "lt":
            return left < right
        if op == "gte":
            return left >= right
        return left <= right
    if op in ("contains", "not_contains"):
        if lt == "string":
            if rt != "string":
                raise ControlFlowError(both_types(op, left, right))
            found = right in left
        elif lt == "array":
            found = any(value_type(item) == rt and item == right for item in left)
        elif lt == "object":
            if rt != "string":
                raise ControlFlowError(f"operator '{op}' on an object looks for a key (a string), found "
                                       f"{rt} {shorten(right, 40)}")
            found = right in left
        else:
            raise ControlFlowError(f"operator '{op}' looks in a string, an array or an object, "
                                   f"'{cond.left}' is {lt} {shorten(left, 40)}")
        return found if op == "contains" else not found
    # starts_with, ends_with
    if lt != "string" or rt != "string":
        if lt == rt:
            raise ControlFlowError(f"operator '{op}' compares strings, found two {lt}s")
        raise ControlFlowError(both_types(op, left, right))
    return left.startswith(right) if op == "starts_with" else left.endswith(right)


def substitute(value, lookup):
    """`$name` replaced in a string, array or object (keys stay): a string that is exactly
    `$name` becomes the value itself; inside text, its text (JSON for non-strings); `$$` is `$`."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        whole = REFERENCE.fullmatch(value)
        if whole is not None and whole.group(1) != "$":
            return lookup(whole.group(1))
        return REFERENCE.sub(lambda m: "$" if m.group(1) == "$" else text_of(lookup(m.group(1))), value)
    if isinstance(value, list):
        return [substitute(item, lookup) for item in value]
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    return value


cdef str text_of(object value):
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


# ---- run time: the run's AltFile and its instances ---------------------------------------------

cpdef Task task_instance(Task template, str task_id, list dependencies, str description, dict parameters,
                         object control, Py_ssize_t index):
    """A copy of template as another task of the run (an instance, or the task with its
    names replaced): the same fields, its own id, dependencies, content and parameters
    (None: the template's own object, which the core never changes, not a copy per instance)."""
    cdef Task task = Task.__new__(Task)
    task.index = index
    task.id = task_id
    task.description = description
    task.dependencies = dependencies
    task._parameters = template._parameters if parameters is None else parameters
    task.timeout_seconds = template.timeout_seconds
    task.retry_count = template.retry_count
    task.priority = template.priority
    task._tags = template._tags
    task.status = None
    if template._extra:
        task._extra = {k: v for k, v in template._extra.items() if k not in CONTROL_TASK_FIELDS} or None
    task.control = control
    return task


def run_alt_file(AltFile alt, list tasks):
    """The AltFile a control-flow run executes: alt's header with these tasks (their index
    is their place here), and the graph of their dependencies."""
    cdef AltFile out = AltFile.__new__(AltFile)
    cdef IssueList issues = IssueList()
    out.id, out.title, out.version, out.created_at = alt.id, alt.title, alt.version, alt.created_at
    out.description, out.mode, out.persona, out.priority = alt.description, alt.mode, alt.persona, alt.priority
    out.tags, out.metadata, out.expected_completion_time = alt.tags, alt.metadata, alt.expected_completion_time
    # Not its source: alt.json is written from the file's AltFile, and the bytes are let go of
    # when the run may (RunRequest.release_source).
    out.extra, out.warnings, out.warning_total = alt.extra, alt.warnings, alt.warning_total
    out.chaos_fault_rate = alt.chaos_fault_rate
    out.control = alt.control
    out.tasks = tasks
    out.task_index = {task_at(tasks, i).id: tasks[i] for i in range(len(tasks))}
    out.graph = resolve_dependencies(tasks, out.task_index, issues)
    if out.graph is None:
        raise ValueError("; ".join(str(i) for i in issues.issues))    # a bug: the plan was checked
    return out


def append_tasks(AltFile alt, list tasks):
    """Instances join the run's AltFile (their graph is rebuilt when the record is made)."""
    cdef Task task
    for task in tasks:
        alt.tasks.append(task)
        alt.task_index[task.id] = task
    alt.graph = None
    alt._task_types = None


def replace_task(AltFile alt, Py_ssize_t index, Task task):
    """The task at index becomes `task` (its names replaced when it starts)."""
    alt.tasks[index] = task
    alt.task_index[task.id] = task
    alt._task_types = None
