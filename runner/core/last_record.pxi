# The LAST record: what a run of an ALT file produced, as JSON-ready data.
# One typed pass over the tasks in topological order gives the counts, the run's span,
# the graph nodes and the critical path; it is the hot part of writing a LAST file.

import gc
from datetime import datetime, timezone
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memset
from cpython.object cimport PyObject

cdef extern from "Python.h":
    bint PyDict_Next(object mapping, Py_ssize_t *position, PyObject **key, PyObject **value)

cdef extern from *:
    """
    /* A dict sized for n entries from the start: the record's task_results grows to one
       entry per task (when it is made), and each resize on the way rehashes every entry
       so far. The function is CPython's own, public to extensions up to 3.12. */
    #if PY_VERSION_HEX < 0x030D0000
    #define runner_presized_dict(n) _PyDict_NewPresized(n)
    #else
    #define runner_presized_dict(n) PyDict_New()
    #endif
    """
    dict runner_presized_dict(Py_ssize_t n)

cdef extern from "build_info.h":
    const char *RUNNER_VERSION

__version__ = RUNNER_VERSION.decode()
# 1.1: the original runner's wire format (integer milliseconds, start_time/end_time,
# source/target edges, its enums), extended by librunner's own fields.
LAST_FORMAT_VERSION = "1.1"
UNSUCCESSFUL_STATUSES = ("failed", "timeout", "cancelled")
# Task statuses as the original's TaskStatus enum has them: a skipped task is written as
# cancelled (it never ran, because of another task) and marked "skipped": true.
cdef object U64_MAX = 2 ** 64 - 1
cdef double U64_LIMIT = 18446744073709551615.0


cdef object parse_time(object stamp):
    if stamp is None:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


cdef str rfc3339(object moment):
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


cdef str overall_status(Py_ssize_t completed, Py_ssize_t total):
    """The original's LastFileStatus, serialised lowercase: partialsuccess, one word."""
    if completed == total:
        return "success"
    return "failure" if completed == 0 else "partialsuccess"


cdef inline bint is_skipped(str status):
    return status is u"skipped" or status == u"skipped"


cdef inline object wire_ms(object value):
    """Milliseconds as the original's u64: rounded to the nearest, within 0..2^64-1."""
    cdef double number
    if value is None:
        return None
    if type(value) is int:
        return value if 0 <= value <= U64_MAX else (0 if value < 0 else U64_MAX)
    number = <double>value
    if not number >= 0.0:
        return 0
    if number >= U64_LIMIT:
        return U64_MAX
    return <unsigned long long>(number + 0.5) if number < 9007199254740992.0 else int(number)


cdef inline bint uniform_utc(object stamp, Py_ssize_t length):
    """Stamps of one length ending in Z order like their times: compared as text, parsed once."""
    return type(stamp) is str and len(<str>stamp) == length and length > 19 \
        and (<str>stamp)[length - 1] == u"Z" and (<str>stamp)[10] == u"T"


cdef inline bint stamp_before(object a, object b) except -1:
    """a < b for two stamps uniform_utc accepted at one length: compared as bytes when both
    are one byte a character (the same order as str's), else as str."""
    if PyUnicode_KIND(a) == PyUnicode_1BYTE_KIND and PyUnicode_KIND(b) == PyUnicode_1BYTE_KIND:
        return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), PyUnicode_GET_LENGTH(a)) < 0
    return a < b


cdef class RunSpan:
    """The earliest start and latest completion among the results, found cheaply.

    Executors write every stamp in one format ("...T..:..:..(.fff)Z"); while that holds the
    stamps are compared as strings and only the two extremes are parsed.
    """
    cdef object earliest        # str while uniform, else datetime
    cdef object latest
    cdef Py_ssize_t length      # length of the uniform stamps, -1 before the first, -2 once mixed

    def __cinit__(self):
        self.length = -1

    cdef void add(self, object started, object finished) except *:
        if started is None and finished is None:
            return
        if self.length == -1:
            probe = started if started is not None else finished
            self.length = len(probe) if type(probe) is str and uniform_utc(probe, len(probe)) else -2
        if self.length >= 0:
            if (started is None or uniform_utc(started, self.length)) and \
                    (finished is None or uniform_utc(finished, self.length)):
                if started is not None and (self.earliest is None or stamp_before(started, self.earliest)):
                    self.earliest = started
                if finished is not None and (self.latest is None or stamp_before(self.latest, finished)):
                    self.latest = finished
                return
            self.length = -2
            self.earliest = parse_time(self.earliest)
            self.latest = parse_time(self.latest)
        started_at = parse_time(started)
        finished_at = parse_time(finished)
        if started_at is not None and (self.earliest is None or started_at < self.earliest):
            self.earliest = started_at
        if finished_at is not None and (self.latest is None or finished_at > self.latest):
            self.latest = finished_at

    cdef RunSpan copy(self):
        cdef RunSpan twin = RunSpan.__new__(RunSpan)
        twin.earliest, twin.latest, twin.length = self.earliest, self.latest, self.length
        return twin

    cdef tuple bounds(self):
        if self.length >= 0:
            return parse_time(self.earliest), parse_time(self.latest)
        return self.earliest, self.latest


