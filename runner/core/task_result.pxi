# Task results: what one task produced, checked against the ALT file it belongs to.

from datetime import datetime, timezone
from libc.stdint cimport uint16_t, uint32_t
from libc.string cimport memcmp
from libc.math cimport NAN
cimport cython

cdef extern from "Python.h":
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    int PyUnicode_KIND(object text)
    void *PyUnicode_DATA(object text)
    int PyUnicode_1BYTE_KIND
    int PyUnicode_2BYTE_KIND

# Both spellings of the times are read: librunner's (started_at, completed_at) and the
# original Rust runner's TaskResult (start_time, end_time, with its execution_id).
RESULT_FIELDS = frozenset((
    "task_id", "status", "output", "error", "started_at", "completed_at", "duration_ms", "metadata",
    "start_time", "end_time", "execution_id",
))


@cython.no_gc
cdef class TaskResult:
    """The outcome of one task: status, output (any JSON), error text and timings.

    An inline (generic) task's result is typed: the task it ran (`ran`), its stamps, and its
    duration and offset as C doubles. Its output (a copy of the task's parameters) and its
    metadata (one attempt) are made when first read as attributes, and kept from then on
    (so they are the same objects on every read, changes included); the core's bulk readers
    (last.json, the journal, the record, artifacts) write or test them from the typed
    fields without making them. Not tracked by the cyclic GC: a result holds JSON values
    only (every result is checked for that), which cannot refer back to it.
    """

    cdef readonly str task_id
    cdef readonly str status
    cdef object stored_output           # as given; None for an inline result not yet read
    cdef readonly object error
    cdef readonly object started_at
    cdef readonly object completed_at
    cdef object stored_duration         # as given; an inline result's is elapsed_ms
    cdef dict stored_metadata           # as given; None for an inline result not yet read
    cdef dict stored_extra              # fields beyond RESULT_FIELDS; None when there are none
    cdef readonly object execution_id     # as the reporter gave it (the original's TaskResult has one)
    cdef Task ran                       # an inline result: the task it ran; else None
    cdef double elapsed_ms              # an inline result: duration_ms
    cdef double offset_ms               # an inline result: its attempt's offset_ms; NaN: none
    # (no flag for it: 128 bytes an object, where one more field made 144 with its padding)

    @property
    def output(self):
        if self.stored_output is None and self.ran is not None:
            self.stored_output = self.inline_output()
        return self.stored_output

    @property
    def metadata(self):
        if self.stored_metadata is None and self.ran is not None:
            self.stored_metadata = self.inline_metadata()
        return self.stored_metadata

    @property
    def extra(self):
        """The result's fields beyond RESULT_FIELDS (an empty dict is made on first read)."""
        if self.stored_extra is None:
            self.stored_extra = {}
        return self.stored_extra

    @property
    def duration_ms(self):
        return self.duration()

    cpdef object transient_output(self):
        """output, without keeping what is made for an inline result not yet read: for
        readers that look once (events, metrics), so a large run's results stay small."""
        if self.stored_output is None and self.ran is not None:
            return self.inline_output()
        return self.stored_output

    cpdef object transient_metadata(self):
        """metadata, as transient_output gives output."""
        if self.stored_metadata is None and self.ran is not None:
            return self.inline_metadata()
        return self.stored_metadata

    cdef inline object duration(self):
        return self.elapsed_ms if self.ran is not None else self.stored_duration

    cdef inline bint typed_inline(self):
        """An inline result whose output and metadata are still only its typed fields."""
        return self.ran is not None and self.stored_output is None and self.stored_metadata is None

    cdef dict inline_output(self):
        # A copy to its depth: what a reader changes in it (a later task reading its
        # dependencies' outputs) never reaches the task's parameters, which last.json and
        # the journal are written from.
        cdef object parameters = self.ran._parameters
        return json_copy(parameters) if type(parameters) is dict else dict(parameters)

    cdef dict inline_metadata(self):
        cdef dict attempt = {"number": 1, "started_at": self.started_at, "duration_ms": self.elapsed_ms,
                             "outcome": "completed", "error": None, "fault": None}
        if self.offset_ms == self.offset_ms:
            attempt["offset_ms"] = self.offset_ms
        cdef dict metadata = {"task_type": "generic", "attempts": [attempt]}
        if self.ran.control is not None:
            metadata["control"] = self.ran.control
        return metadata

    def to_dict(self):
        """As reported, in librunner's names (the LAST file writes the original's:
        recorded_task_result); execution_id only when the reporter gave one."""
        cdef dict out = {"task_id": self.task_id, "status": self.status, "output": self.transient_output(),
                         "error": self.error, "started_at": self.started_at,
                         "completed_at": self.completed_at, "duration_ms": self.duration(),
                         "metadata": self.transient_metadata()}
        if self.execution_id is not None:
            out["execution_id"] = self.execution_id
        if self.stored_extra:
            out.update(self.stored_extra)
        return out

    def __reduce__(self):
        # Pickled as a plain result (an inline one's output and metadata made): the same values.
        return (restored_task_result, (self.task_id, self.status, self.transient_output(), self.error,
                                       self.started_at, self.completed_at, self.duration(),
                                       self.transient_metadata(), self.stored_extra, self.execution_id))

    def __repr__(self):
        return f"TaskResult({self.task_id!r}, {self.status!r})"


