# JSON bytes -> validated AltFile. Every problem is collected with its JSON-pointer path.
#
# The success path is the hot one (100k-task files): exact C-level type checks, one dict
# lookup per field, no string formatting. Paths and messages are built only once an
# issue has been found.

from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject

cdef extern from "Python.h":
    PyObject *PyDict_SetDefault(object mapping, object key, object default) except NULL   # borrowed
import difflib
import gc
import re

# [0-9], not \d: \d also matches other scripts' digits. Same rule as the published schema.
cdef object RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z")
cdef frozenset MODE_SET = frozenset(EXECUTION_MODES)
cdef frozenset PRIORITY_SET = frozenset(PRIORITIES)
cdef frozenset TASK_TYPE_SET = frozenset(TASK_TYPES)
cdef frozenset STATUS_SET = frozenset(TASK_STATUSES)
# The built-in task types' names, each one string shared by every task of the type.
cdef dict BUILT_IN_TYPE_NAMES = {name: name for name in TASK_TYPES}

# Bounds of numeric fields (also in the published schema, runner/schemas/alt.schema.json).
cdef double MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
cdef long MAX_RETRY_COUNT = 100
cdef Py_ssize_t MAX_ID_LENGTH = 128
cdef Py_ssize_t DEFAULT_MAX_ISSUES = 100
# Suggestions for misspelt dependencies cost a difflib scan of every task id (~12 us per
# id): only in files up to this many tasks, and for the first few unknown ids only, so a
# file full of unknown ids cannot make validation hang.
cdef Py_ssize_t MAX_TASKS_FOR_SUGGESTIONS = 5000
cdef Py_ssize_t SUGGESTIONS_PER_FILE = 5


cdef str json_type(object value):
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


cdef bint is_identifier(str text):
    """An id: 1-128 of A-Z a-z 0-9 _ . : -, not starting with . : or -."""
    cdef Py_ssize_t n = len(text)
    cdef Py_UCS4 ch
    if n == 0 or n > MAX_ID_LENGTH:
        return False
    ch = text[0]
    if ch == u'.' or ch == u':' or ch == u'-':
        return False
    for ch in text:
        if not ((u'a' <= ch <= u'z') or (u'A' <= ch <= u'Z') or (u'0' <= ch <= u'9')
                or ch == u'_' or ch == u'.' or ch == u':' or ch == u'-'):
            return False
    return True


cdef inline bint is_number(object value):
    """A JSON number: int or float, not bool (JSON Schema's "number")."""
    return (isinstance(value, (int, float))) and not (value is True or value is False)


cdef inline bint is_integer(object value):
    """JSON Schema's "integer": an int, or a float with no fractional part (2.0)."""
    if isinstance(value, int):
        return not (value is True or value is False)
    return isinstance(value, float) and (<double>value) == (<double>value) and (<float>value).is_integer()


cdef inline object field(dict doc, str key, Py_ssize_t *present):
    """doc[key], or None when absent; counts the keys found (null ones included)."""
    cdef PyObject *found = PyDict_GetItem(doc, key)
    if found == NULL:
        return None
    present[0] += 1
    return <object>found


cdef str task_path(Py_ssize_t index, str key):
    return f"/tasks/{index}/{key}" if key else f"/tasks/{index}"


