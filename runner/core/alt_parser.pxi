# JSON bytes -> validated AltFile. Every problem is collected with its JSON-pointer path.

import difflib
import gc
import re

cdef object RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
cdef frozenset MODE_SET = frozenset(EXECUTION_MODES)
cdef frozenset PRIORITY_SET = frozenset(PRIORITIES)
cdef frozenset TASK_TYPE_SET = frozenset(TASK_TYPES)
cdef frozenset STATUS_SET = frozenset(TASK_STATUSES)

# Bounds of numeric fields (also in the published schema).
cdef double MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
cdef long MAX_RETRY_COUNT = 100
cdef Py_ssize_t MAX_ID_LENGTH = 128
cdef Py_ssize_t DEFAULT_MAX_ISSUES = 100


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


cdef bint is_number(object value):
    return (isinstance(value, (int, float))) and not (value is True or value is False)


cdef class IssueList:
    """Collects issues up to a cap while counting all of them."""

    cdef public list issues
    cdef public Py_ssize_t total
    cdef Py_ssize_t cap

    def __cinit__(self, Py_ssize_t cap=DEFAULT_MAX_ISSUES):
        self.issues = []
        self.total = 0
        self.cap = cap

    cdef void add(self, str path, str message, object value=None):
        self.total += 1
        if len(self.issues) < self.cap:
            self.issues.append(ValidationIssue(path, message, value))

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
            ok = isinstance(value, int) and not (value is True or value is False)
        else:  # number
            ok = is_number(value)
        if not ok:
            self.add(f"{base}/{key}", f"expected {expected}, found {json_type(value)} {shorten(value)}", value)
            return None
        return value

    cdef object choice(self, dict doc, str key, str base, frozenset allowed, tuple ordered):
        value = self.optional(doc, key, base, "string")
        if value is not None and value not in allowed:
            self.add(f"{base}/{key}", f"expected one of {', '.join(ordered)}, found {shorten(value)}", value)
            return None
        return value

    cdef object identifier(self, dict doc, str key, str base, str what):
        value = doc.get(key)
        if value is None:
            self.add(f"{base}/{key}", f"{what} needs an '{key}'" if key not in doc
                     else "expected string, found null")
            return None
        if not isinstance(value, str):
            self.add(f"{base}/{key}", f"expected string, found {json_type(value)} {shorten(value)}", value)
            return None
        if not is_identifier(value):
            self.add(f"{base}/{key}",
                     f"invalid id {shorten(value)}: use 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ . : -, "
                     "not starting with . : or -", value)
            return None
        return value

    cdef list string_list(self, dict doc, str key, str base):
        value = self.optional(doc, key, base, "array")
        if value is None:
            return []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add(f"{base}/{key}/{i}", f"expected string, found {json_type(item)} {shorten(item)}", item)
        return value


