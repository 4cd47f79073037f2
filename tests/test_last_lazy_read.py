"""load_last_lazy (what `report` reads) gives the record load_last gives, its task results
read from the file's bytes only when used as a dict, and refuses the same files with the
same errors; its columns (each result's task_id, status, duration_ms, end_time, made by
the core from the bytes) are those ResultRows reads from the dicts. Checked on written LAST
files, on hand-made hostile ones and on every kind of damage to the bytes."""
from __future__ import annotations

import orjson
import pytest

from runner.errors import LastFileError
from runner.last import options as last_options
from runner.last.directory import render_html
from runner.last.reader import FileResults, load_last, load_last_lazy, task_status
from runner.librunner import skim_last_columns

from test_last_summary_read import hostile_variants, write, written  # noqa: F401 (written: a fixture)
from tests.conftest import damaged_copies


def read_both(path):
    answers = []
    for read in (load_last, load_last_lazy):
        try:
            answers.append(read(path))
        except LastFileError as error:
            answers.append(("error", str(error)))
    return answers


def columns_of(values: list) -> bytes:
    """ResultRows' columns of a file's dicts, as JSON (1 and 1.0 told apart)."""
    return orjson.dumps([[r.get("task_id") for r in values], [task_status(r) for r in values],
                         [r.get("duration_ms") for r in values], [r.get("end_time") for r in values]])


def dumped(record):
    try:
        return orjson.dumps(record)
    except TypeError as error:      # orjson writes 255 levels at most (a hostile file has more)
        return str(error)


def assert_same(path):
    full, lazy = read_both(path)
    if isinstance(full, tuple):
        assert lazy == full
        return None
    results = lazy["task_results"]
    values = list(full["task_results"].values())
    if isinstance(results, FileResults):
        ids, statuses, durations, ends, by_position = results.columns()
        assert orjson.dumps([ids, statuses, durations, ends]) == columns_of(values)
        assert len(results) == len(by_position) == len(values)
        assert [by_position[i] for i in range(len(values))] == values
        with pytest.raises(TypeError):
            orjson.dumps(lazy)          # not read yet: refused, never written as {}
        with pytest.raises(TypeError):
            orjson.dumps(lazy, default=str)     # nor as the placeholder's text
    assert list(lazy) == list(full)
    assert lazy == full
    assert dumped(lazy) == dumped(full)
    assert results.columns() is None if isinstance(results, FileResults) else True
    return lazy


def test_a_written_last_file_is_read_alike(written):
    path = written.directory / "last.json"
    assert skim_last_columns(path.read_bytes()) is not None     # the lazy path, not the fallback
    assert isinstance(load_last_lazy(path)["task_results"], FileResults)
    assert_same(path)
    assert_same(written.directory / "last.json.gz")
    assert_same(written.directory)


def column_variants(record: dict):
    """(name, bytes) of files whose columns are beyond the core's own making of values."""
    text = orjson.dumps(record)
    first = b'"task_results":{'
    for name, member in [
            ("float duration", b'"duration_ms":1.5'), ("negative duration", b'"duration_ms":-7'),
            ("minus zero", b'"duration_ms":-0'), ("exponent", b'"duration_ms":1e5'),
            ("18 digits", b'"duration_ms":999999999999999999'), ("text duration", b'"duration_ms":"12"'),
            ("object duration", b'"duration_ms":{"a":[1]}'), ("null duration", b'"duration_ms":null'),
            ("true duration", b'"duration_ms":true'),
            ("escaped id", b'"task_id":"a\\u00e9\\n\\"b\\\\"'), ("non-ASCII id", '"task_id":"\u00e9\u4e2d\U0001F600"'.encode()),
            ("escaped status", b'"status":"complet\\u0065d"'), ("empty status", b'"status":""'),
            ("long status", b'"status":"' + b"x" * 100000 + b'"'), ("null status", b'"status":null'),
            ("skipped false", b'"status":"failed","skipped":false'),
            ("skipped twice", b'"skipped":true,"status":"cancelled","skipped":false'),
            ("fields twice", b'"duration_ms":1,"end_time":"a","task_id":"x","duration_ms":2,"end_time":null,"task_id":"y"'),
            ("no fields", b'"output":1'),
            ("spaces", b' "duration_ms" : 3 , "status" : "failed" ')]:
        yield name, text.replace(first, first + b'"v":{' + member + b"},", 1)
    # The same status text in a row, then another of the same length.
    yield "statuses alike", text.replace(first, first + b'"s1":{"status":"aaaa"},"s2":{"status":"aaaa"},'
                                         b'"s3":{"status":"bbbb"},"s4":{"status":"aaaa","skipped":true},', 1)


def test_hostile_files_are_read_alike(written, tmp_path):
    record = orjson.loads((written.directory / "last.json").read_bytes())
    for name, data in column_variants(record):
        assert skim_last_columns(data) is not None, name        # made by the lazy path
    for name, data in [*hostile_variants(record), *column_variants(record)]:
        path = write(tmp_path, data)
        full, _ = read_both(path)
        assert not isinstance(full, tuple), name
        assert_same(path)


def test_malformed_and_damaged_files_get_the_full_readers_error(written, tmp_path):
    data = (written.directory / "last.json").read_bytes()
    record = orjson.loads(data)
    first = next(iter(record["task_results"]))
    for broken in (data[:len(data) // 2], b"[1]", orjson.dumps({**record, "task_results": {first: [1]}}),
                   orjson.dumps({**record, "task_results": {first: {"status": {"x": 1}}}}),
                   orjson.dumps({**record, "execution_graph": {"nodes": [{"id": 1}], "edges": []}}), b""):
        assert_same(write(tmp_path, broken))
    for damaged in damaged_copies(data, 300, seed=29):
        assert_same(write(tmp_path, damaged))


def test_the_report_page_is_the_same_and_reads_no_result_it_does_not_show(written):
    options = last_options.LastOptions(graph_renderer="builtin", report_task_limit=5)
    lazy = load_last_lazy(written.directory)
    assert render_html(lazy, options) == render_html(load_last(written.directory), options)
    assert lazy["task_results"].columns() is not None       # still the file's bytes


def test_the_report_command_writes_the_same_page(written, tmp_path):
    import subprocess
    import sys
    pages = []
    for read in ("load_last", "load_last_lazy"):
        target = tmp_path / f"{read}.html"
        code = ("import sys; from runner.last import reader; from runner.commands import report; "
                f"reader.load_last_lazy = reader.{read}; sys.argv = ['runner', 'report', sys.argv[1], '--output', "
                "sys.argv[2]]; from runner.cli import main; raise SystemExit(main())")
        done = subprocess.run([sys.executable, "-c", code, str(written.directory), str(target)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        pages.append(target.read_bytes())
    assert pages[0] == pages[1] and b"<html" in pages[0].lower()
