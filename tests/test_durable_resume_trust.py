"""resume trusts nothing its source directory says about where to work: a journal names a
workspace, but only one this library made (a real directory runner-workspace-XXXXXXXX in
the temporary folder, owned by this user) is adopted and removed at the end. Real runs on
the echo provider, real files, a real symlink."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from runner.execution import execute
from runner.execution.resume import resume

WRITE = {"id": "w", "title": "W", "tasks": [
    {"id": "ask", "description": "question"},
    {"id": "w1", "description": "w", "parameters": {
        "task_type": "file_operation", "operation": "write", "path": "planted.txt", "content": "x"}}]}


def _rewrite_start(directory: Path, **changes) -> None:
    journal = directory / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    start = json.loads(lines[0])
    start.update(changes)
    journal.write_bytes(json.dumps(start).encode() + b"\n" + b"".join(lines[1:]))


def _victim() -> Path:
    victim = Path(tempfile.mkdtemp(prefix="victim-"))
    (victim / "precious.txt").write_text("mine")
    return victim


def test_a_tampered_journal_cannot_make_resume_remove_or_write_a_directory(tmp_path):
    first = execute(WRITE, tmp_path, environ={})
    victim = _victim()
    try:
        for named in (victim, tmp_path):
            _rewrite_start(first.directory, workspace=str(named), temporary_workspace=True)
            outcome = resume(first.directory, force=["w1"], environ={})
            assert outcome.all_completed
            assert outcome.workspace != named and not outcome.workspace.exists()
            assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
        assert (tmp_path / first.directory.name).is_dir()
    finally:
        shutil.rmtree(victim, ignore_errors=True)


def test_a_workspace_replaced_by_a_symlink_is_not_adopted(tmp_path):
    first = execute(WRITE, tmp_path, environ={})
    recorded = Path(json.loads((first.directory / "journal.jsonl").read_bytes().splitlines()[0])["workspace"])
    assert recorded.name.startswith("runner-workspace-") and not recorded.exists()
    victim = _victim()
    try:
        os.symlink(victim, recorded)
        outcome = resume(first.directory, force=["w1"], environ={})
        assert outcome.all_completed and outcome.workspace != recorded
        assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
        assert os.path.islink(recorded)
    finally:
        if os.path.islink(recorded):
            os.unlink(recorded)
        shutil.rmtree(victim, ignore_errors=True)


def test_cleaning_dead_runs_touches_only_directories_runs_made(tmp_path):
    """A tool's own directory with a journal.jsonl (and temporary files of its own) in the
    output directory is not a dead run: the next run leaves it alone."""
    project = tmp_path / "proj"
    tool = project / "mytool"
    (tool / "artifacts").mkdir(parents=True)
    (tool / "journal.jsonl").write_text('{"event":"mine"}\n')
    (tool / "artifacts" / "build.bin").write_text("precious")
    (tool / ".cache.tmp").write_text("x")
    (project / ".mytool.backup.tmp").write_text("y")
    outcome = execute({"id": "n", "title": "N", "tasks": [{"id": "x", "description": "x"}]}, project, environ={})
    assert outcome.all_completed
    assert (tool / "artifacts" / "build.bin").read_text() == "precious"
    assert (tool / ".cache.tmp").exists() and (project / ".mytool.backup.tmp").exists()


def test_a_task_that_became_a_file_operation_runs_instead_of_reusing_the_old_result(tmp_path):
    first = execute({"id": "t", "title": "T", "tasks": [
        {"id": "w1", "description": "w", "parameters": {"task_type": "generic", "n": 1}}]}, tmp_path, environ={})
    edited = {"id": "t", "title": "T", "tasks": [
        {"id": "w1", "description": "w", "parameters": {
            "task_type": "file_operation", "operation": "write", "path": "out.txt", "content": "written"}}]}
    workspace = tmp_path / "ws"
    outcome = resume(first.directory, json.dumps(edited).encode(), workspace=workspace, environ={})
    result = outcome.results["w1"].to_dict()
    assert result["status"] == "completed" and "reused_from" not in result["metadata"]
    assert (workspace / "out.txt").read_text() == "written"


def test_a_second_resume_of_the_same_directory_is_refused_while_the_first_runs(tmp_path):
    """Two resumes of one directory at once: the second is refused (exit 2, naming the pid of
    the first), which finishes in its workspace undisturbed. Real processes."""
    import subprocess
    import sys

    from conftest import wait_until
    from test_durable_journal import ENABLED

    flag, release, started = tmp_path / "flag", tmp_path / "release", tmp_path / "started"
    wait = f"test -f {flag} && touch {started} && while [ ! -f {release} ]; do sleep 0.05; done"
    alt = {"id": "twice", "title": "Twice", "tasks": [
        {"id": "wait", "description": "w", "parameters": {"task_type": "system_command", "command": ["sh", "-c", wait]}}]}
    env = {**os.environ, **ENABLED}
    first = execute(alt, tmp_path / "out", environ=env)
    assert first.results["wait"].status == "failed"
    flag.touch()
    argv = [sys.executable, "-m", "runner", "resume", str(first.directory), "--quiet"]
    one = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_until(started.exists, 60)
        two = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=20)
        assert two.returncode == 2, two.stderr
        assert f"being resumed by pid {one.pid}" in two.stderr
        release.touch()
        out, err = one.communicate(timeout=60)
    finally:
        release.touch()
        one.kill()
    assert one.returncode == 0, err
    record = json.loads((Path(out.strip().splitlines()[-1]) / "last.json").read_bytes())
    assert record["task_results"]["wait"]["status"] == "completed"


KILLED_AFTER_LAST_FILE = """
import os, signal, sys
import runner.execution.run as execution
from runner.execution import execute
execution._remove_workspace = lambda workspace: None     # the kill comes before the removal
outcome = execute({"id": "k", "title": "K", "tasks": [{"id": "w", "description": "w", "parameters": {
    "task_type": "file_operation", "operation": "write", "path": "f.txt", "content": "x"}}]}, sys.argv[1], environ={})
