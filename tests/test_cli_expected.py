"""The CLI people expect: logging, --version, stdin, --json, show's failures, report's flags,
labelled streams under a redrawn bar, file modes from the umask, wording."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO, dumps

MIXED = {"id": "mixed", "title": "Mixed", "tasks": [
    {"id": "ok", "description": "fine", "parameters": {"task_type": "generic"}},
    {"id": "bad", "description": "x", "parameters": {"task_type": "data_processing", "input": ["a"],
                                                     "operations": [{"op": "reduce", "function": "sum"}]}},
    {"id": "after", "description": "y", "dependencies": ["bad"], "parameters": {"task_type": "generic"}}]}


def cli(*args, env=None, stdin=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=environ, input=stdin, timeout=120)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed")
    done = cli("run", "-", "--out", out, "--quiet", "--json", stdin=json.dumps(MIXED))
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout)


def test_version():
    from importlib import metadata

    done = cli("--version")
    assert done.returncode == 0 and done.stdout == f"librunner {metadata.version('librunner')}\n"


def test_runner_log_level_drives_the_cli_logging(tmp_path):
    path = tmp_path / "alt.json"
    path.write_bytes(dumps(MIXED))
    quiet = cli("run", path, "--out", tmp_path / "a", "--quiet")
    assert "librunner" not in quiet.stderr
    debug = cli("run", path, "--out", tmp_path / "b", "--quiet", env={"RUNNER_LOG_LEVEL": "debug"})
    assert "librunner DEBUG [alt=mixed last=-] task bad: failed after 1 attempt: operations[0]" in debug.stderr
    assert "librunner INFO [alt=mixed last=" in debug.stderr and " wrote " in debug.stderr
    bad = cli("validate", path, env={"RUNNER_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and "RUNNER_LOG_LEVEL='loud': expected one of trace, debug, info, warn, error" \
        in bad.stderr


def test_run_json_and_stdin(mixed_run):
    assert mixed_run["status"] == "partialsuccess" and not mixed_run["all_completed"]
    assert mixed_run["status_counts"] == {"completed": 1, "failed": 1, "skipped": 1}
    assert mixed_run["not_completed"] == [
        {"task_id": "bad", "status": "failed", "error": "operations[0] (reduce): sum needs numbers"},
        {"task_id": "after", "status": "skipped", "error": "dependency 'bad' failed"}]
    assert (json.loads((REPO / "runner" / "schemas" / "last.schema.json").read_text()))  # the schema is there
    assert os.path.isfile(os.path.join(mixed_run["directory"], "last.json"))


def test_show_lists_the_tasks_that_did_not_complete(mixed_run):
    shown = cli("show", mixed_run["directory"])
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    start = lines.index("not completed  2 tasks:")
    assert lines[start + 1:start + 3] == ["  failed    bad: operations[0] (reduce): sum needs numbers",
                                          "  skipped   after: dependency 'bad' failed"]
    as_json = json.loads(cli("show", "--json", mixed_run["directory"]).stdout)
    assert as_json["not_completed"] == mixed_run["not_completed"]


@pytest.mark.parametrize("flag", ["--archive=zip", "--compress", "--no-compress", "--no-report", "--no-artifacts",
                                  "--workers=2"])
def test_report_refuses_the_flags_it_cannot_honour(mixed_run, flag):
    done = cli("report", mixed_run["directory"], flag)
    assert done.returncode == 2
    assert f"{flag.split('=')[0]} does not apply:" in done.stderr


def test_report_honours_its_own_flags(mixed_run, tmp_path):
    without = cli("report", mixed_run["directory"], "--no-graph", "--output", tmp_path / "a.html")
    with_graph = cli("report", mixed_run["directory"], "--graph-renderer", "builtin", "--output", tmp_path / "b.html")
    assert without.returncode == 0 and with_graph.returncode == 0, without.stderr + with_graph.stderr
    assert "data:image/svg+xml" not in (tmp_path / "a.html").read_text()
    assert "data:image/svg+xml" in (tmp_path / "b.html").read_text()


def test_files_are_created_with_the_process_umask(tmp_path):
    path = tmp_path / "alt.json"
    path.write_bytes(dumps(MIXED))
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        out = tmp_path / f"out{umask:o}"
        done = subprocess.run(["sh", "-c", f"umask {umask:03o} && exec \"$0\" -m runner run \"$1\" --out \"$2\" --quiet",
                               sys.executable, path, out], capture_output=True, text=True, timeout=120)
        directory = out / os.listdir(out)[0]
        assert done.returncode == 1, done.stderr
        for name in ("last.json", "report.html"):
            assert stat.S_IMODE((directory / name).stat().st_mode) == mode, (name, oct(umask))


def test_wording_counts_one_task_as_one_task(tmp_path):
    path = tmp_path / "one.json"
    path.write_bytes(dumps({"id": "one", "title": "One", "tasks": [{"id": "t", "parameters": {"task_type": "generic"}}]}))
    done = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert "One: 1 of 1 task completed" in done.stderr
    assert "(1 task, mode normal)" in cli("validate", path).stdout


def test_streams_are_labelled_lines_and_the_bar_is_redrawn_below():
    from runner.execution.progress import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(stream, terminal=True)
    base = {"total": 2, "done": 0, "running": 2, "failed": 0, "skipped": 0, "elapsed_s": 1.0}
    display({**base, "event": "task_started", "task_id": "a"})
    for task_id, text in (("a", "alpha one\nalp"), ("b", "beta "), ("a", "ha two\n"), ("b", "one\nbeta two")):
        display({**base, "event": "task_output", "task_id": task_id, "text": text})
    display({**base, "event": "task_finished", "task_id": "b", "status": "completed", "done": 1})
    display.close()
    # What a terminal shows: each \r\x1b[2K erases the bar's line before text is written.
    screen: list[str] = [""]
    for piece in stream.getvalue().replace("\r\x1b[2K", "\x00").split("\x00"):
        screen[-1] = ""
        for char in piece:
            if char == "\n":
                screen.append("")
            else:
                screen[-1] += char
    text_lines = [line for line in screen if " | " in line]
    assert text_lines == ["a | alpha one", "a | alpha two", "b | beta one", "b | beta two"]
    assert all(line.startswith(("a | ", "b | ", "[")) or line == "" for line in screen), screen
    bar_lines = [i for i, line in enumerate(screen) if line.startswith("[")]
    assert bar_lines and bar_lines[-1] > max(i for i, line in enumerate(screen) if " | " in line)


def test_install_system_deps_waits_for_a_held_apt_lock():
    script = (REPO / "scripts" / "install-system-deps").read_text()
    assert 'DPkg::Lock::Timeout="${APT_LOCK_TIMEOUT:-300}"' in script
    assert script.count('apt-get "${LOCK_WAIT[@]}"') == 2          # update and install both wait
