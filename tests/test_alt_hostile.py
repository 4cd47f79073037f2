"""Hostile ALT input: every case is a clear error (what, where), never a crash or a hang.

Each limit is tested through the Python API, the CLI and the C ABI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

import runner as api
from conftest import SPEC_ALT, dumps


def with_parameters(parameters) -> bytes:
    doc = json.loads(json.dumps(SPEC_ALT))
    doc["tasks"][0]["parameters"] = parameters
    return dumps(doc)


def error_of(data, **limits) -> str:
    with pytest.raises(api.AltValidationError) as caught:
        api.parse_alt_file(data, limits=api.AltLimits(**limits) if limits else None)
    return str(caught.value)


def cli(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "runner", "validate", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_limit_defaults_are_documented_values(monkeypatch):
    for variable in ("RUNNER_MAX_ALT_BYTES", "RUNNER_MAX_TASKS", "RUNNER_MAX_ALT_DEPTH", "RUNNER_MAX_STRING_BYTES",
                     "RUNNER_MAX_JSON_VALUES"):
        monkeypatch.delenv(variable, raising=False)
    limits = api.AltLimits()
    assert (limits.max_bytes, limits.max_tasks, limits.max_depth, limits.max_string_bytes, limits.max_values) == \
        (128 * 1024 * 1024, 1_000_000, 64, 1024 * 1024, 8_000_000)


def test_environment_sets_limits_and_arguments_override_it(monkeypatch):
    monkeypatch.setenv("RUNNER_MAX_TASKS", "5")
    assert api.AltLimits().max_tasks == 5
    assert api.AltLimits(max_tasks=7).max_tasks == 7


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", "1025", "9" * 30])
def test_bad_limit_settings_are_configuration_errors(monkeypatch, value):
    monkeypatch.setenv("RUNNER_MAX_ALT_DEPTH", value)
    with pytest.raises(api.ConfigurationError, match="RUNNER_MAX_ALT_DEPTH"):
        api.AltLimits()
    monkeypatch.delenv("RUNNER_MAX_ALT_DEPTH")
    with pytest.raises(api.ConfigurationError, match="max_depth"):
        api.AltLimits(max_depth=0)


@pytest.mark.parametrize("variable", ["RUNNER_MAX_TASKS", "RUNNER_DEFAULT_TIMEOUT_SECONDS", "RUNNER_ENABLE_SYSTEM_COMMANDS",
                                      "RUNNER_NATS_URL"])
def test_a_huge_bad_setting_is_quoted_by_its_start_and_length(monkeypatch, variable, tmp_path):
    """A megabyte-long value makes a short message, not a megabyte-long one."""
    from runner.execution import execute

    monkeypatch.setenv(variable, "x" * 1_000_000)
    with pytest.raises(api.ConfigurationError) as refused:
        api.AltLimits()
        execute(api.parse_alt_file(dumps(SPEC_ALT)), tmp_path / "out")
    message = str(refused.value)
    assert variable in message and "(1000000 characters)" in message
    assert len(message) < 400, len(message)


@pytest.mark.parametrize("environ", [
    {"RUNNER_AI_PROVIDER": "x" * 1_000_000},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER": "x" * 1_000_000},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "x" * 1_000_000},
])
def test_huge_ai_and_trace_settings_are_quoted_by_their_start_and_length(environ):
    from runner.ai import settings_from_environment
    from runner.trace.settings import export_settings

    read = export_settings if any(name.startswith("OTEL_") for name in environ) else settings_from_environment
    with pytest.raises(api.ConfigurationError) as refused:
        read(environ)
    assert "(1000000 characters)" in str(refused.value) and len(str(refused.value)) < 400


def test_document_size_limit():
    data = dumps(SPEC_ALT)
    message = error_of(data, max_bytes=len(data) - 1)
    assert f"document is {len(data)} bytes, more than the limit of {len(data) - 1}" in message
    assert api.parse_alt_file(data, limits=api.AltLimits(max_bytes=len(data)))


def test_task_count_limit():
    doc = {"id": "many", "title": "t", "tasks": [{"id": f"t{i}"} for i in range(11)]}
    assert error_of(dumps(doc), max_tasks=10).startswith("/tasks: 11 tasks, more than the limit of 10")
    assert len(api.parse_alt_file(dumps(doc), limits=api.AltLimits(max_tasks=11))) == 11


def test_value_count_limit_bounds_memory_of_tiny_values():
    # 3 bytes of text per empty object: the byte limit alone would let this grow ~25x in memory.
    data = b'{"id": "a", "title": "t", "tasks": [' + b",".join([b"{}"] * 2000) + b"]}"
    assert "more than 1000 JSON values (RUNNER_MAX_JSON_VALUES)" in error_of(data, max_values=1000)
    # The root, 3 members, 2000 elements: exactly at the limit passes the text checks.
    assert "a task needs an 'id'" in error_of(data, max_values=2004)
    assert "more than 2003 JSON values" in error_of(data, max_values=2003)
    nested = b'{"id": "a", "title": "t", "tasks": [{"id": "x", "parameters": {"l": [[], [1, 2], {}]}}]}'
    assert api.parse_alt_file(nested, limits=api.AltLimits(max_values=13))   # 1 + 3 + 1 + 2 + 1 + 3 + 2
    assert "more than 12 JSON values" in error_of(nested, max_values=12)


def test_deeply_nested_parameters_are_refused():
    nested = {}
    for _ in range(100):
        nested = {"n": nested}
    message = error_of(with_parameters(nested))
    assert "nesting deeper than the limit of 64" in message and "line 1, column" in message
    assert "nesting deeper than the limit of 3" in error_of(with_parameters({"a": {"b": 1}}), max_depth=3)


def test_pathological_nesting_does_not_recurse():
    assert "nesting deeper" in error_of(b"[" * 1_000_000)
    assert "nesting deeper" in error_of(b'{"a":' * 200_000)


def test_string_length_limit():
    data = with_parameters({"prompt": "x" * 5000})
    assert "string of 5000 bytes, more than the limit of 4096" in error_of(data, max_string_bytes=4096)
    assert api.parse_alt_file(data, limits=api.AltLimits(max_string_bytes=5000))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_non_finite_numbers_are_invalid_json(literal):
    data = with_parameters({"x": 1}).replace(b'{"x": 1}', b'{"x": ' + literal + b"}")
    assert error_of(data).startswith("/: invalid JSON")


def test_integers_beyond_the_exact_range_are_refused():
    limit = 2**53 - 1
    assert api.parse_alt_file(with_parameters({"n": limit, "m": -limit}))
    for value in (limit + 1, -(limit + 1), 10**30, 2**64):
        assert f"integer {value} is out of range" in error_of(with_parameters({"n": value}))
    assert api.parse_alt_file(with_parameters({"n": 1e300, "m": 12345678901234567890.5}))


def test_invalid_utf8_and_lone_surrogates_are_invalid_json():
    data = with_parameters({"x": "ab"}).replace(b"ab", b"a\xffb")
    assert error_of(data).startswith("/: invalid JSON")
    data = with_parameters({"x": "ab"}).replace(b"ab", b"\\ud800")
    assert error_of(data).startswith("/: invalid JSON")
    assert "lone surrogate" in error_of(json.dumps(SPEC_ALT)[:-1] + '"\ud800"}')


def test_nul_bytes_and_nul_escapes_are_refused():
    data = with_parameters({"x": "ab"})
    assert "NUL byte" in error_of(data.replace(b"ab", b"a\x00b"))
    assert "NUL character \\u0000" in error_of(data.replace(b"ab", b"a\\u0000b"))
    # An escaped backslash followed by the text u0000 is not a NUL.
    assert api.parse_alt_file(data.replace(b"ab", b"a\\\\u0000b")).tasks[0].parameters["x"] == "a\\u0000b"


def test_duplicate_keys_are_refused_with_their_path():
    data = dumps(SPEC_ALT).replace(b'"title"', b'"title": "first", "title"', 1)
    assert error_of(data).startswith("/: key 'title' appears twice in this object")
    data = with_parameters({"a": 1}).replace(b'{"a": 1}', b'{"a": 1, "b": {"c/d": {"k": 1, "k": 2}}}')
    assert error_of(data).startswith("/tasks/0/parameters/b/c~1d: key 'k' appears twice")
    # The same key in different objects is fine.
    assert api.parse_alt_file(with_parameters({"id": {"id": 1}}))


@pytest.mark.parametrize("data", [b"[]", b'"alt"', b"1", b"null", b"true"])
def test_a_top_level_that_is_not_an_object_is_refused(data):
    assert "an ALT file is a JSON object" in error_of(data)


@pytest.mark.parametrize("data", [b"", b"   ", b"{", b'{"id": "x"} trailing'])
def test_empty_and_truncated_documents_are_invalid_json(data):
    assert error_of(data).startswith("/: invalid JSON")


def test_non_text_input_is_refused():
    with pytest.raises(api.AltValidationError, match=r"\(bytes or str\), found int"):
        api.parse_alt_file(42)


def test_limits_apply_through_the_c_abi(runner, monkeypatch):
    monkeypatch.setenv("RUNNER_MAX_TASKS", "1")
    assert runner.runner_parse_alt_file(dumps(SPEC_ALT)) == 0
    assert runner.last_error() == ("runner_parse_alt_file: /tasks: 2 tasks, more than the limit of 1 "
                                   "(RUNNER_MAX_TASKS) (1 error in ALT file)")
    monkeypatch.setenv("RUNNER_MAX_TASKS", "zero")
    assert runner.runner_parse_alt_file(dumps(SPEC_ALT)) == 0
    assert "RUNNER_MAX_TASKS='zero': expected a positive integer" in runner.last_error()
    monkeypatch.delenv("RUNNER_MAX_TASKS")
    assert runner.runner_parse_alt_file(with_parameters({"p": {"q": [[[1]]]}})) == 1
    monkeypatch.setenv("RUNNER_MAX_ALT_DEPTH", "4")
    assert runner.runner_parse_alt_file(with_parameters({"p": {"q": [[[1]]]}})) == 0
    assert "nesting deeper than the limit of 4" in runner.last_error()


@pytest.mark.parametrize("data, words", [
    (b"[" * 100_000, "nesting deeper"),
    (b'{"id": "x", "id": "y", "title": "t", "tasks": [{"id": "a"}]}', "key 'id' appears twice"),
    (b'{"a": NaN}', "invalid JSON"),
    (b'{"a": 99999999999999999999}', "out of range"),
    (b'{"a": "\xc3\x28"}', "invalid JSON"),
    (b'{"a": "\\u0000"}', "NUL character"),
    (b"[1, 2]", "an ALT file is a JSON object"),
])
def test_hostile_documents_through_the_c_abi(runner, data, words):
    assert runner.runner_parse_alt_file(data) == 0
    assert words in runner.last_error()


def test_many_threads_get_their_own_errors(runner):
    good = dumps(SPEC_ALT)
    failures = []

    def work(number: int):
        bad = dumps({"id": "x", "title": "t", "tasks": [{"id": "a", "dependencies": [f"missing{number}"]}]})
        for _ in range(30):
            if runner.runner_parse_alt_file(good) != 1:
                failures.append((number, "good refused", runner.last_error()))
            if runner.runner_parse_alt_file(bad) != 0:
                failures.append((number, "bad accepted"))
            error = runner.last_error()
            if f"unknown task 'missing{number}'" not in error:
                failures.append((number, error))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_limits_through_the_cli(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(with_parameters({"prompt": "x" * 3000}))
    done = cli(big, "--max-bytes", "1000")
    assert done.returncode == 1
    assert f"document is {big.stat().st_size} bytes, more than the limit of 1000 (RUNNER_MAX_ALT_BYTES)" in done.stdout
    done = cli(big, env={"RUNNER_MAX_STRING_BYTES": "2000"})
    assert done.returncode == 1 and "string of 3000 bytes, more than the limit of 2000" in done.stdout
    done = cli(big, "--max-string-bytes", "3000", env={"RUNNER_MAX_STRING_BYTES": "2000"})
    assert done.returncode == 0, done.stdout
    done = cli(big, env={"RUNNER_MAX_TASKS": "nope"})
    assert done.returncode == 2 and "RUNNER_MAX_TASKS" in done.stderr
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 50_000 + b"]" * 50_000)
    done = cli(deep)
    assert done.returncode == 1 and "nesting deeper than the limit of 64" in done.stdout
    done = cli(big, "--max-values", "3")
    assert done.returncode == 1 and "more than 3 JSON values" in done.stdout
    dup = tmp_path / "dup.json"
    dup.write_bytes(b'{"id": "a", "title": "t", "tasks": [{"id": "x", "id": "y"}]}')
    done = cli(dup)
    assert done.returncode == 1 and "/tasks/0: key 'id' appears twice" in done.stdout
