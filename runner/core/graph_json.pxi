# The execution graph's JSON, written straight from the typed core. At 100k tasks, making
# 250k dicts for the nodes and edges and then serialising them cost more than all the task
# results; here each node and edge goes from the core's values to JSON text in one step.

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, _PyBytes_Resize
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.string cimport memcpy, memset, strlen
from libc.stdio cimport snprintf
cimport cython

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL
    bint PyUnicode_IS_COMPACT_ASCII(object text)
    void *PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* memcpy of a few bytes without a call: the journal's rows copy ids, stamps and
       parameters of 5-40 bytes each, and a call to memcpy cost more than the copy (perf:
       ~7 ns a copy, four a row). Fixed-size moves that overlap inside the range; every load
       before any store. Constant lengths fold to one or two moves. */
    static inline void runner_copy(char *to, const char *from, Py_ssize_t n) {
        if (n <= 16) {
            if (n >= 8) {
                uint64_t a, b;
                memcpy(&a, from, 8); memcpy(&b, from + n - 8, 8);
                memcpy(to, &a, 8); memcpy(to + n - 8, &b, 8);
            } else if (n >= 4) {
                uint32_t a, b;
                memcpy(&a, from, 4); memcpy(&b, from + n - 4, 4);
                memcpy(to, &a, 4); memcpy(to + n - 4, &b, 4);
            } else if (n > 0) {
                char a = from[0], b = from[n >> 1], c = from[n - 1];
                to[0] = a; to[n >> 1] = b; to[n - 1] = c;
            }
        } else if (n <= 32) {
            uint64_t a, b, c, d;
            memcpy(&a, from, 8); memcpy(&b, from + 8, 8);
            memcpy(&c, from + n - 16, 8); memcpy(&d, from + n - 8, 8);
            memcpy(to, &a, 8); memcpy(to + 8, &b, 8);
            memcpy(to + n - 16, &c, 8); memcpy(to + n - 8, &d, 8);
        } else {
            memcpy(to, from, (size_t)n);
        }
    }
    """
    void runner_copy(char *to, const char *source, Py_ssize_t n) nogil


# Bytes a JSON string cannot hold as they are (control characters, quote, backslash): a
# string holding one is left to orjson's escaping.
cdef unsigned char NEEDS_ESCAPE[256]
memset(NEEDS_ESCAPE, 0, sizeof(NEEDS_ESCAPE))
for _byte in range(0x20):
    NEEDS_ESCAPE[_byte] = 1
NEEDS_ESCAPE[0x22] = 1
NEEDS_ESCAPE[0x5C] = 1


@cython.final
cdef class JsonText:
    """JSON text written straight into a bytes object (no copy at the end); every value is
    written exactly as orjson writes it."""
    cdef object buffer          # a bytes object being filled, resized as it grows; None once spent or lost
    cdef char *data
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity
    cdef int growth             # grows by capacity >> growth: 1 (half) by default
    # Grows by a copy, so that growing without the memory for it leaves the text as it was
    # (resizing frees it then): for text kept across calls (the journal's RowSink).
    cdef bint keep

    def __cinit__(self, Py_ssize_t capacity=65536, int growth=1):
        self.buffer = PyBytes_FromStringAndSize(NULL, capacity)
        self.data = PyBytes_AS_STRING(self.buffer)
        self.capacity = capacity
        self.growth = growth

    cdef inline int reserve(self, Py_ssize_t extra) except -1:
        """Room for `extra` more bytes: a comparison, inline, unless the text must grow."""
        if self.size + extra <= self.capacity:
            return 0
        return self.grow(extra)

    cdef int grow(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t wanted = self.size + extra, capacity = self.capacity
        cdef PyObject *grown
        cdef bytes copy
        if wanted <= capacity:
            return 0
        if self.buffer is None:
            raise MemoryError("the text was lost: there was no memory to grow it")
        while capacity < wanted:
            capacity += (capacity >> self.growth) + 4096
        if self.keep:
            copy = PyBytes_FromStringAndSize(NULL, capacity)      # MemoryError: the text as it was
            memcpy(PyBytes_AS_STRING(copy), self.data, self.size)
            self.buffer = copy
            self.data = PyBytes_AS_STRING(copy)
            self.capacity = capacity
            return 0
        grown = <PyObject *>self.buffer
        Py_INCREF(self.buffer)          # _PyBytes_Resize takes the reference it is given
        self.buffer = None
        if _PyBytes_Resize(&grown, capacity) < 0:
            self.data = NULL            # freed with the text: nothing is written there again
            self.capacity = self.size = 0
            raise MemoryError()
        self.buffer = <object>grown
        Py_DECREF(self.buffer)
        self.data = PyBytes_AS_STRING(self.buffer)
        self.capacity = capacity
        return 0

    cdef inline int raw(self, const char *text, Py_ssize_t length) except -1:
        if self.size + length > self.capacity:
            self.grow(length)
        runner_copy(self.data + self.size, text, length)
        self.size += length
        return 0

    cdef int encoded(self, object value) except -1:
        """Any JSON value, by orjson itself (strings needing escapes, odd types)."""
        cdef bytes text = orjson.dumps(value)
        return self.raw(text, len(text))

    cdef int string(self, object value) except -1:
        """A str as orjson writes it: UTF-8 as is; quotes, backslashes and control
        characters (rare in ids and stamps) are left to orjson's own escaping."""
        cdef Py_ssize_t length, i
        cdef const unsigned char *utf8
        if type(value) is not str:
            return self.encoded(value)
        if PyUnicode_IS_COMPACT_ASCII(value):      # its bytes are its UTF-8 (most ids, every stamp)
            utf8 = <const unsigned char *>PyUnicode_DATA(value)
            length = PyUnicode_GET_LENGTH(value)
        else:
            try:
                utf8 = <const unsigned char *>PyUnicode_AsUTF8AndSize(value, &length)
            except UnicodeError:
                return self.encoded(value)      # a lone surrogate: orjson's error, worded as elsewhere
        for i in range(length):
            if NEEDS_ESCAPE[utf8[i]]:
                return self.encoded(value)
        self.reserve(length + 2)
        self.data[self.size] = 0x22
        runner_copy(self.data + self.size + 1, <const char *>utf8, length)
        self.data[self.size + length + 1] = 0x22
        self.size += length + 2
        return 0

    @cython.cdivision(True)
    cdef int integer(self, object value) except -1:
        """None or a Python int within 0..2^64-1 (what wire_ms and levels give)."""
        cdef char digits[24]
        cdef int start = 24
        cdef unsigned long long number
        if value is None:
            return self.raw("null", 4)
        if type(value) is not int:
            return self.encoded(value)
        number = <unsigned long long>value
        while True:             # the digits from the last: no snprintf per number
            start -= 1
            digits[start] = <char>(48 + number % 10)
            number //= 10
            if number == 0:
                break
        return self.raw(digits + start, 24 - start)

    cdef inline int text(self, const char *text) except -1:
        """A C string literal as it is."""
        return self.raw(text, strlen(text))

    cdef bytes take(self):
        """A copy of the text written so far; the JsonText starts empty again (a chunk of a stream)."""
        cdef bytes chunk = PyBytes_FromStringAndSize(self.data, self.size)
        self.size = 0
        return chunk

    cdef bytes value(self):
        """The text written; the buffer is handed over (the JsonText is spent)."""
        if self.buffer is None:
            raise MemoryError("the text was lost: there was no memory to grow it")
        cdef PyObject *done = <PyObject *>self.buffer
        Py_INCREF(self.buffer)
        self.buffer = None
        if _PyBytes_Resize(&done, self.size) < 0:
            raise MemoryError()
        result = <bytes>done
        Py_DECREF(result)
        self.data = NULL
        self.capacity = self.size = 0
        return result

    cdef bytes hand_over(self):
        """The buffer as it is, longer than the text (size) by what was not written: no
        resize, which could fail and lose the text. The JsonText is spent."""
        cdef bytes buffer = self.buffer
        self.buffer = None
        self.data = NULL
        self.capacity = self.size = 0
        return buffer


