"""runner_execute_alt_file through the C ABI: from ctypes and from a C program."""
from __future__ import annotations

import ctypes
import json
import re
import threading
import time

import pytest

from tests.conftest import dumps, run_clean

ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep"}


@pytest.fixture
def lib(runner):
    runner.lib.runner_execute_alt_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    runner.lib.runner_execute_alt_file.restype = ctypes.c_void_p
    return runner


def execute(lib, alt_id: str, output_dir) -> str | None:
    out = None if output_dir is None else str(output_dir).encode()
    return lib.take(lib.lib.runner_execute_alt_file(alt_id.encode(), out))


def test_execute_returns_a_last_id_whose_json_is_kept(lib, tmp_path, spec_alt):
    assert lib.runner_parse_alt_file(dumps(spec_alt)) == 1
    last_id = execute(lib, "test_alt_file", tmp_path)
    assert last_id and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", last_id), lib.last_error()
    record = json.loads(lib.take(lib.runner_get_last_file_json(last_id.encode())))
    assert record["alt_file_id"] == "test_alt_file"
    assert record["task_results"]["task2"]["output"]["text"] == "echo: Second task"
    assert (tmp_path / last_id / "last.json").is_file()
    # The run's results became the ALT file's results: generating again records them.
    again = lib.take(lib.runner_generate_last_file(b"test_alt_file", str(tmp_path).encode()))
    regenerated = json.loads(lib.take(lib.runner_get_last_file_json(again.encode())))
    assert regenerated["task_results"]["task1"]["status"] == "completed"


def test_bad_arguments_are_reported(lib, tmp_path):
    assert lib.lib.runner_execute_alt_file(None, None) is None
    assert "argument 'alt_id' is NULL" in lib.last_error()
    assert execute(lib, "never_parsed", tmp_path) is None
    assert "unknown ALT file 'never_parsed'" in lib.last_error()
    assert lib.lib.runner_execute_alt_file(b"\xff\xfe", None) is None
    assert "not valid UTF-8" in lib.last_error()
    assert lib.runner_parse_alt_file(dumps({"id": "u", "title": "u", "tasks": [{"id": "a", "description": "x"}]})) == 1
    assert lib.lib.runner_execute_alt_file(b"u", b"\xff/out") is None
    assert "argument 'output_dir' is not valid UTF-8" in lib.last_error()


def test_a_null_output_dir_means_runner_output_dir(lib, tmp_path, monkeypatch, spec_alt):
    monkeypatch.setenv("RUNNER_OUTPUT_DIR", str(tmp_path / "env_out"))
    assert lib.runner_parse_alt_file(dumps(spec_alt)) == 1
    last_id = execute(lib, "test_alt_file", None)
    assert (tmp_path / "env_out" / last_id / "last.json").is_file()


def test_other_threads_calls_proceed_during_a_long_run(lib, tmp_path, monkeypatch):
    for name, value in ENABLED.items():
        monkeypatch.setenv(name, value)
    alt = {"id": "long", "title": "long", "tasks": [
        {"id": "wait", "description": "w", "parameters": {"task_type": "system_command", "command": ["sleep", "1.5"]}}]}
    assert lib.runner_parse_alt_file(dumps(alt)) == 1
    box = {}
    runner_thread = threading.Thread(target=lambda: box.setdefault("id", execute(lib, "long", tmp_path)))
    runner_thread.start()
    time.sleep(0.3)
    calls = 0
    while runner_thread.is_alive() and calls < 50:
        other = {"id": f"other{calls}", "title": "o", "tasks": [{"id": "x", "description": "x"}]}
        assert lib.runner_parse_alt_file(dumps(other)) == 1, lib.last_error()
        assert lib.take(lib.runner_get_version())
        calls += 1
    assert runner_thread.is_alive(), "the calls of this thread waited for the run to finish"
    runner_thread.join(10)
    record = json.loads(lib.take(lib.runner_get_last_file_json(box["id"].encode())))
    assert record["task_results"]["wait"]["status"] == "completed"


