# The journal's task results: how a TaskResult is written as a row of a task_results line,
# and read back into exactly what TaskResult.to_dict() gave (runner/execution/journal.py).
#
# Two forms of row, each named by the "fields" of its line:
# - full (JOURNAL_ROW_FIELDS): any result, every field of to_dict();
# - inline (INLINE_ROW_FIELDS): an inline (generic) result, whose status, error, metadata
#   skeleton and second copy of its stamp and duration follow from being one (~100 bytes a
#   row instead of ~345). started_at null: the same as the row before it in the line;
#   completed_at null: the same as its started_at; offset_ms null: none; control: only
#   when the task has one (the row is then one item longer).

from libc.math cimport isinf

# Kept beside each other so the forms change together; journal_row_dict reverses them.
JOURNAL_ROW_FIELDS = ("task_id", "status", "output", "error", "started_at", "completed_at", "duration_ms",
                      "metadata", "execution_id", "extra")
# output third as in a full row, so a reader of rows finds it at the same place in both.
INLINE_ROW_FIELDS = ("task_id", "started_at", "output", "completed_at", "duration_ms", "offset_ms", "control")
cdef list FULL_FIELDS_READ = list(JOURNAL_ROW_FIELDS)      # as orjson.loads gives them back
cdef list INLINE_FIELDS_READ = list(INLINE_ROW_FIELDS)


cdef tuple journal_row(TaskResult r):
    """r as a tuple of JOURNAL_ROW_FIELDS."""
    return (r.task_id, r.status, r.transient_output(), r.error, r.started_at, r.completed_at, r.duration(),
            r.transient_metadata(), r.execution_id, r.stored_extra or None)


cdef bytes JOURNAL_LINE_HEAD = orjson.dumps({"type": "task_results", "fields": JOURNAL_ROW_FIELDS})[:-1] + b',"rows":['
cdef bytes INLINE_LINE_HEAD = orjson.dumps({"type": "task_results", "fields": INLINE_ROW_FIELDS})[:-1] + b',"rows":['


cdef int write_full_row(JsonText out, TaskResult r) except -1:
    """r's full row: as orjson (default=str) writes journal_row(r); an inline result's from
    its typed fields when they hold exact JSON types only (and it was given no extra field)."""
    cdef Py_ssize_t mark
    cdef bytes text
    if r.typed_inline() and not r.stored_extra:
        mark = out.size
        if write_inline_row(out, r) == 0:
            return 0
        out.size = mark         # orjson writes this one
    text = DUMPS(journal_row(r), default=str)
    return out.raw(text, len(text))


cpdef bytes journal_results_line(list results, list rows=None):
    """A task_results line of full rows only (its newline included) of `results`
    (TaskResults), then of `rows` (tuples of JOURNAL_ROW_FIELDS): the bytes orjson.dumps
    writes for {"type": "task_results", "fields": JOURNAL_ROW_FIELDS, "rows": [each as a
    tuple]} with default=str and OPT_APPEND_NEWLINE, written in one buffer. (The journal
    writes journal_text: inline results in the short form.)"""
    cdef JsonText out = JsonText(len(JOURNAL_LINE_HEAD) + 256 * (len(results) + (len(rows) if rows else 0)) + 64)
    cdef bint first = True
    cdef bytes text
    out.raw(JOURNAL_LINE_HEAD, len(JOURNAL_LINE_HEAD))
    for item in results:
        if not first:
            out.raw(",", 1)
        first = False
        write_full_row(out, <TaskResult?>item)
    for row in rows or ():
        if not first:
            out.raw(",", 1)
        first = False
        text = DUMPS(row, default=str)
        out.raw(text, len(text))
    out.raw("]}\n", 3)
    return out.value()