def restored_task_result(task_id, status, output, error, started_at, completed_at, duration_ms, metadata,
                         extra, execution_id):
    """A TaskResult from the fields __reduce__ gives (unpickling)."""
    cdef TaskResult result = TaskResult.__new__(TaskResult)
    result.task_id = task_id
    result.status = status
    result.stored_output = output
    result.error = error
    result.started_at = started_at
    result.completed_at = completed_at
    result.stored_duration = duration_ms
    result.stored_metadata = metadata
    result.stored_extra = extra if extra else None
    result.execution_id = execution_id
    return result


cdef TaskResult inline_result(Task task, str started_at, str completed_at, double elapsed_ms,
                              bint has_offset, double offset_ms):
    """The result of an inline (generic) task: completed, its output a copy of its parameters."""
    cdef TaskResult result = TaskResult.__new__(TaskResult)
    result.task_id = task.id
    result.status = u"completed"
    result.started_at = started_at
    result.completed_at = completed_at
    result.ran = task
    result.elapsed_ms = elapsed_ms
    result.offset_ms = offset_ms if has_offset else NAN
    return result


# ---- an inline result as JSON, from its typed fields

cdef int write_inline_metadata(JsonText out, TaskResult r, bytes duration, bint exact) except -2:
    """An inline result's metadata as orjson writes inline_metadata() (`duration`: its
    duration's JSON text): in a LAST file (exact false: as record_value writes values) or a
    journal row (exact: exact_json; -1 when its control holds a value exact_json leaves to
    orjson)."""
    out.raw('{"task_type":"generic","attempts":[{"number":1,"started_at":', 60)
    record_value(out, r.started_at)
    out.raw(',"duration_ms":', 15)
    out.raw(duration, len(duration))
    out.raw(',"outcome":"completed","error":null,"fault":null', 48)
    if r.offset_ms == r.offset_ms:      # not NaN: recorded
        out.raw(',"offset_ms":', 13)
        orjson_value(out, r.offset_ms)
    out.raw("}]", 2)
    if r.ran.control is not None:
        out.raw(',"control":', 11)
        if not exact:
            record_value(out, r.ran.control)
        elif exact_json(out, r.ran.control, 0) < 0:
            return -1
    out.raw("}", 1)
    return 0


cdef inline int two_digits(const unsigned char *s, int at):
    if not (48 <= s[at] <= 57 and 48 <= s[at + 1] <= 57):
        return -1
    return (s[at] - 48) * 10 + (s[at + 1] - 48)


cdef int days_in_month(int year, int month):
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