cdef class ModelUsage:
    """Token totals of one model. Sums are Python ints: each count may be up to 2^53-1, and a
    C long long could overflow (undefined behaviour) over a large run."""
    cdef object provider
    cdef Py_ssize_t first           # rank (topological position) of the first task using it
    cdef long long calls
    cdef object prompt_tokens
    cdef object completion_tokens

    def __cinit__(self):
        self.prompt_tokens = 0
        self.completion_tokens = 0

    cdef dict to_dict(self):
        return {"provider": self.provider, "calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}


cdef class TokenTally:
    """metadata.ai entries summed per model; runs usually use one model, so it is cached.

    Entries may come in any order: each carries its task's rank in topological order, and
    the models are listed (and each takes its provider) as the visit in that order meets
    them first, which is what one visit in topological order would give.
    """
    cdef dict models            # model name -> ModelUsage
    cdef object last_model
    cdef ModelUsage last_usage

    def __cinit__(self):
        self.models = {}

    cdef void add(self, object ai, Py_ssize_t rank) except *:
        if type(ai) is not dict:
            return
        model = (<dict>ai).get("model") or "unknown"
        cdef ModelUsage usage = self.last_usage
        if usage is None or not (model is self.last_model or model == self.last_model):
            usage = self.models.get(model)
            if usage is None:
                usage = ModelUsage.__new__(ModelUsage)
                usage.provider = (<dict>ai).get("provider")
                usage.first = rank
                self.models[model] = usage
            self.last_model = model
            self.last_usage = usage
        if rank < usage.first:
            usage.provider = (<dict>ai).get("provider")
            usage.first = rank
        usage.calls += 1
        value = (<dict>ai).get("prompt_tokens")
        if type(value) is int:
            usage.prompt_tokens += value
        value = (<dict>ai).get("completion_tokens")
        if type(value) is int:
            usage.completion_tokens += value

    cdef dict to_dict(self):
        # Ranks differ between models (each task has one), so the sort never compares names.
        cdef list models = [((<ModelUsage>usage).first, model, usage) for model, usage in self.models.items()]
        models.sort()
        return {model: (<ModelUsage>usage).to_dict() for _, model, usage in models}


cdef inline dict result_dict(TaskResult result, str execution_id):
    """The original's TaskResult fields, then librunner's: this runs once per task.

    A task that never started has the moment it ended as its start_time (it was skipped
    or cancelled then); one that neither started nor ended gets the run's start_time,
    filled in by the caller once the run's span is known. duration_ms is rounded to an
    integer; exact_duration_ms keeps the fraction when there was one.
    """
    cdef object duration = result.duration()
    cdef dict out = {"task_id": result.task_id,
                     "execution_id": result.execution_id if result.execution_id is not None else execution_id,
                     "status": u"cancelled" if is_skipped(result.status) else result.status,
                     "start_time": result.started_at if result.started_at is not None else result.completed_at,
                     "end_time": result.completed_at, "duration_ms": wire_ms(duration),
                     "output": result.transient_output(), "error": result.error,
                     "metadata": result.transient_metadata()}
    if type(duration) is float and duration != <double>out["duration_ms"]:
        out["exact_duration_ms"] = duration
    if is_skipped(result.status):
        out["skipped"] = True
    if result.stored_extra:
        for key, value in result.stored_extra.items():
            if key not in out:
                out[key] = value
    return out


cpdef dict recorded_task_result(TaskResult result, str execution_id, str run_start):
    """`result` exactly as a LAST file of run `execution_id`, started at `run_start`, records it."""
    cdef dict written = result_dict(result, execution_id)
    if written["start_time"] is None:
        written["start_time"] = run_start
    return written


cdef str describe_run(str title, Py_ssize_t total, dict counts, double success_rate, str status,
                      double wall_ms, list critical_ids, double critical_ms, Py_ssize_t retries):
    cdef Py_ssize_t completed = counts["completed"]
    cdef Py_ssize_t unsuccessful = 0
    for name in UNSUCCESSFUL_STATUSES:
        unsuccessful += counts[name]
    parts = [f"{title}: {completed} of {total} task{'s' if total != 1 else ''} completed"]
    if unsuccessful:
        detail = ", ".join(f"{counts[s]} {s}" for s in UNSUCCESSFUL_STATUSES if counts[s])
        parts.append(f", {unsuccessful} unsuccessful ({detail})")
    if counts["skipped"]:
        parts.append(f", {counts['skipped']} skipped")
    if counts["pending"]:
        parts.append(f", {counts['pending']} never reported")
    # The summary is prose for people: the wire word partialsuccess reads as two words here.
    # "(100.00% success)", not "(100.00% success, success)": the status is said when it adds to the rate.
    outcome = "" if status == "success" else f", {'partial success' if status == 'partialsuccess' else status}"
    parts.append(f" ({success_rate:.2%} success{outcome}) in {wall_ms / 1000.0:.3f} s")
    if critical_ids:
        parts.append(f"; critical path {len(critical_ids)} task{'s' if len(critical_ids) != 1 else ''}"
                     f" ({critical_ms / 1000.0:.3f} s)")
    if retries:
        parts.append(f"; {retries} retr{'ies' if retries != 1 else 'y'}")
    return "".join(parts) + "."


cpdef dict build_last_record(AltFile alt, dict results, str last_id, str execution_id, str generated_at,
                             dict execution=None, RunStatistics statistics=None):
    """The LAST record of `alt` given its task results (task id -> TaskResult).

    Tasks without a result are recorded as pending. The run's wall time comes from
    `execution` (the executor's own clock) when given, else from the results: the
    earliest start to the latest completion; without timestamps it is the sum of the
    tasks' durations. Artifacts are added by the writer, which extracts them.
    statistics: the run's RunStatistics, whose figures are taken when they are those of
    `results` (RunStatistics.vouches), else the results are read again: the same record.
    """
    if statistics is not None and not statistics.vouches(alt, results):
        statistics = None
    return vouched_record(alt, results, last_id, execution_id, generated_at, execution, statistics)


cdef dict vouched_record(AltFile alt, dict results, str last_id, str execution_id, str generated_at,
                         dict execution, RunStatistics statistics):
    """build_last_record, `statistics` (None, or vouching for `results`) taken as they are."""
    # The record is a tree of fresh dicts with no cycles: the cyclic collector would only
    # rescan them (a third of the time at 100k tasks), so it pauses while they are made.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return assemble_record(alt, results, last_id, execution_id, generated_at, execution, statistics)
    finally:
        if was_enabled:
            gc.enable()


cdef dict STATUS_INDEX = {status: i for i, status in enumerate(TASK_STATUSES)}
cdef tuple STATUS_ORDER = TASK_STATUSES
if len(STATUS_ORDER) > 16:      # TaskPass.counts holds one slot per status
    raise ImportError(f"librunner: {len(STATUS_ORDER)} task statuses, TaskPass counts 16 at most")


cdef inline Py_ssize_t status_index(str status) except -1:
    """Index of a status in TASK_STATUSES: results share those very strings (known_status),
    so an identity test usually finds it without hashing."""
    cdef Py_ssize_t i
    for i in range(len(STATUS_ORDER)):
        if <object>status is STATUS_ORDER[i]:
            return i
    return <Py_ssize_t>STATUS_INDEX[status]


cdef class TaskPass:
    """Per-task statistics, levels and critical path, gathered in two passes.

    gather(v) reads each task's result once, in the ALT file's order (the order results
    and tasks lie in memory), keeping what the statistics need as C arrays; walk(order)
    then goes through the tasks in topological order over those arrays alone. Visiting
    the results themselves in topological order (a random order in memory) cost three
    times as much at 100k tasks, all of it waiting on memory.
    """
    cdef DependencyGraph graph
    cdef list results       # per task index: its TaskResult
    cdef list retried
    cdef TokenTally tokens
    cdef RunSpan span
    cdef double task_time_ms
    cdef Py_ssize_t retries
    cdef int max_level
    cdef Py_ssize_t counts[16]
    cdef int *levels
    cdef int *previous      # the dependency on the longest path ending at each task
    cdef double *finish     # length of the longest path ending at each task
    cdef double *duration   # each task's duration_ms (0 without one)
    cdef Py_ssize_t *attempts   # each task's number of attempts when above 1, else 0
    cdef Py_ssize_t *rank   # each task's position in topological order

    def __cinit__(self, DependencyGraph graph):
        cdef Py_ssize_t n = graph.size
        self.graph = graph
        self.results = [None] * n
        self.retried = []
        self.tokens = TokenTally()
        self.span = RunSpan()
        memset(self.counts, 0, sizeof(self.counts))
        self.levels = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.previous = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.finish = <double *>PyMem_Malloc((n + 1) * sizeof(double))
        self.duration = <double *>PyMem_Malloc((n + 1) * sizeof(double))
        self.attempts = <Py_ssize_t *>PyMem_Malloc((n + 1) * sizeof(Py_ssize_t))
        self.rank = <Py_ssize_t *>PyMem_Malloc((n + 1) * sizeof(Py_ssize_t))
        if not (self.levels and self.previous and self.finish and self.duration and self.attempts
                and self.rank):
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.levels)
        PyMem_Free(self.previous)
        PyMem_Free(self.finish)
        PyMem_Free(self.duration)
        PyMem_Free(self.attempts)
        PyMem_Free(self.rank)

    cdef void rank_by(self, list order) except *:
        """Remembers each task's position in `order` (the topological order walk will use)."""
        cdef Py_ssize_t position
        for position in range(self.graph.size):
            self.rank[<Py_ssize_t>order[position]] = position

    cdef void gather(self, int v, TaskResult result) except *:
        """Task v's result: what does not depend on the order of visits is summed now."""
        cdef object given = result.duration()
        cdef double duration = <double>given if given is not None else 0.0
        cdef Py_ssize_t attempts_count = 0
        # An inline result's metadata, still typed (None here), has one attempt and no AI.
        cdef dict metadata = result.stored_metadata
        self.counts[status_index(result.status)] += 1
        self.span.add(result.started_at, result.completed_at)
        self.duration[v] = duration
        if metadata:
            attempts = metadata.get("attempts")
            if type(attempts) is list and len(<list>attempts) > 1:
                attempts_count = len(<list>attempts)
                self.retries += attempts_count - 1
            ai = metadata.get("ai")
            if ai is not None:
                self.tokens.add(ai, self.rank[v])
        self.attempts[v] = attempts_count
        self.results[v] = result

    cdef void walk(self, list order) except *:
        """Levels, longest paths, the sum of the durations (in this order: a float sum's
        last bits depend on it) and the retried tasks, in topological `order`."""
        cdef Py_ssize_t position, k, n = self.graph.size
        cdef double best, duration, total = 0.0
        cdef int v, level, best_dep, d
        cdef list ids = self.graph.ids
        for position in range(n):
            v = <int>order[position]
            duration = self.duration[v]
            total += duration
            if self.attempts[v]:
                self.retried.append({"task_id": ids[v], "attempts": self.attempts[v]})
            best = 0.0
            level = 0
            best_dep = -1
            for k in range(self.graph.dep_start[v], self.graph.dep_start[v + 1]):
                d = self.graph.dep_list[k]
                if self.levels[d] + 1 > level:
                    level = self.levels[d] + 1
                if best_dep < 0 or self.finish[d] > best:
                    best = self.finish[d]
                    best_dep = d
            self.levels[v] = level
            if level > self.max_level:
                self.max_level = level
            self.previous[v] = best_dep
            self.finish[v] = best + duration
        self.task_time_ms = total

    cdef void span_in_order(self, list order) except *:
        """The run's span as one visit in topological order finds it. Only needed once the
        stamps were of mixed forms: then which extreme was kept when the form changed (an
        extreme Python cannot read is dropped) may depend on the order they came in."""
        cdef RunSpan span = RunSpan()
        cdef TaskResult result
        cdef Py_ssize_t position
        for position in range(self.graph.size):
            result = <TaskResult>self.results[<Py_ssize_t>order[position]]
            span.add(result.started_at, result.completed_at)
        self.span = span

    cdef bytes graph_json(self, list tasks):
        """{"nodes": [...], "edges": [...]} as JSON text, nodes in the ALT file's order."""
        cdef JsonText out = JsonText(self.graph.size * 300 + self.graph.dep_start[self.graph.size] * 80 + 64)
        self.write_graph(out, tasks, None, 0)
        return out.value()

    cdef int write_graph(self, JsonText out, list tasks, object sink, Py_ssize_t chunk) except -1:
        """The graph's JSON into `out`, handing `sink` what is written every `chunk` bytes
        (sink None: all of it stays in `out`).

        A node is the original's ExecutionNode (its id is the task id), with the values
        written in the task's result (the same objects), then librunner's fields: the
        description (nothing else in the record has it, and the report shows it), the
        task type and the dependency level. An edge goes from a dependency (source) to
        the task that needs it (target).
        """
        cdef Py_ssize_t v, k, n = self.graph.size
        cdef Task task
        cdef TaskResult result
        cdef list ids = self.graph.ids
        cdef bint skipped
        out.raw('{"nodes":[', 10)
        for v in range(n):
            task = task_at(tasks, v)        # alt.tasks: code outside the core may have changed it
            result = <TaskResult>self.results[v]
            skipped = is_skipped(result.status)
            out.raw('{"id":' if v == 0 else ',{"id":', 6 if v == 0 else 7)
            out.string(task.id)
            out.raw(',"task_id":', 11)
            out.string(task.id)
            out.raw(',"status":', 10)
            if skipped:
                out.raw('"cancelled"', 11)
            else:
                out.string(result.status)
            out.raw(',"duration_ms":', 15)
            out.integer(wire_ms(result.duration()))
            # The same times as the task's result, except that a task with no time at all
            # has null here (as the original's nodes without a result) where its result
            # (which requires a start_time) has the run's start.
            out.raw(',"start_time":', 14)
            start = result.started_at if result.started_at is not None else result.completed_at
            if start is None:
                out.raw("null", 4)
            else:
                out.string(start)
            out.raw(',"end_time":', 12)
            if result.completed_at is None:
                out.raw("null", 4)
            else:
                out.string(result.completed_at)
            out.raw(',"description":', 15)
            if task.description is None:
                out.raw("null", 4)
            else:
                out.string(task.description)
            out.raw(',"task_type":', 13)
            out.string(task_type_of(task))
            out.raw(',"level":', 9)
            out.integer(self.levels[v])
            if skipped:
                out.raw(',"skipped":true}', 16)
            else:
                out.raw("}", 1)
            if sink is not None and out.size >= chunk:
                sink(out.take())
        out.raw('],"edges":[', 11)
        first = True
        for v in range(n):
            for k in range(self.graph.dep_start[v], self.graph.dep_start[v + 1]):
                out.raw('{"source":' if first else ',{"source":', 10 if first else 11)
                first = False
                out.string(ids[self.graph.dep_list[k]])
                out.raw(',"target":', 10)
                out.string(ids[v])
                out.raw(',"dependency_type":"required"}', 30)
            if sink is not None and out.size >= chunk:
                sink(out.take())
        out.raw("]}", 2)
        return 0

    cdef dict node(self, Py_ssize_t v, list tasks):
        """Node v as the graph's JSON has it (write_graph), as a dict."""
        cdef Task task = task_at(tasks, v)
        cdef TaskResult result = <TaskResult>self.results[v]
        cdef bint skipped = is_skipped(result.status)
        cdef dict node = {"id": task.id, "task_id": task.id,
                          "status": u"cancelled" if skipped else result.status,
                          "duration_ms": wire_ms(result.duration()),
                          "start_time": result.started_at if result.started_at is not None else result.completed_at,
                          "end_time": result.completed_at, "description": task.description,
                          "task_type": task_type_of(task), "level": self.levels[v]}
        if skipped:
            node["skipped"] = True
        return node

    cdef dict status_counts(self):
        return {status: self.counts[i] for i, status in enumerate(TASK_STATUSES)}

    cdef tuple critical_path(self, list order):
        """(task ids, duration): the longest chain of dependencies by task durations.

        Ties go to the later task in topological order: the path through a zero-length
        dependent is as long and names where the run ended.
        """
        cdef Py_ssize_t position, n = self.graph.size
        cdef int v, deepest
        cdef list ids = []
        if not n:
            return ids, 0.0
        deepest = <int>order[0]
        for position in range(1, n):
            v = <int>order[position]
            if self.finish[v] >= self.finish[deepest]:
                deepest = v
        v = deepest
        while v >= 0:
            ids.append(self.graph.ids[v])
            v = self.previous[v]
        ids.reverse()
        return ids, self.finish[deepest]