cpdef TextWithDoubles journal_text(list results, list rows=None):
    """The journal's task_results lines (each with its newline) of `results` (TaskResults),
    then of `rows` (tuples of JOURNAL_ROW_FIELDS), in their order: each run of inline results
    in a line of INLINE_ROW_FIELDS rows, written from their typed fields (no dict), each run
    of others in a line of full rows (journal_results_line's bytes). An inline result whose
    parameters or control hold anything but exact JSON types (exact_json) has a full row,
    which orjson writes as it always did. Its short rows' doubles are put in when the text
    is rendered (write_synced, joined): without the GIL. Empty when there is nothing."""
    cdef JsonText out = JsonText(256 + 128 * (len(results) + (len(rows) if rows else 0)))
    cdef int open_line = 0          # the line being written: 0 none, 1 inline rows, 2 full rows
    cdef TaskResult r
    cdef Py_ssize_t mark
    cdef str previous = None        # the started_at of the inline line's last row
    cdef ShortRows shared = ShortRows()
    cdef bytes text
    for item in results:
        r = <TaskResult?>item
        if r.typed_inline():
            mark = out.size
            if open_line == 1:
                out.raw(",", 1)
            else:
                if open_line:
                    out.raw("]}\n", 3)
                out.raw(INLINE_LINE_HEAD, len(INLINE_LINE_HEAD))
            if write_short_row(out, r, previous if open_line == 1 else None, shared) == 0:
                open_line = 1
                previous = r.started_at
                continue
            out.size = mark         # a full row (the line as it was)
            shared.doubles.drop_after(mark)
        open_line = full_row_place(out, open_line)
        write_full_row(out, r)
        shared.parameters = None        # orjson's default (str) may have run a subclass's code
    for row in rows or ():
        open_line = full_row_place(out, open_line)
        text = DUMPS(row, default=str)
        out.raw(text, len(text))
    if open_line:
        out.raw("]}\n", 3)
    shared.doubles.set_text(out.value())
    return shared.doubles


cpdef bytes journal_lines(list results, list rows=None):
    """journal_text's lines, as bytes (b"" when there is nothing)."""
    return journal_text(results, rows).joined()


cdef int full_row_place(JsonText out, int open_line) except -1:
    """Where a full row goes: after a comma in a line of full rows, or in a new one."""
    if open_line == 2:
        out.raw(",", 1)
        return 2
    if open_line:
        out.raw("]}\n", 3)
    out.raw(JOURNAL_LINE_HEAD, len(JOURNAL_LINE_HEAD))
    return 2


@cython.final
cdef class ShortRows:
    """What the short rows of one journal_text call share, so that each costs less:
    - the TextWithDoubles their doubles (duration_ms, offset_ms) go to, whose text is made
      without the GIL (a call of orjson's for them all took half of a row's time);
    - where in the buffer the last parameters object written was: tasks share one (equal
      small parameters are kept once per file, a loop's instances share their template's),
      whose text is then copied, not written again. The core never changes a task's
      parameters, and no Python code runs while the rows are written."""
    cdef TextWithDoubles doubles
    cdef object parameters
    cdef Py_ssize_t start, length

    def __cinit__(self):
        self.doubles = TextWithDoubles()


cdef extern from "Python.h":
    int PyGC_Enable()
    int PyGC_Disable()