cdef bint is_canonical_stamp(str stamp):
    """YYYY-MM-DDTHH:MM:SS[.digits]Z with every field in range: what the executor writes and
    every reader (Python, chrono) accepts as it is. Checked in C: it runs twice per result."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(stamp), i
    cdef const unsigned char *s
    cdef int year, month, day
    if n < 20 or PyUnicode_KIND(stamp) != PyUnicode_1BYTE_KIND:
        return False
    s = <const unsigned char *>PyUnicode_DATA(stamp)
    if s[4] != 45 or s[7] != 45 or s[10] != 84 or s[13] != 58 or s[16] != 58 or s[n - 1] != 90:
        return False
    if n > 20:
        if s[19] != 46 or n == 21:
            return False
        for i in range(20, n - 1):
            if not 48 <= s[i] <= 57:
                return False
    year = two_digits(s, 0) * 100 + two_digits(s, 2)
    if two_digits(s, 0) < 0 or two_digits(s, 2) < 0 or year < 1:
        return False
    month = two_digits(s, 5)
    day = two_digits(s, 8)
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        return False
    return 0 <= two_digits(s, 11) <= 23 and 0 <= two_digits(s, 14) <= 59 and 0 <= two_digits(s, 17) <= 59


cdef object canonical_stamp(object stamp):
    """An RFC 3339 stamp as UTC with a Z (the same instant), or None if it is not one that
    Python and the original's chrono both read: years 0001-9999, no leap second."""
    if type(stamp) is not str:
        return None
    if is_canonical_stamp(<str>stamp):
        return stamp
    if RFC3339.match(stamp) is None:
        return None
    cdef str text = <str>stamp
    if text.endswith(u"z"):
        text = text[:len(text) - 1] + u"Z"
    try:
        moment = datetime.fromisoformat(text).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


cdef TaskResult pending_result(str task_id):
    """The result recorded for a task nobody reported on."""
    cdef TaskResult result = TaskResult.__new__(TaskResult)
    result.task_id = task_id
    result.status = "pending"
    result.stored_metadata = {}
    return result


cdef tuple RESULT_STATUSES = TASK_STATUSES


cdef inline object known_status(object value):
    """The status constant equal to `value`, or None. Comparing bytes with seven short
    constants is cheaper than hashing a fresh string for a set lookup, and results then
    share one string per status."""
    cdef str known
    cdef Py_ssize_t length
    if type(value) is not str:
        return None
    if PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND:  # not a status, unless a legacy string
        return value if value in STATUS_SET else None
    length = PyUnicode_GET_LENGTH(value)
    for known in RESULT_STATUSES:
        if PyUnicode_GET_LENGTH(known) == length and \
                memcmp(PyUnicode_DATA(known), PyUnicode_DATA(value), <size_t>length) == 0:
            return known
    return None


cdef TaskResult build_task_result(object raw, AltFile alt):
    """A parsed JSON document -> TaskResult of a task of `alt`.

    An unknown task is an UnknownIdError; anything else malformed a TaskResultError.
    """
    cdef IssueList issues
    cdef TaskResult result
    if type(raw) is not dict:
        raise TaskResultError([ValidationIssue(
            "", f"a task result is a JSON object, found {json_type(raw)} {shorten(raw)}", raw)])
    cdef dict doc = <dict>raw
    task_id = doc.get("task_id")
    status = known_status(doc.get("status"))
    # Fast path: the common, well-formed result needs only these checks.
    if type(task_id) is str and status is not None:
        issues = None
    else:
        issues = IssueList()
        if task_id is None:
            issues.add("/task_id", "a task result needs a 'task_id'")
        elif type(task_id) is not str:
            issues.add("/task_id", f"expected string, found {json_type(task_id)} {shorten(task_id)}", task_id)
        if doc.get("status") is None:
            issues.add("/status", "a task result needs a 'status'")
        else:
            issues.choice(doc, "status", "", STATUS_SET, TASK_STATUSES)
        raise TaskResultError(issues.issues, issues.total)
    if task_id not in alt.task_index:
        raise UnknownIdError(f"unknown task '{task_id}' in ALT file '{alt.id}'")

    result = TaskResult.__new__(TaskResult)
    result.task_id = task_id
    result.status = status
    if len(doc) == 2:  # task_id and status only: nothing else to look up
        result.stored_metadata = {}
        return result
    result.stored_output = doc.get("output")
    issues = IssueList()
    result.error = issues.optional(doc, "error", "", "string")
    result.started_at = result_time(doc, "started_at", "start_time", issues)
    result.completed_at = result_time(doc, "completed_at", "end_time", issues)
    execution_id = issues.optional(doc, "execution_id", "", "string")
    result.execution_id = execution_id if execution_id else None
    duration = issues.optional(doc, "duration_ms", "", "number")
    if duration is not None and not (0 <= duration <= MAX_DURATION_MS):
        issues.add("/duration_ms", f"expected a number from 0 to 2^53-1, found {shorten(duration)}", duration)
    if duration is None and result.started_at is not None and result.completed_at is not None:
        duration = span_ms(result.started_at, result.completed_at)
    result.stored_duration = duration
    metadata = issues.optional(doc, "metadata", "", "object")
    result.stored_metadata = metadata if metadata is not None else {}
    if metadata is not None and "ai" in <dict>metadata:
        check_ai_metadata((<dict>metadata)["ai"], issues)
    if not issues.total:
        found = unrecordable(doc, MAX_DEPTH_LIMIT)
        if found is not None:
            issues.add(found[0], found[1])
    if issues.total:
        raise TaskResultError(issues.issues, issues.total)
    if len(doc) > 2:
        extra = {k: v for k, v in doc.items() if k not in RESULT_FIELDS}
        if extra:       # most results have none: no empty dict kept per result
            result.stored_extra = extra
    return result