class NotReadYet:
    """What the graph's entries hold until it is read: code that looks at a dict's storage
    without calling its methods (orjson without runner.last_json) fails loudly
    on it instead of writing an empty graph."""

    def __repr__(self):
        return "<execution graph entry, read on first use>"


NOT_READ_YET = NotReadYet()


class ExecutionGraph(dict):
    """The record's execution_graph: {"nodes": [...], "edges": [...]} as a dict, made from
    its JSON text on first use; the text itself is made by the core from the typed results
    when first asked for (`json`), or written straight into a streamed last.json. The LAST
    writer puts the text into the file as it is (orjson.Fragment, see last_json); treat
    the dict as read-only (replace record["execution_graph"] with a plain dict to change
    the graph)."""

    def __init__(self, json=b'{"nodes":[],"edges":[]}', source=None):
        dict.__init__(self, nodes=NOT_READ_YET, edges=NOT_READ_YET)
        self.text = json if source is None else None
        self.source = source        # (TaskPass, tasks) the text is made from
        self.filled = False

    @property
    def json(self):
        text = self.text
        if text is None:
            visits, tasks = self.source
            text = self.text = (<TaskPass>visits).graph_json(tasks)
        return text

    # Reading only what is needed: a drawing of 100k tasks needs every node once, not a
    # list of 100k dicts (nor their JSON text parsed back) held at once.

    def node_count(self):
        if self.source is not None and not self.filled:
            return (<TaskPass>self.source[0]).graph.size
        return len(self["nodes"])

    def each_node(self):
        """The nodes, as the "nodes" list has them, made one at a time."""
        if self.source is None or self.filled:
            yield from self["nodes"]
            return
        visits, tasks = self.source
        for v in range((<TaskPass>visits).graph.size):
            yield (<TaskPass>visits).node(v, <list>tasks)

    def each_edge(self):
        """The edges, as the "edges" list has them, made one at a time."""
        if self.source is None or self.filled:
            yield from self["edges"]
            return
        cdef TaskPass visits = <TaskPass>self.source[0]
        cdef DependencyGraph graph = visits.graph
        cdef list ids = graph.ids
        cdef Py_ssize_t v, k
        for v in range(graph.size):
            for k in range(graph.dep_start[v], graph.dep_start[v + 1]):
                yield {"source": ids[graph.dep_list[k]], "target": ids[v], "dependency_type": "required"}

    def sources_of(self, wanted):
        """target id -> the ids of its sources, for the targets in `wanted`, as the edges
        give them (each_edge, with the edges' order), from the typed graph: the edges of
        the others are never made. None once the graph is a dict (read its edges)."""
        if self.source is None or self.filled:
            return None
        cdef DependencyGraph graph = (<TaskPass>self.source[0]).graph
        cdef list ids = graph.ids
        cdef Py_ssize_t v, k
        cdef dict out = {}
        for v in range(graph.size):
            if graph.dep_start[v + 1] > graph.dep_start[v] and ids[v] in wanted:
                out[ids[v]] = [ids[graph.dep_list[k]] for k in range(graph.dep_start[v], graph.dep_start[v + 1])]
        return out

    def descriptions_of(self, wanted):
        """node id -> its description, for the nodes in `wanted` (each_node's), from the
        typed graph; None once the graph is a dict (read its nodes)."""
        if self.source is None or self.filled:
            return None
        cdef list tasks = self.source[1]
        cdef Task task
        cdef Py_ssize_t i
        cdef dict out = {}
        for i in range(len(tasks)):
            task = task_at(tasks, i)
            if task.id in wanted:
                out[task.id] = task.description
        return out

    def fill(self):
        # Marked filled only once filled: two threads may both read the JSON (the same
        # content), but none ever sees the placeholders through these methods.
        if not self.filled:
            dict.update(self, orjson.loads(self.json))
            self.filled = True
        return self

    def __getitem__(self, key):
        return dict.__getitem__(self.fill(), key)

    def get(self, key, default=None):
        return dict.get(self.fill(), key, default)

    def __contains__(self, key):
        return dict.__contains__(self.fill(), key)

    def __iter__(self):
        return dict.__iter__(self.fill())

    def __len__(self):
        return dict.__len__(self.fill())

    def keys(self):
        return dict.keys(self.fill())

    def values(self):
        return dict.values(self.fill())

    def items(self):
        return dict.items(self.fill())

    def copy(self):
        return dict(self.fill())

    def __eq__(self, other):
        return dict.__eq__(self.fill(), other)

    def __ne__(self, other):
        return dict.__ne__(self.fill(), other)

    def __repr__(self):
        return dict.__repr__(self.fill())

    def __reduce__(self):
        return (dict, (dict(self.fill()),))

    __hash__ = None