cdef dict assemble_record(AltFile alt, dict results, str last_id, str execution_id, str generated_at,
                          dict execution, RunStatistics statistics):
    cdef DependencyGraph graph = DependencyGraph.of(alt)
    cdef Py_ssize_t n = graph.size, i, k, position
    cdef list order = graph.topological_order()
    cdef list tasks = alt.tasks     # read through task_at: code outside the core may have changed it
    cdef dict task_extra = {}
    cdef Task task
    cdef TaskResult result
    cdef TaskPass visits = TaskPass(graph)
    cdef Py_ssize_t completed, total = n
    cdef Py_ssize_t cursor = 0, peeked = 0
    cdef PyObject *key = NULL
    cdef PyObject *value = NULL
    cdef bint in_step = True
    visits.rank_by(order)
    # The results stay typed: one TaskResult per task, in the ALT file's order (visits.results);
    # the record's task_results makes their dicts only when something reads it as a dict,
    # and last.json is written from them directly (write_task_results).
    if statistics is not None:
        # Accumulated as the results were recorded: none of them is read again here.
        if len(tasks) != n:     # fill reads as many
            raise ValueError(f"the run's task list holds {len(tasks)} tasks where its graph has {n}: it was "
                             "changed under the run")
        statistics.fill(visits, tasks)
        for i in range(n):
            task = task_at(tasks, i)
            if task._extra:
                task_extra[task.id] = task._extra
    else:
        for i in range(n):
            task = task_at(tasks, i)
            # Results usually arrive in the file's order (the scheduler's): read in step with
            # the tasks, each is found next to the last one instead of by a hash lookup into a
            # table of a hundred thousand entries (a cache miss each). Out of step: by id.
            if in_step and cursor == peeked:
                in_step = PyDict_Next(results, &peeked, &key, &value)
            if in_step and (<object>key is task.id or <object>key == task.id):
                result = <object>value
                cursor = peeked
            else:
                result = results.get(task.id)
            if result is None:
                result = pending_result(task.id)
            if task._extra:
                task_extra[task.id] = task._extra
            visits.gather(<int>i, result)
    visits.walk(order)
    if visits.span.length == -2:
        visits.span_in_order(order)
    critical_ids, critical_ms = visits.critical_path(order)
    counts = visits.status_counts()
    span = visits.span
    task_time_ms = visits.task_time_ms
    retries = visits.retries
    retried = visits.retried
    tokens = visits.tokens
    max_level = visits.max_level

    earliest, latest = span.bounds()
    execution = dict(execution) if execution else {}
    start_time = parse_time(execution.get("started_at")) or earliest
    end_time = parse_time(execution.get("ended_at")) or latest
    wall = execution.get("wall_time_ms")
    if isinstance(wall, (int, float)) and not isinstance(wall, bool) and wall >= 0:
        execution_time_ms = float(wall)
    elif start_time is not None and end_time is not None and end_time >= start_time:
        execution_time_ms = (end_time - start_time).total_seconds() * 1000.0
    else:
        execution_time_ms = task_time_ms
    completed = counts["completed"]
    success_rate = <double>completed / total if total else 0.0
    status = overall_status(completed, total)
    parallelism = task_time_ms / execution_time_ms if execution_time_ms > 0 else (1.0 if task_time_ms == 0 else 0.0)
    execution_graph = ExecutionGraph(source=(visits, tasks))
    run_start = rfc3339(start_time) if start_time is not None else generated_at
    run_end = rfc3339(end_time) if end_time is not None else generated_at
    task_results = TaskResults(graph.ids, visits.results, execution_id, run_start)
    summary = describe_run(alt.title, total, counts, success_rate, status, execution_time_ms,
                           critical_ids, critical_ms, retries)
    execution.setdefault("mode", alt.mode)
    # The record's mode is the mode that ran (execute(mode=...) overrides the file's);
    # a caller's execution dict is free-form, so only a known mode replaces the file's.
    ran = execution["mode"]
    mode = ran if isinstance(ran, str) and ran in MODE_SET else alt.mode
    return {
        "id": last_id,
        "execution_id": execution_id,
        "version": LAST_FORMAT_VERSION,
        "alt_file_id": alt.id,
        "alt_file_version": alt.version,
        "title": alt.title,
        "mode": mode,
        "persona": alt.persona,
        "status": status,
        "success_rate": success_rate,
        "execution_time_ms": wire_ms(execution_time_ms),
        "start_time": run_start,
        "end_time": run_end,
        "created_at": generated_at,
        "tags": list(alt.tags) if alt.tags else [],
        "priority": alt.priority if alt.priority is not None else DEFAULT_PRIORITY,
        "task_results": task_results,
        "statistics": {
            "total_tasks": total,
            "status_counts": counts,
            "success_rate": success_rate,
            "execution_time_ms": execution_time_ms,
            "total_task_time_ms": task_time_ms,
            "parallelism": parallelism,
            "critical_path": {"task_ids": critical_ids, "duration_ms": critical_ms},
            "retries": {"total": retries, "tasks": retried},
            "tokens": tokens.to_dict(),
            "levels": (max_level + 1) if n else 0,
        },
        "artifacts": [],
        "execution_graph": execution_graph,
        "execution": execution,
        "summary": summary,
        "metadata": {
            "alt_file": alt.header(),
            "alt_extra_fields": alt.extra,
            "task_extra_fields": task_extra,
            "generator": {"name": "librunner", "version": __version__},
        },
    }