# Durations beyond the largest exact integer would sum to infinity in the LAST statistics
# (1e308 + 1e308), which JSON cannot hold; 2^53-1 ms is 285,000 years.
cdef double MAX_DURATION_MS = 9007199254740991.0


cdef bint fits_utc(str stamp) except -1:
    """Whether an RFC 3339 stamp stays within years 1-9999 in UTC, where the LAST record
    writes it. Only a stamp in year 0001 or 9999 can leave them (offsets are under a day)."""
    if not (stamp.startswith("0001") or stamp.startswith("9999")):
        return True
    try:
        moment = datetime.fromisoformat(stamp.upper().replace(" ", "T"))
    except ValueError:
        return True         # not a stamp Python reads: the record never converts it
    try:
        moment.astimezone(timezone.utc)
    except OverflowError:
        return False
    return True


cdef inline bint is_container(object value):
    cdef type kind = type(value)
    if kind is dict or kind is list:
        return True
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return False
    return isinstance(value, (dict, list, tuple))


cdef list members(object container):
    """(key, value) pairs of an object's members or an array's elements."""
    if isinstance(container, dict):
        return list((<dict>container).items()) if type(container) is dict else list(container.items())
    return list(enumerate(container))


cdef bint has_lone_surrogate(str text):
    """Whether `text` holds a code point U+D800-U+DFFF (from surrogateescape, or a lone
    \\ud800 escape): UTF-8 cannot encode it, so neither can a JSON writer. Only strings
    stored with 2 or 4 bytes per character can; a C loop over those."""
    cdef int kind = PyUnicode_KIND(text)
    cdef Py_ssize_t i, n
    cdef const uint16_t *two
    cdef const uint32_t *four
    if kind == PyUnicode_1BYTE_KIND:
        return False
    n = PyUnicode_GET_LENGTH(text)
    if kind == PyUnicode_2BYTE_KIND:
        two = <const uint16_t *>PyUnicode_DATA(text)
        for i in range(n):
            if 0xD800 <= two[i] <= 0xDFFF:
                return True
        return False
    four = <const uint32_t *>PyUnicode_DATA(text)
    for i in range(n):
        if 0xD800 <= four[i] <= 0xDFFF:
            return True
    return False