cdef object FRAGMENT = orjson.Fragment


cpdef object last_json_value(object value):
    """orjson's default for a LAST record: the graph's own JSON; other subclasses of dict,
    list, str and int (which OPT_PASSTHROUGH_SUBCLASS hands here) as their base type."""
    if type(value) is ExecutionGraph:
        return FRAGMENT((<object>value).json)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


cdef object DUMPS = orjson.dumps
cdef object PASSTHROUGH = orjson.OPT_PASSTHROUGH_SUBCLASS
cdef object U64_TOP = 2 ** 64 - 1


# Containers written here, not by orjson, down to this many levels (then orjson writes the
# rest: a result is at most 128 levels deep, so orjson's own limit of 255 is never nearer).
cdef int DIRECT_DEPTH = 32


cdef int record_value(JsonText out, object value, int depth=0) except -1:
    """Any value of a LAST record as orjson.dumps(..., default=last_json_value,
    option=OPT_PASSTHROUGH_SUBCLASS) writes it: dicts (with str keys), lists and scalars of
    the exact JSON types directly (a call of orjson per value cost more than the value),
    floats and anything else by orjson itself."""
    cdef type kind = type(value)
    cdef Py_ssize_t mark
    cdef bint first
    if value is None:
        return out.raw("null", 4)
    if kind is str:
        return out.string(value)
    if value is True:
        return out.raw("true", 4)
    if value is False:
        return out.raw("false", 5)
    if kind is int and 0 <= value <= U64_TOP:
        return out.integer(value)
    if kind is dict and depth < DIRECT_DEPTH:
        mark = out.size
        out.raw("{", 1)
        first = True
        for key, item in (<dict>value).items():
            if type(key) is not str:
                out.size = mark         # orjson writes (or refuses) the whole object
                return orjson_value(out, value)
            if not first:
                out.raw(",", 1)
            first = False
            out.string(key)
            out.raw(":", 1)
            record_value(out, item, depth + 1)
        return out.raw("}", 1)
    if kind is list and depth < DIRECT_DEPTH:
        out.raw("[", 1)
        first = True
        # Iterated, not indexed up to a length read once: writing an item can run a subclass's
        # code (orjson's default), which may shrink this list, and indexes are not checked.
        for item in <list>value:
            if not first:
                out.raw(",", 1)
            first = False
            record_value(out, item, depth + 1)
        return out.raw("]", 1)
    return orjson_value(out, value)


cdef int orjson_value(JsonText out, object value) except -1:
    cdef bytes text
    if type(value) is float:
        text = DUMPS(value)         # the same text, without the options to parse
    else:
        text = DUMPS(value, default=last_json_value, option=PASSTHROUGH)
    return out.raw(text, len(text))


cdef int record_key(JsonText out, object key) except -1:
    """An object's member name, as orjson writes it (a str subclass as its text)."""
    if type(key) is str:
        return out.string(key)
    if isinstance(key, str):
        return out.string(str(key))
    raise orjson.JSONEncodeError("Dict key must be str")