cdef class IssueList:
    """Collects issues up to a cap while counting all of them."""

    cdef public list issues
    cdef public Py_ssize_t total
    cdef Py_ssize_t cap
    cdef Py_ssize_t suggestions_left

    def __cinit__(self, Py_ssize_t cap=DEFAULT_MAX_ISSUES):
        self.issues = []
        self.total = 0
        self.cap = cap if cap > 0 else 1
        self.suggestions_left = SUGGESTIONS_PER_FILE

    cdef void add(self, str path, str message, object value=None):
        self.total += 1
        if len(self.issues) < self.cap:
            self.issues.append(ValidationIssue(path, message, value))

    cdef void wrong_type(self, str path, str expected, object value):
        found = json_type(value) if value is None or value is True or value is False else \
            f"{json_type(value)} {shorten(value)}"
        self.add(path, f"expected {expected}, found {found}", value)

    cdef object optional(self, dict doc, str key, str base, str expected):
        """doc[key] if it has the expected JSON type; None if absent, null or wrong."""
        value = doc.get(key)
        if value is None:
            return None
        if expected == "string":
            ok = isinstance(value, str)
        elif expected == "object":
            ok = isinstance(value, dict)
        elif expected == "array":
            ok = isinstance(value, list)
        elif expected == "integer":
            ok = is_integer(value)
        else:  # number
            ok = is_number(value)
        if not ok:
            self.wrong_type(f"{base}/{key}", expected, value)
            return None
        return value

    cdef object choice(self, dict doc, str key, str base, frozenset allowed, tuple ordered):
        value = self.optional(doc, key, base, "string")
        if value is not None and value not in allowed:
            self.add(f"{base}/{key}", f"expected one of {', '.join(ordered)}, found {shorten(value)}"
                     f"{did_you_mean(value, ordered)}", value)
            return None
        return value

    cdef object identifier(self, dict doc, str key, str base, str what):
        value = doc.get(key)
        if isinstance(value, str) and is_identifier(value):
            return value
        self.bad_identifier(f"{base}/{key}", key, key in doc, value, what)
        return None

    cdef void bad_identifier(self, str path, str key, bint present, object value, str what):
        if value is None:
            self.add(path, "expected string, found null" if present else f"{what} needs an '{key}'")
        elif not isinstance(value, str):
            self.wrong_type(path, "string", value)
        else:
            self.add(path, f"invalid id {shorten(value)}: use 1-{MAX_ID_LENGTH} characters from "
                     "A-Z a-z 0-9 _ . : -, not starting with . : or -", value)

    cdef list string_list(self, dict doc, str key, str base):
        value = self.optional(doc, key, base, "array")
        if value is None:
            return []
        for item in <list>value:
            if not isinstance(item, str):
                self.string_list_items(<list>value, f"{base}/{key}")
                break
        return value

    cdef void string_list_items(self, list values, str path):
        for i, item in enumerate(values):
            if not isinstance(item, str):
                self.wrong_type(f"{path}/{i}", "string", item)


cdef str encoding_problem(object data):
    """Where a document stops being UTF-8, or None. orjson reports such input at character 0
    whatever the place, so the position is found again here (on the error path only)."""
    try:
        if isinstance(data, str):
            (<str>data).encode("utf-8")
        else:
            bytes(data).decode("utf-8")
    except UnicodeEncodeError as error:
        return f"not valid UTF-8: a lone surrogate at character {error.start}"
    except UnicodeDecodeError as error:
        return f"not valid UTF-8 (byte {error.start})"
    return None