# ---- the record's task results, kept typed; last.json written from them in chunks

cdef frozenset RESULT_KEYS = frozenset(("task_id", "execution_id", "status", "start_time", "end_time",
                                        "duration_ms", "output", "error", "metadata"))


cdef dict recorded_results(list ids, list results, str execution_id, str run_start):
    """task id -> the dict recorded_task_result gives, in the ALT file's order."""
    cdef Py_ssize_t i, n = len(results)
    cdef dict made = runner_presized_dict(n)
    was_enabled = gc.isenabled()
    gc.disable()        # fresh dicts with no cycles: nothing for the collector to find
    try:
        for i in range(n):
            made[ids[i]] = recorded_task_result(<TaskResult>results[i], execution_id, run_start)
    finally:
        if was_enabled:
            gc.enable()
    return made


class TaskResults(dict):
    """The record's task_results: task id -> the result as the LAST file records it
    (recorded_task_result), kept as the run's TaskResults until read as a dict. Any
    use as a dict makes all the dicts at once (and from then on it is an ordinary dict,
    changes included); last.json is written from the typed results without them,
    each() goes through them one at a time, and len() needs none."""

    def __init__(self, list ids, list results, str execution_id, str run_start):
        dict.__init__(self, {"": NOT_READ_YET})     # orjson without last_json fails loudly
        self.ids = ids
        self.results = results
        self.execution_id = execution_id
        self.run_start = run_start
        self.filled = False

    def fill(self):
        # Marked filled only once filled: two threads may both make the dicts (the same
        # content), but none sees the placeholder through these methods.
        results = self.results
        if not self.filled and results is not None:
            made = recorded_results(self.ids, results, self.execution_id, self.run_start)
            if not self.filled:
                dict.clear(self)
                dict.update(self, made)
                self.filled = True
                self.results = None
        return self

    def columns(self):
        """(task ids, statuses, durations, end times, dicts) made from the typed results, None
        once they are dicts (read those): per result, in order, its task_id, status as a
        reader tells it (task_status: skipped for a skipped task), duration_ms and end_time
        as the record has them, one list each; dicts[i]: result i as the record has it. For
        readers that look at every result's status or time and at a few whole (the report):
        no dict or tuple per result."""
        results = self.results
        if self.filled or results is None:
            return None
        return (*result_columns(results), RecordedResults(results, self.execution_id, self.run_start))

    def artifact_sources(self):
        """(task id, output, metadata) of the results that may name an artifact
        (may_name_artifacts), in order; the others are passed over in the core, their
        dicts never made."""
        results = self.results
        if self.filled or results is None:
            return [(task_id, result.get("output"), result.get("metadata"))
                    for task_id, result in dict.items(self.fill())
                    if may_name_artifacts(result.get("output"), result.get("metadata"))]
        return typed_artifact_sources(self.ids, results)

    def each(self):
        """(task id, recorded dict) pairs in order, made one at a time (nothing kept)."""
        results = self.results
        if self.filled or results is None:
            yield from dict.items(self.fill())
            return
        ids, execution_id, run_start = self.ids, self.execution_id, self.run_start
        for i in range(len(<list>results)):
            yield ids[i], recorded_task_result(<TaskResult>results[i], execution_id, run_start)

    def __len__(self):
        results = self.results
        if not self.filled and results is not None:
            return len(results)
        return dict.__len__(self)

    def __getitem__(self, key):
        return dict.__getitem__(self.fill(), key)

    def get(self, key, default=None):
        return dict.get(self.fill(), key, default)

    def __contains__(self, key):
        return dict.__contains__(self.fill(), key)

    def __iter__(self):
        return dict.__iter__(self.fill())

    def __reversed__(self):
        return dict.__reversed__(self.fill())

    def keys(self):
        return dict.keys(self.fill())

    def values(self):
        return dict.values(self.fill())

    def items(self):
        return dict.items(self.fill())

    def copy(self):
        return dict(self.fill())

    def __setitem__(self, key, value):
        dict.__setitem__(self.fill(), key, value)

    def __delitem__(self, key):
        dict.__delitem__(self.fill(), key)

    def pop(self, *args):
        return dict.pop(self.fill(), *args)

    def popitem(self):
        return dict.popitem(self.fill())

    def setdefault(self, key, default=None):
        return dict.setdefault(self.fill(), key, default)

    def update(self, *args, **kwargs):
        dict.update(self.fill(), *args, **kwargs)

    def clear(self):
        self.fill()
        dict.clear(self)

    def __or__(self, other):
        return dict(self.fill()) | other

    def __ror__(self, other):
        return other | dict(self.fill())

    def __ior__(self, other):
        dict.update(self.fill(), other)
        return self

    def __eq__(self, other):
        if isinstance(other, TaskResults):
            other.fill()
        return dict.__eq__(self.fill(), other)

    def __ne__(self, other):
        if isinstance(other, TaskResults):
            other.fill()
        return dict.__ne__(self.fill(), other)

    def __repr__(self):
        return dict.__repr__(self.fill())

    def __reduce__(self):
        return (dict, (dict(self.fill()),))

    __hash__ = None


