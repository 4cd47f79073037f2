# Where each task of a JSON ALT document is in its text, so the tasks can be parsed one at a
# time: each task's JSON tree is freed as soon as its Task is built, instead of the whole
# document's tree (~800 bytes a task) living beside the model until the end of the parse
# (and leaving the heap fragmented after it). scan_json_text (alt_limits.pxi) finds the
# places in the pass it makes anyway; alt_parser.pxi's streamed build reads them.

from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free


cdef class TaskSpans:
    """The elements of the root object's "tasks" array as byte offsets into the JSON text.

    Usable only when the text has exactly one such array, closed, with at least one
    element; anything else (no array, two "tasks" keys, an unterminated string...) is
    left to the parse of the whole document, which reports it as it always did.
    """

    cdef Py_ssize_t *starts       # element k starts at starts[k] (just after its '[' or ',')
    cdef Py_ssize_t count
    cdef Py_ssize_t capacity
    cdef Py_ssize_t open          # offset of the array's '[' (-1: none found)
    cdef Py_ssize_t close         # offset of its ']' (-1: not closed)
    cdef Py_ssize_t keys          # "tasks" keys seen in the root object

    def __cinit__(self):
        self.starts = NULL
        self.count = self.capacity = self.keys = 0
        self.open = self.close = -1

    def __dealloc__(self):
        PyMem_Free(self.starts)

    cdef int push(self, Py_ssize_t start) except -1:
        cdef Py_ssize_t *grown
        if self.count == self.capacity:
            self.capacity = 1024 if self.capacity == 0 else 2 * self.capacity
            grown = <Py_ssize_t *>PyMem_Realloc(self.starts, self.capacity * sizeof(Py_ssize_t))
            if grown == NULL:
                raise MemoryError()
            self.starts = grown
        self.starts[self.count] = start
        self.count += 1
        return 0

    cdef bint usable(self):
        return self.keys == 1 and self.open >= 0 and self.close > self.open and self.count > 0

    cdef Py_ssize_t end(self, Py_ssize_t k):
        """Where element k ends (its ',' or the array's ']', exclusive)."""
        return self.starts[k + 1] - 1 if k + 1 < self.count else self.close


cdef class TaskTexts:
    """The tasks of one JSON document, each parsed from its own place in the text when asked."""

    cdef TaskSpans spans
    cdef object view              # a memoryview of the text: slices of it are not copies
    cdef Py_ssize_t members       # object members in the tasks parsed so far (duplicate keys check)
    # Each dependency's task index as found while building (-1: not built yet), in file
    # order: resolve_dependencies reads them instead of looking each id up a second time.
    cdef int *targets
    cdef Py_ssize_t target_count, target_capacity

    def __cinit__(self, TaskSpans spans, bytes text):
        self.spans = spans
        self.view = memoryview(text)
        self.members = 0
        self.targets = NULL
        self.target_count = self.target_capacity = 0

    def __dealloc__(self):
        PyMem_Free(self.targets)

    cdef int remember(self, int target) except -1:
        cdef int *grown
        if self.target_count == self.target_capacity:
            self.target_capacity = 1024 if self.target_capacity == 0 else 2 * self.target_capacity
            grown = <int *>PyMem_Realloc(self.targets, self.target_capacity * sizeof(int))
            if grown == NULL:
                raise MemoryError()
            self.targets = grown
        self.targets[self.target_count] = target
        self.target_count += 1
        return 0

    cdef object load(self, Py_ssize_t k):
        """Task k's JSON value; orjson.JSONDecodeError if its text is not JSON."""
        raw = orjson.loads(self.view[self.spans.starts[k]:self.spans.end(k)])
        kind = type(raw)
        if kind is dict or kind is list:
            self.members += count_members(raw, 0)
        return raw
