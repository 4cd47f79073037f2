# Text whose doubles are written later, without the GIL: the journal's task_results lines
# (journal_rows.pxi) are made under the GIL but for their rows' doubles, whose text
# (shortest_double.h) the journal's writer makes in write_synced (gil_handoff.pxi), on its own
# core, beside the run's drain. A row's two doubles were half of what its line cost the GIL.

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy as copy_bytes

cdef extern from "core/shortest_double.h":
    int RUNNER_DOUBLE_TEXT_MAX
    int RUNNER_CACHED_POWERS
    void runner_set_cached_power(int index, uint64_t f, int e)
    int runner_double_text(double value, char *out) nogil


cdef void fill_cached_powers():
    """Grisu's powers 10^-348, 10^-340, ..., 10^340 as 64-bit significands rounded to nearest
    and their binary exponents, computed exactly with Python's integers."""
    cdef int index
    for index in range(RUNNER_CACHED_POWERS):
        k = -348 + 8 * index
        if k >= 0:
            shift = (10 ** k).bit_length() - 64
            f = (10 ** k + (1 << (shift - 1))) >> shift if shift > 0 else 10 ** k << -shift
        else:
            divisor = 10 ** -k
            shift = 63 + divisor.bit_length()
            while ((1 << shift) // divisor).bit_length() < 64:
                shift += 1
            while ((1 << shift) // divisor).bit_length() > 64:
                shift -= 1
            quotient, remainder = divmod(1 << shift, divisor)
            f = quotient + (1 if 2 * remainder >= divisor else 0)
            shift = -shift
        if f >> 64:
            f >>= 1
            shift += 1
        runner_set_cached_power(index, f, shift)


fill_cached_powers()


def double_text(double value):
    """value's text as the journal's rows hold it (shortest_double.h): reads back as value;
    orjson's text for ~99.9% of doubles, a digit longer or a last digit not the nearest for
    the rest. NaN and the infinities: null."""
    cdef char out[32]
    cdef int length = runner_double_text(value, out)
    return out[:length]


cdef struct TextParts:
    # A TextWithDoubles's fields, for render_text without the GIL.
    const char *data
    Py_ssize_t size
    const Py_ssize_t *at
    const double *values
    Py_ssize_t count


cdef char *render_text(const TextParts *text, Py_ssize_t *size) noexcept nogil:
    """The text with its doubles, in a buffer of malloc's (the caller frees it); NULL when
    there is no memory for it. What it reads belongs to a TextWithDoubles the caller holds,
    which nobody changes meanwhile."""
    cdef char *out = <char *>malloc(text.size + text.count * RUNNER_DOUBLE_TEXT_MAX + 1)
    cdef Py_ssize_t i, taken = 0, made = 0
    if out == NULL:
        return NULL
    for i in range(text.count):
        copy_bytes(out + made, text.data + taken, text.at[i] - taken)
        made += text.at[i] - taken
        taken = text.at[i]
        made += runner_double_text(text.values[i], out + made)
    copy_bytes(out + made, text.data + taken, text.size - taken)
    size[0] = made + text.size - taken
    return out


@cython.final
cdef class TextWithDoubles:
    """A text and the doubles to be put in it, each at its place (a byte offset of the text,
    in order): what render() joins, with or without the GIL."""
    cdef bytes text
    cdef const char *data
    cdef Py_ssize_t size
    cdef Py_ssize_t *at
    cdef double *values
    cdef Py_ssize_t count, capacity

    def __cinit__(self):
        self.text = b""
        self.data = PyBytes_AS_STRING(self.text)

    def __dealloc__(self):
        PyMem_Free(self.at)
        PyMem_Free(self.values)

    cdef inline int put(self, Py_ssize_t at, double value) except -1:
        """value's text goes at `at` (at or after every place put before)."""
        if self.count == self.capacity:
            self.grow()
        self.at[self.count] = at
        self.values[self.count] = value
        self.count += 1
        return 0

    cdef int grow(self) except -1:
        """Room for twice the places (put's rare path, out of line)."""
        cdef Py_ssize_t capacity = self.capacity * 2 if self.capacity else 256
        cdef void *grown
        grown = PyMem_Realloc(self.at, capacity * sizeof(Py_ssize_t))
        if grown == NULL:
            raise MemoryError()
        self.at = <Py_ssize_t *>grown
        grown = PyMem_Realloc(self.values, capacity * sizeof(double))
        if grown == NULL:
            raise MemoryError()
        self.values = <double *>grown
        self.capacity = capacity
        return 0

    cdef void drop_after(self, Py_ssize_t mark):
        """Forgets the doubles put after `mark`: the text from there was cut."""
        while self.count and self.at[self.count - 1] > mark:
            self.count -= 1

    cdef void set_text(self, bytes text):
        self.set_text_sized(text, PyBytes_GET_SIZE(text))

    cdef void set_text_sized(self, bytes buffer, Py_ssize_t size):
        """The text: the first `size` bytes of `buffer`."""
        self.text = buffer
        self.data = PyBytes_AS_STRING(buffer)
        self.size = size

    cdef TextParts parts(self):
        cdef TextParts parts
        parts.data, parts.size, parts.at, parts.values, parts.count = self.data, self.size, self.at, self.values, self.count
        return parts

    def __bytes__(self):
        return self.joined()

    cdef bytes joined(self):
        """The whole text, as bytes."""
        cdef Py_ssize_t size
        cdef char *out
        cdef bytes text
        if self.count == 0 and PyBytes_GET_SIZE(self.text) == self.size:
            return self.text
        cdef TextParts parts = self.parts()
        with nogil:
            out = render_text(&parts, &size)
        if out == NULL:
            raise MemoryError()
        try:
            text = PyBytes_FromStringAndSize(out, size)
        finally:
            free(out)
        return text