@cython.final
cdef class RowSink:
    """The journal's queue of task results, inline ones as their rows: the run's drain of
    inline tasks (Scheduler.run_inline) writes each result's short row here as it ends it,
    while the result is still in its core's cache (the writer's thread made the same rows
    2-3x slower, results made on the other core, holding the GIL the drain then waited for).

    `queue` is the journal's list, in the order results ended: TaskResults whose row the
    writer makes (results other than inline ones, add_other(); an inline one whose row
    cannot be short) and, between them, the lines of rows written here, each closed (onto
    the list) when another result comes after it or the writer takes them (close()).

    Nothing here runs Python code or starts a garbage collection (the collector is paused
    while a line's next buffer is made), so the drain and the writer, whose turns the GIL
    orders, never see a line half-closed; and a lack of memory loses no row (the text grows
    by a copy)."""
    cdef JsonText out
    cdef ShortRows shared
    cdef str previous               # the started_at of the open line's last row
    cdef readonly Py_ssize_t rows   # the rows of the open line
    cdef readonly Py_ssize_t queued     # results queued since close(), as rows or as they are
    cdef list queue

    def __cinit__(self, list queue not None):
        self.queue = queue
        self.fresh(65536)

    cdef int fresh(self, Py_ssize_t capacity) except -1:
        cdef JsonText out = JsonText(capacity)
        cdef ShortRows shared = ShortRows()
        out.keep = True
        self.out, self.shared, self.previous, self.rows = out, shared, None, 0
        return 0

    cdef void forget_parameters(self):
        """The parameters' text written last is not copied for the next row: other code may
        have run since (the drain let go of the GIL), and a task's parameters are a dict."""
        self.shared.parameters = None

    cdef int add_result(self, TaskResult r) except -1:
        """r's row written in the open line; r queued for the writer instead when its row
        cannot be short, or when there is no memory to write it (the row as it was cut)."""
        cdef Py_ssize_t mark = self.out.size
        if r.typed_inline():
            try:
                if self.rows:
                    self.out.raw(",", 1)
                else:
                    self.out.raw(INLINE_LINE_HEAD, len(INLINE_LINE_HEAD))
                if write_short_row(self.out, r, self.previous, self.shared) == 0:
                    self.out.reserve(3)         # the line's end: closing it never grows the text
                    self.rows += 1
                    self.queued += 1
                    self.previous = r.started_at
                    return 0
            except MemoryError:
                pass
            self.out.size = mark
            self.shared.doubles.drop_after(mark)
            self.forget_parameters()        # it may be the cut row's, whose text went with it
        try:
            self.close_line()
        except MemoryError:
            pass        # the open line stays, to come after r: out of order, but nothing lost
        self.queue.append(r)
        self.queued += 1
        return 0

    def add(self, TaskResult result not None):
        """Queues an inline `result`, its row made now (a caller other than the drain)."""
        self.forget_parameters()
        self.add_result(result)

    def add_other(self, result):
        """Queues a result the writer writes (journal_text), after the rows written so far."""
        try:
            self.close_line()
        except MemoryError:
            pass        # the open line stays, to come after it: out of order, but nothing lost
        self.queue.append(result)
        self.queued += 1

    cdef int close_line(self) except -1:
        """The open line, ended, onto the queue as a TextWithDoubles (which write_synced
        takes); a new one is begun. Without the memory for the new one, the open line stays."""
        cdef JsonText out
        cdef ShortRows shared
        cdef TextWithDoubles line
        cdef ShortRows spent
        cdef Py_ssize_t size
        if self.rows == 0:
            return 0
        size = self.out.size + 3
        # Made first: what fails for want of memory fails before anything changed. The next
        # line about as long as this one (made without growing), within 4 KB..16 MB.
        # The collector paused: a collection their making started could run finalizers, and
        # so the drain, in the middle of this (marking them no_gc instead slowed the LAST
        # file's JSON by ~10%).
        collecting = PyGC_Disable()
        try:
            try:
                out = JsonText(min(max(4096, size + (size >> 2)), 1 << 24))
            except MemoryError:
                out = JsonText(4096)
            shared = ShortRows()
        finally:
            if collecting:
                PyGC_Enable()
        out.keep = True
        # The spent rows' state is freed on return, once the sink is whole again: the last
        # reference to the parameters they shared may go with it, whose values' finalizers
        # run Python code that may use the sink (review 15).
        spent = self.shared
        line = spent.doubles
        self.queue.append(line)
        # From here nothing is made: nothing can fail, nor start a collection.
        self.out.raw("]}\n", 3)           # reserved by add_result
        line.set_text_sized(self.out.hand_over(), size)    # no resize
        self.out, self.shared, self.previous, self.rows = out, shared, None, 0
        return 0

    def close(self):
        """Closes the open line onto the queue, for the writer to take the queue whole; returns
        how many results were queued since the last close(). Without the memory to close
        it, the open line stays for the next close()."""
        cdef Py_ssize_t queued
        try:
            self.close_line()
        except MemoryError:
            pass
        queued, self.queued = self.queued, 0
        return queued


cdef int write_short_row(JsonText out, TaskResult r, str previous, ShortRows shared) except -2:
    """r's row of INLINE_ROW_FIELDS (`previous`: the started_at of the row before it in the
    line, None for a line's first); -1 (the row unfinished) when anything in it is not
    exact JSON (exact_json), or when what it leaves out would not read back as written:
    extra fields given to the result, an offset orjson would write as null. The common row
    costs a few copies: an id and stamps of plain ASCII (JsonText.string), stamps the same
    objects as the row's or the row before's (utc_stamp's cache), the parameters' text of
    the row before copied."""
    cdef object parameters = r.ran._parameters
    cdef object started = r.started_at, completed = r.completed_at
    cdef Py_ssize_t start, length
    # Exact str: comparing them runs no code of a subclass's.
    if r.stored_extra or isinf(r.offset_ms) or type(started) is not str or type(completed) is not str:
        return -1
    out.raw("[", 1)
    if exact_json(out, r.task_id, 1) < 0:
        return -1
    out.raw(",", 1)
    if previous is not None and (started is previous or previous == started):
        out.raw("null", 4)
    elif exact_json(out, started, 1) < 0:
        return -1
    out.raw(",", 1)
    start = out.size
    if parameters is shared.parameters:
        out.reserve(shared.length)      # before the copy: growing moves the buffer
        out.raw(out.data + shared.start, shared.length)
    elif exact_json(out, parameters, 1) < 0:
        return -1
    length = out.size - start
    out.raw(",", 1)
    if completed is started or completed == started:
        out.raw("null", 4)
    elif exact_json(out, completed, 1) < 0:
        return -1
    out.raw(",", 1)
    shared.doubles.put(out.size, r.elapsed_ms)
    out.raw(",", 1)
    shared.doubles.put(out.size, r.offset_ms)       # NaN (none): null
    if r.ran.control is not None:
        out.raw(",", 1)
        if exact_json(out, r.ran.control, 0) < 0:
            return -1
    out.raw("]", 1)
    if parameters is not shared.parameters:
        # Kept once the row is whole: a row given up is cut from the buffer, its text with it.
        shared.parameters, shared.start, shared.length = parameters, start, length
    return 0


