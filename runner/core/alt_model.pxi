# The typed ALT model: what an ALT file says once it has been validated.

EXECUTION_MODES = ("normal", "dream", "explore", "chaos")
PRIORITIES = ("low", "medium", "high", "critical")
DEFAULT_PRIORITY = "medium"       # of a task or file that names none
TASK_TYPES = ("ai_prompt", "data_processing", "file_operation", "system_command", "generic")
TASK_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "timeout", "skipped")

# Fields the model knows; any other top-level or task field is kept in `extra`, because
# other ALT_LAS components add their own and expect them back in the LAST file.
ALT_FIELDS = frozenset((
    "id", "version", "created_at", "title", "description", "mode", "persona", "priority",
    "tags", "metadata", "expected_completion_time", "tasks",
))
TASK_FIELDS = frozenset((
    "id", "description", "dependencies", "parameters", "timeout_seconds", "retry_count",
    "priority", "tags", "status",
))

# Control-flow fields of the native format (control_flow.pxi reads them; they stay in `extra`).
CONTROL_TASK_FIELDS = frozenset(("when", "for_each"))
CONTROL_ALT_FIELDS = frozenset(("variables",))


cdef object json_copy(object value):
    """A copy of a JSON tree's objects and arrays (other values are immutable and shared).
    Its depth is bounded by the input limits (MAX_DEPTH_LIMIT), so recursion is safe."""
    cdef dict copied
    if type(value) is dict:
        copied = {}
        for key, item in (<dict>value).items():
            copied[key] = json_copy(item)
        return copied
    if type(value) is list:
        return [json_copy(item) for item in <list>value]
    return value


cdef class Task:
    """One task of an ALT file. `dependencies` is a list (empty when the file said null).

    `tags` and `extra` are None inside when the file gave none (the common case: an empty
    list and dict per task cost 150 bytes each of a million tasks); read through the
    properties, they are then a new empty list or dict at each read, shared with nothing.
    `parameters` reads as a copy, nested values included: equal small ones are kept once
    per file (alt_parser's ParameterTable), control-flow instances share their template's,
    and a generic task's result is made from them when first read, so what a caller
    changes in what it got changes no task, no result and no record. The core reads
    `_parameters` and never changes it.
    """

    cdef readonly int index            # an int as in DependencyGraph
    cdef readonly str id
    cdef readonly str description
    cdef readonly list dependencies
    cdef dict _parameters
    cdef readonly object timeout_seconds
    cdef readonly object retry_count
    cdef readonly object priority
    cdef list _tags                    # None: no tags
    cdef readonly object status
    cdef dict _extra                   # None: no fields beyond the known ones
    cdef readonly object control       # an instance's metadata.control (control flow), else None

    @property
    def tags(self):
        """The task's tags (a list; a new empty one when it has none)."""
        return self._tags if self._tags is not None else []

    @property
    def extra(self):
        """Fields the model does not know, kept as found (a new empty dict when there are none)."""
        return self._extra if self._extra is not None else {}

    @property
    def parameters(self):
        """The task's parameters: a new copy at each read, nested objects and arrays
        included (see the class's docstring)."""
        return json_copy(self._parameters)

    @property
    def task_type(self):
        """parameters.task_type; absent or null means an AI prompt whose prompt is the description."""
        return task_type_of(self)

    def to_dict(self):
        cdef dict out = {"id": self.id, "description": self.description,
                         "dependencies": list(self.dependencies),
                         "parameters": self.parameters}
        if self.timeout_seconds is not None:
            out["timeout_seconds"] = self.timeout_seconds
        if self.retry_count is not None:
            out["retry_count"] = self.retry_count
        if self.priority is not None:
            out["priority"] = self.priority
        if self._tags:
            out["tags"] = self._tags
        if self.status is not None:
            out["status"] = self.status
        if self._extra:
            out.update(self._extra)
        return out

    def __repr__(self):
        return f"Task({self.id!r}, dependencies={self.dependencies!r})"