print(outcome.workspace, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_workspace_of_a_run_killed_just_after_its_last_file_is_cleaned(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-c", KILLED_AFTER_LAST_FILE, str(out)], capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    workspace = Path(child.stdout.strip())
    (directory,) = out.iterdir()
    assert (directory / "last.json").is_file() and (workspace / "f.txt").is_file()
    execute({"id": "n", "title": "N", "tasks": [{"id": "x", "description": "x"}]}, out, environ={})
    assert not workspace.exists()
    assert (directory / "last.json").is_file()


def test_show_and_resume_agree_on_a_run_killed_before_its_first_journal_record(tmp_path):
    """What a run killed in its first milliseconds leaves: alt.json and an empty journal."""
    import subprocess
    import sys

    directory = tmp_path / "01a21700-0000-7000-8000-000000000000"
    directory.mkdir()
    (directory / "journal.jsonl").write_bytes(b"")
    (directory / "alt.json").write_text(json.dumps(WRITE))
    shown = subprocess.run([sys.executable, "-m", "runner", "show", str(directory)], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "nothing to resume" in shown.stdout and "None" not in shown.stdout, shown.stdout
    resumed = subprocess.run([sys.executable, "-m", "runner", "resume", str(directory)], capture_output=True,
                             text=True, timeout=60)
    assert resumed.returncode == 2 and "nothing to resume" in resumed.stderr


def _tamper_line(directory: Path, kind: str, change) -> None:
    journal = directory / "journal.jsonl"
    lines = journal.read_bytes().splitlines()
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record.get("type") == kind:
            change(record)
            lines[number] = json.dumps(record).encode()
            break
    else:
        raise AssertionError(f"no {kind} line")
    journal.write_bytes(b"\n".join(lines) + b"\n")


def test_a_tampered_run_directory_is_refused_with_the_line_never_a_traceback_or_a_hang(tmp_path):
    import subprocess
    import sys

    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                              timeout=30)

    def status_object(record):
        record["rows"][0][record["fields"].index("status")] = {"x": 1}

    def list_task_id(record):
        record["task_id"] = ["w1"]

    for kind, change in (("task_results", status_object), ("attempt_started", list_task_id)):
        first = execute(WRITE, tmp_path / kind, environ={})
        _tamper_line(first.directory, kind, change)
        for argv in (("resume", first.directory), ("resume", first.directory, "--dry-run"),
                     ("show", first.directory), ("show", first.directory, "--json")):
            (first.directory / "last.json").unlink(missing_ok=True)
            answer = cli(*argv)
            assert answer.returncode == 2 and "line" in answer.stderr and "Traceback" not in answer.stderr, \
                (argv, answer.stderr)
    first = execute(WRITE, tmp_path / "alt", environ={})
    (first.directory / "last.json").unlink()
    alt = first.directory / "alt.json"
    alt.unlink()
    os.mkfifo(alt)
    answer = cli("resume", first.directory, "--dry-run")
    assert answer.returncode == 2 and "not a regular file" in answer.stderr, answer.stderr
    alt.unlink()
    os.symlink("/dev/zero", alt)
    answer = cli("resume", first.directory, "--dry-run")
    assert answer.returncode == 2 and "Traceback" not in answer.stderr, answer.stderr


def test_a_journal_line_its_readers_cannot_use_is_a_journal_error_pointing_at_the_line(tmp_path):
    import subprocess
    import sys

    from runner.errors import JournalError, RunnerError
    from runner.execution.journal import RunState

    first = execute(WRITE, tmp_path / "run", environ={})
    (first.directory / "last.json").unlink()
    _tamper_line(first.directory, "attempt_started", lambda record: record.update(task_id=["w1"]))
    lines = (first.directory / "journal.jsonl").read_bytes().splitlines()
    number = next(n for n, line in enumerate(lines, 1) if b'"task_id": ["w1"]' in line)
    try:
        RunState(first.directory)
    except JournalError as error:
        raised = error
    else:
        raise AssertionError("RunState read a tampered journal")
    assert isinstance(raised, RunnerError) and not isinstance(raised, ValueError)
    assert raised.pointer == f"journal.jsonl:{number}" and f"line {number}:" in str(raised)
    answer = subprocess.run([sys.executable, "-m", "runner", "trace", str(first.directory), "-o", str(tmp_path / "t")],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2 and f"line {number}" in answer.stderr and "Traceback" not in answer.stderr, \
        answer.stderr


def test_a_result_the_core_refuses_is_a_resume_error_naming_its_task_and_line_and_nothing_runs(tmp_path):
    import subprocess
    import sys

    from runner.execution.resume import ResumeError

    first = execute(WRITE, tmp_path / "run", environ={})
    (first.directory / "last.json").unlink()

    def duration_text(record):      # passes the journal's own checks, not a result's
        record["rows"][0][record["fields"].index("duration_ms")] = "soon"
        duration_text.task_id = record["rows"][0][0]

    _tamper_line(first.directory, "task_results", duration_text)
    lines = (first.directory / "journal.jsonl").read_bytes().splitlines()
    number = next(n for n, line in enumerate(lines, 1) if b'"soon"' in line)
    before = (first.directory / "journal.jsonl").read_bytes()
    try:
        resume(first.directory, environ={})
    except ResumeError as error:
        message = str(error)
    else:
        raise AssertionError("resume reused a result the core refuses")
    assert f"journal.jsonl: line {number}:" in message and repr(duration_text.task_id) in message
    assert "/duration_ms" in message and "soon" in message
    answer = subprocess.run([sys.executable, "-m", "runner", "resume", str(first.directory)],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2 and f"line {number}:" in answer.stderr and "Traceback" not in answer.stderr, \
        answer.stderr
    # Refused before anything ran: no new run directory beside it (where a resume makes
    # one), the journal as it was.
    assert sorted(p.name for p in first.directory.parent.iterdir()) == [first.directory.name]
    assert (first.directory / "journal.jsonl").read_bytes() == before


def _edit_rows(directory: Path, change) -> int:
    """change(record, row) on every task_results row; the number of the last line changed."""
    journal = directory / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")[:-1]
    changed = None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:      # a line an edit left that is not JSON
            continue
        if record.get("type") == "task_results" and any([change(record, row) for row in record["rows"]]):
            lines[number - 1] = json.dumps(record).encode()
            changed = number
    journal.write_bytes(b"\n".join(lines) + b"\n")
    return changed


def test_resume_names_the_line_and_task_that_hold_what_it_refuses(tmp_path):
    from runner.execution.resume import ResumeError, plan

    def refused(directory, alt_source=None) -> str:
        try:
            plan(directory, alt_source, environ={})
        except ResumeError as error:
            return str(error)
        raise AssertionError("the plan reused a result the core refuses")

    # A segment_completed record's output, beside a valid (failed) result of its task: named
    # at that record, not at the result's line.
    first = execute(WRITE, tmp_path / "segment", environ={})
    (first.directory / "last.json").unlink()

    def failed(record, row):
        if row[0] == "w1":
            row[record["fields"].index("status")] = "failed"
            return True
    _edit_rows(first.directory, failed)
    journal = first.directory / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"type":"segment_completed","task_id":"w1","output":9007199254740993}\n')
    number = len(journal.read_bytes().splitlines())
    message = refused(first.directory)
    assert f"line {number}: the output its segment recorded (segment_completed) of task 'w1'" in message, message

    # A "\r" left inside an earlier line does not shift the count (lines end at "\n"). The line
    # is a record of a type no reader knows, "\r" its JSON whitespace: a line that is not a
    # JSON object is damaged, refused (tests/test_resume_never_twice.py).
    first = execute(WRITE, tmp_path / "cr", environ={})
    (first.directory / "last.json").unlink()
    lines = (first.directory / "journal.jsonl").read_bytes().split(b"\n")[:-1]
    (first.directory / "journal.jsonl").write_bytes(
        b"\n".join([lines[0], b'{"type": "note",\r"second": "half"}', *lines[1:]]) + b"\n")

    def soon(record, row):
        if row[0] == "w1":
            row[record["fields"].index("duration_ms")] = "soon"
            return True
    number = _edit_rows(first.directory, soon)
    assert f"line {number}: the earlier result of task 'w1'" in refused(first.directory)

    # Short rows take a null started_at from the row before: the row that holds the value is
    # named, whatever order an edited file puts its tasks in.
    tasks = [{"id": f"g{i}", "description": "g", "parameters": {"task_type": "generic"}} for i in range(3)]
    first = execute({"id": "g", "title": "G", "tasks": tasks}, tmp_path / "short", environ={})
    (first.directory / "last.json").unlink()

    def yesterday(record, row):
        if row[0] == "g0":
            row[record["fields"].index("started_at")] = "yesterday"
            return True
    number = _edit_rows(first.directory, yesterday)
    reordered = json.dumps({"id": "g", "title": "G", "tasks": tasks[::-1]}).encode()
    for alt_source in (None, reordered):
        assert f"line {number}: the earlier result of task 'g0'" in refused(first.directory, alt_source)


def test_a_run_started_record_whose_last_id_is_not_a_string_is_a_journal_error_at_line_1(tmp_path):
    import subprocess
    import sys

    first = execute(WRITE, tmp_path / "run", environ={})
    (first.directory / "last.json").unlink()
    _rewrite_start(first.directory, last_id=5)
    for argv in (("resume", first.directory), ("resume", first.directory, "--dry-run"), ("show", first.directory)):
        answer = subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                                timeout=60)
        assert answer.returncode == 2 and "line 1:" in answer.stderr and "last_id" in answer.stderr \
            and "Traceback" not in answer.stderr, (argv, answer.stderr)


def test_two_threads_of_one_c_host_resuming_one_run_the_refused_one_is_told_it_is_being_resumed(runner, tmp_path):
    """The run, and both resumes, in this one process (the C ABI through ctypes, two threads):
    the lock's holder is this process's own pid, yet the refusal says "being resumed"."""
    import ctypes
    import threading

    from conftest import wait_until
    from test_durable_journal import ENABLED

    flag, release, started = tmp_path / "flag", tmp_path / "release", tmp_path / "started"
    wait = f"test -f {flag} && touch {started} && while [ ! -f {release} ]; do sleep 0.05; done"
    alt = {"id": "threads", "title": "Threads", "tasks": [
        {"id": "wait", "description": "w", "parameters": {"task_type": "system_command", "command": ["sh", "-c", wait]}}]}
    for name, value in ENABLED.items():
        os.environ[name] = value        # the library reads the process's environment, as a C host's
    try:
        first = execute(alt, tmp_path / "out", environ=dict(os.environ))
        assert first.results["wait"].status == "failed"
        flag.touch()
        lib = runner.lib
        lib.runner_resume.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.runner_resume.restype = ctypes.c_void_p
        made = []
        one = threading.Thread(target=lambda: made.append(lib.runner_resume(str(first.directory).encode(), None, None)))
        one.start()
        try:
            assert wait_until(started.exists, 60)
            refused = []

            def second():
                refused.append(lib.runner_resume(str(first.directory).encode(), None, None))
                refused.append(runner.last_error())
            two = threading.Thread(target=second)
            two.start()
            two.join(60)
            assert refused[0] is None
            assert "being resumed" in refused[1] and "still going" not in refused[1], refused[1]
        finally:
            release.touch()
            one.join(60)
        assert made and made[0] is not None
        runner.take(made[0])
    finally:
        for name in ENABLED:
            os.environ.pop(name, None)


def _caller_workspace_run(tmp_path: Path):
    """`run --workspace W` of a file written by one task and read by the next, whose first
    attempt fails (a command that needs a flag file): (the run's directory, W)."""
    import subprocess
    import sys

    from test_durable_journal import ENABLED

    workspace = tmp_path / "mine"
    flag = tmp_path / "flag"
    alt = {"id": "mine", "title": "Mine", "tasks": [
        {"id": "write", "description": "w", "parameters": {
            "task_type": "file_operation", "operation": "write", "path": "notes.txt", "content": "kept"}},
        {"id": "gate", "description": "g", "dependencies": ["write"], "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"test -f {flag}"]}},
        {"id": "read", "description": "r", "dependencies": ["gate"], "parameters": {
            "task_type": "file_operation", "operation": "read", "path": "notes.txt"}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    env = {**os.environ, **ENABLED}
    first = subprocess.run([sys.executable, "-m", "runner", "run", str(tmp_path / "alt.json"), "--out",
                            str(tmp_path / "out"), "--workspace", str(workspace), "--quiet"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 1, first.stderr
    flag.touch()
    return Path(first.stdout.strip().splitlines()[-1]), workspace, env


def test_resume_continues_in_the_workspace_the_caller_gave_the_run_and_keeps_it(tmp_path):
    import subprocess
    import sys

    directory, workspace, env = _caller_workspace_run(tmp_path)
    resumed = subprocess.run([sys.executable, "-m", "runner", "resume", str(directory), "--quiet"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((Path(resumed.stdout.strip().splitlines()[-1]) / "last.json").read_bytes())
    assert record["task_results"]["read"]["output"]["content"] == "kept"     # the earlier task's file, where it was
    assert (workspace / "notes.txt").read_text() == "kept"                    # the caller's directory stays


def test_a_journal_whose_workspace_is_not_a_directory_of_this_user_is_refused(tmp_path):
    import subprocess
    import sys

    directory, workspace, env = _caller_workspace_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(workspace)
    os.symlink(elsewhere, workspace)
    refused = subprocess.run([sys.executable, "-m", "runner", "resume", str(directory), "--quiet"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 2, refused.stderr
    assert f"names the workspace '{workspace}', which is a symbolic link: refused" in refused.stderr
    assert list(elsewhere.iterdir()) == []
    os.unlink(workspace)
    if os.geteuid() == 0:
        workspace.mkdir()
        os.chown(workspace, 65534, 65534)
        named = workspace
    else:
        named = Path("/")           # root's: another user's directory
        _rewrite_start(directory, workspace=str(named))
    refused = subprocess.run([sys.executable, "-m", "runner", "resume", str(directory), "--quiet"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 2, refused.stderr
    assert f"names the workspace '{named}', which is owned by another user: refused" in refused.stderr
