# A run's statistics, accumulated as its results are recorded (issue 23): the LAST record
# takes them from here (last_record.pxi, assemble_record) instead of reading every result
# again at the end, when each is far from the cache; the run's progress events read their
# counts from here. What depends on the whole graph (levels, critical path, the sum of the
# durations in topological order) stays a pass over the C arrays kept here, and so does what
# a result's metadata says (attempts, AI accounting): the one part of a result that can
# still change after it is recorded (a listener or hook editing it), read when the record
# is made, as the record always read it.

from cpython.mem cimport PyMem_Realloc
from libc.string cimport memcpy

# The counts a run's progress events carry (the executor's `counts`), in this order.
PROGRESS_STATUSES = ("completed", "failed", "timeout", "cancelled", "skipped")
cdef Py_ssize_t PENDING_AT = STATUS_INDEX["pending"]
cdef Py_ssize_t COMPLETED_AT = STATUS_INDEX["completed"]
cdef Py_ssize_t FAILED_AT = STATUS_INDEX["failed"]
cdef Py_ssize_t TIMEOUT_AT = STATUS_INDEX["timeout"]
cdef Py_ssize_t CANCELLED_AT = STATUS_INDEX["cancelled"]
cdef Py_ssize_t SKIPPED_AT = STATUS_INDEX["skipped"]


cdef extern from *:
    """
    #include <stdint.h>
    /* 1 when every key of the dict is an exact str, so that looking a str up in it runs no
       Python code (only the str comparison): CPython 3.11-3.12 keep such a dict's keys as
       DICT_KEYS_UNICODE (or SPLIT) and turn them GENERAL, for good, at the first other key
       (a str subclass included). The keys object's first fields are the same in both
       versions (Include/internal/pycore_dict.h); elsewhere 0: code may run. */
    typedef struct { Py_ssize_t dk_refcnt; uint8_t dk_log2_size; uint8_t dk_log2_index_bytes;
                     uint8_t dk_kind; } runner_dict_keys_head;
    static inline int runner_dict_keys_all_str(PyObject *mapping) {
    #if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
        const runner_dict_keys_head *keys = (const runner_dict_keys_head *)((PyDictObject *)mapping)->ma_keys;
        return keys->dk_kind != 0;      /* DICT_KEYS_GENERAL is 0 */
    #else
        (void)mapping;
        return 0;
    #endif
    }
    """
    bint dict_keys_all_str "runner_dict_keys_all_str"(dict mapping)


def dict_holds_only_str_keys(dict mapping not None):
    """dict_keys_all_str(mapping), for tests: False once a key other than an exact str went in."""
    return dict_keys_all_str(mapping)