def test_cleanup_during_a_run_cancels_it_and_the_last_file_is_written(lib, tmp_path, monkeypatch):
    for name, value in {**ENABLED, "RUNNER_GRACE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(name, value)
    alt = {"id": "cut", "title": "cut", "tasks": [
        {"id": "wait", "description": "w", "parameters": {"task_type": "system_command", "command": ["sleep", "30"]}},
        {"id": "next", "description": "n", "dependencies": ["wait"], "parameters": {"task_type": "generic"}}]}
    assert lib.runner_parse_alt_file(dumps(alt)) == 1
    box = {}

    def run():
        box["id"] = lib.lib.runner_execute_alt_file(b"cut", str(tmp_path).encode())
        box["error"] = lib.last_error()

    runner_thread = threading.Thread(target=run)
    runner_thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert lib.runner_cleanup() == 1
    runner_thread.join(10)
    assert time.monotonic() - started < 10 and not runner_thread.is_alive()
    assert lib.runner_init() == 1
    # No LAST id is handed out (cleanup released every string): the error names the file.
    assert box["id"] is None and "interrupted by runner_cleanup" in box["error"]
    (directory,) = [p for p in tmp_path.iterdir() if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", p.name)]
    record = json.loads((directory / "last.json").read_bytes())
    assert record["task_results"]["wait"]["status"] == "cancelled"
    assert record["task_results"]["next"]["status"] == "cancelled"
    assert record["execution"]["interrupted"] is True


C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "runner_ffi.h"

int main(int argc, char **argv) {
    if (!runner_init()) return 3;
    const char *alt = "{\"id\":\"c_run\",\"title\":\"C\",\"tasks\":["
        "{\"id\":\"a\",\"description\":\"x\",\"parameters\":{\"task_type\":\"generic\",\"n\":1}},"
        "{\"id\":\"b\",\"description\":\"hello {{ deps.a.output.n }}\",\"dependencies\":[\"a\"]}]}";
    if (!runner_parse_alt_file(alt)) return 4;
    char *last_id = runner_execute_alt_file("c_run", argv[1]);
    if (last_id == NULL) {
        char *error = runner_get_last_error();
        fprintf(stderr, "%s\n", error);
        runner_free_string(error);
        return 5;
    }
    char *json = runner_get_last_file_json(last_id);
    printf("%s\n%s\n", last_id, json ? json : "(null)");
    runner_free_string(json);
    runner_free_string(last_id);
    return runner_cleanup() ? 0 : 6;
}
"""


def test_a_c_program_executes_an_alt_file(cc, tmp_path):
    source = tmp_path / "run.c"
    source.write_text(C_PROGRAM)
    program = cc(source, tmp_path / "run")
    done = run_clean([program, tmp_path / "out"])
    assert done.returncode == 0, done.stderr
    last_id, text = done.stdout.splitlines()[:2]
    record = json.loads(text)
    assert record["id"] == last_id and record["task_results"]["b"]["output"]["text"] == "echo: hello 1"


def test_many_threads_execute_at_once(lib, tmp_path):
    count = 6
    for k in range(count):
        alt = {"id": f"par{k}", "title": "p", "tasks": [
            {"id": "a", "description": f"run {k}", "parameters": {"task_type": "generic", "k": k}},
            {"id": "b", "description": "say {{ deps.a.output.k }}", "dependencies": ["a"]}]}
        assert lib.runner_parse_alt_file(dumps(alt)) == 1
    found = {}

    def run(k):
        found[k] = execute(lib, f"par{k}", tmp_path)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len({found[k] for k in range(count)}) == count and all(found.values())
    for k in range(count):
        record = json.loads(lib.take(lib.runner_get_last_file_json(found[k].encode())))
        assert record["task_results"]["b"]["output"]["text"] == f"echo: say {k}"
