"""Error codes and version macros of the C ABI: every runner_error_code from a C host and
through ctypes, RUNNER_OK after a success, and RUNNER_ABI_VERSION matching runner_get_version."""
from __future__ import annotations

import json
import re
import sysconfig
import threading
import time

import pytest

from conftest import REPO, run_clean
from runner import errors
from runner.execution import background

HEADER = REPO / "include" / "runner_ffi.h"
ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep"}
ALT = b'{"id":"codes","title":"Codes","tasks":[{"id":"a","dependencies":null}]}'
SLOW = (b'{"id":"slow","title":"Slow","tasks":[{"id":"sleeper","description":"s",'
        b'"parameters":{"task_type":"system_command","command":["sleep","30"]}}]}')


def header_codes() -> dict[str, int]:
    text = HEADER.read_text()
    body = re.search(r"typedef enum runner_error_code \{(.*?)\} runner_error_code;", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {name: int(value) for name, value in re.findall(r"(RUNNER_\w+)\s*=\s*(\d+)", body)}


def header_macro(name: str) -> str:
    return re.search(rf"^#define {name} (\S+)$", HEADER.read_text(), re.M).group(1).strip('"')


CODES = header_codes()


def test_the_header_codes_are_the_error_family_categories():
    assert CODES["RUNNER_OK"] == 0
    assert {name: code for name, code in CODES.items() if name != "RUNNER_OK"} == {
        f"RUNNER_ERROR_{category.upper()}": code for category, code in errors.ERROR_CODES.items()}
    # Every class of the family carries its code, which the C shim passes on.
    for kind in (errors.RunnerError, errors.ConfigurationError, errors.AltValidationError, errors.UnknownIdError,
                 errors.DeliveryError, errors.CancelledError, errors.TaskResultError):
        assert kind.error_code == errors.ERROR_CODES[kind.category]


@pytest.fixture(scope="module")
def error_codes_host(cc, tmp_path_factory):
    python_flags = [f"-I{sysconfig.get_paths()['include']}", f"-L{sysconfig.get_config_var('LIBDIR')}",
                    f"-lpython{sysconfig.get_config_var('LDVERSION')}", "-lpthread"]
    build = tmp_path_factory.mktemp("error_codes")
    return cc(REPO / "tests" / "c" / "error_codes.c", build / "error_codes", python_flags)


def test_each_error_code_from_a_c_host(error_codes_host, tmp_path):
    environment = [f"{name}={value}" for name, value in {**ENABLED, "RUNNER_GRACE_SECONDS": "0.2"}.items()]
    completed = run_clean([*environment, error_codes_host, tmp_path])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    shown = {line.removesuffix(": ok") for line in completed.stdout.splitlines() if line.endswith(": ok")}
    assert set(CODES) <= shown, set(CODES) - shown
    assert "error codes: ok" in completed.stdout


def code_of(runner) -> int:
    return runner.runner_get_last_error_code()


def test_each_error_code_through_ctypes(runner, tmp_path, monkeypatch):
    lib = runner
    assert lib.runner_parse_alt_file(ALT) == 1
    assert code_of(lib) == CODES["RUNNER_OK"]
    assert lib.runner_parse_alt_file(None) == 0
    assert code_of(lib) == CODES["RUNNER_ERROR_INVALID_ARGUMENT"]
    assert lib.last_error() == "runner_parse_alt_file: argument 'json' is NULL"
    assert code_of(lib) == CODES["RUNNER_ERROR_INVALID_ARGUMENT"]      # reading the message left it
    assert lib.runner_parse_alt_file(b'{"id": 1}') == 0
    assert code_of(lib) == CODES["RUNNER_ERROR_INVALID_ALT"]
    assert lib.runner_get_warnings(b"codes") is not None
    assert code_of(lib) == CODES["RUNNER_OK"]                            # a success, the message kept
    assert lib.last_error().startswith("runner_parse_alt_file: ")
    assert lib.runner_get_warnings(b"missing") is None
    assert code_of(lib) == CODES["RUNNER_ERROR_NOT_FOUND"]
    assert lib.runner_add_task_result(b"codes", b'{"task_id":"a","status":"perhaps"}') == 0
    assert code_of(lib) == CODES["RUNNER_ERROR_INVALID_TASK_RESULT"]
    assert lib.runner_get_warnings(b"\xff") is None
    assert code_of(lib) == CODES["RUNNER_ERROR_INVALID_ARGUMENT"]        # not UTF-8
    with monkeypatch.context() as patch:
        patch.setenv("RUNNER_ARCHIVE", "rar")
        assert lib.runner_generate_last_file(b"codes", str(tmp_path).encode()) is None
        assert code_of(lib) == CODES["RUNNER_ERROR_CONFIGURATION"]
    (tmp_path / "a_file").write_text("")
    assert lib.runner_generate_last_file(b"codes", str(tmp_path / "a_file" / "below").encode()) is None
    assert code_of(lib) == CODES["RUNNER_ERROR_IO"]
    with monkeypatch.context() as patch:
        patch.setenv("RUNNER_NATS_URL", "nats://127.0.0.1:1")
        patch.setenv("RUNNER_NATS_REQUIRED", "true")
        assert lib.runner_generate_last_file(b"codes", str(tmp_path).encode()) is None
        assert code_of(lib) == CODES["RUNNER_ERROR_DELIVERY"]
    with monkeypatch.context() as patch:
        for name, value in ENABLED.items():
            patch.setenv(name, value)
        assert lib.runner_parse_alt_file(SLOW) == 1
        run_id = lib.take(lib.runner_run_start(b"slow", str(tmp_path).encode()))
        assert lib.runner_run_wait(run_id.encode(), 0) is None
        assert code_of(lib) == CODES["RUNNER_ERROR_TIMEOUT"]
        assert lib.runner_run_cancel(run_id.encode()) == 1
        assert lib.take(lib.runner_run_wait(run_id.encode(), -1))
    with monkeypatch.context() as patch:
        patch.setattr(background.Runs, "get", lambda self, run_id: 1 / 0)
        assert lib.runner_run_status(b"any") is None
        assert code_of(lib) == CODES["RUNNER_ERROR_INTERNAL"]
        assert lib.last_error() == "runner_run_status: internal error: ZeroDivisionError: division by zero"

        def out_of_memory(self, run_id):
            raise MemoryError()
        patch.setattr(background.Runs, "get", out_of_memory)
        assert lib.runner_run_status(b"any") is None
        assert code_of(lib) == CODES["RUNNER_ERROR_OUT_OF_MEMORY"]
    assert lib.runner_cleanup() == 1
    assert code_of(lib) == CODES["RUNNER_OK"]
    assert lib.runner_parse_alt_file(ALT) == 0
    assert code_of(lib) == CODES["RUNNER_ERROR_NOT_INITIALISED"]
    assert lib.runner_init() == 1


def test_a_run_runner_cleanup_interrupts_reports_cancelled(runner, tmp_path, monkeypatch):
    for name, value in {**ENABLED, "RUNNER_GRACE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(name, value)
    assert runner.runner_parse_alt_file(SLOW) == 1
    box = {}

    def run():
        box["id"] = runner.lib.runner_execute_alt_file(b"slow", str(tmp_path).encode())
        box["code"] = runner.runner_get_last_error_code()       # this thread's own

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    assert runner.runner_cleanup() == 1
    thread.join(30)
    assert runner.runner_init() == 1
    assert box == {"id": None, "code": CODES["RUNNER_ERROR_CANCELLED"]}


def test_codes_are_per_thread(runner):
    assert runner.runner_parse_alt_file(b"{") == 0
    seen = []
    thread = threading.Thread(target=lambda: seen.append(runner.runner_get_last_error_code()))
    thread.start()
    thread.join()
    assert seen == [CODES["RUNNER_OK"]]
    assert runner.runner_get_last_error_code() == CODES["RUNNER_ERROR_INVALID_ALT"]


VERSION_PROBE = r"""
#include <stdio.h>
#include "runner_ffi.h"
int main(void) {
    char *json = runner_get_version();
    printf("%d %d %d %s %d\n%s\n", RUNNER_ABI_VERSION_MAJOR, RUNNER_ABI_VERSION_MINOR, RUNNER_ABI_VERSION_PATCH,
           RUNNER_ABI_VERSION, RUNNER_ABI_VERSION_NUMBER, json);
    runner_free_string(json);
    return 0;
}
"""


def test_the_version_macros_match_runner_get_version(cc, tmp_path, runner):
    source = tmp_path / "version.c"
    source.write_text(VERSION_PROBE)
    completed = run_clean([cc(source, tmp_path / "version")])
    assert completed.returncode == 0, completed.stderr
    macros, json_text = completed.stdout.splitlines()
    major, minor, patch, whole, number = macros.split()
    version = json.loads(json_text)
    assert whole == f"{major}.{minor}.{patch}" == version["abi_version"]
    assert int(major) == version["abi"]
    assert int(number) == int(major) * 1000000 + int(minor) * 1000 + int(patch)
    # ctypes sees the same library, and the header's macros say the same.
    loaded = json.loads(runner.take(runner.runner_get_version()))
    assert loaded == version and loaded["abi_version"] == header_macro("RUNNER_ABI_VERSION")
