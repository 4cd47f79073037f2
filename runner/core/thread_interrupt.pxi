# Raising an exception in another thread: what stops a prompt template's render that never
# yields (runner/execution/prompt_templates.py, its _RenderWatch).

from cpython.object cimport PyObject
from cpython.pythread cimport PyThread_get_thread_ident

cdef extern from "Python.h":
    # CPython's own prototype (the thread id is an unsigned long since 3.7; Cython's
    # cpython.pystate still declares a long).
    int set_async_exc "PyThreadState_SetAsyncExc" (unsigned long thread_id, PyObject *exception)


cdef class ThreadInterrupt:
    """Raises `exception` (a class) in the thread inside `with` it, from any thread, at that
    thread's next bytecode, even in a loop that calls nothing; never once it has left.

    Written in C because of that "never": each method runs start to end holding the GIL
    and runs no Python code, so stop() and insist() cannot interleave with leaving, and the
    thread cannot be interrupted half-way out (a Python __exit__ could be, before its
    first line, and leave the guard armed for whatever the thread ran next)."""

    cdef unsigned long thread_id
    cdef object exception
    cdef bint inside
    cdef readonly object reason

    def __cinit__(self, type exception not None):
        self.exception = exception

    def __enter__(self):
        self.thread_id = PyThread_get_thread_ident()
        self.inside = True
        return self

    def __exit__(self, *exc_info):
        self.inside = False
        if self.reason is not None:
            set_async_exc(self.thread_id, NULL)     # one raised but not yet seen
        return False

    def stop(self, reason):
        """Raises the exception in the thread inside, recording `reason`. False, and nothing
        raised, when no thread is inside or it was stopped already."""
        if not self.inside or self.reason is not None:
            return False
        self.reason = reason
        set_async_exc(self.thread_id, <PyObject *>self.exception)
        return True

    def insist(self):
        """Raises it again after stop(), for when code in that thread swallowed it (an
        exception raised in a weakref callback or a __del__ is only printed). False once
        the thread has left (or was never stopped), when there is nothing more to do."""
        if not self.inside or self.reason is None:
            return False
        set_async_exc(self.thread_id, <PyObject *>self.exception)
        return True
