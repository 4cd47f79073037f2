"""`python -m runner batch | show | report` on real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

import runner
from conftest import FIXTURES, dumps


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_batch_writes_each_file_and_reports_failures_without_stopping(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"id": "good", "title": "Good", "tasks": [
        {"id": "a", "description": "A", "dependencies": None}]}))
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(json.dumps({"id": "cyclic", "title": "C", "tasks": [
        {"id": "a", "description": "A", "dependencies": ["b"]},
        {"id": "b", "description": "B", "dependencies": ["a"]}]}))
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{\xff")
    out = tmp_path / "out"
    done = cli("batch", good, cyclic, broken, tmp_path / "absent.json", FIXTURES / "alt_las_example_alt_file.json",
               "--out", out, "--archive", "tar.gz", "--no-report")
    assert done.returncode == 1, done.stderr
    mapping = json.loads(done.stdout)
    assert set(mapping) == {"good", str(cyclic), str(broken), str(tmp_path / "absent.json"), "alt_example_001"}
    assert mapping[str(cyclic)].startswith(f"ERROR: {cyclic}:") and "cycle" in mapping[str(cyclic)]
    assert mapping[str(broken)].startswith(f"ERROR: {broken}:")
    assert "cannot read" in mapping[str(tmp_path / "absent.json")]
    for alt_id in ("good", "alt_example_001"):
        last_id = mapping[alt_id]
        record = runner.load_last(out / last_id)
        assert record["alt_file_id"] == alt_id and record["status"] == "failure"
        assert not (out / last_id / "report.html").exists()
        with tarfile.open(out / f"{last_id}.tar.gz") as archive:
            assert f"{last_id}/last.json" in archive.getnames()


def test_batch_with_a_bad_option_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_LAST_WORKERS", "none")
    done = subprocess.run([sys.executable, "-m", "runner", "batch", "x.json", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "RUNNER_LAST_WORKERS='none'" in done.stderr


def test_show_prints_the_summary_and_statistics(tmp_path):
    alt = runner.parse_alt_file(dumps({"id": "s", "title": "Show me", "tasks": [
        {"id": "a", "description": "A", "dependencies": None},
        {"id": "b", "description": "B", "dependencies": ["a"]}]}))
    results = {"a": runner.task_result_from_dict({
        "task_id": "a", "status": "completed", "duration_ms": 1500,
        "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:01.500Z",
        "metadata": {"ai": {"provider": "echo", "model": "echo", "prompt_tokens": 2, "completion_tokens": 3}}},
        alt)}
    written = runner.write_last_file(alt, results, tmp_path, compression=True, html_report=False, graph=False)
    (written.directory / "last.json").unlink()   # show reads the compressed copy too
    done = cli("show", written.directory)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Show me: 1 of 2 tasks completed")
    assert "critical path  1.500 s: a" in done.stdout
    assert "echo: 2 prompt + 3 completion in 1 call\n" in done.stdout
    as_json = json.loads(cli("show", written.directory, "--json").stdout)
    assert as_json["statistics"]["status_counts"]["completed"] == 1


def test_show_creates_nothing_in_home_or_the_cache_directory(tmp_path):
    # show only reads: the report's compiled-page cache (~/.cache/librunner) is not its to make.
    alt = runner.parse_alt_file(dumps({"id": "quiet", "title": "Quiet", "tasks": [
        {"id": "a", "description": "A", "dependencies": None},
        {"id": "b", "description": "B", "dependencies": ["a"]}]}))
    results = {"a": runner.task_result_from_dict({"task_id": "a", "status": "failed", "error": "broke"}, alt)}
    written = runner.write_last_file(alt, results, tmp_path / "out", html_report=False, graph=False)
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    cache.mkdir()
    done = subprocess.run([sys.executable, "-m", "runner", "show", str(written.directory)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(cache)})
    assert done.returncode == 0, done.stderr
    assert "not completed  2 tasks" in done.stdout
    assert list(home.iterdir()) == [] and list(cache.iterdir()) == []


@pytest.mark.parametrize("command", ["show", "report"])
def test_reading_a_missing_last_directory_exits_2(tmp_path, command):
    done = cli(command, tmp_path)
    assert done.returncode == 2 and "no last.json or last.json.gz" in done.stderr


def test_batch_files_sharing_an_alt_id_are_keyed_by_their_file_paths(tmp_path):
    paths = []
    for name in ("first", "second", "third"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"id": "dup", "title": name, "tasks": [
            {"id": "a", "description": "A", "dependencies": None}]}))
        paths.append(path)
    out = tmp_path / "out"
    done = cli("batch", *paths, paths[1], "--out", out, "--no-report")
    assert done.returncode == 0, done.stderr
    mapping = json.loads(done.stdout)
    assert set(mapping) == {"dup", str(paths[1]), str(paths[2]), f"{paths[1]} (2)"}
    titles = {key: runner.load_last(out / last_id)["title"] for key, last_id in mapping.items()}
    assert titles == {"dup": "first", str(paths[1]): "second", str(paths[2]): "third", f"{paths[1]} (2)": "second"}
