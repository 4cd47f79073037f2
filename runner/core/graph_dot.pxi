# The execution graph's other readers, straight from the typed core: graph.dot's text and the
# summary drawing's level bands. At 1M tasks, making a dict per node and edge for them (and
# formatting each line in Python) cost ~10 s of the GIL; here it is a pass over the core's
# arrays. Each gives exactly what runner.last's Python code gives from the dicts
# (tests/test_graph_dot.py compares them), and None for a graph that is not the core's typed
# one (read from a file, or filled), which that code then reads as before.

from cpython.long cimport PyLong_AsDouble

cdef extern from "Python.h":
    char *PyOS_double_to_string(double value, char format_code, int precision, int flags, int *kind) except NULL


cdef TaskPass typed_source(object graph):
    """The TaskPass a core-made ExecutionGraph is read from; None for any other graph."""
    if type(graph) is not ExecutionGraph or graph.filled or graph.source is None:
        return None
    return <TaskPass>graph.source[0]


cdef inline str node_status(TaskResult result):
    """runner.last.reader.task_status of the node: "skipped" for a skipped task, else its status."""
    return u"skipped" if is_skipped(result.status) else result.status


cdef int dot_string(JsonText out, object text, object escape) except -1:
    """A DOT quoted string, as graph_drawing._dot_string (`escape`) writes it: as it is when
    it holds no backslash, quote or line break (ids and statuses), else by `escape`."""
    cdef Py_ssize_t length, i
    cdef const unsigned char *utf8
    cdef unsigned char c
    if type(text) is str:
        utf8 = <const unsigned char *>PyUnicode_AsUTF8AndSize(text, &length)
        for i in range(length):
            c = utf8[i]
            if c == 0x5C or c == 0x22 or c == 0x0A or c == 0x0D:
                break
        else:
            out.raw('"', 1)
            out.raw(<const char *>utf8, length)
            return out.raw('"', 1)
    escaped = escape(text)
    utf8 = <const unsigned char *>PyUnicode_AsUTF8AndSize(escaped, &length)
    return out.raw(<const char *>utf8, length)


cdef int label_part(JsonText out, str text, bint first) except -1:
    """One line of a node's label, inside its quotes (no quote, backslash or line break)."""
    cdef Py_ssize_t length
    cdef const char *utf8 = PyUnicode_AsUTF8AndSize(text, &length)
    if not first:
        out.raw("\\n", 2)
    return out.raw(utf8, length)


cdef int duration_text(JsonText out, object milliseconds) except -1:
    """graph_drawing._duration_text of a whole number of milliseconds: "1.50 s", "12 ms"."""
    cdef double value = PyLong_AsDouble(milliseconds)
    cdef char *text
    if milliseconds >= 1000:
        text = PyOS_double_to_string(value / 1000.0, b'f', 2, 0, NULL)
    else:
        text = PyOS_double_to_string(value, b'f', 0, 0, NULL)
    try:
        out.raw(text, strlen(text))
    finally:
        PyMem_Free(text)
    return out.raw(" s" if milliseconds >= 1000 else " ms", 2 if milliseconds >= 1000 else 3)


cdef bint plain_label_text(object text):
    """A str a label holds as it is: exact str, no character DOT or _dot_string changes."""
    cdef Py_ssize_t length, i
    cdef const unsigned char *utf8
    cdef unsigned char c
    if type(text) is not str:
        return False
    utf8 = <const unsigned char *>PyUnicode_AsUTF8AndSize(text, &length)
    for i in range(length):
        c = utf8[i]
        if c == 0x5C or c == 0x22 or c == 0x0A or c == 0x0D:
            return False
    return True


def write_graph_dot(graph, bytes head, dict colours, sink, escape, Py_ssize_t chunk=1 << 20):
    """graph_drawing.to_dot(graph, title).encode() (without critical path) handed to `sink`
    every `chunk` bytes: `head` (the digraph's first lines), a line per task, then per
    dependency, then "}\\n". None, with nothing written, when the graph is not the core's
    typed one or a task's id or status is not a plain str (runner.last then writes it)."""
    cdef TaskPass visits = typed_source(graph)
    cdef DependencyGraph dependencies
    cdef list tasks, ids, results
    cdef Py_ssize_t v, k, n
    cdef Task task
    cdef TaskResult result
    cdef JsonText out
    cdef str status
    cdef bint first
    if visits is None:
        return None
    tasks = <list>graph.source[1]
    dependencies = visits.graph
    ids, results, n = dependencies.ids, visits.results, dependencies.size
    for v in range(n):
        result = <TaskResult>results[v]
        if not plain_label_text(task_at(tasks, v).id) or not plain_label_text(node_status(result)):
            return None
    out = JsonText(chunk + 65536)
    out.raw(head, len(head))
    for v in range(n):
        task = task_at(tasks, v)
        result = <TaskResult>results[v]
        status = node_status(result)
        out.raw("  ", 2)
        dot_string(out, task.id, escape)
        out.raw(' [label="', 9)
        first = True
        if task.id:
            label_part(out, task.id, first)
            first = False
        if status:
            label_part(out, status, first)
            first = False
        milliseconds = wire_ms(result.duration())
        if milliseconds is not None:
            if not first:
                out.raw("\\n", 2)
            duration_text(out, milliseconds)
        out.raw('", fillcolor="', 14)
        colour = colours.get(status, "#ffffff")
        label_part(out, colour, True)
        out.raw('"];\n', 4)
        if out.size >= chunk:
            sink(out.take())
    for v in range(n):
        for k in range(dependencies.dep_start[v], dependencies.dep_start[v + 1]):
            out.raw("  ", 2)
            dot_string(out, ids[dependencies.dep_list[k]], escape)
            out.raw(" -> ", 4)
            dot_string(out, ids[v], escape)
            out.raw(";\n", 2)
            if out.size >= chunk:
                sink(out.take())
    out.raw("}\n", 2)
    sink(out.take())
    return True


def graph_level_bands(graph, Py_ssize_t boxes):
    """What graph_drawing.summarise counts, for `boxes` bands at most: (levels, width,
    {band: {status: tasks}}, {band: dependencies entering it from another band}); None
    when the graph is not the core's typed one (or boxes < 1: Python's own arithmetic)."""
    cdef TaskPass visits = typed_source(graph)
    cdef DependencyGraph dependencies
    cdef Py_ssize_t v, k, n, levels = 0, width
    cdef int *band
    cdef dict counts = {}, entering = {}
    cdef list results
    if visits is None or boxes < 1:
        return None
    dependencies, results = visits.graph, visits.results
    n = dependencies.size
    for v in range(n):
        if visits.levels[v] + 1 > levels:
            levels = visits.levels[v] + 1
    if levels == 0:
        levels = 1
    width = 1 + (levels - 1) // boxes     # levels per band, rounded up (levels >= 1, boxes >= 1)
    band = <int *>PyMem_Malloc((n + 1) * sizeof(int))
    if band == NULL:
        raise MemoryError()
    try:
        for v in range(n):
            band[v] = <int>(visits.levels[v] // width)
            tally = counts.get(band[v])
            if tally is None:
                tally = counts[band[v]] = {}
            status = node_status(<TaskResult>results[v])
            (<dict>tally)[status] = (<dict>tally).get(status, 0) + 1
        for v in range(n):
            for k in range(dependencies.dep_start[v], dependencies.dep_start[v + 1]):
                if band[dependencies.dep_list[k]] != band[v]:
                    entering[band[v]] = entering.get(band[v], 0) + 1
    finally:
        PyMem_Free(band)
    return levels, width, counts, entering
