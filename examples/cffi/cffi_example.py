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


class RunnerFailure(RuntimeError):
    """A failed call: `code` is its runner_error_code (lib.RUNNER_ERROR_INVALID_ALT, ...)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def take(pointer) -> str:
    """Copies a string the library returned, then gives it back to the library."""
    if pointer == ffi.NULL:
        code = lib.runner_get_last_error_code()     # before anything else is called
        error = lib.runner_get_last_error()
        message = ffi.string(error).decode()
        lib.runner_free_string(error)
        raise RunnerFailure(message, code)
    try:
        return ffi.string(pointer).decode()
    finally:
        lib.runner_free_string(pointer)


def check(ok: int) -> None:
    if ok != 1:
        take(ffi.NULL)


if not lib.runner_init():
    take(ffi.NULL)
# The header read above and the library loaded describe the same ABI.
loaded = json.loads(take(lib.runner_get_version()))
declared = re.search(r'#define RUNNER_ABI_VERSION "([^"]+)"', (buildinfo.include_dir() / "runner_ffi.h").read_text())
assert declared and loaded["abi_version"] == declared.group(1), (loaded, declared)
try:
    check(lib.runner_parse_alt_file(b'{"id": "broken"}'))
except RunnerFailure as failure:
    assert failure.code == lib.RUNNER_ERROR_INVALID_ALT, failure.code
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