cdef inline Task task_at(list tasks, Py_ssize_t i):
    """tasks[i] (an AltFile's tasks), looked at first: code outside the core may have
    changed the list, and the core reads its items as Tasks, past no end."""
    if i >= len(tasks):
        raise IndexError(f"the run's task list lost task {i} (it holds {len(tasks)})")
    item = tasks[i]
    if not isinstance(item, Task):
        raise TypeError(f"the run's task list holds {type(item).__name__} at {i}, not a task")
    return <Task>item


cdef inline object task_type_of(Task task):
    """parameters.task_type; absent (or null, which the parser checks as absent) means an AI
    prompt whose prompt is the description."""
    kind = task._parameters.get("task_type")
    return "ai_prompt" if kind is None else kind


cdef class AltFile:
    """A validated ALT file: its header fields, its tasks in file order, and an id index."""

    cdef readonly str id
    cdef readonly str title
    cdef readonly object version
    cdef readonly object created_at
    cdef readonly str description
    cdef readonly str mode
    cdef readonly object persona
    cdef readonly object priority
    cdef readonly list tags
    cdef readonly dict metadata
    cdef readonly object expected_completion_time
    cdef readonly list tasks
    cdef readonly dict task_index      # task id -> Task
    cdef readonly dict extra           # fields the model does not know, kept as found
    cdef readonly DependencyGraph graph  # built while validating (None until then)
    cdef readonly object source        # the JSON bytes it was parsed from (a run's journal keeps them)
    cdef readonly list warnings        # ValidationIssue of unknown fields and parameters (up to a cap)
    cdef readonly Py_ssize_t warning_total
    # Chaos mode's fault rate when the file sets one (a segmentation document's chaos_level);
    # None: RUNNER_CHAOS_FAULT_RATE.
    cdef readonly object chaos_fault_rate
    # Its ControlPlan (control_flow.pxi) when it uses variables, conditions, loops or functions.
    cdef readonly object control
    # task_types() once found (None until then, and again when control flow changes `tasks`).
    cdef set _task_types

    def __len__(self):
        return len(self.tasks)

    def release_source(self):
        """Lets go of `source` (the JSON bytes): a run whose caller will not run this AltFile
        again calls it once alt.json is written, so a 1M-task file's 100 MB are not kept to
        the end of the run. A later run of it writes alt.json from to_dict()."""
        self.source = None

    def task(self, str task_id):
        """The task with this id; UnknownIdError if the file has none."""
        found = self.task_index.get(task_id)
        if found is None:
            raise UnknownIdError(f"unknown task '{task_id}' in ALT file '{self.id}'")
        return found

    def task_types(self):
        """The set of its tasks' task types (Task.task_type), a new set each call: found in one
        pass in C the first time and kept (a pass over 10k tasks took 0.2-0.3 ms, and every
        run asked twice: its AI service check, then its preparation and journal). Control flow's
        changes to `tasks` (append_tasks, replace_task) forget it."""
        cdef set types
        cdef Task task
        if self._task_types is None:
            types = set()
            for item in self.tasks:
                task = <Task?>item
                types.add(task_type_of(task))
            self._task_types = types
        return set(self._task_types)

    def header(self):
        """The file's fields other than its tasks, as JSON-ready data."""
        return {"id": self.id, "title": self.title, "version": self.version,
                "created_at": self.created_at, "description": self.description,
                "mode": self.mode, "persona": self.persona, "priority": self.priority,
                "tags": self.tags, "metadata": self.metadata,
                "expected_completion_time": self.expected_completion_time}

    def to_dict(self):
        out = {k: v for k, v in self.header().items() if v is not None}
        out["tasks"] = [task.to_dict() for task in self.tasks]
        out.update(self.extra)
        return out

    def __repr__(self):
        return f"AltFile({self.id!r}, {len(self.tasks)} tasks, mode={self.mode!r})"
