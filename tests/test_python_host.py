"""librunner.so inside a running Python: the documented ctypes example, cffi, state, errors, strings."""
from __future__ import annotations

import ctypes
import json
import re
import subprocess
import sys
import threading

import pytest

from conftest import REPO, dumps


def run_python(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


def test_documented_ctypes_example_prints_the_success_rate(tmp_path, library_path):
    completed = run_python(REPO / "examples/python_ctypes/documented_example.py", library_path, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "LAST file success rate: 50.00%" in completed.stdout.splitlines()
    assert re.match(r"Generated LAST file: [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n", completed.stdout), completed.stdout


def test_cffi_abi_mode_runs_the_same_flow(tmp_path, library_path):
    completed = run_python(REPO / "examples/cffi/cffi_example.py", library_path, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "LAST file success rate: 50.00%" in completed.stdout.splitlines()


def test_ctypes_and_import_runner_share_one_state(runner, spec_alt):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    from runner import librunner

    assert librunner.STORE.alt_file("test_alt_file").title == "Test ALT File"


def test_generated_last_file_is_on_disk_and_matches_the_json(runner, spec_alt, tmp_path):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_add_task_result(b"test_alt_file", b'{"task_id":"task1","status":"completed"}') == 1
    last_id = runner.take(runner.runner_generate_last_file(b"test_alt_file", str(tmp_path).encode()))
    on_disk = json.loads((tmp_path / last_id / "last.json").read_bytes())
    served = json.loads(runner.take(runner.runner_get_last_file_json(last_id.encode())))
    assert on_disk == served
    assert served["task_results"]["task2"]["status"] == "pending"
    assert served["success_rate"] == 0.5 and served["status"] == "partialsuccess"
    assert served["execution_graph"]["edges"] == [{"source": "task1", "target": "task2", "dependency_type": "required"}]
    for key in ("id", "execution_id", "alt_file_id", "title", "mode", "persona", "status", "success_rate",
                "execution_time_ms", "start_time", "end_time", "task_results", "artifacts",
                "execution_graph", "summary", "metadata", "version"):
        assert key in served


def test_null_output_dir_means_runner_output_dir(runner, spec_alt, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_OUTPUT_DIR", str(tmp_path / "from_env"))
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    last_id = runner.take(runner.runner_generate_last_file(b"test_alt_file", None))
    assert (tmp_path / "from_env" / last_id / "last.json").is_file()


def test_messages_name_the_function_and_the_problem(runner, spec_alt):
    assert runner.runner_add_task_result(b"demo", b'{"task_id":"x","status":"completed"}') == 0
    assert runner.last_error() == ("runner_add_task_result: unknown ALT file 'demo' "
                                   "(parse it first with runner_parse_alt_file)")
    spec_alt["id"] = "demo"
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_add_task_result(b"demo", b'{"task_id":"x","status":"completed"}') == 0
    assert runner.last_error() == "runner_add_task_result: unknown task 'x' in ALT file 'demo'"
    assert runner.runner_add_task_result(b"demo", b'{"task_id":"task1","status":"done"}') == 0
    assert runner.last_error().startswith("runner_add_task_result: /status: expected one of pending, running,")
    assert runner.runner_parse_alt_file(b"{not json") == 0
    assert runner.last_error().startswith("runner_parse_alt_file: /: invalid JSON: ")


def test_bad_arguments_fail_cleanly(runner, spec_alt):
    assert runner.runner_parse_alt_file(None) == 0
    assert runner.last_error() == "runner_parse_alt_file: argument 'json' is NULL"
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_add_task_result(b"test_alt_\xff", b'{"task_id":"task1","status":"completed"}') == 0
    assert runner.last_error() == "runner_add_task_result: argument 'alt_id' is not valid UTF-8 (byte 9)"
    assert runner.runner_add_task_result(b"test_alt_file", b'{"task_id":"task\xff","status":"completed"}') == 0
    assert "invalid JSON" in runner.last_error() and "UTF-8" in runner.last_error()
    assert runner.runner_get_last_file_json(b"last_nope") is None
    assert runner.last_error() == "runner_get_last_file_json: unknown LAST file 'last_nope' (not generated since runner_init)"
    assert runner.runner_batch_process(b'{"a": 1}', None) is None
    assert "must be a JSON array of ALT ids" in runner.last_error()


def test_a_successful_call_leaves_the_last_error_alone(runner, spec_alt):
    assert runner.runner_parse_alt_file(b"[]") == 0
    before = runner.last_error()
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.last_error() == before


def test_errors_are_per_thread(runner, spec_alt):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    seen, barrier = {}, threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(200):
            body = json.dumps({"task_id": f"missing_{n}", "status": "completed"}).encode()
            assert runner.runner_add_task_result(b"test_alt_file", body) == 0
            seen.setdefault(n, set()).add(runner.last_error())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(8):
        assert seen[n] == {f"runner_add_task_result: unknown task 'missing_{n}' in ALT file 'test_alt_file'"}


def test_foreign_and_double_frees_are_refused(runner):
    pointer = runner.runner_get_version()
    runner.runner_free_string(pointer)
    runner.runner_free_string(pointer)  # a second time: refused, not a double free
    assert "was not handed out by librunner, or was freed already" in runner.last_error()
    python_copy = ctypes.create_string_buffer(b"not the library's")
    runner.runner_free_string(ctypes.addressof(python_copy))
    assert "refused" in runner.last_error()
    assert python_copy.value == b"not the library's"
    runner.runner_free_string(None)  # NULL is a no-op


def provoke_another_error(runner) -> str:
    """Sets this thread's error to one that is not a refused free, and returns it."""
    assert runner.runner_parse_alt_file(b"[]") == 0
    error = runner.last_error()
    assert "refused" not in error
    return error


def test_a_valid_free_is_accepted_and_a_second_one_refused(runner):
    pointer = runner.runner_get_version()
    before = provoke_another_error(runner)
    runner.runner_free_string(pointer)
    assert runner.last_error() == before  # accepted: no error
    runner.runner_free_string(pointer)  # refused only if the first free really released it
    assert runner.last_error().startswith("runner_free_string: refused ")


def test_a_stale_free_does_not_free_the_string_that_reused_the_address(runner):
    # malloc gives a freed block's address to the next allocation of its size: before the
    # fix, the stale second free of `stale` freed the live string that got its address.
    stale = runner.runner_get_version()
    version = ctypes.string_at(stale)
    runner.runner_free_string(stale)
    live = [runner.runner_get_version() for _ in range(32)]
    provoke_another_error(runner)
    runner.runner_free_string(stale)
    assert runner.last_error().startswith("runner_free_string: refused ")
    for pointer in live:
        assert ctypes.string_at(pointer) == version
        before = provoke_another_error(runner)
        runner.runner_free_string(pointer)
        assert runner.last_error() == before  # each live string is still outstanding, freed once


def test_the_documented_c_char_p_restype_is_refused_without_a_crash(runner, library_path):
    lib = ctypes.CDLL(str(library_path))  # its own prototypes; `runner` reads the errors
    lib.runner_get_version.restype = ctypes.c_char_p
    lib.runner_free_string.argtypes = [ctypes.c_char_p]
    version = lib.runner_get_version()  # a Python copy of the library's string
    provoke_another_error(runner)
    lib.runner_free_string(version)
    assert runner.last_error().startswith("runner_free_string: refused ")
    assert "declare the restype c_void_p" in runner.last_error()
    assert json.loads(version)["name"] == "librunner"


def test_version_reports_the_build(runner):
    version = json.loads(runner.take(runner.runner_get_version()))
    assert version["name"] == "librunner"
    assert version["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    # Cython is a build requirement only (pip builds in an isolated environment): check its form.
    assert re.fullmatch(r"3\.\d+\.\d+\S*", version["cython"]) and version["abi"] == 1


def test_cleanup_forgets_state_and_init_works_again(runner, spec_alt):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_cleanup() == 1
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 0
    assert runner.last_error() == "runner_parse_alt_file: librunner is not initialised: call runner_init() first"
    assert runner.runner_init() == 1
    assert runner.runner_add_task_result(b"test_alt_file", b'{"task_id":"task1","status":"completed"}') == 0
    assert "unknown ALT file 'test_alt_file'" in runner.last_error()


def test_batch_maps_each_id_and_keeps_going_after_a_failure(runner, spec_alt, tmp_path):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    outcome = json.loads(runner.take(runner.runner_batch_process(b'["test_alt_file", "missing"]',
                                                                 str(tmp_path).encode())))
    assert outcome["missing"] == ("ERROR: unknown ALT file 'missing' "
                                  "(parse it first with runner_parse_alt_file)")
    assert (tmp_path / outcome["test_alt_file"] / "last.json").is_file()


def test_reparsing_an_id_replaces_the_file_and_drops_its_results(runner, spec_alt, tmp_path):
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    assert runner.runner_add_task_result(b"test_alt_file", b'{"task_id":"task1","status":"completed"}') == 1
    spec_alt["title"] = "Second version"
    assert runner.runner_parse_alt_file(dumps(spec_alt)) == 1
    last_id = runner.take(runner.runner_generate_last_file(b"test_alt_file", str(tmp_path).encode()))
    last = json.loads((tmp_path / last_id / "last.json").read_bytes())
    assert last["title"] == "Second version"
    assert last["task_results"]["task1"]["status"] == "pending"


LOGGING_SCRIPT = """
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.runner_get_last_error.restype = ctypes.c_char_p
ok = lib.runner_init()
print(ok, lib.runner_get_last_error().decode())
if ok:
    alt = {"id": "logged_alt", "title": "t", "tasks": [{"id": "a"}]}
    lib.runner_parse_alt_file(json.dumps(alt).encode())
    lib.runner_generate_last_file.restype = ctypes.c_char_p
    print(lib.runner_generate_last_file(b"logged_alt", sys.argv[2].encode()).decode())
"""


def test_log_records_carry_the_alt_and_last_ids(library_path, tmp_path):
    env = {"RUNNER_LOG_LEVEL": "debug", "PATH": "/usr/bin:/bin"}
    completed = run_python("-c", LOGGING_SCRIPT, library_path, tmp_path, env=env)
    assert completed.returncode == 0, completed.stderr
    last_id = completed.stdout.split()[-1]
    assert "librunner DEBUG [alt=logged_alt last=-] stored ALT file (1 tasks)" in completed.stderr
    assert f"librunner INFO [alt=logged_alt last={last_id}] wrote " in completed.stderr


@pytest.mark.parametrize("level, expect_info", [("warn", False), ("info", True), ("TRACE", True)])
def test_log_level_filters_records(library_path, tmp_path, level, expect_info):
    completed = run_python("-c", LOGGING_SCRIPT, library_path, tmp_path, env={"RUNNER_LOG_LEVEL": level})
    assert completed.returncode == 0, completed.stderr
    assert ("librunner INFO" in completed.stderr) == expect_info


def test_an_invalid_log_level_fails_init_with_a_clear_error(library_path, tmp_path):
    completed = run_python("-c", LOGGING_SCRIPT, library_path, tmp_path, env={"RUNNER_LOG_LEVEL": "loud"})
    assert completed.stdout.strip() == ("0 runner_init: RUNNER_LOG_LEVEL='loud': "
                                        "expected one of trace, debug, info, warn, error")
