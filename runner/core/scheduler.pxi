# The scheduler: which tasks may start now, in what order, and which can never run.
#
# Ready tasks wait in binary heaps in C arrays keyed by (priority rank, tie-break), where
# the tie-break is the file order (or, in chaos mode, a seeded shuffle of it). Tasks of a
# cheap synchronous type ("inline", e.g. generic) have their own heap and are run by the
# scheduler loop itself (run_inline): they take no time, so they take no concurrency slot,
# and a thread-pool round trip would cost more than the task.

from cpython.mem cimport PyMem_Malloc, PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_REFCNT
from libc.stdio cimport snprintf
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME, CLOCK_MONOTONIC

cdef extern from "<time.h>" nogil:
    struct tm:
        int tm_sec
        int tm_min
        int tm_hour
        int tm_mday
        int tm_mon
        int tm_year
    tm *gmtime_r(const long *timep, tm *result)

import gc

# How many inline tasks run_inline runs between offers of the GIL to other threads.
cdef int INLINE_GIL_YIELD = 2048
cdef int JOURNAL_LOOK = 1024         # inline results between wakes of a journal's writer (a multiple of GIL_LOOK)

# critical runs first: rank 0.
PRIORITY_RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}

cdef enum NodeState:
    NODE_WAITING = 0     # some dependency has not ended
    NODE_READY = 1       # in a heap
    NODE_RUNNING = 2     # handed out, not yet completed
    NODE_COMPLETED = 3
    NODE_UNSUCCESSFUL = 4   # failed, timeout or cancelled
    NODE_SKIPPED = 5        # a dependency ended unsuccessfully


# ---- time: RFC 3339 UTC stamps, cached per millisecond (thousands of inline tasks share one)

cdef long long stamp_cache_ms = -1
cdef str stamp_cache_text = ""


cdef double monotonic_seconds():
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec + now.tv_nsec * 1e-9


cpdef str utc_stamp():
    """Now as UTC RFC 3339 with milliseconds and a Z, e.g. 2026-11-24T05:06:32.123Z."""
    global stamp_cache_ms, stamp_cache_text
    cdef timespec now
    cdef tm parts
    cdef char text[40]
    cdef long seconds
    clock_gettime(CLOCK_REALTIME, &now)
    cdef long long ms = <long long>now.tv_sec * 1000 + now.tv_nsec // 1000000
    if ms == stamp_cache_ms:
        return stamp_cache_text
    seconds = <long>(ms // 1000)
    gmtime_r(&seconds, &parts)
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
             parts.tm_hour, parts.tm_min, parts.tm_sec, <int>(ms % 1000))
    stamp_cache_ms = ms
    stamp_cache_text = text.decode("ascii")
    return stamp_cache_text


cdef void *grow_array(void *old, size_t size) except NULL:
    cdef void *grown = PyMem_Realloc(old, size)
    if grown == NULL:
        raise MemoryError()
    return grown


# ---- the heaps

cdef inline bint heap_less(long long *key, int a, int b):
    return key[a] < key[b]


cdef void heap_push(int *heap, Py_ssize_t *length, long long *key, int node):
    cdef Py_ssize_t i = length[0], parent
    length[0] += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not heap_less(key, node, heap[parent]):
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = node


cdef int heap_pop(int *heap, Py_ssize_t *length, long long *key):
    cdef int top = heap[0], last
    cdef Py_ssize_t n, i = 0, child
    length[0] -= 1
    n = length[0]
    if n == 0:
        return top
    last = heap[n]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap_less(key, heap[child + 1], heap[child]):
            child += 1
        if not heap_less(key, heap[child], last):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = last
    return top


cdef inline Py_ssize_t checked_index(Py_ssize_t i, Py_ssize_t n) except -1:
    """i, when a node index below n (boundscheck is off: an index from outside is looked at)."""
    if not 0 <= i < n:
        raise IndexError(f"no node {i} (the scheduler has {n})")
    return i


