"""The C ABI as ctypes sees it.

Every function that returns a string is declared to return c_void_p, not c_char_p: with
c_char_p ctypes hands Python a copy, and the original could never be given back to
runner_free_string.
"""
from __future__ import annotations

import ctypes
import os

_TEXT, _POINTER = ctypes.c_char_p, ctypes.c_void_p
# runner_task_handler: int (*)(runner_task *task, void *user_data). Keep the object made
# from a Python function alive as long as the type is registered.
TASK_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
PROTOTYPES = (
    ("runner_init", [], ctypes.c_int),
    ("runner_get_last_error", [], _POINTER),
    ("runner_get_last_error_code", [], ctypes.c_int),
    ("runner_free_string", [_POINTER], None),
    ("runner_parse_alt_file", [_TEXT], ctypes.c_int),
    ("runner_add_task_result", [_TEXT, _TEXT], ctypes.c_int),
    ("runner_generate_last_file", [_TEXT, _TEXT], _POINTER),
    ("runner_get_last_file_json", [_TEXT], _POINTER),
    ("runner_get_warnings", [_TEXT], _POINTER),
    ("runner_batch_process", [_TEXT, _TEXT], _POINTER),
    ("runner_execute_alt_file", [_TEXT, _TEXT], _POINTER),
    ("runner_run_start", [_TEXT, _TEXT], _POINTER),
    ("runner_run_status", [_TEXT], _POINTER),
    ("runner_run_events", [_TEXT, ctypes.c_longlong], _POINTER),
    ("runner_run_cancel", [_TEXT], ctypes.c_int),
    ("runner_run_wait", [_TEXT, ctypes.c_int], _POINTER),
    ("runner_resume", [_TEXT, _TEXT, _TEXT], _POINTER),
    ("runner_cleanup", [], ctypes.c_int),
    ("runner_get_version", [], _POINTER),
    ("runner_register_task_type", [_TEXT, TASK_HANDLER, _POINTER], ctypes.c_int),
    ("runner_task_json", [_POINTER], _TEXT),         # owned by the library: a copy is right
    ("runner_task_set_output", [_POINTER, _TEXT], ctypes.c_int),
    ("runner_task_set_error", [_POINTER, _TEXT], ctypes.c_int),
    ("runner_task_cancelled", [_POINTER], ctypes.c_int),
)


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Sets argtypes and restype of every function of runner_ffi.h on a loaded library."""
    for name, argtypes, restype in PROTOTYPES:
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def load(path: str | os.PathLike) -> ctypes.CDLL:
    return declare(ctypes.CDLL(str(path)))


def take_string(lib: ctypes.CDLL, pointer) -> str | None:
    """Copies a string the library returned and gives the original back; None for NULL."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode()
    finally:
        lib.runner_free_string(pointer)
