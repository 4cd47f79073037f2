"""The documented flow through cffi in ABI mode, with the declarations read from the installed header.

Run: python examples/cffi/cffi_example.py [path/to/librunner.so]
"""
import json
import re
import sys
import tempfile

import cffi

from runner import buildinfo


def header_declarations(path) -> str:
    """runner_ffi.h without comments, preprocessor lines and the C++ guard: what cdef() accepts."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    lines = [line for line in text.splitlines()
             if not line.lstrip().startswith("#") and 'extern "C"' not in line and line.strip() != "}"]
    return "\n".join(lines)


ffi = cffi.FFI()
ffi.cdef(header_declarations(buildinfo.include_dir() / "runner_ffi.h"))
lib = ffi.dlopen(sys.argv[1] if len(sys.argv) > 1 else str(buildinfo.library_path()))


def take(pointer) -> str:
    """Copies a string the library returned, then gives it back to the library."""
    if pointer == ffi.NULL:
        error = lib.runner_get_last_error()
        message = ffi.string(error).decode()
        lib.runner_free_string(error)
        raise RuntimeError(message)
    try:
        return ffi.string(pointer).decode()
    finally:
        lib.runner_free_string(pointer)


def check(ok: int) -> None:
    if ok != 1:
        take(ffi.NULL)


if not lib.runner_init():
    take(ffi.NULL)
try:
    alt_file = {
        "id": "test_alt_file",
        "title": "Test ALT File",
        "mode": "normal",
        "tasks": [
            {"id": "task1", "description": "First task", "dependencies": None},
            {"id": "task2", "description": "Second task", "dependencies": ["task1"]},
        ],
    }
    check(lib.runner_parse_alt_file(json.dumps(alt_file).encode()))
    check(lib.runner_add_task_result(b"test_alt_file", json.dumps(
        {"task_id": "task1", "status": "completed", "output": {"text": "Task 1 output"}}).encode()))
    check(lib.runner_add_task_result(b"test_alt_file", json.dumps(
        {"task_id": "task2", "status": "failed", "error": "Task 2 failed"}).encode()))
    with tempfile.TemporaryDirectory() as temp_dir:
        last_id = take(lib.runner_generate_last_file(b"test_alt_file", temp_dir.encode()))
        print(f"Generated LAST file: {last_id}")
        last_data = json.loads(take(lib.runner_get_last_file_json(last_id.encode())))
        print(f"LAST file success rate: {last_data['success_rate'] * 100:.2f}%")
finally:
    lib.runner_cleanup()
