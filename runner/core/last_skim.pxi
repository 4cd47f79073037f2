# A LAST file's summary without building its task results: one C pass over last.json
# checks that it is JSON and has the shape the readers rely on (runner.last.reader) and
# finds where task_results and execution_graph lie, so that only the rest, and the results
# of tasks that did not complete, are parsed. At 200k tasks parsing every result cost
# seconds; `show` needs none of the completed ones.
#
# It accepts a strict subset of what orjson reads: anything it is not sure of (an escaped
# key, a surrogate escape, a long number, deep nesting, a repeated task id, a result of the
# wrong shape) makes it answer None, and the caller reads the file in full, which gives the
# full reader's record or its error. It never gives a different record.

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy, memchr
from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef enum:
    SKIM_DEPTH = 400                # nesting past this is left to the full reader (orjson: 1024)

cdef enum SkimKind:
    SKIM_OBJECT = 1
    SKIM_ARRAY = 2
    SKIM_STRING = 3
    SKIM_NUMBER = 4
    SKIM_TRUE = 5
    SKIM_FALSE = 6
    SKIM_NULL = 7

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Whether one of the 8 bytes at p is not one a JSON string holds as it is: a quote, a
       backslash, a control character or a byte from 0x80 (the bit tricks of "Bit Twiddling
       Hacks": a zero byte, a byte below 0x20). Strings are most of a LAST file's bytes. */
    static inline int runner_skim_special8(const unsigned char *p) {
        uint64_t w, quote, slash;
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        memcpy(&w, p, 8);
        quote = w ^ (ones * 0x22);
        slash = w ^ (ones * 0x5C);
        return ((((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((w - ones * 0x20) & ~w) | w)
                & highs) != 0;
    }
    """
    bint runner_skim_special8(const unsigned char *p) noexcept nogil


# Bytes a string holds as they are: printable ASCII but the quote and the backslash.
cdef unsigned char SKIM_PLAIN[256]
for _byte in range(256):
    SKIM_PLAIN[_byte] = 1 if 0x20 <= _byte < 0x80 and _byte != 0x22 and _byte != 0x5C else 0


cdef struct Spans:
    Py_ssize_t *at                  # `width` numbers per entry
    Py_ssize_t count
    Py_ssize_t capacity
    int width


cdef struct Skim:
    const unsigned char *p          # a bytes object's data: p[n] is its terminating NUL
    Py_ssize_t n
    Py_ssize_t i
    int depth
    Py_ssize_t key_start            # the text of the key skim_key last read
    Py_ssize_t key_end
    Spans keys                      # task ids: start, length (for repeated ids)
    Spans unfinished                # results to parse: key start, key end, value start, value end
    bint every                      # rows of every result wanted (skim_last_columns)
    Spans rows                      # per result: value start, value end, then RESULT_FIELDS_AT's spans


cdef enum:
    # A row of Skim.rows: the result's value (start, end), then (start, end) of the values of
    # its task_id, status, duration_ms and end_time (-1, -1 without one), then 1 if it is
    # marked "skipped": true.
    ROW_WIDTH = 11


cdef int spans_add(Spans *spans, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c, Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t *grown
    cdef Py_ssize_t capacity
    if spans.count == spans.capacity:
        capacity = spans.capacity * 2 + 64
        grown = <Py_ssize_t *>realloc(spans.at, capacity * spans.width * sizeof(Py_ssize_t))
        if grown == NULL:
            return -1
        spans.at = grown
        spans.capacity = capacity
    cdef Py_ssize_t *entry = spans.at + spans.count * spans.width
    entry[0] = a
    entry[1] = b
    if spans.width == 4:
        entry[2] = c
        entry[3] = d
    spans.count += 1
    return 0


cdef int spans_push(Spans *spans, const Py_ssize_t *row) noexcept nogil:
    """Adds one entry of spans.width numbers: 0, or -1 without memory."""
    cdef Py_ssize_t *grown
    cdef Py_ssize_t capacity
    if spans.count == spans.capacity:
        capacity = spans.capacity * 2 + 64
        grown = <Py_ssize_t *>realloc(spans.at, capacity * spans.width * sizeof(Py_ssize_t))
        if grown == NULL:
            return -1
        spans.at = grown
        spans.capacity = capacity
    memcpy(spans.at + spans.count * spans.width, row, spans.width * sizeof(Py_ssize_t))
    spans.count += 1
    return 0


cdef inline void skim_space(Skim *s) noexcept nogil:
    cdef unsigned char c = s.p[s.i]
    while c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09:
        s.i += 1
        c = s.p[s.i]


cdef inline int hex_digit(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef inline bint continuation(unsigned char c) noexcept nogil:
    return 0x80 <= c <= 0xBF


cdef int skim_string(Skim *s) noexcept nogil:
    """The string at s.i (its opening quote): 1 if it holds an escape, 0 if not, -1 if it is
    not one this reader is sure of. s.i is left after the closing quote."""
    cdef const unsigned char *p = s.p
    cdef Py_ssize_t i = s.i + 1
    cdef int escaped = 0, k, digit, code
    cdef unsigned char c
    while True:
        while i + 8 <= s.n and not runner_skim_special8(p + i):
            i += 8
        while SKIM_PLAIN[p[i]]:
            i += 1
        c = p[i]
        if c == 0x22:
            s.i = i + 1
            return escaped
        if c == 0x5C:
            escaped = 1
            c = p[i + 1]
            if c == 0x22 or c == 0x5C or c == 0x2F or c == 0x62 or c == 0x66 or c == 0x6E or c == 0x72 or c == 0x74:
                i += 2
            elif c == 0x75:
                code = 0
                for k in range(4):
                    digit = hex_digit(p[i + 2 + k])
                    if digit < 0:
                        return -1
                    code = code * 16 + digit
                if 0xD800 <= code <= 0xDFFF:
                    return -1           # a surrogate pair, or a lone one: the full reader judges
                i += 6
            else:
                return -1
        elif c < 0x80:
            return -1                   # a control character, or the end of the data (its NUL)
        elif 0xC2 <= c <= 0xDF:
            if not continuation(p[i + 1]):
                return -1
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if not ((0xA0 if c == 0xE0 else 0x80) <= p[i + 1] <= (0x9F if c == 0xED else 0xBF)) \
                    or not continuation(p[i + 2]):
                return -1
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if not ((0x90 if c == 0xF0 else 0x80) <= p[i + 1] <= (0x8F if c == 0xF4 else 0xBF)) \
                    or not continuation(p[i + 2]) or not continuation(p[i + 3]):
                return -1
            i += 4
        else:
            return -1


cdef int skim_number(Skim *s) noexcept nogil:
    """A number whose value both readers agree on: at most 18 integer digits, and an
    exponent of at most two (no overflow to infinity)."""
    cdef const unsigned char *p = s.p
    cdef Py_ssize_t i = s.i, start
    if p[i] == 0x2D:
        i += 1
    start = i
    if p[i] == 0x30:
        i += 1
    elif 0x31 <= p[i] <= 0x39:
        while 0x30 <= p[i] <= 0x39:
            i += 1
        if i - start > 18:
            return -1
    else:
        return -1
    if p[i] == 0x2E:
        i += 1
        if not 0x30 <= p[i] <= 0x39:
            return -1
        while 0x30 <= p[i] <= 0x39:
            i += 1
    if p[i] == 0x65 or p[i] == 0x45:
        i += 1
        if p[i] == 0x2B or p[i] == 0x2D:
            i += 1
        start = i
        while 0x30 <= p[i] <= 0x39:
            i += 1
        if i == start or i - start > 2:
            return -1
    s.i = i
    return SKIM_NUMBER


cdef int skim_literal(Skim *s, const char *word, Py_ssize_t length, int kind) noexcept nogil:
    if s.n - s.i < length or memcmp(s.p + s.i, word, length) != 0:
        return -1
    s.i += length
    return kind


cdef int skim_value(Skim *s) noexcept nogil:
    """Any JSON value at s.i: its kind (SkimKind), or -1. s.i is left after it."""
    cdef unsigned char c = s.p[s.i]
    if c == 0x22:
        return SKIM_STRING if skim_string(s) >= 0 else -1
    if c == 0x7B or c == 0x5B:
        s.depth += 1
        if s.depth > SKIM_DEPTH:
            return -1
        s.i += 1
        skim_space(s)
        if s.p[s.i] == c + 2:           # } or ]
            s.i += 1
            s.depth -= 1
            return SKIM_OBJECT if c == 0x7B else SKIM_ARRAY
        while True:
            if c == 0x7B:
                if s.p[s.i] != 0x22 or skim_string(s) < 0:
                    return -1
                skim_space(s)
                if s.p[s.i] != 0x3A:
                    return -1
                s.i += 1
                skim_space(s)
            if skim_value(s) < 0:
                return -1
            skim_space(s)
            if s.p[s.i] == 0x2C:
                s.i += 1
                skim_space(s)
            elif s.p[s.i] == c + 2:
                s.i += 1
                s.depth -= 1
                return SKIM_OBJECT if c == 0x7B else SKIM_ARRAY
            else:
                return -1
    if c == 0x2D or 0x30 <= c <= 0x39:
        return skim_number(s)
    if c == 0x74:
        return skim_literal(s, "true", 4, SKIM_TRUE)
    if c == 0x66:
        return skim_literal(s, "false", 5, SKIM_FALSE)
    if c == 0x6E:
        return skim_literal(s, "null", 4, SKIM_NULL)
    return -1


cdef inline bint key_is(Skim *s, const char *name, Py_ssize_t length) noexcept nogil:
    """Whether the key skim_key last read is `name`."""
    return s.key_end - s.key_start == length and memcmp(s.p + s.key_start, name, length) == 0


cdef int skim_key(Skim *s) noexcept nogil:
    """An object's key without escapes at s.i, and the colon after it (s.key_start and
    s.key_end: its text, between the quotes): 0, or -1. s.i is left at the value."""
    if s.p[s.i] != 0x22:
        return -1
    s.key_start = s.i + 1
    if skim_string(s) != 0:
        return -1
    s.key_end = s.i - 1
    skim_space(s)
    if s.p[s.i] != 0x3A:
        return -1
    s.i += 1
    skim_space(s)
    return 0


cdef int skim_member_end(Skim *s) noexcept nogil:
    """After a member's value: 1 if another member follows, 0 at the object's end, -1."""
    skim_space(s)
    if s.p[s.i] == 0x2C:
        s.i += 1
        skim_space(s)
        return 1
    if s.p[s.i] == 0x7D:
        s.i += 1
        return 0
    return -1


cdef int skim_open(Skim *s) noexcept nogil:
    """The opening brace of an object at s.i: 1 if members follow, 0 if it is empty, -1."""
    if s.p[s.i] != 0x7B:
        return -1
    s.i += 1
    skim_space(s)
    if s.p[s.i] == 0x7D:
        s.i += 1
        return 0
    return 1


cdef int skim_result(Skim *s, Py_ssize_t *row) noexcept nogil:
    """A task result: an object whose task_id, status, error, start_time and end_time are
    strings or null and whose metadata is an object or null (of repeated keys the last
    counts, as in orjson). 1 if the task may not have completed (its status is not exactly
    "completed", or it is marked skipped), 0 if it did, -1. row (when not NULL): a row of
    Skim.rows from its third number (ROW_WIDTH)."""
    cdef Py_ssize_t value
    cdef int kind
    cdef bint completed = False, skipped = False
    cdef int more = skim_open(s)
    if row != NULL:
        row[0] = row[1] = row[2] = row[3] = row[4] = row[5] = row[6] = row[7] = -1
    while more > 0:
        if skim_key(s) < 0:
            return -1
        value = s.i
        kind = skim_value(s)
        if kind < 0:
            return -1
        if key_is(s, "status", 6):
            if kind != SKIM_STRING and kind != SKIM_NULL:
                return -1
            completed = s.i - value == 11 and memcmp(s.p + value, '"completed"', 11) == 0
            if row != NULL:
                row[2], row[3] = value, s.i
        elif key_is(s, "task_id", 7) or key_is(s, "error", 5) or key_is(s, "start_time", 10) \
                or key_is(s, "end_time", 8):
            if kind != SKIM_STRING and kind != SKIM_NULL:
                return -1
            if row != NULL and key_is(s, "task_id", 7):
                row[0], row[1] = value, s.i
            elif row != NULL and key_is(s, "end_time", 8):
                row[6], row[7] = value, s.i
        elif key_is(s, "metadata", 8):
            if kind != SKIM_OBJECT and kind != SKIM_NULL:
                return -1
        elif key_is(s, "skipped", 7):
            skipped = kind == SKIM_TRUE
        elif row != NULL and key_is(s, "duration_ms", 11):
            row[4], row[5] = value, s.i
        more = skim_member_end(s)
    if more < 0:
        return -1
    if row != NULL:
        row[8] = skipped
    return 1 if skipped or not completed else 0


cdef int skim_task_results(Skim *s) noexcept nogil:
    """task_results: an object of task results, each id once."""
    cdef Py_ssize_t key, key_end, value
    cdef int unfinished
    cdef Py_ssize_t row[ROW_WIDTH]
    cdef int more = skim_open(s)
    while more > 0:
        key = s.i
        if skim_key(s) < 0 or spans_add(&s.keys, s.key_start, s.key_end - s.key_start, 0, 0) < 0:
            return -1
        key_end = s.key_end + 1         # after its closing quote (skim_result reads other keys)
        value = s.i
        unfinished = skim_result(s, row + 2 if s.every else NULL)
        if unfinished < 0:
            return -1
        if s.every:
            row[0], row[1] = value, s.i
            if spans_push(&s.rows, row) < 0:
                return -1
        if unfinished and spans_add(&s.unfinished, key, key_end, value, s.i) < 0:
            return -1
        more = skim_member_end(s)
    return more


cdef int skim_objects(Skim *s, bint with_id) noexcept nogil:
    """null, or an array of objects (each with a string id when `with_id`)."""
    cdef int kind, more, id_kind
    if s.p[s.i] == 0x6E:
        return 0 if skim_value(s) == SKIM_NULL else -1
    if s.p[s.i] != 0x5B:
        return -1
    s.i += 1
    skim_space(s)
    if s.p[s.i] == 0x5D:
        s.i += 1
        return 0
    while True:
        if with_id:
            id_kind = 0
            more = skim_open(s)
            while more > 0:
                if skim_key(s) < 0:
                    return -1
                kind = skim_value(s)
                if kind < 0:
                    return -1
                if key_is(s, "id", 2):
                    id_kind = kind
                more = skim_member_end(s)
            if more < 0 or id_kind != SKIM_STRING:
                return -1
        elif s.p[s.i] != 0x7B or skim_value(s) != SKIM_OBJECT:
            return -1
        skim_space(s)
        if s.p[s.i] == 0x2C:
            s.i += 1
            skim_space(s)
        elif s.p[s.i] == 0x5D:
            s.i += 1
            return 0
        else:
            return -1


cdef int skim_graph(Skim *s) noexcept nogil:
    """execution_graph: an object whose nodes (objects with a string id) and edges
    (objects) are each null or an array, each named once."""
    cdef bint nodes = False, edges = False
    cdef int more = skim_open(s)
    while more > 0:
        if skim_key(s) < 0:
            return -1
        if key_is(s, "nodes", 5):
            if nodes or skim_objects(s, True) < 0:
                return -1
            nodes = True
        elif key_is(s, "edges", 5):
            if edges or skim_objects(s, False) < 0:
                return -1
            edges = True
        elif skim_value(s) < 0:
            return -1
        more = skim_member_end(s)
    return more


cdef Py_ssize_t skim_record(Skim *s, Py_ssize_t *where) noexcept nogil:
    """The whole document: an object with one task_results (an object) and at most one
    execution_graph. where[0:2] is task_results' value, where[2:4] execution_graph's when
    it is an object (else -1, -1: it stays in the header). 0, or -1."""
    cdef bint graph_seen = False
    cdef int more
    where[0] = where[1] = where[2] = where[3] = -1
    skim_space(s)
    more = skim_open(s)
    while more > 0:
        if skim_key(s) < 0:
            return -1
        if key_is(s, "task_results", 12):
            if where[0] >= 0:
                return -1
            where[0] = s.i
            if skim_task_results(s) < 0:
                return -1
            where[1] = s.i
        elif key_is(s, "execution_graph", 15):
            if graph_seen:
                return -1
            graph_seen = True
            if s.p[s.i] == 0x7B:
                where[2] = s.i
                if skim_graph(s) < 0:
                    return -1
                where[3] = s.i
            elif skim_value(s) < 0:
                return -1
        elif skim_value(s) < 0:
            return -1
        more = skim_member_end(s)
    if more < 0 or where[0] < 0:
        return -1
    skim_space(s)
    return 0 if s.i == s.n else -1


cdef inline unsigned long long key_hash(const unsigned char *text, Py_ssize_t length) noexcept nogil:
    cdef unsigned long long h = 14695981039346656037ULL
    cdef Py_ssize_t k
    for k in range(length):
        h = (h ^ text[k]) * 1099511628211ULL
    return h


cdef int repeated_key(Skim *s) noexcept nogil:
    """1 if a task id appears twice in task_results, 0 if not, -1 without memory."""
    cdef Py_ssize_t size = 16, mask, k, j, slot
    cdef Py_ssize_t *table
    cdef Py_ssize_t *key
    cdef Py_ssize_t *other
    while size < 2 * s.keys.count:
        size *= 2
    mask = size - 1
    table = <Py_ssize_t *>malloc(size * sizeof(Py_ssize_t))
    if table == NULL:
        return -1
    for k in range(size):
        table[k] = -1
    for j in range(s.keys.count):
        key = s.keys.at + 2 * j
        slot = <Py_ssize_t>(key_hash(s.p + key[0], key[1]) & <unsigned long long>mask)
        while table[slot] >= 0:
            other = s.keys.at + 2 * table[slot]
            if other[1] == key[1] and memcmp(s.p + other[0], s.p + key[0], key[1]) == 0:
                free(table)
                return 1
            slot = (slot + 1) & mask
        table[slot] = j
    free(table)
    return 0


cpdef object skim_last(bytes data):
    """What a summary of the LAST record in `data` (last.json's bytes) needs, or None when
    this reader is not sure the full reader would accept the file as it has it:
    (header, count, unfinished). header is the record's JSON with task_results' and an
    object execution_graph's values each replaced by {}; count is the number of task
    results; unfinished lists (key start, key end, value start, value end) in `data` of
    each result whose task may not have completed, in the file's order."""
    cdef Skim s
    cdef Py_ssize_t where[4]
    cdef Py_ssize_t k, answer, repeated
    cdef list unfinished
    memset(&s, 0, sizeof(Skim))
    s.p = <const unsigned char *>PyBytes_AS_STRING(data)
    s.n = len(data)
    s.keys.width = 2
    s.unfinished.width = 4
    try:
        with nogil:
            answer = skim_record(&s, where)
            repeated = repeated_key(&s) if answer == 0 else 0
        if answer < 0 or repeated != 0:
            return None
        unfinished = [(s.unfinished.at[4 * k], s.unfinished.at[4 * k + 1], s.unfinished.at[4 * k + 2],
                       s.unfinished.at[4 * k + 3]) for k in range(s.unfinished.count)]
        count = s.keys.count
    finally:
        free(s.keys.at)
        free(s.unfinished.at)
    if where[2] < 0:
        header = data[:where[0]] + b"{}" + data[where[1]:]
    elif where[0] < where[2]:
        header = data[:where[0]] + b"{}" + data[where[1]:where[2]] + b"{}" + data[where[3]:]
    else:
        header = data[:where[2]] + b"{}" + data[where[3]:where[0]] + b"{}" + data[where[1]:]
    return header, count, unfinished


cdef bytes skim_header(bytes data, Py_ssize_t *where):
    """The record's JSON with task_results' and an object execution_graph's values each {}."""
    if where[2] < 0:
        return data[:where[0]] + b"{}" + data[where[1]:]
    if where[0] < where[2]:
        return data[:where[0]] + b"{}" + data[where[1]:where[2]] + b"{}" + data[where[3]:]
    return data[:where[2]] + b"{}" + data[where[3]:where[0]] + b"{}" + data[where[1]:]


cpdef object skim_last_columns(bytes data):
    """skim_last for readers of every result's task id, status, duration and end time and of
    a few results whole (the report): None when this reader is not sure the full reader
    would accept the file as it has it, else (header, results, graph): header as
    skim_last's; results: (start, end) of task_results' value in `data`; graph: the same of
    an object execution_graph, else None; columns: ResultColumns of the results."""
    cdef Skim s
    cdef Py_ssize_t where[4]
    cdef Py_ssize_t answer, repeated
    cdef ResultColumns columns
    memset(&s, 0, sizeof(Skim))
    s.p = <const unsigned char *>PyBytes_AS_STRING(data)
    s.n = len(data)
    s.keys.width = 2
    s.unfinished.width = 4
    s.rows.width = ROW_WIDTH
    s.every = True
    try:
        with nogil:
            answer = skim_record(&s, where)
            repeated = repeated_key(&s) if answer == 0 else 0
        if answer < 0 or repeated != 0:
            return None
        columns = ResultColumns.__new__(ResultColumns)
        columns.data = data
        columns.rows, columns.count = s.rows.at, s.rows.count
        s.rows.at = NULL
    finally:
        free(s.keys.at)
        free(s.unfinished.at)
        free(s.rows.at)
    return (skim_header(data, where), (where[0], where[1]), (where[2], where[3]) if where[2] >= 0 else None,
            columns)


cdef class ResultColumns:
    """The task results of a last.json's bytes as skim_last_columns found them: per result
    in the file's order, where it lies and where its task_id, status, duration_ms and
    end_time lie. columns() makes those four values (no dict per result); [i] is result i
    as orjson reads it, made when asked for."""
    cdef bytes data
    cdef Py_ssize_t *rows       # ROW_WIDTH numbers per result
    cdef Py_ssize_t count

    def __dealloc__(self):
        free(self.rows)

    def __len__(self):
        return self.count

    def __getitem__(self, Py_ssize_t i):
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError("result index out of range")
        return orjson.loads(self.data[self.rows[i * ROW_WIDTH]:self.rows[i * ROW_WIDTH + 1]])

    def columns(self):
        """(task ids, statuses, durations, end times): per result, in order, its task_id,
        its status as task_status tells it (skipped when marked "skipped": true),
        duration_ms and end_time (None where it has none), a list each."""
        cdef Py_ssize_t i, n = self.count
        cdef Py_ssize_t *row
        cdef list ids = [None] * n, statuses = [None] * n, durations = [None] * n, ends = [None] * n
        cdef object status = None
        cdef Py_ssize_t status_at = -1, status_length = 0
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(self.data)
        for i in range(n):
            row = self.rows + i * ROW_WIDTH
            ids[i] = self.value_at(row[2], row[3])
            if row[10]:
                statuses[i] = u"skipped"
            else:
                # Statuses are few: the one before is used again when its text is the same.
                if status_at < 0 or row[5] - row[4] != status_length \
                        or memcmp(p + row[4], p + status_at, status_length) != 0:
                    status = self.value_at(row[4], row[5])
                    status_at, status_length = row[4], row[5] - row[4]
                statuses[i] = status
            durations[i] = self.value_at(row[6], row[7])
            ends[i] = self.value_at(row[8], row[9])
        return ids, statuses, durations, ends

    cdef object value_at(self, Py_ssize_t start, Py_ssize_t end):
        """The JSON value data[start:end] (checked by the skim), None when start < 0:
        strings without escapes and integers are made here, others by orjson."""
        cdef const unsigned char *p
        cdef Py_ssize_t k
        cdef long long number = 0
        cdef bint negative
        if start < 0:
            return None
        p = <const unsigned char *>PyBytes_AS_STRING(self.data)
        if p[start] == 0x22:
            if memchr(p + start + 1, 0x5C, end - start - 2) == NULL:
                # No escape: the text is the string's UTF-8 (which the skim checked).
                return PyUnicode_DecodeUTF8(<const char *>(p + start + 1), end - start - 2, NULL)
        elif p[start] == 0x6E:
            return None
        elif p[start] == 0x2D or 0x30 <= p[start] <= 0x39:
            negative = p[start] == 0x2D
            k = start + 1 if negative else start
            while k < end and 0x30 <= p[k] <= 0x39:
                number = number * 10 + (p[k] - 0x30)      # at most 18 digits (skim_number)
                k += 1
            if k == end:
                return -number if negative else number
        return orjson.loads(self.data[start:end])