cdef object scalar_problem(object value):
    """Why JSON (the journal, the LAST file) cannot hold `value` exactly, or None."""
    cdef type kind = type(value)
    if kind is str:
        return "a string with a lone surrogate (not UTF-8)" if has_lone_surrogate(<str>value) else None
    if kind is float or kind is bool or value is None:
        return None
    if kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return None
        shown = shorten(int(value)) if int(value).bit_length() <= 200 else f"of {int(value).bit_length()} bits"
        return (f"the integer {shown} is beyond +-(2^53-1): JSON readers do not hold it exactly "
                f"(the LAST file and the journal refuse it)")
    if isinstance(value, str):
        return "a string with a lone surrogate (not UTF-8)" if has_lone_surrogate(str(value)) else None
    if isinstance(value, float):
        # numpy.float64, say: orjson (the journal, the LAST file) does not write float subclasses.
        return (f"a value of Python type {type(value).__name__} (a subclass of float): "
                f"the LAST file and the journal take float itself (convert it with float())")
    return f"a value of Python type {type(value).__name__}, which is not JSON"


cdef object key_problem(object container):
    """Why an object's keys cannot be JSON member names, or None."""
    if not isinstance(container, dict):
        return None
    for key in container:
        if type(key) is not str:
            if isinstance(key, str):    # a StrEnum, say: orjson refuses subclasses of str as keys
                return (f"an object key of Python type {type(key).__name__} (a subclass of str): "
                        f"JSON names members with plain strings (convert it with str())")
            return f"an object key of Python type {type(key).__name__}: JSON names members with strings"
        if has_lone_surrogate(str(key)):
            return "an object key with a lone surrogate (not UTF-8)"
    return None


cdef str printable_pointer(list path):
    """The JSON pointer of `path`, with long names cut and lone surrogates written as
    escapes: it goes into an error message, which the journal and the LAST file record."""
    cdef list tokens = []
    for key in path:
        token = str(key)
        if len(token) > 40:
            token = token[:40] + "\u2026"
        if has_lone_surrogate(token):
            token = token.encode("utf-8", "backslashreplace").decode("utf-8")
        tokens.append(pointer_token(token))
    return "/" + "/".join(tokens)


cdef bint plainly_recordable(object value, Py_ssize_t level, Py_ssize_t limit) except -1:
    """Whether `value` (at nesting level `level`; the root is 1) and all it holds are exact
    JSON types within the limits unrecordable checks: the common case, answered without
    allocating. False
    means look closer (unrecordable says where and why); recursion is bounded by `limit`."""
    cdef type kind = type(value)
    if kind is str:
        return not has_lone_surrogate(<str>value)
    if kind is float or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INT <= value <= MAX_SAFE_INT
    if kind is dict:
        if level > limit:
            return False
        for key, item in (<dict>value).items():
            if type(key) is not str or has_lone_surrogate(<str>key) or \
                    not plainly_recordable(item, level + 1, limit):
                return False
        return True
    if kind is list:
        if level > limit:
            return False
        for item in <list>value:
            if not plainly_recordable(item, level + 1, limit):
                return False
        return True
    return False


cdef object unrecordable(object root, Py_ssize_t limit):
    """(JSON pointer, why) of the first value in `root` that the journal and the LAST file
    cannot write as JSON exactly: an array or object nested deeper than `limit` levels
    (`root` is level 1), an integer beyond +-(2^53-1), a lone surrogate, a key that is not a
    string, a value of no JSON type. None when all of it can be written. The one check every
    task result passes, the executor's included. An explicit stack: no recursion."""
    cdef list levels, positions, path
    cdef Py_ssize_t top, position
    cdef list current
    if plainly_recordable(root, 1, limit):
        return None
    levels = [members(root)]                # per open container: its members
    positions = [0]                         # per open container: the next member to look at
    path = []
    why = key_problem(root)
    if why is not None:
        return "/", why
    while levels:
        top = len(levels) - 1
        current = <list>levels[top]
        position = positions[top]
        if position == len(current):
            levels.pop()
            positions.pop()
            if path:
                path.pop()
            continue
        positions[top] = position + 1
        key, value = <tuple>current[position]
        if not is_container(value):
            why = scalar_problem(value)
            if why is not None:
                return printable_pointer(path + [key]), why
            continue
        path.append(key)
        if top + 2 > limit:
            return printable_pointer(path), (f"nested deeper than {MAX_DEPTH_LIMIT} levels of arrays and objects "
                                             f"(the most a LAST file records; the result itself is the first)")
        why = key_problem(value)
        if why is not None:
            return printable_pointer(path), why
        levels.append(members(value))
        positions.append(0)
    return None