cdef object load_json(object data, type error_type):
    """orjson.loads, with malformed input reported as a document error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        message = str(error)
        if "UTF-8" in message or "surrogate" in message:
            message = encoding_problem(data) or message
        raise error_type([ValidationIssue("", f"invalid JSON: {message}")])


cdef Task build_task(object raw, Py_ssize_t index, IssueList issues, IssueList warnings):
    """One entry of "tasks" -> Task; None if it is not an object. Issues are recorded."""
    cdef Task task
    cdef Py_ssize_t known = 0
    if not isinstance(raw, dict):
        issues.add(task_path(index, ""), f"a task is a JSON object, found {json_type(raw)} {shorten(raw)}", raw)
        return None
    cdef dict doc = <dict>raw
    task = Task.__new__(Task)
    task.index = index

    value = field(doc, "id", &known)
    if isinstance(value, str) and is_identifier(value):
        task.id = value
    else:
        issues.bad_identifier(task_path(index, "id"), "id", "id" in doc, value, "a task")

    value = field(doc, "description", &known)
    if value is None:
        task.description = ""
    elif isinstance(value, str):
        task.description = value
    else:
        task.description = ""
        issues.wrong_type(task_path(index, "description"), "string", value)

    value = field(doc, "dependencies", &known)
    if value is None:
        task.dependencies = []
    elif isinstance(value, list):
        task.dependencies = value
        for dep in <list>value:
            if not isinstance(dep, str):
                for i, dep in enumerate(<list>value):
                    if not isinstance(dep, str):
                        issues.wrong_type(f"{task_path(index, 'dependencies')}/{i}", "a task id (string)", dep)
                break
    else:
        task.dependencies = []
        issues.wrong_type(task_path(index, "dependencies"), "an array of task ids or null", value)

    value = field(doc, "parameters", &known)
    if value is None:
        task._parameters = {}
        check_parameters(task, None, issues, warnings)     # the description is the prompt
    elif isinstance(value, dict):
        task._parameters = value
        kind = (<dict>value).get("task_type")
        if type(kind) is str and type(value) is dict:
            shared_name = BUILT_IN_TYPE_NAMES.get(kind)
            if shared_name is not None and shared_name is not kind:
                (<dict>value)["task_type"] = kind = shared_name   # one string per type, not one per task
        if kind is not None and not (isinstance(kind, str) and kind in TASK_TYPE_SET):
            if isinstance(kind, str):
                check_user_task_type(<dict>value, kind, task_path(index, "parameters"), issues, warnings)
            else:
                issues.choice(<dict>value, "task_type", task_path(index, "parameters"), TASK_TYPE_SET, TASK_TYPES)
        else:
            check_parameters(task, kind, issues, warnings)
    else:
        task._parameters = {}
        issues.wrong_type(task_path(index, "parameters"), "object", value)

    value = field(doc, "timeout_seconds", &known)
    if value is not None:
        if not is_number(value):
            issues.wrong_type(task_path(index, "timeout_seconds"), "number", value)
            value = None
        elif not (0 < value <= MAX_TIMEOUT_SECONDS):
            issues.add(task_path(index, "timeout_seconds"),
                       f"expected a number of seconds in (0, {MAX_TIMEOUT_SECONDS:.0f}], found {shorten(value)}",
                       value)
            value = None
    task.timeout_seconds = value

    value = field(doc, "retry_count", &known)
    if value is not None:
        if not is_integer(value):
            issues.wrong_type(task_path(index, "retry_count"), "integer", value)
            value = None
        elif not (0 <= value <= MAX_RETRY_COUNT):
            issues.add(task_path(index, "retry_count"),
                       f"expected an integer in [0, {MAX_RETRY_COUNT}], found {shorten(value)}", value)
            value = None
        elif not isinstance(value, int):
            value = int(value)     # 2.0 is the integer 2 (as in JSON Schema)
    task.retry_count = value

    value = field(doc, "priority", &known)
    if value is not None and not (isinstance(value, str) and value in PRIORITY_SET):
        value = issues.choice(doc, "priority", task_path(index, ""), PRIORITY_SET, PRIORITIES)
    task.priority = value

    value = field(doc, "tags", &known)
    if value is None:
        task._tags = None
    elif isinstance(value, list):
        task._tags = value if len(<list>value) else None
        for tag in <list>value:
            if not isinstance(tag, str):
                issues.string_list_items(<list>value, task_path(index, "tags"))
                break
    else:
        task._tags = None
        issues.wrong_type(task_path(index, "tags"), "array", value)

    value = field(doc, "status", &known)
    if value is not None and not (isinstance(value, str) and value in STATUS_SET):
        value = issues.choice(doc, "status", task_path(index, ""), STATUS_SET, TASK_STATUSES)
    task.status = value

    # Every key found was a known field: nothing extra to keep (the common case).
    if known != len(doc):
        task._extra = {k: v for k, v in doc.items() if k not in TASK_FIELDS}
        report_unknown_fields(task._extra, KNOWN_TASK_FIELDS, TASK_FIELD_NAMES, task_path(index, ""), warnings)
    return task


# Equal small parameter objects are kept once per file: a million generic tasks each saying
# {"task_type": "generic"} kept a million dicts of 184 bytes. Only flat ones (values None,
# booleans, integers, short strings: no float, whose -0.0 equals 0.0) whose items are equal
# in the same order and of the same types, so the copy a task hands out is the object its
# file gave, as JSON to the byte.
cdef Py_ssize_t SHARED_PARAMETERS_MAX = 4096    # distinct objects a file's table keeps
cdef Py_ssize_t SHARED_ITEMS_MAX = 8
cdef Py_ssize_t SHARED_TEXT_MAX = 64


cdef class ParameterTable:
    """One file's kept parameter objects, by their items (each is the first task's own dict,
    not a copy). Stops looking once it is full and has found fewer repeats than objects (a
    file whose parameters all differ pays little)."""

    cdef dict kept
    cdef Py_ssize_t repeats
    cdef bint closed

    def __cinit__(self):
        self.kept = {}
        self.repeats = 0
        self.closed = False

    cdef dict one_of(self, dict params):
        """The file's one object equal to params (params itself the first time), or None
        when it is not kept."""
        cdef list items
        if self.closed or type(params) is not dict or len(params) > SHARED_ITEMS_MAX:
            return None
        items = []
        for key, value in params.items():
            kind = type(value)
            if not (value is None or kind is bool or kind is int
                    or (kind is str and len(<str>value) <= SHARED_TEXT_MAX)) or type(key) is not str:
                return None
            items.append(key)
            items.append(kind)
            items.append(value)
        found = self.kept.get(tuple(items))
        if found is not None:
            self.repeats += 1
            return <dict>found
        if len(self.kept) >= SHARED_PARAMETERS_MAX:
            self.closed = self.repeats < len(self.kept)
            return None
        self.kept[tuple(items)] = params
        return params


cdef void own_ids(Task task, dict task_index, TaskTexts texts) except *:
    """The task's dependencies on tasks already built become those tasks' own id strings
    (equal text, one object), as resolve_dependencies does for all of them at the end: done
    as each task is built, the copies are freed while the heap is being filled, instead of
    leaving two holes a task in it afterwards (a fifth of the model's resident size)."""
    cdef list deps = task.dependencies
    cdef PyObject *found
    cdef Py_ssize_t j
    cdef int target
    for j in range(len(deps)):
        dep = deps[j]
        target = -1
        if type(dep) is str:
            found = PyDict_GetItem(task_index, dep)
            if found != NULL:
                target = (<Task>found).index
                if <object>dep is not <object>(<Task>found).id:
                    deps[j] = (<Task>found).id
        texts.remember(target)


cdef str suggest(str unknown, dict task_index, IssueList issues):
    """' (did you mean 'x'?)' for the nearest task id, or ''. Within the file's budget only."""
    if len(task_index) > MAX_TASKS_FOR_SUGGESTIONS or issues.suggestions_left <= 0:
        return ""
    issues.suggestions_left -= 1
    match = difflib.get_close_matches(unknown, list(task_index), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


cdef DependencyGraph resolve_dependencies(list tasks, dict task_index, IssueList issues, TaskTexts texts=None):
    """The graph of the tasks' dependencies. Unknown, self and repeated dependencies are
    reported where they are written; the graph is None if there was any. `texts`: a
    streamed build's, whose dependencies on tasks built before them are already found."""
    cdef Py_ssize_t n = len(tasks), i, j, k = 0, m = 0
    cdef Py_ssize_t total = sum_dependencies(tasks)
    cdef DependencyGraph graph = DependencyGraph.allocate(n, total)
    cdef const int *known = texts.targets if texts is not None and texts.target_count == total else NULL
    cdef Task task, target
    cdef PyObject *found
    cdef int d
    cdef bint ok = True
    # listed_by[d] == i + 1 once task i has listed task d: repeated dependencies in O(1).
    cdef int *listed_by = <int *>PyMem_Malloc((n + 1) * sizeof(int))
    if listed_by == NULL:
        raise MemoryError()
    memset(listed_by, 0, (n + 1) * sizeof(int))
    try:
        for i in range(n):
            task = <Task>tasks[i]
            graph.dep_start[i] = <int>k
            for j in range(len(task.dependencies)):
                dep = task.dependencies[j]
                if known != NULL and known[m] >= 0:
                    found = PyList_GET_ITEM(tasks, known[m])     # borrowed; tasks[i].index == i here
                else:
                    found = PyDict_GetItem(task_index, dep) if isinstance(dep, str) else NULL
                m += 1
                if found == NULL:
                    if isinstance(dep, str):
                        issues.add(f"{task_path(i, 'dependencies')}/{j}",
                                   f"unknown task '{dep}'{suggest(dep, task_index, issues)}", dep)
                    ok = False
                    continue
                target = <Task>found
                d = <int>target.index
                if type(dep) is str and <object>dep is not <object>target.id:
                    # The list holds the task's own id string, not a copy of it per dependent
                    # (equal text: a million tasks with two dependencies each kept 112 MB of copies).
                    (<list>task.dependencies)[j] = target.id
                if d == i:
                    issues.add(f"{task_path(i, 'dependencies')}/{j}", f"task '{task.id}' depends on itself", dep)
                    ok = False
                elif listed_by[d] == i + 1:
                    issues.add(f"{task_path(i, 'dependencies')}/{j}", f"dependency '{dep}' is listed twice", dep)
                    ok = False
                else:
                    listed_by[d] = <int>(i + 1)
                    graph.dep_list[k] = d
                    k += 1
        graph.dep_start[n] = <int>k
    finally:
        PyMem_Free(listed_by)
    if not ok:
        return None
    graph.ids = [(<Task>task).id for task in tasks]
    graph.index_dependents()
    return graph


cdef Py_ssize_t sum_dependencies(list tasks):
    cdef Py_ssize_t total = 0
    cdef Task task
    for task in tasks:
        total += len(task.dependencies)
    return total


cpdef list validate_alt_document(object doc, Py_ssize_t max_issues=DEFAULT_MAX_ISSUES, limits=None,
                                 strict=None):
    """Every issue of a parsed JSON document as an ALT file (empty when it is valid).

    The text-level limits (bytes, depth, string length, duplicate keys) apply to JSON text
    and are checked by parse_alt_file; the task count limit applies here too. Unknown
    fields and parameters are issues only when strict (default: RUNNER_STRICT).
    """
    cdef IssueList issues = IssueList(max_issues)
    cdef IssueList warnings = issues if strict_mode(strict) else IssueList(max_issues)
    build_any_alt_file(doc, issues, limits if limits is not None else AltLimits(), warnings)
    return sorted_issues(issues.issues, doc)


cdef bint strict_mode(object strict) except -1:
    return strict_from_environment() if strict is None else bool(strict)


cdef AltFile build_alt_file(object raw, IssueList issues, AltLimits limits, IssueList warnings,
                            ControlPlan control=None, TaskTexts texts=None):
    """The AltFile a document describes; None (with issues recorded) when it is not valid.

    With `texts`, `raw` is the document with an empty "tasks" array and each task is parsed
    from its text as it is built (parse_alt_file's streamed build); then None also as soon
    as an issue is found: the caller parses the whole document again to report them all.
    """
    cdef AltFile alt
    cdef Task task
    cdef dict task_index = {}
    cdef list tasks = []
    cdef Py_ssize_t index, count = 0
    cdef ParameterTable shared = ParameterTable()
    cdef PyObject *first
    if not isinstance(raw, dict):
        issues.add("", f"an ALT file is a JSON object, found {json_type(raw)} {shorten(raw)}", raw)
        return None
    cdef dict doc = <dict>raw
    alt = AltFile.__new__(AltFile)
    alt.id = issues.identifier(doc, "id", "", "an ALT file")
    title = doc.get("title")
    if not isinstance(title, str):
        if "title" not in doc:
            issues.add("/title", "an ALT file needs a 'title'")
        else:
            issues.wrong_type("/title", "string", title)
    alt.title = title if isinstance(title, str) else ""
    alt.version = issues.optional(doc, "version", "", "string")
    alt.created_at = issues.optional(doc, "created_at", "", "string")
    if alt.created_at is not None and RFC3339.match(alt.created_at) is None:
        issues.add("/created_at", f"expected an RFC 3339 date-time, found {shorten(alt.created_at)}", alt.created_at)
    description = issues.optional(doc, "description", "", "string")
    alt.description = description if description is not None else ""
    mode = issues.choice(doc, "mode", "", MODE_SET, EXECUTION_MODES)
    alt.mode = mode if mode is not None else "normal"
    alt.persona = issues.optional(doc, "persona", "", "string")
    alt.priority = issues.choice(doc, "priority", "", PRIORITY_SET, PRIORITIES)
    alt.tags = issues.string_list(doc, "tags", "")
    metadata = issues.optional(doc, "metadata", "", "object")
    alt.metadata = metadata if metadata is not None else {}
    expected = issues.optional(doc, "expected_completion_time", "", "number")
    if expected is not None and expected < 0:
        issues.add("/expected_completion_time", f"expected a number >= 0, found {shorten(expected)}", expected)
    alt.expected_completion_time = expected
    alt.extra = {k: v for k, v in doc.items() if k not in ALT_FIELDS}
    if alt.extra:
        report_unknown_fields(alt.extra, KNOWN_ALT_FIELDS, ALT_FIELD_NAMES, "", warnings)

    raw_tasks = doc.get("tasks")
    if texts is not None:
        if issues.total:
            return None
        count = texts.spans.count
        if count > limits.max_tasks:
            issues.add("/tasks", f"{count} tasks, more than the limit of {limits.max_tasks} (RUNNER_MAX_TASKS)")
            return None
    elif not isinstance(raw_tasks, list):
        if raw_tasks is None and "tasks" not in doc:
            issues.add("/tasks", "an ALT file needs 'tasks', an array of tasks")
        else:
            issues.wrong_type("/tasks", "an array of tasks", raw_tasks)
    elif len(<list>raw_tasks) == 0:
        issues.add("/tasks", "an ALT file needs at least one task", raw_tasks)
    elif len(<list>raw_tasks) > limits.max_tasks:
        issues.add("/tasks", f"{len(<list>raw_tasks)} tasks, more than the limit of {limits.max_tasks} "
                   "(RUNNER_MAX_TASKS)")
    else:
        count = len(<list>raw_tasks)
    if count:
        for index in range(count):
            # Streamed: the task's JSON tree lives only until its Task is built.
            task = build_task((<list>raw_tasks)[index] if texts is None else texts.load(index),
                              index, issues, warnings)
            if texts is not None and issues.total:
                return None
            if task is None:
                continue
            kept = shared.one_of(task._parameters)
            if kept is not None:
                task._parameters = kept
            tasks.append(task)
            if task.id is None:
                continue
            # One probe of the index for the check and the insertion (a miss in a table of a
            # million ids costs a few cache misses; this was a fifth of the parse).
            first = PyDict_SetDefault(task_index, task.id, task)
            if first != <PyObject *>task:
                issues.add(task_path(index, "id"),
                           f"duplicate task id '{task.id}' (first used by /tasks/{(<Task>first).index})", task.id)
            elif texts is not None:
                own_ids(task, task_index, texts)
        if len(tasks) == count and len(task_index) == count:
            alt.graph = resolve_dependencies(tasks, task_index, issues, texts)
        else:
            # Some tasks are missing from the index: report dependencies only, no graph.
            report_dependencies(tasks, task_index, issues)
    alt.tasks = tasks
    alt.task_index = task_index
    # Control flow: the dialect's reader gives its plan; a native document's is read here.
    if control is None and ("variables" in doc or any_control_field(tasks)):
        control = read_native_control(doc, tasks, issues)
    alt.warnings = warnings.issues if warnings is not issues else []
    alt.warning_total = warnings.total if warnings is not issues else 0
    # A cycle is reported beside every other problem (a duplicate id or a missing title
    # must not hide it): in a file with other errors, among the dependencies that resolve.
    graph = alt.graph if alt.graph is not None else (partial_graph(tasks, task_index) if tasks else None)
    cycle = (<DependencyGraph>graph).find_cycle() if graph is not None else None
    if cycle is not None:
        task = <Task>task_index[cycle[0]]
        issues.add(task_path(task.index, "dependencies"),
                   "dependency cycle: " + " -> ".join(cycle) + " (each task waits for the next)", cycle)
    if control is not None:
        finish_control_plan(alt, control, issues, cycle is None)
    if issues.total:
        return None
    return alt


cdef DependencyGraph partial_graph(list tasks, dict task_index):
    """The graph of the tasks that have an id of their own (the first of a duplicate), over
    the dependencies that name one of them, once, and not the task itself: what can still
    be checked for a cycle in a file that has other errors (error path only)."""
    cdef list kept = [task for task in tasks if task.id is not None and task_index.get(task.id) is task]
    cdef dict position = {(<Task>task).id: i for i, task in enumerate(kept)}
    cdef list edges = []
    cdef Py_ssize_t i, k = 0
    for task in kept:
        listed = []
        for dep in (<Task>task).dependencies:
            if isinstance(dep, str) and dep in position and dep != (<Task>task).id and position[dep] not in listed:
                listed.append(position[dep])
        edges.append(listed)
    cdef DependencyGraph graph = DependencyGraph.allocate(len(kept), sum(len(listed) for listed in edges))
    for i in range(len(kept)):
        graph.dep_start[i] = <int>k
        for d in edges[i]:
            graph.dep_list[k] = <int>d
            k += 1
    graph.dep_start[len(kept)] = <int>k
    graph.ids = [(<Task>task).id for task in kept]
    graph.index_dependents()
    return graph


cdef list issue_tokens(str path):
    """A JSON pointer (/tasks/2/id) or a segment path (segments[2].id) as its keys and indexes."""
    if path.startswith("/"):
        return [int(token) if token.isdigit() else pointer_unescape(token) for token in path[1:].split("/")]
    return [int(token[1:-1]) if token.startswith("[") else token
            for token in re.findall(r"\[[0-9]+\]|[^.\[\]]+", path)]


cdef tuple issue_position(list tokens, object doc):
    """Where a path is in the document, as a sortable tuple: the place of each key in its
    object as written, the index in each array; a key the document lacks sorts after the
    keys it has (so a missing field comes after the fields given)."""
    position = []
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            keys = list((<dict>node).keys())
            place = keys.index(token) if token in node else len(keys)
            node = (<dict>node).get(token)
        elif isinstance(node, list) and isinstance(token, int):
            place = token
            node = (<list>node)[token] if token < len(<list>node) else None
        else:
            place = 0
            node = None
        position.append(place)
    return tuple(position)


cdef list sorted_issues(list found, object doc):
    """The issues in the order of the document, each knowing the id of the task (or segment)
    it is in. Error path only: reads the document again, by the paths found."""
    cdef ValidationIssue issue
    keyed = []
    for issue in found:
        tokens = issue_tokens(issue.path) if issue.path else []
        if issue.task_id is None and len(tokens) >= 2 and tokens[0] in ("tasks", "segments") \
                and isinstance(tokens[1], int) and isinstance(doc, dict):
            items = (<dict>doc).get(tokens[0])
            entry = items[tokens[1]] if isinstance(items, list) and tokens[1] < len(<list>items) else None
            task_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(task_id, str) and is_identifier(task_id):
                issue.task_id = task_id
            elif tokens[0] == "segments" and isinstance(entry, dict) and "id" not in entry:
                issue.task_id = f"segment_{tokens[1] + 1}"
        keyed.append((issue_position(tokens, doc), issue))
    keyed.sort(key=lambda pair: pair[0])
    return [pair[1] for pair in keyed]


cdef bint any_control_field(list tasks):
    cdef Task task
    for task in tasks:
        if task._extra and ("when" in task._extra or "for_each" in task._extra):
            return True
    return False


cdef void report_dependencies(list tasks, dict task_index, IssueList issues):
    """Unknown, self and repeated dependencies of a file that already has other issues."""
    cdef Task task
    cdef set seen
    for task in tasks:
        seen = set()
        for i, dep in enumerate(task.dependencies):
            if not isinstance(dep, str):
                continue
            if dep == task.id:
                issues.add(f"{task_path(task.index, 'dependencies')}/{i}", f"task '{task.id}' depends on itself", dep)
            elif dep not in task_index:
                issues.add(f"{task_path(task.index, 'dependencies')}/{i}",
                           f"unknown task '{dep}'{suggest(dep, task_index, issues)}", dep)
            elif dep in seen:
                issues.add(f"{task_path(task.index, 'dependencies')}/{i}", f"dependency '{dep}' is listed twice", dep)
            seen.add(dep)


cdef class StreamedBuild:
    """A valid document's AltFile built one task at a time, and what sorting its warnings needs."""
    cdef AltFile alt
    cdef dict header              # the document without its tasks ("tasks": [])
    cdef TaskTexts texts


cdef StreamedBuild streamed_alt_file(bytes text, TaskSpans spans, Py_ssize_t members, AltLimits bounds,
                                     Py_ssize_t max_issues, object strict):
    """The AltFile of a JSON document whose tasks are parsed and built one at a time, or None
    when the document is not valid JSON, repeats a key or has any issue: the whole-tree
    parse then reports it exactly as before. The header is the text with "tasks" emptied:
    a copy of all but the tasks, small beside them."""
    cdef StreamedBuild built = StreamedBuild.__new__(StreamedBuild)
    cdef IssueList issues = IssueList(max_issues)
    cdef IssueList warnings = issues if strict_mode(strict) else IssueList(max_issues)
    try:
        header = orjson.loads(text[:spans.open] + b"[]" + text[spans.close + 1:])
    except orjson.JSONDecodeError:
        return None
    if type(header) is not dict:
        return None
    built.texts = TaskTexts(spans, text)
    try:
        alt = build_alt_file(header, issues, bounds, warnings, None, built.texts)
    except orjson.JSONDecodeError:
        return None
    if alt is None or issues.total or count_members(header, 0) + built.texts.members != members:
        return None
    built.alt = alt
    built.header = header
    return built


cdef dict warning_document(StreamedBuild built, list found):
    """The document as far as ordering these warnings reads it: the header, and the tasks
    the warnings are in, parsed again (at most one per warning kept)."""
    cdef Py_ssize_t count = built.texts.spans.count
    cdef list tasks = [None] * count
    for issue in found:
        path = (<ValidationIssue>issue).path
        if path and path.startswith("/tasks/"):
            tokens = issue_tokens(path)
            if len(tokens) >= 2 and type(tokens[1]) is int and tokens[1] < count and tasks[tokens[1]] is None:
                tasks[tokens[1]] = built.texts.load(tokens[1])
    doc = dict(built.header)
    doc["tasks"] = tasks
    return doc


cdef bytes document_bytes(object data):
    """The JSON text as UTF-8 bytes, whatever buffer or str it came in."""
    if isinstance(data, bytes):
        return <bytes>data
    if isinstance(data, str):
        try:
            return (<str>data).encode("utf-8")
        except UnicodeEncodeError as error:
            raise AltValidationError([ValidationIssue(
                "", f"invalid JSON: text is not valid Unicode (character {error.start} is a lone surrogate)")])
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise AltValidationError([ValidationIssue(
        "", f"an ALT file is JSON text (bytes or str), found {type(data).__name__}")])


cpdef AltFile parse_alt_file(object data, Py_ssize_t max_issues=DEFAULT_MAX_ISSUES, limits=None, strict=None):
    """JSON or YAML (bytes or str) -> a validated AltFile; AltValidationError lists what is wrong.

    `limits` (an AltLimits) bounds the document; by default the RUNNER_MAX_* environment
    variables or the built-in defaults. Duplicate keys in any object are an error.
    Unknown fields and task parameters are kept and listed in `alt.warnings`; with
    strict (default: RUNNER_STRICT=true) they are errors.
    A document is YAML when it does not start like JSON (alt_yaml.pxi), and in the
    segmentation service's dialect when it has `segments` rather than `tasks`
    (alt_dialects.pxi).
    """
    cdef AltLimits bounds = limits if limits is not None else AltLimits()
    cdef IssueList issues = IssueList(max_issues)
    cdef IssueList warnings = issues if strict_mode(strict) else IssueList(max_issues)
    cdef bytes text = document_bytes(data)
    cdef Py_ssize_t members
    cdef StreamedBuild built
    if looks_like_yaml(text):
        doc = load_yaml_document(text, bounds)
        alt = build_any_alt_file(doc, issues, bounds, warnings)
    else:
        spans = TaskSpans()
        members = scan_json_text(text, bounds, spans)
        # The model holds hundreds of thousands of small containers and no reference cycles.
        # With the cyclic GC on, each burst of allocations triggers a collection that rescans
        # every young container, and the growing survivors trigger full collections: loading
        # 100k tasks measured 2-3x slower. It is paused for the load only (not frozen:
        # gc.freeze() would also pin whatever garbage the host had pending, forever). The
        # pause is process-wide but short, and re-enabled only if it was on before.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            built = streamed_alt_file(text, spans, members, bounds, max_issues, strict) if spans.usable() else None
            if built is not None:
                alt = built.alt
                if built.alt.warnings:
                    doc = warning_document(built, built.alt.warnings)
            else:
                # The whole tree at once: documents the streamed build does not take, and
                # every invalid one (its issues are found and ordered in the whole tree).
                issues = IssueList(max_issues)
                warnings = issues if strict_mode(strict) else IssueList(max_issues)
                doc = load_json(text, AltValidationError)
                if count_members(doc, 0) != members:
                    raise duplicate_key_error(text)
                alt = build_any_alt_file(doc, issues, bounds, warnings)
        finally:
            if was_enabled:
                gc.enable()
    if alt is None:
        error = AltValidationError(sorted_issues(issues.issues, doc), issues.total)
        error.warnings = sorted_issues(warnings.issues, doc) if warnings is not issues else []
        raise error
    if (<AltFile>alt).warnings:
        (<AltFile>alt).warnings = sorted_issues((<AltFile>alt).warnings, doc)
    alt.source = text
    return alt

