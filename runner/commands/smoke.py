"""`python -m runner smoke`: a self-test of librunner.so as a C caller sees it.

A child process loads the library with ctypes (not through `import runner`), runs the
documented flow and prints each step; the parent reports `smoke: ok` only if the child
succeeded, so a crash in the library shows as a failure, not as a dead CLI.
"""
from __future__ import annotations

import sys

DESCRIPTION = """\
A self-test of librunner.so as a C caller sees it: a child process loads the library with
ctypes and runs the documented flow; prints each step, then "smoke: ok"."""
EPILOG = """\
example:
  python -m runner smoke

exit codes:
  0  the flow ran
  1  it did not (the child's output says where)"""


ALT_FILE = {
    "id": "smoke_alt",
    "title": "librunner smoke test",
    "mode": "normal",
    "tasks": [
        {"id": "task1", "description": "First task", "dependencies": None},
        {"id": "task2", "description": "Second task", "dependencies": ["task1"]},
    ],
}
RESULTS = [
    {"task_id": "task1", "status": "completed", "output": {"text": "Task 1 output"}},
    {"task_id": "task2", "status": "failed", "error": "Task 2 failed"},
]


class SmokeFailure(Exception):
    pass


def _take(lib, pointer) -> str:
    """Copies a returned string and frees the original; NULL raises the thread's error."""
    from runner import abi

    if not pointer:
        raise SmokeFailure(abi.take_string(lib, lib.runner_get_last_error()))
    return abi.take_string(lib, pointer)


def _check(lib, ok: int) -> None:
    if ok != 1:
        _take(lib, None)


def child(path: str) -> int:
    import ctypes
    import json
    import tempfile

    from runner import abi

    lib = abi.load(path)
    step = lambda text: print(f"smoke: {text}", flush=True)  # noqa: E731
    try:
        step(f"version {_take(lib, lib.runner_get_version())}")
        _check(lib, lib.runner_init())
        step("runner_init ok")
        _check(lib, lib.runner_parse_alt_file(json.dumps(ALT_FILE).encode()))
        step(f"parsed ALT file '{ALT_FILE['id']}'")
        for result in RESULTS:
            _check(lib, lib.runner_add_task_result(ALT_FILE["id"].encode(), json.dumps(result).encode()))
            step(f"added result of {result['task_id']} ({result['status']})")
        if lib.runner_add_task_result(ALT_FILE["id"].encode(), b'{"task_id":"nope","status":"completed"}'):
            raise SmokeFailure("a result for an unknown task was accepted")
        error = _take(lib, lib.runner_get_last_error())
        step(f"unknown task refused: {error}")
        with tempfile.TemporaryDirectory() as out:
            last_id = _take(lib, lib.runner_generate_last_file(ALT_FILE["id"].encode(), out.encode()))
            step(f"generated LAST file {last_id}")
            last = json.loads(_take(lib, lib.runner_get_last_file_json(last_id.encode())))
            if abs(last["success_rate"] - 0.5) > 1e-9 or last["status"] != "partialsuccess":
                raise SmokeFailure(f"unexpected LAST content: {last['success_rate']}, {last['status']}")
            step(f"LAST file success rate: {last['success_rate'] * 100:.2f}%")
            batch = json.loads(_take(lib, lib.runner_batch_process(b'["smoke_alt", "missing"]', out.encode())))
            if not batch["missing"].startswith("ERROR: ") or batch["smoke_alt"].startswith("ERROR"):
                raise SmokeFailure(f"unexpected batch result: {batch}")
            step(f"batch: {batch}")
        lib.runner_free_string(ctypes.c_void_p(12345))  # a foreign pointer must be refused
        step(f"foreign pointer refused: {_take(lib, lib.runner_get_last_error())}")
        _check(lib, lib.runner_cleanup())
        step("runner_cleanup ok")
    except SmokeFailure as failure:
        print(f"smoke: FAILED: {failure}", flush=True)
        return 1
    return 0


def run(library: str | None = None) -> int:
    import subprocess

    from runner import buildinfo

    path = library or str(buildinfo.library_path())
    print(f"smoke: loading {path} in a child process", flush=True)
    completed = subprocess.run([sys.executable, "-m", "runner.commands.smoke", path])
    if completed.returncode != 0:
        print(f"smoke: FAILED (child exited with {completed.returncode})")
        return 1
    print("smoke: ok")
    return 0


def main(args) -> int:
    return run(args.library)


def register(subparsers) -> None:
    parser = subparsers.add_parser("smoke", help="self-test: load librunner.so with ctypes and run the documented flow",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--library", help="the librunner.so to test (default: the installed one)")
    parser.set_defaults(func=main)


if __name__ == "__main__":
    raise SystemExit(child(sys.argv[1]))
