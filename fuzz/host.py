"""The C ABI as a fuzz target sees it: the installed librunner.so loaded with ctypes, as a
C host would load it, and the one rule every target asserts.

The rule (issue 12): no input gets "internal error". A call that fails must say what was
wrong with the input; an "internal error" is a bug, and so is a crash, a call that fails
without an error, or a LAST file refused after its ALT file and results were accepted.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import orjson

    from runner import abi, buildinfo
    from runner.workspace import remove_tree

# Long campaigns store thousands of documents: start afresh every so many inputs.
CLEANUP_EVERY = 500


class InternalError(AssertionError):
    """A call answered "internal error", or failed without saying why."""


class Host:
    """librunner.so through ctypes, initialised; strings copied out and freed."""

    def __init__(self):
        # Only what a test needs: no graph drawing by GraphViz, no report (the HTML writer
        # is fuzzed through the LAST record it reads, which every generation still builds).
        os.environ.setdefault("RUNNER_GRAPH_RENDERER", "builtin")
        os.environ.setdefault("RUNNER_LOG_LEVEL", "error")
        self.lib = abi.load(buildinfo.library_path())
        self.calls = 0
        self.output = Path(tempfile.mkdtemp(prefix="runner-fuzz-", dir=_scratch()))
        self._init()

    def _init(self):
        if self.lib.runner_init() != 1:
            raise InternalError(f"runner_init failed: {self.error()}")

    def tick(self) -> bool:
        """Called once per input: every CLEANUP_EVERY inputs all state is released (True)."""
        self.calls += 1
        if self.calls % CLEANUP_EVERY:
            return False
        if self.lib.runner_cleanup() != 1:
            raise InternalError("runner_cleanup failed")
        self._init()
        remove_tree(self.output)
        self.output.mkdir()
        return True

    def take(self, pointer) -> str | None:
        return abi.take_string(self.lib, pointer)

    def error(self) -> str:
        return self.take(self.lib.runner_get_last_error()) or ""

    def failed(self, function: str) -> str:
        """The error of a call that just failed, checked against the rule."""
        message = self.error()
        check_message(function, message)
        return message

    def parse(self, document: bytes) -> bool:
        if self.lib.runner_parse_alt_file(document) == 1:
            return True
        self.failed("runner_parse_alt_file")
        return False

    def add(self, alt_id: bytes, result: bytes) -> bool:
        if self.lib.runner_add_task_result(alt_id, result) == 1:
            return True
        self.failed("runner_add_task_result")
        return False

    def generate(self, alt_id: bytes) -> str:
        """The LAST id: the ALT file was stored, so the LAST file must be written."""
        last_id = self.take(self.lib.runner_generate_last_file(alt_id, str(self.output).encode()))
        if last_id is None:
            raise InternalError(f"runner_generate_last_file refused a stored ALT file: {self.error()}")
        remove_tree(self.output / last_id)
        return last_id


def check_message(function: str, message: str) -> None:
    if not message:
        raise InternalError(f"{function} failed without an error message")
    if "internal error" in message:
        raise InternalError(message)


def _scratch() -> str | None:
    """Memory-backed /dev/shm when there is one: generations write files at every input."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def alt_id_of(document: bytes) -> bytes | None:
    """The id of a JSON ALT document that was stored (so it parsed as an object with one)."""
    alt_id = orjson.loads(document).get("id")
    return alt_id.encode() if isinstance(alt_id, str) else None


def c_string(data: bytes) -> bytes:
    """A C string argument: the ABI reads up to the first NUL."""
    return data.split(b"\0", 1)[0]


def main(test_one_input) -> None:
    """Runs a target under libFuzzer with the command line's options (-runs, -max_total_time...)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