cdef tuple result_columns(list results):
    cdef Py_ssize_t i, n = len(results)
    cdef list ids = [None] * n, statuses = [None] * n, durations = [None] * n, ends = [None] * n
    cdef TaskResult result
    cdef object status
    for i in range(n):
        result = <TaskResult>results[i]
        status = result.status
        # task_status of the recorded dict: skipped if "skipped" is true there, which a
        # result's own extra field of that name may say too.
        if is_skipped(status) or (result.stored_extra and result.stored_extra.get("skipped") is True):
            status = u"skipped"
        ids[i] = result.task_id
        statuses[i] = status
        durations[i] = wire_ms(result.duration())
        ends[i] = result.completed_at
    return ids, statuses, durations, ends


cdef class RecordedResults:
    """Typed results by position, each made as the record's dict when asked for."""
    cdef list results
    cdef str execution_id
    cdef str run_start

    def __cinit__(self, list results, str execution_id, str run_start):
        self.results = results
        self.execution_id = execution_id
        self.run_start = run_start

    def __len__(self):
        return len(self.results)

    def __getitem__(self, Py_ssize_t i):
        cdef Py_ssize_t n = len(self.results)
        if i < 0:
            i += n
        if not 0 <= i < n:          # boundscheck is off: never read past the list
            raise IndexError(f"recorded result {i} of {n}")
        return recorded_task_result(<TaskResult>self.results[i], self.execution_id, self.run_start)


