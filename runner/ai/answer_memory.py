"""Giving back the memory that reading a large AI answer left behind.

Reading an answer of N bytes allocates about 3N on the worker thread that made the call
(the body, the parser's buffers, the text), and keeps N (the text). glibc keeps what was
freed in that thread's arena and, once a block of this size was freed, no longer maps
blocks up to 32 MiB separately: the freed 2N stayed resident and could not serve the
allocations of the thread that writes the LAST file, so the two peaks added up (a 30 MB
answer peaked at 4x its size). malloc_trim returns free pages of every arena to the system.
"""
from __future__ import annotations

import ctypes
import ctypes.util

# Below this an answer's garbage is not worth a walk over the heap.
TRIM_ABOVE_BYTES = 4 << 20


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):       # not glibc: nothing to trim this way
        return None


_TRIM = _malloc_trim()


def release_large_garbage(answer_size: int) -> None:
    """After an answer of answer_size characters was read and its buffers dropped."""
    if _TRIM is not None and answer_size > TRIM_ABOVE_BYTES:
        _TRIM(0)