cdef object load_json(object data, type error_type):
    """orjson.loads, with malformed input reported as a document error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise error_type([ValidationIssue("", f"invalid JSON: {error}")])


cdef Task build_task(object raw, Py_ssize_t index, IssueList issues):
    cdef str base = f"/tasks/{index}"
    cdef Task task
    if not isinstance(raw, dict):
        issues.add(base, f"a task is a JSON object, found {json_type(raw)} {shorten(raw)}", raw)
        return None
    cdef dict doc = <dict>raw
    task = Task.__new__(Task)
    task.index = index
    task.id = issues.identifier(doc, "id", base, "a task")
    description = issues.optional(doc, "description", base, "string")
    task.description = description if description is not None else ""

    dependencies = doc.get("dependencies")
    if dependencies is None:
        task.dependencies = []
    elif isinstance(dependencies, list):
        task.dependencies = dependencies
        for i, dep in enumerate(<list>dependencies):
            if not isinstance(dep, str):
                issues.add(f"{base}/dependencies/{i}",
                           f"expected a task id (string), found {json_type(dep)} {shorten(dep)}", dep)
    else:
        issues.add(f"{base}/dependencies",
                   f"expected an array of task ids or null, found {json_type(dependencies)} {shorten(dependencies)}",
                   dependencies)
        task.dependencies = []

    parameters = issues.optional(doc, "parameters", base, "object")
    task.parameters = parameters if parameters is not None else {}
    if parameters is not None:
        issues.choice(<dict>parameters, "task_type", f"{base}/parameters", TASK_TYPE_SET, TASK_TYPES)

    timeout = issues.optional(doc, "timeout_seconds", base, "number")
    if timeout is not None and not (0 < timeout <= MAX_TIMEOUT_SECONDS):
        issues.add(f"{base}/timeout_seconds",
                   f"expected a number of seconds in (0, {MAX_TIMEOUT_SECONDS:.0f}], found {shorten(timeout)}", timeout)
        timeout = None
    task.timeout_seconds = timeout
    retries = issues.optional(doc, "retry_count", base, "integer")
    if retries is not None and not (0 <= retries <= MAX_RETRY_COUNT):
        issues.add(f"{base}/retry_count", f"expected an integer in [0, {MAX_RETRY_COUNT}], found {retries}", retries)
        retries = None
    task.retry_count = retries
    task.priority = issues.choice(doc, "priority", base, PRIORITY_SET, PRIORITIES)
    task.tags = issues.string_list(doc, "tags", base)
    task.status = issues.choice(doc, "status", base, STATUS_SET, TASK_STATUSES)

    if len(doc) > 3 or not TASK_FIELDS.issuperset(doc):
        task.extra = {k: v for k, v in doc.items() if k not in TASK_FIELDS}
    else:
        task.extra = {}
    return task


cdef str suggest(str unknown, dict task_index):
    """' (did you mean 'x'?)' for the nearest task id, or ''. Skipped for huge files."""
    if len(task_index) > 20000:
        return ""
    match = difflib.get_close_matches(unknown, list(task_index), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


cdef void check_dependencies(list tasks, dict task_index, IssueList issues):
    """Unknown, self and repeated dependencies; each reported where it is written."""
    cdef Task task
    cdef Py_ssize_t i
    cdef set seen
    for task in tasks:
        if len(task.dependencies) == 0:
            continue
        seen = set()
        for i, dep in enumerate(task.dependencies):
            if not isinstance(dep, str):
                continue
            path = f"/tasks/{task.index}/dependencies/{i}"
            if dep == task.id:
                issues.add(path, f"task '{task.id}' depends on itself", dep)
            elif dep not in task_index:
                issues.add(path, f"unknown task '{dep}'{suggest(dep, task_index)}", dep)
            elif dep in seen:
                issues.add(path, f"dependency '{dep}' is listed twice", dep)
            seen.add(dep)


cpdef list validate_alt_document(object doc, Py_ssize_t max_issues=DEFAULT_MAX_ISSUES):
    """Every issue of a parsed JSON document as an ALT file (empty when it is valid)."""
    cdef IssueList issues = IssueList(max_issues)
    build_alt_file(doc, issues)
    return issues.issues


cdef AltFile build_alt_file(object raw, IssueList issues):
    """The AltFile a document describes; None (with issues recorded) when it is not valid."""
    cdef AltFile alt
    cdef Task task
    cdef dict task_index = {}
    cdef list tasks = []
    if not isinstance(raw, dict):
        issues.add("", f"an ALT file is a JSON object, found {json_type(raw)} {shorten(raw)}", raw)
        return None
    cdef dict doc = <dict>raw
    alt = AltFile.__new__(AltFile)
    alt.id = issues.identifier(doc, "id", "", "an ALT file")
    title = doc.get("title")
    if not isinstance(title, str):
        issues.add("/title", "an ALT file needs a 'title'" if "title" not in doc
                   else f"expected string, found {json_type(title)} {shorten(title)}", title)
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

    raw_tasks = doc.get("tasks")
    if not isinstance(raw_tasks, list):
        issues.add("/tasks", "an ALT file needs 'tasks', an array of tasks" if raw_tasks is None
                   else f"expected an array of tasks, found {json_type(raw_tasks)} {shorten(raw_tasks)}", raw_tasks)
    elif len(<list>raw_tasks) == 0:
        issues.add("/tasks", "an ALT file needs at least one task", raw_tasks)
    else:
        for index, raw_task in enumerate(<list>raw_tasks):
            task = build_task(raw_task, index, issues)
            if task is None:
                continue
            tasks.append(task)
            if task.id is None:
                continue
            first = task_index.get(task.id)
            if first is not None:
                issues.add(f"/tasks/{index}/id",
                           f"duplicate task id '{task.id}' (first used by /tasks/{(<Task>first).index})", task.id)
            else:
                task_index[task.id] = task
        check_dependencies(tasks, task_index, issues)
    alt.tasks = tasks
    alt.task_index = task_index
    if issues.total:
        return None
    cycle = DependencyGraph.of(alt).find_cycle()
    if cycle is not None:
        first_task = <Task>task_index[cycle[0]]
        issues.add(f"/tasks/{first_task.index}/dependencies",
                   "dependency cycle: " + " -> ".join(cycle) + " (each task waits for the next)", cycle)
        return None
    return alt


cpdef AltFile parse_alt_file(object data, Py_ssize_t max_issues=DEFAULT_MAX_ISSUES):
    """JSON (bytes or str) -> a validated AltFile; AltValidationError lists what is wrong."""
    cdef IssueList issues = IssueList(max_issues)
    # The model holds hundreds of thousands of small containers and no reference cycles:
    # the cyclic GC would only rescan them over and over while they are built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        alt = build_alt_file(load_json(data, AltValidationError), issues)
    finally:
        if was_enabled:
            gc.enable()
    if alt is None:
        raise AltValidationError(issues.issues, issues.total)
    return alt