def journal_row_dict(row):
    """A full journal row back to exactly what TaskResult.to_dict() gave."""
    out = dict(zip(JOURNAL_ROW_FIELDS[:8], row[:8]))
    if row[8] is not None:
        out["execution_id"] = row[8]
    if row[9]:
        out.update(row[9])
    return out


cpdef list journal_row_dicts(object fields, object rows):
    """The results of a task_results line (its "fields" and "rows" as read), each as
    TaskResult.to_dict() gave it; a row not a list of its form's length is left out. None
    when `fields` names neither form."""
    cdef list out = []
    cdef list items
    cdef dict attempt, metadata
    cdef object started, previous = None, completed
    cdef Py_ssize_t length
    if type(rows) is not list:
        rows = ()
    if fields == FULL_FIELDS_READ:
        for row in rows:
            if type(row) is list and len(<list>row) == 10:
                out.append(journal_row_dict(row))
        return out
    if fields != INLINE_FIELDS_READ:
        return None
    for row in rows:
        if type(row) is not list:
            continue
        items = <list>row
        length = len(items)
        if length != 6 and length != 7:
            continue
        started = items[1]
        if started is None:
            started = previous
        previous = started
        completed = items[3]
        if completed is None:
            completed = started
        attempt = {"number": 1, "started_at": started, "duration_ms": items[4], "outcome": "completed",
                   "error": None, "fault": None}
        if items[5] is not None:
            attempt["offset_ms"] = items[5]
        metadata = {"task_type": "generic", "attempts": [attempt]}
        if length == 7:
            metadata["control"] = items[6]
        out.append({"task_id": items[0], "status": "completed", "output": items[2], "error": None,
                    "started_at": started, "completed_at": completed, "duration_ms": items[4],
                    "metadata": metadata})
    return out


# ---- rows written from typed fields

cdef int write_inline_row(JsonText out, TaskResult r) except -2:
    """r's journal row as orjson writes journal_row(r); -1 (the row unfinished) when its
    parameters or control hold anything but exact JSON types (exact_json)."""
    cdef bytes duration
    out.raw("[", 1)
    if exact_json(out, r.task_id, 1) < 0:
        return -1
    out.raw(',"completed",', 13)
    if exact_json(out, r.ran._parameters, 1) < 0:
        return -1
    out.raw(",null,", 6)
    record_value(out, r.started_at)
    out.raw(",", 1)
    record_value(out, r.completed_at)
    out.raw(",", 1)
    duration = DUMPS(r.elapsed_ms)
    out.raw(duration, len(duration))
    out.raw(",", 1)
    if write_inline_metadata(out, r, duration, True) < 0:
        return -1
    out.raw(",null,null]", 11)
    return 0


# orjson refuses deeper nesting than this (its limit is 255): left to it, to refuse as it does.
cdef int EXACT_DEPTH = 250
cdef object I64_MIN = -(2 ** 63)


cdef int exact_json(JsonText out, object value, int depth) except -2:
    """`value` as orjson.dumps writes it, when it is made of the exact JSON types only (str,
    int within 64 bits, float, bool, None, dict with str keys, list); else -1 (what was
    written is then to be dropped). orjson writes those types the same whatever its options,
    so the text is the journal's, whose odd values orjson turns into text (default=str)."""
    cdef type kind = type(value)
    cdef bint first
    if value is None:
        return out.raw("null", 4)
    if kind is str:
        if has_lone_surrogate(<str>value):
            return -1
        return out.string(value)
    if value is True:
        return out.raw("true", 4)
    if value is False:
        return out.raw("false", 5)
    if kind is int:
        if 0 <= value <= U64_TOP:
            return out.integer(value)
        if value >= I64_MIN and value < 0:
            return orjson_value(out, value)
        return -1
    if kind is float:
        return orjson_value(out, value)
    if depth >= EXACT_DEPTH:
        return -1
    if kind is dict:
        out.raw("{", 1)
        first = True
        for key, item in (<dict>value).items():
            if type(key) is not str or has_lone_surrogate(<str>key):
                return -1
            if not first:
                out.raw(",", 1)
            first = False
            out.string(key)
            out.raw(":", 1)
            if exact_json(out, item, depth + 1) < 0:
                return -1
        return out.raw("}", 1)
    if kind is list:
        out.raw("[", 1)
        first = True
        for item in <list>value:
            if not first:
                out.raw(",", 1)
            first = False
            if exact_json(out, item, depth + 1) < 0:
                return -1
        return out.raw("]", 1)
    return -1
