"""Shared fixtures: the built library, a C compiler that links against it, ALT documents."""
from __future__ import annotations

import copy
import ctypes
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# The suite's temporary folder, for this process and every process it starts (TMPDIR), made
# before any test module is imported and removed at the end: a run that does not finish
# keeps its temporary workspace there for its resume, and the suite interrupts many runs.
# Made once (imported as tests.conftest too, this module runs twice); removed only by the
# session that made it.
_MADE_HERE = "LIBRUNNER_TESTS_TMPDIR" not in os.environ
SUITE_TEMPORARY = tempfile.mkdtemp(prefix="librunner-tests-") if _MADE_HERE else os.environ["LIBRUNNER_TESTS_TMPDIR"]
os.environ["LIBRUNNER_TESTS_TMPDIR"] = os.environ["TMPDIR"] = tempfile.tempdir = SUITE_TEMPORARY

from runner import abi, buildinfo  # noqa: E402  (after TMPDIR: nothing may read the old one)

# CI (CI=true) replays the same examples on every run; local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
# ALT files from the wider ALT_LAS system: the shared copy beside the checkout (as CI has it),
# else the copy kept in tests/fixtures, so the suite runs wherever the clone sits.
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
FIXTURES = SHARED_FIXTURES if SHARED_FIXTURES.is_dir() else REPO / "tests" / "fixtures"
LIBRARY = buildinfo.library_path()

# The two-task ALT file of the specification's examples.
SPEC_ALT = {
    "id": "test_alt_file",
    "title": "Test ALT File",
    "mode": "normal",
    "tasks": [
        {"id": "task1", "description": "First task", "dependencies": None},
        {"id": "task2", "description": "Second task", "dependencies": ["task1"]},
    ],
}


@pytest.fixture
def task_type_registry():
    """Task types a test registers are removed after it (modules that register use it for
    every test: pytestmark = pytest.mark.usefixtures("task_type_registry"))."""
    from runner.execution import task_types

    before = set(task_types._REGISTRY)
    yield
    for name in set(task_types._REGISTRY) - before:
        task_types.unregister(name)


@pytest.fixture
def spec_alt() -> dict:
    return copy.deepcopy(SPEC_ALT)


@pytest.fixture(scope="session")
def library_path() -> Path:
    assert LIBRARY.is_file(), f"{LIBRARY} is not built: run pip install -e '.[test]'"
    return LIBRARY


def bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Prototypes that keep the original pointers (c_void_p), so strings can be freed."""
    return abi.declare(lib)


class Runner:
    """The C ABI through ctypes, with strings copied out and freed."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib

    def take(self, pointer) -> str | None:
        return abi.take_string(self.lib, pointer)

    def last_error(self) -> str:
        return self.take(self.lib.runner_get_last_error())

    def __getattr__(self, name):
        return getattr(self.lib, name)


@pytest.fixture
def runner(library_path):
    """The library loaded by ctypes in this process, initialised, cleaned up afterwards."""
    lib = bind(ctypes.CDLL(str(library_path)))
    assert lib.runner_init() == 1
    yield Runner(lib)
    assert lib.runner_cleanup() == 1


@pytest.fixture(scope="session")
def cc():
    """Compiles a C file against the installed library with `python -m runner config`."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    flags = subprocess.run([sys.executable, "-m", "runner", "config", "--cflags", "--libs"],
                           check=True, capture_output=True, text=True).stdout.split()

    def build(source: Path, output: Path, extra=()) -> Path:
        subprocess.run([compiler, "-O2", "-Wall", "-Werror", str(source), *flags, *extra, "-o", str(output)],
                       check=True)
        return output

    return build


def run_clean(argv, **kwargs) -> subprocess.CompletedProcess:
    """Runs a program under `env -i`: no PATH, PYTHONPATH or LD_LIBRARY_PATH from us (only the
    suite's TMPDIR: the runs it interrupts keep their workspaces there)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(["env", "-i", f"TMPDIR={SUITE_TEMPORARY}", *[str(a) for a in argv]], **kwargs)


def wait_until(predicate, limit: float) -> bool:
    """Polls predicate until it holds or `limit` seconds pass; a liveness bound, not a timing."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def dumps(value) -> bytes:
    return json.dumps(value).encode()


DAMAGE_ALPHABET = b'{}[]",:\\ 0123456789.eE+-tfnulrsaxu\xc3\xa9\xff\x00\n'


def damaged_copies(data: bytes, count: int, seed: int):
    """`count` copies of `data`, each with 1 to 3 bytes changed, dropped or added at random
    places (seeded: the same copies every run), for readers that must judge any damage as
    the full reader judges it."""
    rng = random.Random(seed)
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(damaged))
            action = rng.random()
            if action < 0.4:
                damaged[at] = rng.choice(DAMAGE_ALPHABET)
            elif action < 0.7:
                del damaged[at]
            else:
                damaged.insert(at, rng.choice(DAMAGE_ALPHABET))
        yield bytes(damaged)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _MADE_HERE:
        shutil.rmtree(SUITE_TEMPORARY, ignore_errors=True)