cdef object result_time(dict doc, str name, str original_name, IssueList issues):
    """The stamp under librunner's name or the original's, as canonical UTC; None if absent.

    Both names with different instants is an error: which one is meant cannot be guessed.
    """
    cdef object found = None, stamp, seen = None
    cdef str key
    for key in (name, original_name):
        stamp = issues.optional(doc, key, "", "string")
        if stamp is None:
            continue
        canonical = canonical_stamp(stamp)
        if canonical is None:
            if RFC3339.match(stamp) is not None and not fits_utc(stamp):
                issues.add(f"/{key}", f"{shorten(stamp)} is outside years 0001-9999 once converted to UTC", stamp)
            else:
                issues.add(f"/{key}", f"expected an RFC 3339 date-time (years 0001-9999, seconds 00-59), "
                                      f"found {shorten(stamp)}", stamp)
            continue
        if found is not None and canonical != found and \
                datetime.fromisoformat(canonical) != datetime.fromisoformat(found):
            issues.add(f"/{key}", f"'{seen}' and '{key}' name different times ({found}, {canonical})", stamp)
            continue
        found, seen = canonical, key
    return found


cdef object span_ms(str started, str completed):
    """Milliseconds from one canonical stamp to another; None if they run backwards."""
    moment = (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds() * 1000.0
    return moment if moment >= 0 else None


# Bound once: looking up orjson.loads on every result cost as much as building it.
cdef object loads_json = orjson.loads


cdef object MAX_TOKEN_COUNT = 2 ** 53 - 1


cdef void check_ai_metadata(object ai, IssueList issues) except *:
    """metadata.ai feeds the LAST statistics (tokens per model): its model must be a name and
    its token counts exact JSON integers, or one bad result breaks every LAST file of the run."""
    if ai is None:
        return
    if type(ai) is not dict:
        issues.add("/metadata/ai", f"expected object, found {json_type(ai)} {shorten(ai)}", ai)
        return
    model = (<dict>ai).get("model")
    if model is not None and type(model) is not str:
        issues.add("/metadata/ai/model", f"expected string, found {json_type(model)} {shorten(model)}", model)
    for key in ("prompt_tokens", "completion_tokens"):
        count = (<dict>ai).get(key)
        if count is not None and not (type(count) is int and 0 <= count <= MAX_TOKEN_COUNT):
            issues.add(f"/metadata/ai/{key}",
                       f"expected an integer from 0 to 2^53-1, found {json_type(count)} {shorten(count)}", count)


cpdef TaskResult parse_task_result(object data, AltFile alt):
    """JSON (bytes or str) of one task result -> TaskResult of a task of `alt`."""
    try:
        doc = loads_json(data)
    except orjson.JSONDecodeError:
        doc = load_json(data, TaskResultError)  # raises the document error, worded as everywhere
    return build_task_result(doc, alt)


cpdef TaskResult task_result_from_dict(dict doc, AltFile alt):
    """A task result given as Python data (as the executor produces it), checked like JSON input."""
    return build_task_result(doc, alt)


cpdef list reused_task_results(list docs, AltFile alt, str last_id):
    """Earlier results (TaskResult.to_dict() forms, as a journal gives them back) as a resume
    records them: each checked as any result is (a journal may have been edited) and carrying
    metadata.reused_from, the LAST id of the run that produced it, unless it names one
    already. One call for the whole plan: a 100k-task resume paid more for a Python call and
    two dict copies per result than for the checks."""
    cdef list out = []
    cdef TaskResult result
    cdef dict metadata
    for doc in docs:
        result = build_task_result(doc, alt)
        if "reused_from" not in result.stored_metadata:
            metadata = dict(result.stored_metadata)     # the journal's dict stays as it was read
            metadata["reused_from"] = last_id
            result.stored_metadata = metadata
        out.append(result)
    return out