@cython.final
cdef class RunStatistics:
    """The run's results (`results`: task id -> TaskResult, the dict the run hands out) and,
    per task index, what the record's statistics need of each result's fixed fields: its
    status count, duration and the run's span, gathered as record() puts the result in
    (its metadata is read by fill(), when the record is made).

    record() is the one way a run's results go in: inline tasks (Scheduler.run_inline),
    the executor's ends, skips and cancellations, a resume's reused results and
    control-flow instances all pass through it. A second result for one task keeps the
    counts right but marks the rest stale, and the record reads every result again, as it
    does for results given without statistics. The record takes the figures only if the
    dict holds exactly the results recorded here (vouches): a result put in it some other
    way is noticed, never miscounted.
    """
    cdef readonly dict results
    cdef list tasks             # the run's AltFile.tasks: grows with control-flow instances
    cdef list by_index          # per task index: its recorded TaskResult, None without one
    cdef Py_ssize_t recorded    # how many task indexes have a result
    cdef bint stale             # a result replaced another, or did not match its index
    cdef Py_ssize_t counts[16]  # per TASK_STATUSES
    cdef RunSpan span
    cdef double *duration       # per task index: duration_ms (0 without one)
    cdef Py_ssize_t capacity

    def __cinit__(self, dict results not None, list tasks not None):
        if results:
            raise ValueError("RunStatistics starts from an empty results dict")
        self.results = results
        self.tasks = tasks
        self.by_index = []
        self.span = RunSpan()
        memset(self.counts, 0, sizeof(self.counts))
        self.grow(len(tasks))

    def __dealloc__(self):
        PyMem_Free(self.duration)

    cdef int grow(self, Py_ssize_t size) except -1:
        cdef Py_ssize_t wanted = size if size > 2 * self.capacity else 2 * self.capacity
        cdef double *duration
        if wanted < 16:
            wanted = 16
        duration = <double *>PyMem_Realloc(self.duration, wanted * sizeof(double))
        if duration == NULL:
            raise MemoryError()
        self.duration = duration
        self.by_index.extend([None] * (wanted - len(self.by_index)))
        self.capacity = wanted
        return 0

    cpdef record(self, Py_ssize_t index, TaskResult result):
        """Puts `result` into the run's results as the result of task `index`, and counts it."""
        self.put(index, result)

    cdef int put(self, Py_ssize_t index, TaskResult result) except -1:
        """record(); 1 when Python code may have run meanwhile (a journal's drain then writes
        the next row's parameters afresh), else 0: when it let go of a value held before (an
        earlier result of the task's, in the dict or by index: its finalizers), or when the
        dict may hold a key other than an exact str, whose comparison in the lookup may run
        its __eq__ (a hash equal to the task id's). Asked of the dict itself (dict_keys_all_str),
        not guessed from its size: a key's __eq__ can remove keys and make any count agree
        (reviews 18-20)."""
        cdef int dropped = 0 if dict_keys_all_str(self.results) else 1     # before the lookup
        cdef PyObject *held = PyDict_SetDefault(self.results, result.task_id, result)
        if held != <PyObject *>result:      # another value was there: let go of
            self.results[result.task_id] = result
            dropped = 1
        return self.add(index, result) | dropped

    cdef int add(self, Py_ssize_t index, TaskResult result) except -1:
        """Counts `result` as task `index`'s; 1 when it replaced another result by index, else 0."""
        cdef int replaced = 0
        cdef object given
        cdef TaskResult earlier
        cdef Task task
        self.counts[status_index(result.status)] += 1
        if index < 0 or index >= len(self.tasks):
            self.stale = True
            return 0
        task = task_at(self.tasks, index)
        if not (task.id is result.task_id or task.id == result.task_id):
            self.stale = True
            return 0
        if index >= self.capacity:
            self.grow(index + 1)
        earlier = <TaskResult>self.by_index[index]
        if earlier is not None:
            if earlier is result:
                self.counts[status_index(result.status)] -= 1
                return 0
            # Counted again: the counts stay those of the results in the dict; the rest is
            # read again from the results by the record.
            self.counts[status_index(earlier.status)] -= 1
            self.stale = True
            replaced = 1
        else:
            self.recorded += 1
        self.by_index[index] = result
        given = result.duration()
        self.duration[index] = <double>given if given is not None else 0.0
        self.span.add(result.started_at, result.completed_at)
        return replaced

    cpdef dict progress_counts(self):
        """{status: results recorded with it} for PROGRESS_STATUSES, in that order."""
        return {u"completed": self.counts[COMPLETED_AT], u"failed": self.counts[FAILED_AT],
                u"timeout": self.counts[TIMEOUT_AT], u"cancelled": self.counts[CANCELLED_AT],
                u"skipped": self.counts[SKIPPED_AT]}

    def status_counts(self):
        """{status: results recorded with it} for every status of TASK_STATUSES."""
        return {status: self.counts[i] for i, status in enumerate(TASK_STATUSES)}

    @property
    def current(self):
        """Whether the record can take these figures for the results as they are now (else it
        reads the results again): no result replaced another, the dict holds what was recorded."""
        return not self.stale and len(self.results) == self.recorded

    def vouches_for(self, AltFile alt, dict results):
        """vouches, from Python (tests)."""
        return self.vouches(alt, results)

    cdef bint vouches(self, AltFile alt, dict results) except -1:
        """Whether `results` is this run's dict for alt's tasks and holds exactly the results
        recorded here, each under its task's id. The dict's order is usually the tasks'
        (inline tasks end in order): each is checked against the next entry, else by id."""
        cdef list tasks = alt.tasks
        cdef Py_ssize_t i, n = len(tasks), found = 0
        cdef Py_ssize_t cursor = 0, peeked = 0
        cdef PyObject *key = NULL
        cdef PyObject *value = NULL
        cdef bint in_step = True
        cdef object expected
        if self.stale or results is not self.results or tasks is not self.tasks or len(results) != self.recorded:
            return False
        if n > self.capacity:
            self.grow(n)        # instances made but never recorded (an interrupted control-flow run)
        for i in range(n):
            expected = self.by_index[i]
            if expected is None:
                continue
            if in_step and cursor == peeked:
                in_step = PyDict_Next(results, &peeked, &key, &value)
            if in_step and <object>value is expected:
                cursor = peeked
            elif results.get(task_at(tasks, i).id) is not expected:
                return False
            found += 1
        return found == self.recorded

    cdef void fill(self, TaskPass visits, list tasks) except *:
        """The per-task figures into `visits` (whose ranks are set), for a record of `tasks`
        (vouched for): a task without a result is pending. Each result's metadata (attempts,
        AI accounting) is read now, in the file's order, as TaskPass.gather reads it: an
        inline result still typed has none to read (one attempt, no AI)."""
        cdef Py_ssize_t i, n = len(tasks), count
        cdef object result
        cdef dict metadata
        if n:
            memcpy(visits.duration, self.duration, n * sizeof(double))
        memcpy(visits.counts, self.counts, sizeof(self.counts))
        for i in range(n):
            result = self.by_index[i]
            visits.attempts[i] = 0
            if result is None:
                visits.results[i] = pending_result(task_at(tasks, i).id)
                visits.counts[PENDING_AT] += 1
                visits.duration[i] = 0.0
                continue
            visits.results[i] = result
            metadata = (<TaskResult>result).stored_metadata
            if metadata:
                attempts = metadata.get("attempts")
                if type(attempts) is list and len(<list>attempts) > 1:
                    count = len(<list>attempts)
                    visits.retries += count - 1
                    visits.attempts[i] = count
                ai = metadata.get("ai")
                if ai is not None:
                    visits.tokens.add(ai, visits.rank[i])
        visits.span = self.span.copy()