# ---- which results may name an artifact (runner.last.artifacts takes it from there)

# The output fields whose text may hold fenced code blocks, in the order they are looked at.
ARTIFACT_TEXT_FIELDS = ("text", "content", "response")


cpdef object artifact_text(object output):
    """The text fenced code blocks are looked for in (runner.last.artifacts): the output if
    it is a string, else its first string among ARTIFACT_TEXT_FIELDS."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        for key in ARTIFACT_TEXT_FIELDS:
            value = output.get(key)
            if isinstance(value, str):
                return value
    return None


cpdef bint may_name_artifacts(object output, object metadata) except -1:
    """Whether a result with this output and metadata may name an artifact: files it wrote
    (metadata.files_written), explicit entries (output.artifacts or .files), or a fenced
    code block in its text. False rules it out; True means look (most results are False)."""
    if metadata and "files_written" in metadata:
        return True
    if output is None:
        return False
    if type(output) is dict:
        if "artifacts" in output or "files" in output:
            return True
        text = artifact_text(output)
        return text is not None and "```" in text
    return type(output) is str and "```" in output


cdef list typed_artifact_sources(list ids, list results):
    """TaskResults.artifact_sources of typed results. An inline result's metadata names no
    files and its output is a copy of its task's parameters: tested on those, made for
    the few that pass."""
    cdef list found = []
    cdef Py_ssize_t i
    cdef TaskResult result
    cdef object parameters
    for i in range(len(results)):
        result = <TaskResult>results[i]
        if result.typed_inline() and type(result.ran._parameters) is dict:
            parameters = result.ran._parameters
            if not ("artifacts" in parameters or "files" in parameters):
                text = artifact_text(parameters)
                if text is None or "```" not in text:
                    continue
            found.append((ids[i], result.inline_output(), result.inline_metadata()))
            continue
        output = result.transient_output()
        metadata = result.transient_metadata()
        if may_name_artifacts(output, metadata):
            found.append((ids[i], output, metadata))
    return found


cdef int write_result(JsonText out, TaskResult result, str execution_id, str run_start) except -1:
    """`result` as JSON, exactly as orjson writes recorded_task_result(result, ...): the
    original's TaskResult fields, then librunner's (see result_dict)."""
    cdef object duration = result.duration()
    cdef object wire = wire_ms(duration)
    cdef bint skipped = is_skipped(result.status)
    cdef bint exact
    cdef bytes duration_text = None     # an inline result's duration as JSON, written twice
    out.raw('{"task_id":', 11)
    record_value(out, result.task_id)
    out.raw(',"execution_id":', 16)
    record_value(out, result.execution_id if result.execution_id is not None else execution_id)
    out.raw(',"status":', 10)
    if skipped:
        out.raw('"cancelled"', 11)
    else:
        record_value(out, result.status)
    out.raw(',"start_time":', 14)
    start = result.started_at if result.started_at is not None else result.completed_at
    record_value(out, start if start is not None else run_start)
    out.raw(',"end_time":', 12)
    record_value(out, result.completed_at)
    out.raw(',"duration_ms":', 15)
    record_value(out, wire)
    out.raw(',"output":', 10)
    if result.typed_inline():
        # Typed: the parameters are the output's items; the metadata is written from the fields.
        parameters = result.ran._parameters
        record_value(out, parameters if type(parameters) is dict else dict(parameters))
        out.raw(',"error":null,"metadata":', 25)
        duration_text = DUMPS(result.elapsed_ms)
        write_inline_metadata(out, result, duration_text, False)
    else:
        record_value(out, result.transient_output())
        out.raw(',"error":', 9)
        record_value(out, result.error)
        out.raw(',"metadata":', 12)
        record_value(out, result.transient_metadata())
    exact = type(duration) is float and duration != <double>wire
    if exact:
        out.raw(',"exact_duration_ms":', 21)
        if duration_text is not None:
            out.raw(duration_text, len(duration_text))
        else:
            record_value(out, duration)
    if skipped:
        out.raw(',"skipped":true', 15)
    if result.stored_extra:
        for key, value in result.stored_extra.items():
            if key in RESULT_KEYS or (exact and key == "exact_duration_ms") or (skipped and key == "skipped"):
                continue
            out.raw(",", 1)
            record_key(out, key)
            out.raw(":", 1)
            record_value(out, value)
    out.raw("}", 1)
    return 0


cdef int write_task_results(JsonText out, object task_results, object sink, Py_ssize_t chunk) except -1:
    cdef list results = task_results.results
    cdef list ids = task_results.ids
    cdef str execution_id = task_results.execution_id
    cdef str run_start = task_results.run_start
    cdef Py_ssize_t i
    out.raw("{", 1)
    for i in range(len(results)):
        if i:
            out.raw(",", 1)
        record_key(out, ids[i])
        out.raw(":", 1)
        write_result(out, <TaskResult>results[i], execution_id, run_start)
        if sink is not None and out.size >= chunk:
            sink(out.take())
    out.raw("}", 1)
    return 0


cdef int write_record(JsonText out, dict record, object sink, Py_ssize_t chunk) except -1:
    """The LAST record's JSON, as orjson.dumps(record, default=last_json_value,
    option=OPT_PASSTHROUGH_SUBCLASS) writes it, into `out`; sink (if not None) is handed
    each chunk of about `chunk` bytes as it is made, and the rest at the end."""
    cdef bint first = True
    out.raw("{", 1)
    for key, value in record.items():
        if not first:
            out.raw(",", 1)
        first = False
        record_key(out, key)
        out.raw(":", 1)
        kind = type(value)
        if kind is TaskResults and not value.filled and value.results is not None:
            write_task_results(out, value, sink, chunk)
        elif kind is ExecutionGraph and value.text is None:
            visits, tasks = value.source
            (<TaskPass>visits).write_graph(out, tasks, sink, chunk)
        elif kind is ExecutionGraph:
            out.raw(value.text, len(value.text))
        else:
            record_value(out, value)
        if sink is not None and out.size >= chunk:
            sink(out.take())
    out.raw("}", 1)
    if sink is not None and out.size:
        sink(out.take())
    return 0


cpdef bytes last_json(dict record):
    """The JSON text of a LAST record, as last.json holds it, as one bytes object."""
    cdef JsonText out = JsonText(1 << 20, 3)      # grown by an eighth: little unused room at the end
    write_record(out, record, None, 0)
    return out.value()


cpdef write_last_json(dict record, object write, Py_ssize_t chunk=1 << 20):
    """Writes the JSON text of a LAST record (the bytes last_json gives) by calling
    write(bytes) with chunks of about `chunk` bytes, made one at a time from the typed
    results: the whole text is never in memory."""
    cdef JsonText out = JsonText(chunk + (chunk >> 2) + 65536)
    write_record(out, record, write, chunk if chunk > 0 else 1)
