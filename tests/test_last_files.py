"""The LAST directory's files: compressed copy, archives, atomic writes, reading back."""
from __future__ import annotations

import gzip
import json
import tarfile
import zipfile

import pytest

import runner
from conftest import dumps
from runner.last import atomic_files, directory as last_directory


def small_alt():
    return runner.parse_alt_file(dumps({"id": "files", "title": "Files", "tasks": [
        {"id": "a", "description": "A", "dependencies": None},
        {"id": "b", "description": "B", "dependencies": ["a"]}]}))


def results(alt):
    return {"a": runner.task_result_from_dict({"task_id": "a", "status": "completed",
                                               "output": {"files": {"x.txt": "x"}}}, alt)}


def test_compressed_copy_is_gzip_of_the_same_json(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_ENABLE_COMPRESSION", "true")
    alt = small_alt()
    written = runner.write_last_file(alt, results(alt), tmp_path)
    compressed = (written.directory / "last.json.gz").read_bytes()
    assert gzip.decompress(compressed) == (written.directory / "last.json").read_bytes() == written.json
    assert "last.json.gz" in written.record["metadata"]["files"]
    assert runner.load_last(written.directory / "last.json.gz") == written.record


def test_without_compression_there_is_no_gz(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNNER_ENABLE_COMPRESSION", raising=False)
    written = runner.write_last_file(small_alt(), {}, tmp_path)
    assert not (written.directory / "last.json.gz").exists()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_holds_the_whole_directory(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("RUNNER_ARCHIVE", kind)
    alt = small_alt()
    written = runner.write_last_file(alt, results(alt), tmp_path, graph_renderer="builtin", compression=True)
    assert written.archive == tmp_path / f"{written.last_id}.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(written.archive) as archive:
            names = set(archive.namelist())
            inside = archive.read(f"{written.last_id}/last.json")
    else:
        with tarfile.open(written.archive) as archive:
            names = set(archive.getnames())
            inside = archive.extractfile(f"{written.last_id}/last.json").read()
    prefix = written.last_id + "/"
    assert names == {prefix + name for name in ("last.json", "last.json.gz", "report.html", "graph.dot",
                                                "graph.svg", "artifacts/a/x.txt")}
    assert inside == written.json


def test_atomic_file_leaves_nothing_when_the_write_fails(tmp_path):
    target = tmp_path / "last.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_files.atomic_file(target) as handle:
            handle.write(b"half")
            raise RuntimeError("crash in the middle")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.json"]


def test_a_failing_product_removes_the_partial_directory(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(last_directory, "_write_compressed", broken)
    with pytest.raises(runner.LastFileError, match="No space left on device"):
        runner.write_last_file(small_alt(), {}, tmp_path, compression=True)
    assert list(tmp_path.iterdir()) == []


def test_products_follow_the_environment_at_each_call(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_HTML_REPORT", "false")
    monkeypatch.setenv("RUNNER_GRAPH", "false")
    first = runner.write_last_file(small_alt(), {}, tmp_path)
    assert sorted(p.name for p in first.directory.iterdir()) == ["last.json"]
    monkeypatch.setenv("RUNNER_HTML_REPORT", "true")
    second = runner.write_last_file(small_alt(), {}, tmp_path)
    assert sorted(p.name for p in second.directory.iterdir()) == ["last.json", "report.html"]
    assert second.record["metadata"]["files"] == ["last.json", "report.html"]


@pytest.mark.parametrize("variable, value, expected", [
    ("RUNNER_ENABLE_COMPRESSION", "maybe", "expected true or false"),
    ("RUNNER_LAST_WORKERS", "0", "at least 1"),
    ("RUNNER_COMPRESSION_LEVEL", "12", "RUNNER_COMPRESSION_LEVEL=.12.: expected a whole number from 0 to 9"),
    ("RUNNER_GRAPH_RENDERER", "neato", "expected one of auto, dot, builtin"),
])
def test_bad_option_values_are_named(tmp_path, monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(runner.ConfigurationError, match=expected):
        runner.write_last_file(small_alt(), {}, tmp_path)


def test_load_last_reads_directories_and_reports_bad_files(tmp_path):
    written = runner.write_last_file(small_alt(), {}, tmp_path / "out", html_report=False, graph=False)
    assert runner.load_last(written.directory) == written.record
    assert runner.load_last(written.directory / "last.json")["id"] == written.last_id
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bad.json.gz").write_bytes(b"\x1f\x8b\x08garbage")
    (tmp_path / "other.json").write_text(json.dumps({"id": 3}))
    for name, message in (("bad.json", "not JSON"), ("bad.json.gz", "not a valid gzip file"),
                          ("other.json", "not a LAST file"), ("missing.json", "cannot read"),
                          (".", "no last.json or last.json.gz")):
        with pytest.raises(runner.LastFileError, match=message):
            runner.load_last(tmp_path / name)


def test_python_api_options_replace_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_ENABLE_COMPRESSION", "true")
    options = runner.LastOptions(html_report=False, graph=False, compression=False)
    written = runner.write_last_file(small_alt(), {}, tmp_path, options=options, archive="zip")
    assert sorted(p.name for p in written.directory.iterdir()) == ["last.json"]
    assert written.archive.name == f"{written.last_id}.zip"
    with pytest.raises(runner.ConfigurationError, match="unknown LAST option"):
        runner.write_last_file(small_alt(), {}, tmp_path, colour="blue")


def test_a_gzip_last_file_is_decompressed_only_up_to_the_cap(tmp_path, monkeypatch):
    """A small last.json.gz can expand to gigabytes: reading stops at the cap, with a clear error."""
    from runner.last import reader as last_reader

    record = {"id": "l", "task_results": {}, "padding": " " * 300_000}
    (tmp_path / "last.json.gz").write_bytes(gzip.compress(json.dumps(record).encode()))
    assert runner.load_last(tmp_path)["id"] == "l"
    monkeypatch.setattr(last_reader, "MAX_LAST_BYTES", 100_000)
    with pytest.raises(runner.LastFileError, match=r"last.json.gz: decompresses to more than 100000 bytes"):
        runner.load_last(tmp_path)
    (tmp_path / "last.json").write_text(json.dumps(record))
    with pytest.raises(runner.LastFileError, match=r"last.json: is more than 100000 bytes"):
        runner.load_last(tmp_path)
