# Raising an exception in another thread: what stops a prompt template's render that never
# yields (runner/execution/prompt_templates.py, its _RenderGuard).

from cpython.object cimport PyObject

cdef extern from "Python.h":
    # CPython's own prototype (the thread id is an unsigned long since 3.7; Cython's
    # cpython.pystate still declares a long).
    int set_async_exc "PyThreadState_SetAsyncExc" (unsigned long thread_id, PyObject *exception)


def raise_in_thread(unsigned long thread_id, type exception):
    """Makes the thread `thread_id` (threading.get_ident()) raise `exception`, a class, at
    its next bytecode, even in a loop that calls nothing. Returns how many threads were
    changed: 0 when no thread has that id."""
    return set_async_exc(thread_id, <PyObject *>exception)


def clear_in_thread(unsigned long thread_id):
    """Withdraws an exception raise_in_thread set in `thread_id` that it has not raised yet."""
    return set_async_exc(thread_id, NULL)