@cython.final       # the drain calls complete() between a result's store and its row: no override runs there
cdef class Scheduler:
    """The ready set and the end states of one run of an ALT file.

    `take(k)` hands out up to k ready worker tasks, best first; `complete(i, ok)` records
    that task i ended, readies the dependents it was the last dependency of, or (when it
    did not succeed) skips everything that transitively depends on it. Not thread-safe:
    one loop drives it.
    """

    cdef readonly Py_ssize_t size
    cdef readonly Py_ssize_t running       # handed out and not completed
    cdef readonly Py_ssize_t ended         # completed, unsuccessful or skipped
    cdef readonly Py_ssize_t settled_count # completed before the run (settled)
    cdef DependencyGraph graph
    cdef list tasks
    cdef int *waiting                      # dependencies not yet completed
    cdef signed char *state
    cdef int *cause                        # skipped: the dependency that made it so
    cdef long long *key
    cdef char *inline_flag
    cdef int *inline_heap
    cdef Py_ssize_t inline_len
    # time.monotonic() when the run's clock started (0: not told): inline attempts then
    # record offset_ms, their exact start on that clock, for the timeline of a fast run.
    cdef public double clock_origin
    cdef int *worker_heap
    cdef Py_ssize_t worker_len
    # Control flow (control_flow.pxi): nodes added while the run goes on (instances), held
    # nodes (branch bodies, released by their owner), and groups: the nodes a construct
    # waits for; when a group's last node ends, its number is put on done_groups.
    cdef Py_ssize_t capacity
    cdef Py_ssize_t base_size              # nodes of the graph; later ones are added
    cdef list added_needed                 # dependents of added nodes (index - base_size)
    cdef int *group
    cdef list group_left
    cdef public list done_groups
    cdef long long default_rank

    def __cinit__(self):
        self.waiting = NULL
        self.group = NULL

    def __dealloc__(self):
        PyMem_Free(self.group)
        PyMem_Free(self.waiting)
        PyMem_Free(self.state)
        PyMem_Free(self.cause)
        PyMem_Free(self.key)
        PyMem_Free(self.inline_flag)
        PyMem_Free(self.inline_heap)
        PyMem_Free(self.worker_heap)

    def __init__(self, AltFile alt, DependencyGraph graph=None, object shuffle=None,
                 object inline_types=frozenset(), object held=None, object not_inline=None,
                 object settled=None):
        """shuffle: a random.Random whose permutation breaks ties among equal priorities
        (chaos mode); None keeps file order. inline_types: task types run by run_inline.
        held: indices that wait for release() besides their dependencies; not_inline:
        indices never run inline (control flow decides how they start). settled: indices
        of tasks that completed before this run (a resume reuses their results). Those whose
        dependencies are all settled too are completed at once, before anything is handed
        out (replaying them costs no round of the loop); the others wait for their
        dependencies like any task, and are handed out as usual."""
        cdef Py_ssize_t n = len(alt.tasks), i, k
        cdef int v, w
        cdef list stack
        cdef Task task
        cdef long long rank
        cdef object order
        if graph is None:
            graph = DependencyGraph.of(alt)
        if graph.size != n:     # its arrays are read for every task: never past their end
            raise ValueError(f"the dependency graph has {graph.size} tasks, the ALT file {n}")
        self.graph = graph
        self.tasks = alt.tasks
        self.size = n
        self.waiting = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.state = <signed char *>PyMem_Malloc(n + 1)
        self.cause = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.key = <long long *>PyMem_Malloc((n + 1) * sizeof(long long))
        self.inline_flag = <char *>PyMem_Malloc(n + 1)
        self.inline_heap = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.worker_heap = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.group = <int *>PyMem_Malloc((n + 1) * sizeof(int))
        self.capacity = n + 1
        self.base_size = n
        self.added_needed = []
        self.group_left = []
        self.done_groups = []
        if not (self.group and self.waiting and self.state and self.cause and self.key and self.inline_flag
                and self.inline_heap and self.worker_heap):
            raise MemoryError()
        order = None
        if shuffle is not None:
            order = list(range(n))
            shuffle.shuffle(order)
        cdef long long default_rank = PRIORITY_RANKS[alt.priority or DEFAULT_PRIORITY]
        self.default_rank = default_rank
        cdef bint any_inline = bool(inline_types)
        for i in range(n):
            task = task_at(alt.tasks, i)
            rank = default_rank if task.priority is None else <long long>PRIORITY_RANKS[task.priority]
            self.key[i] = (rank << 40) | (<long long>i if order is None else <long long>order[i])
            self.waiting[i] = graph.dep_start[i + 1] - graph.dep_start[i]
            self.state[i] = NODE_WAITING
            self.cause[i] = -1
            self.inline_flag[i] = any_inline and task_type_of(task) in inline_types
            self.group[i] = -1
        if held is not None:
            for i in held:
                self.waiting[checked_index(i, n)] += 1
        if not_inline is not None:
            for i in not_inline:
                self.inline_flag[checked_index(i, n)] = 0
        if settled:
            settled = frozenset(settled)
            stack = [j for j in settled if 0 <= j < n and self.waiting[j] == 0]
            while stack:
                v = stack.pop()
                self.state[v] = NODE_COMPLETED
                self.ended += 1
                self.settled_count += 1
                for k in range(graph.needed_start[v], graph.needed_start[v + 1]):
                    w = graph.needed_list[k]
                    self.waiting[w] -= 1
                    if self.waiting[w] == 0 and w in settled:
                        stack.append(w)
        for i in range(n):
            if self.waiting[i] == 0 and self.state[i] == NODE_WAITING:
                self.make_ready(<int>i)

    cdef inline void make_ready(self, int i):
        self.state[i] = NODE_READY
        if self.inline_flag[i]:
            heap_push(self.inline_heap, &self.inline_len, self.key, i)
        else:
            heap_push(self.worker_heap, &self.worker_len, self.key, i)

    @property
    def finished(self):
        """Every task has ended (completed, unsuccessful or skipped)."""
        return self.ended == self.size

    @property
    def ready_count(self):
        return self.inline_len + self.worker_len

    cpdef list take(self, Py_ssize_t limit):
        """Up to `limit` ready worker tasks (indices), best first; they become running."""
        cdef list out = []
        cdef int i
        while self.worker_len > 0 and len(out) < limit:
            i = heap_pop(self.worker_heap, &self.worker_len, self.key)
            self.state[i] = NODE_RUNNING
            self.running += 1
            out.append(i)
        return out

    cdef int take_inline(self):
        cdef int i
        if self.inline_len == 0:
            return -1
        i = heap_pop(self.inline_heap, &self.inline_len, self.key)
        self.state[i] = NODE_RUNNING
        self.running += 1
        return i

    cpdef list complete(self, int i, bint succeeded):
        """Task i (running) ended. Returns the indices it made skipped (none if it succeeded)."""
        cdef Py_ssize_t k
        cdef int w
        if i < 0 or i >= self.size or self.state[i] != NODE_RUNNING:
            raise ValueError(f"task index {i} is not running")
        self.running -= 1
        self.ended += 1
        if self.group[i] >= 0:
            self.group_ended(i)
        if succeeded:
            self.state[i] = NODE_COMPLETED
            if i >= self.base_size:
                for w in <list>self.added_needed[i - self.base_size]:
                    self.waiting[w] -= 1
                    if self.waiting[w] == 0 and self.state[w] == NODE_WAITING:
                        self.make_ready(w)
                return []
            for k in range(self.graph.needed_start[i], self.graph.needed_start[i + 1]):
                w = self.graph.needed_list[k]
                self.waiting[w] -= 1
                if self.waiting[w] == 0 and self.state[w] == NODE_WAITING:
                    self.make_ready(w)
            return []
        self.state[i] = NODE_UNSUCCESSFUL
        return self.skip_dependents(i)

    cdef inline void group_ended(self, int i):
        cdef int g = self.group[i]
        cdef Py_ssize_t left = <Py_ssize_t>self.group_left[g] - 1
        self.group_left[g] = left
        if left == 0:
            self.done_groups.append(g)

    cpdef int new_group(self):
        """A group number for the nodes a construct waits for."""
        self.group_left.append(0)
        return len(self.group_left) - 1

    cdef void grow(self, Py_ssize_t needed) except *:
        cdef Py_ssize_t cap = self.capacity
        if needed <= cap:
            return
        while cap < needed:
            cap *= 2
        self.waiting = <int *>grow_array(self.waiting, cap * sizeof(int))
        self.state = <signed char *>grow_array(self.state, cap)
        self.cause = <int *>grow_array(self.cause, cap * sizeof(int))
        self.key = <long long *>grow_array(self.key, cap * sizeof(long long))
        self.inline_flag = <char *>grow_array(self.inline_flag, cap)
        self.inline_heap = <int *>grow_array(self.inline_heap, cap * sizeof(int))
        self.worker_heap = <int *>grow_array(self.worker_heap, cap * sizeof(int))
        self.group = <int *>grow_array(self.group, cap * sizeof(int))
        self.capacity = cap

    cpdef Py_ssize_t add(self, list tasks, list dependencies, list inline, list held, int group):
        """Appends nodes (instances made while the run goes on): tasks[k] depends on the
        node indices dependencies[k] (added ones only); inline[k] runs it by run_inline;
        held[k] waits for release(). Nodes not held belong to `group`. Returns the index of
        the first one."""
        cdef Py_ssize_t first = self.size, n = len(tasks), k, i
        cdef Task task
        cdef long long rank
        cdef int d
        if not len(dependencies) == len(inline) == len(held) == n:
            raise ValueError(f"add: {n} tasks, {len(dependencies)} dependency lists, {len(inline)} inline flags, "
                             f"{len(held)} held flags")
        if not -1 <= group < len(self.group_left):
            raise ValueError(f"add: no group {group}")
        for k in range(n):      # all looked at before anything changes: a refusal leaves the scheduler whole
            task_at(tasks, k)
            for d in <list?>dependencies[k]:
                checked_index(d - self.base_size, first - self.base_size + n)    # an added node
        self.grow(first + n + 1)
        for k in range(n):      # first: a node may depend on one after it in `tasks`
            self.added_needed.append([])
        for k in range(n):
            i = first + k
            task = <Task>tasks[k]
            rank = self.default_rank if task.priority is None else <long long>PRIORITY_RANKS[task.priority]
            self.key[i] = (rank << 40) | <long long>i
            self.state[i] = NODE_WAITING
            self.cause[i] = -1
            self.inline_flag[i] = 1 if inline[k] else 0
            self.group[i] = -1 if held[k] else group
            self.waiting[i] = len(<list>dependencies[k]) + (1 if held[k] else 0)
            for d in <list>dependencies[k]:
                (<list>self.added_needed[d - self.base_size]).append(<int>i)
        cdef Py_ssize_t grouped = 0
        for k in range(n):
            if not held[k]:
                grouped += 1
        if group >= 0:
            self.group_left[group] = <Py_ssize_t>self.group_left[group] + grouped
        self.size = first + n
        for k in range(n):
            i = first + k
            if self.waiting[i] == 0:
                self.make_ready(<int>i)
        return first

    cpdef void release(self, int i, int group=-1) except *:
        """A held node may start once its dependencies have completed; it joins `group`."""
        checked_index(i, self.size)
        if group >= len(self.group_left):
            raise ValueError(f"release: no group {group}")
        if group >= 0:
            self.group[i] = group
            self.group_left[group] = <Py_ssize_t>self.group_left[group] + 1
        if self.state[i] != NODE_WAITING:
            return
        self.waiting[i] -= 1
        if self.waiting[i] == 0:
            self.make_ready(i)

    cpdef list drop(self, int i):
        """A waiting (held) node ends without running (a branch not taken); returns the
        dependents that are skipped because of it."""
        if i < 0 or i >= self.size or self.state[i] != NODE_WAITING:
            return []
        self.state[i] = NODE_SKIPPED
        self.ended += 1
        if self.group[i] >= 0:
            self.group_ended(i)
        return self.skip_dependents(i)

    cpdef list dependents(self, int i):
        checked_index(i, self.size)
        if i >= self.base_size:
            return list(<list>self.added_needed[i - self.base_size])
        return [self.graph.needed_list[k] for k in range(self.graph.needed_start[i], self.graph.needed_start[i + 1])]

    def is_waiting(self, Py_ssize_t i):
        return 0 <= i < self.size and self.state[i] == NODE_WAITING

    cdef list skip_dependents(self, int root):
        """Depth-first over dependents: every waiting one is skipped, naming who caused it."""
        cdef list skipped = []
        cdef list stack = [root]
        cdef int v, w
        cdef Py_ssize_t k
        while stack:
            v = stack.pop()
            for w in self.dependents(v):
                if self.state[w] == NODE_WAITING:
                    self.state[w] = NODE_SKIPPED
                    self.cause[w] = v
                    self.ended += 1
                    if self.group[w] >= 0:
                        self.group_ended(w)
                    skipped.append(w)
                    stack.append(w)
        return skipped

    cpdef list cancel_pending(self):
        """Every task not yet handed out ends now (interruption); returns their indices."""
        cdef list cancelled = []
        cdef Py_ssize_t i
        for i in range(self.size):
            if self.state[i] == NODE_WAITING or self.state[i] == NODE_READY:
                self.state[i] = NODE_UNSUCCESSFUL
                self.ended += 1
                if self.group[i] >= 0:
                    self.group_ended(<int>i)
                cancelled.append(i)
        self.inline_len = 0
        self.worker_len = 0
        return cancelled

    def cause_of(self, Py_ssize_t i):
        """The index of the dependency that made task i skipped, or None."""
        if i < 0 or i >= self.size or self.cause[i] < 0:
            return None
        return self.cause[i]

    cpdef Py_ssize_t run_inline(self, object results, object on_finished=None):
        """Runs every ready inline task and those they make ready, until none is left.

        Inline tasks are generic tasks: the output is a copy of their parameters and they
        cannot fail. Results go into `results`: the run's RunStatistics (recorded there),
        or a dict (task id -> TaskResult);
        on_finished(index, result) is called for each when given; a RowSink as on_finished
        (the journal's queue) has each result's row written instead (no Python call per
        task). Returns how many ran.
        """
        cdef Py_ssize_t count
        cdef bint collecting
        if self.inline_len == 0:
            return 0
        # Results hold no reference cycles; a collection triggered every 700 allocations
        # would walk the whole ALT model again and again (100k tasks: most of the time).
        collecting = PyGC_Disable()
        runner_gil_draining_add(1)      # a journal's writer spins for the hand-over meanwhile
        try:
            count = self.drain_inline(results, on_finished, &collecting)
        finally:
            runner_gil_draining_add(-1)
            if collecting:
                PyGC_Enable()
        return count

    cdef Py_ssize_t drain_inline(self, object results, object on_finished, bint *collecting) except -1:
        """run_inline's loop. `collecting`: set when another thread turned the collector on
        while the drain let go of the GIL (run_inline turns it on at the end)."""
        cdef RunStatistics recorder = results if type(results) is RunStatistics else None
        cdef dict plain = None if recorder is not None else <dict?>results
        cdef Py_ssize_t count = 0
        cdef int i
        cdef double started, elapsed_ms
        cdef Task task
        cdef TaskResult result
        cdef str stamp, completed
        cdef RowSink sink = on_finished if type(on_finished) is RowSink else None
        if sink is not None:
            sink.forget_parameters()
        while True:
            i = self.take_inline()
            if i < 0:
                return count
            task = task_at(self.tasks, i)
            started = monotonic_seconds()
            stamp = utc_stamp()
            # Typed (task_result.pxi): its output and metadata are made only if read as such.
            completed = utc_stamp()
            elapsed_ms = (monotonic_seconds() - started) * 1000.0
            result = inline_result(task, stamp, completed, elapsed_ms, self.clock_origin > 0.0,
                                   (started - self.clock_origin) * 1000.0)
            # Storing it may run Python code (a replaced value's finalizer, a key's __eq__):
            # the next row's parameters are then written from the object, not copied.
            if recorder is not None:
                if recorder.put(i, result) and sink is not None:
                    sink.forget_parameters()
            else:
                plain[task.id] = result         # a caller's dict: it may hold anything
                if sink is not None:
                    sink.forget_parameters()
            self.complete(i, True)
            count += 1
            if count % GIL_LOOK == 0:
                # A long drain runs no bytecode, so Python never hands the GIL on meanwhile:
                # the journal's writer says when it wants it (gil_handoff.pxi) and gets it here.
                hand_gil_over(count % INLINE_GIL_YIELD == 0)
                if count % JOURNAL_LOOK == 0 and sink is not None:
                    # The journal's queue: its writer, napping, looks at it now, not at the end
                    # of its nap (it takes the queue from COMMIT_RESULTS on).
                    runner_nap_wake()
                if count % INLINE_GIL_YIELD == 0:
                    # Offered to any other waiting thread too (it may take it; free otherwise).
                    with nogil:
                        pass
                if sink is not None:
                    sink.forget_parameters()        # other threads may have run meanwhile
                # Off again if another thread turned the collector on meanwhile: a collection
                # in the drain would run finalizers, Python code, between two rows (review 20).
                # It is on after the drain when it was on before or turned on meanwhile (a
                # later turn off by that thread cannot be told from the drain's own).
                if PyGC_Disable():
                    collecting[0] = True
            if sink is not None:
                sink.add_result(result)
                # The drain's reference may be the last of the result, and so of the task it
                # ran (another thread replaced both meanwhile): letting go of them runs their
                # finalizers before the next row (review 20), which then writes its
                # parameters afresh. (The result holds its task: the task alone is never the last.)
                if Py_REFCNT(result) == 1:
                    sink.forget_parameters()
            elif on_finished is not None:
                on_finished(i, result)
