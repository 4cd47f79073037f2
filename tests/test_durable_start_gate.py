"""The journal's start is made durable on its writer thread while the run goes on: inline
tasks may finish meanwhile (their results follow the start's lines), but the first attempt
that may have an effect outside the record waits until journal.jsonl holds the run_started
record. A start the disk refuses, or a writer that fails, releases that wait with a warning;
a process killed during the start leaves a directory that show, resume and cleaning handle
as they always did. Real runs and processes, no timings."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from runner import librunner
from runner.execution import execute
from runner.execution.journal import JOURNAL_NAME, Journal, RunState, is_locked
from runner.execution.run_directory import WORKSPACE_PREFIX, clean_dead_runs, discard_kept_workspace_of
from conftest import wait_until
from test_durable_full_disk import _namespaces_work, generic, on_small_disk

ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh"}


def first_line_of_run(out: Path) -> dict | None:
    """The first record of the one run's journal under `out`, as a reader finds it now."""
    journals = list(out.glob(f"*/{JOURNAL_NAME}"))
    if len(journals) != 1:
        return None
    with open(journals[0], "rb") as handle:
        line = handle.readline()
    return orjson.loads(line) if line.endswith(b"\n") else None


def many_inline_then(count: int, last: dict) -> dict:
    """`count` generic tasks (a large alt.json, so its start takes a while) and `last`, which
    depends on none of them: the scheduler may take it at once."""
    tasks = [{"id": f"g{i}", "description": "g", "parameters": {"task_type": "generic", "n": i, "pad": "p" * 40}}
             for i in range(count)]
    return {"id": "gate", "title": "Gate", "tasks": [last, *tasks]}


def test_a_user_task_runs_only_once_its_run_started_record_is_on_disk(tmp_path):
    seen = []

    def probe(task):
        seen.append(first_line_of_run(tmp_path / "out"))
        return "probed"

    doc = many_inline_then(20_000, {"id": "probe", "description": "p", "parameters": {"task_type": "probe"}})
    outcome = execute(doc, tmp_path / "out", environ={}, handlers={"probe": probe}, write=False, journal=True)
    assert outcome.all_completed
    (start,) = seen
    assert start is not None and start["type"] == "run_started" and start["alt_id"] == "gate"
    state = RunState(tmp_path / "out" / outcome.last_id)
    # Every inline result is in the journal, those that finished while the start was written too.
    assert len(state.results) == 20_001 and state.results["probe"]["output"] == "probed"
    assert state.start["alt_sha256"] is not None


def test_a_command_runs_only_once_its_run_started_record_is_on_disk(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    check = f'if head -n 1 {out}/*/journal.jsonl | grep -q run_started; then echo yes > {log}; else echo no > {log}; fi'
    doc = many_inline_then(20_000, {"id": "look", "description": "l", "parameters": {
        "task_type": "system_command", "command": ["sh", "-c", check]}})
    env = {**ENABLED, "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,head,grep"}
    outcome = execute(doc, out, environ=env, write=False, journal=True)
    assert outcome.all_completed
    assert log.read_text() == "yes\n"
    assert len(RunState(out / outcome.last_id).results) == 20_001


def test_inline_results_made_while_the_start_is_written_follow_its_lines(tmp_path):
    outcome = execute(generic(5_000), tmp_path / "out", environ={}, write=False, journal=True)
    directory = tmp_path / "out" / outcome.last_id
    records = [orjson.loads(line) for line in (directory / JOURNAL_NAME).read_bytes().splitlines()]
    assert records[0]["type"] == "run_started" and records[-1]["type"] == "run_ended"
    assert {r["type"] for r in records[1:-1]} == {"task_results"}
    assert len(RunState(directory).results) == 5_000
    assert orjson.loads((directory / "alt.json").read_bytes())["id"] == "disk"


def test_a_writer_that_fails_at_the_start_releases_the_wait_and_warns(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    journal = Journal(directory, b'{"id": "x"}')
    # Not a TaskResult: the core refuses to write it, on the writer thread.
    journal.start({"type": "run_started", "alt_sha256": None}, results=[object()])
    journal.wait_started()      # returns: no deadlock
    journal.write({"type": "attempt_started", "task_id": "a", "attempt": 1})
    journal.close()
    assert journal.error is not None and any("cannot be written" in w for w in journal.warnings)
    # No journal under its name (its first lines are not whole), and no temporary file left.
    assert sorted(p.name for p in directory.iterdir()) == ["alt.json"]


def test_an_alt_json_that_cannot_be_made_is_a_warning_and_the_journal_is_written(tmp_path, monkeypatch):
    """alt.json's temporary file is made by the run's thread with the journal's (the writer's
    own os calls each waited for the GIL); one that cannot be made is still the writer's
    warning, as a write that fails is, and the journal is written."""
    made = Journal._temporary_file

    def refused(self, name):
        if name == "alt.json":
            raise OSError(28, "No space left on device")
        return made(self, name)

    monkeypatch.setattr(Journal, "_temporary_file", refused)
    directory = tmp_path / "run"
    directory.mkdir()
    journal = Journal(directory, b'{"id": "x"}')
    journal.start({"type": "run_started", "alt_sha256": None})
    journal.close()
    assert [w for w in journal.warnings if "alt.json cannot be written (No space left on device)" in w]
    assert journal.error is None and sorted(p.name for p in directory.iterdir()) == [JOURNAL_NAME]
    assert orjson.loads((directory / JOURNAL_NAME).read_bytes().splitlines()[0])["type"] == "run_started"


def test_a_journal_released_before_its_start_leaves_no_file_and_no_fd(tmp_path):
    """A run that never began (its start refused) removes the temporary files its journal
    made for it and closes their descriptors and its directory's."""
    directory = tmp_path / "run"
    directory.mkdir()
    before = set(os.listdir("/proc/self/fd"))
    journal = Journal(directory, b'{"id": "x"}')
    assert len(list(directory.iterdir())) == 2      # the journal's and alt.json's temporary files
    journal.release()
    assert list(directory.iterdir()) == [] and set(os.listdir("/proc/self/fd")) == before


def test_a_start_the_disk_refuses_does_not_hold_back_a_command(tmp_path):
    if not _namespaces_work():
        import pytest
        pytest.skip("needs unshare -rm (user and mount namespaces)")
    log = tmp_path / "log"
    path = tmp_path / "alt.json"
    doc = many_inline_then(40, {"id": "effect", "description": "e", "parameters": {
        "task_type": "system_command", "command": ["sh", "-c", f"echo ran >> {log}"]}})
    path.write_text(json.dumps(doc))
    done, copy = on_small_disk(tmp_path, "64k", sys.executable, "-m", "runner", "run", path,
                               "--out", tmp_path / "disk" / "out", "--quiet", fill=True, env=ENABLED)
    assert "journal.jsonl cannot be written" in done.stderr, done.stderr
    assert done.returncode == 5, done.stderr
    assert log.read_text() == "ran\n"
    assert not list((copy / "out").glob("*/journal.jsonl"))


KILLED_DURING_THE_START = """
import os, signal, sys
from runner import librunner
from runner.execution import journal
real = librunner.write_synced
def write_synced(fd, chunks, *args, rename_to=None, **options):
    if rename_to is not None and rename_to.endswith(journal.JOURNAL_NAME.encode()):
        real(fd, chunks)        # the journal's first lines written, not yet named: killed here
        os.kill(os.getpid(), signal.SIGKILL)
    return real(fd, chunks, *args, rename_to=rename_to, **options)
librunner.write_synced = write_synced
from runner.execution import execute
execute({"id": "killed", "title": "k", "tasks": [
    {"id": f"t{i}", "description": "d", "parameters": {"task_type": "generic"}} for i in range(2000)]},
    sys.argv[1], environ={})
"""


def test_a_run_killed_during_its_start_leaves_what_show_resume_and_cleaning_handle(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_DURING_THE_START), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    (directory,) = out.iterdir()
    names = {p.name for p in directory.iterdir()}
    assert JOURNAL_NAME not in names and "alt.json" in names
    assert any(name.startswith(f".{JOURNAL_NAME}.") for name in names)
    shown = subprocess.run([sys.executable, "-m", "runner", "show", directory], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 2 and "Traceback" not in shown.stderr, shown.stderr
    resumed = subprocess.run([sys.executable, "-m", "runner", "resume", directory], capture_output=True, text=True,
                             timeout=60)
    assert resumed.returncode != 0 and "no journal.jsonl" in resumed.stderr and "Traceback" not in resumed.stderr
    # Cleaning leaves a directory without a journal alone while it is young (its run may be
    # between its mkdir and its journal), and anything it holds that a start does not make.
    clean_dead_runs(out)
    assert directory.is_dir() and "alt.json" in os.listdir(directory)
    old = time.time() - 120
    (directory / "mine.txt").write_text("not the start's")
    os.utime(directory, (old, old))
    clean_dead_runs(out)
    assert "mine.txt" in os.listdir(directory)
    (directory / "mine.txt").unlink()
    # Its temporary journal locked: a live run's start (the lock is held from its creation).
    temporary = next(directory.glob(f".{JOURNAL_NAME}.*.tmp"))
    holder = os.open(temporary, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        os.utime(directory, (old, old))
        clean_dead_runs(out)
        assert directory.is_dir() and temporary.exists()
    finally:
        os.close(holder)
    # Old, holding only the start's leftovers, unlocked: a dead start, which recorded nothing;
    # but never looked into by the run whose own directory it is.
    os.utime(directory, (old, old))
    clean_dead_runs(out, running=directory)
    assert directory.is_dir()
    clean_dead_runs(out)
    assert not directory.exists()


def commands_logging_to(log: Path, count: int) -> dict:
    return {"id": "stop", "title": "Stop", "tasks": [
        {"id": f"c{i}", "description": "c", "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"echo c{i} >> {log}"]}} for i in range(count)]}


def test_a_stop_while_the_start_is_written_hands_out_no_task(tmp_path, monkeypatch):
    """A cancel (the service's, the C ABI's: Execution.interrupt) that arrives while the
    run waits for its journal's start: no command is handed out, all are cancelled."""
    from runner import librunner

    runs, real = [], librunner.write_synced

    def stopped_meanwhile(fd, chunks, *args, rename_to=None, **kwargs):
        if rename_to is not None and rename_to.endswith(JOURNAL_NAME.encode()):
            runs[0].interrupt()
        return real(fd, chunks, *args, rename_to=rename_to, **kwargs)
    monkeypatch.setattr(librunner, "write_synced", stopped_meanwhile)
    log = tmp_path / "effects"
    outcome = execute(commands_logging_to(log, 4), tmp_path / "out", environ=ENABLED, on_execution=runs.append)
    assert outcome.interrupted and not log.exists()
    assert {(r.status, len(r.metadata.get("attempts") or ())) for r in outcome.results.values()} == {("cancelled", 0)}
    written = orjson.loads((outcome.directory / "last.json").read_bytes())
    assert {r["status"] for r in written["task_results"].values()} == {"cancelled"}


def test_a_sigterm_while_the_start_is_written_hands_out_no_task(tmp_path):
    """The CLI's handling of SIGTERM (handle_sigint): the signal lands while the run's
    thread waits for the journal's start; no command runs."""
    log = tmp_path / "effects"
    script = textwrap.dedent(f"""
        import signal, threading
        from runner import librunner
        from runner.execution import execute
        runs, real = [], librunner.write_synced
        def signalled_meanwhile(fd, chunks, *args, rename_to=None, **kwargs):
            if rename_to is not None and rename_to.endswith(b"journal.jsonl"):
                signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
                assert runs[0]._interrupt.wait(30), "the SIGTERM was not handled"
            return real(fd, chunks, *args, rename_to=rename_to, **kwargs)
        librunner.write_synced = signalled_meanwhile
        outcome = execute({commands_logging_to(log, 4)!r}, {str(tmp_path / "out")!r}, handle_sigint=True,
                          environ={ENABLED!r}, on_execution=runs.append)
        assert outcome.interrupted and outcome.signal_name == "SIGTERM", outcome.signal_name
        print(sorted({{(r.status, len(r.metadata.get("attempts") or ())) for r in outcome.results.values()}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('cancelled', 0)]"     # none was even begun
    assert not log.exists()


def test_a_relative_output_directory_holds_after_the_working_directory_changes(tmp_path, monkeypatch):
    """The journal's start happens on its writer thread, maybe after the process changed its
    working directory: the run's directory was made absolute when it was opened."""
    from runner import librunner

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(home)
    real = librunner.write_synced

    def moved_meanwhile(*args, **kwargs):
        os.chdir(elsewhere)
        return real(*args, **kwargs)
    monkeypatch.setattr(librunner, "write_synced", moved_meanwhile)
    outcome = execute(commands_logging_to(tmp_path / "effects", 1), "output", environ=ENABLED)
    assert outcome.all_completed and not outcome.facts.get("journal_warnings")
    directory = home / "output" / outcome.last_id
    assert (directory / JOURNAL_NAME).is_file() and (directory / "alt.json").is_file()
    assert (directory / "last.json").is_file()
    assert not list(elsewhere.iterdir())


def test_records_queued_before_the_start_is_written_follow_its_first_line_in_order(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    journal = Journal(directory, b'{"id": "x"}')
    journal.write({"type": "segment_completed", "task_id": "a", "output": 1})
    journal.write({"type": "run_ended", "interrupted": False, "ended_at": "now"})
    journal.start({"type": "run_started", "alt_sha256": None})
    journal.close()
    records = [orjson.loads(line) for line in (directory / JOURNAL_NAME).read_bytes().splitlines()]
    assert [r["type"] for r in records] == ["run_started", "segment_completed", "run_ended"]
    assert journal.warnings == [] and (directory / "alt.json").read_bytes() == b'{"id": "x"}'


def test_a_stop_while_a_round_is_handed_out_starts_no_more_of_it(tmp_path):
    """A cancel that lands while the loop hands out a round of ready tasks (here at the first
    one's start, from its task_started event, on the run's own thread): the rest of the
    round never starts, and each of its tasks is recorded as cancelled."""
    runs, started = [], []

    def stop_at_the_first_start(event):
        if event["event"] == "task_started":
            started.append(event["task_id"])
            runs[0].interrupt()
    log = tmp_path / "effects"
    outcome = execute(commands_logging_to(log, 20), tmp_path / "out", environ=ENABLED, max_concurrency=20,
                      on_event=stop_at_the_first_start, on_execution=runs.append)
    assert outcome.interrupted and len(started) == 1
    statuses = {task_id: (r.status, len(r.metadata.get("attempts") or ())) for task_id, r in outcome.results.items()}
    assert statuses.pop(started[0])[1] == 1
    assert set(statuses.values()) == {("cancelled", 0)} and len(statuses) == 19
    assert len(log.read_text().split()) <= 1 if log.exists() else True


def test_no_thread_for_the_journal_s_writer_is_a_journal_error_that_leaves_no_lock_file_or_directory(
        tmp_path, monkeypatch):
    """A process out of threads: the run does not begin, says why, and keeps no open file,
    no lock and no directory; without a thread for the cleaning of dead runs it runs."""
    from runner.errors import JournalError
    from runner.execution import journal

    real, starts = journal._start_thread, []

    def refused_at(number):
        def start(target, **options):
            starts.append(target)
            if len(starts) == number:
                raise RuntimeError("can't start new thread")
            return real(target, **options)
        return start

    monkeypatch.setattr(journal, "_start_thread", refused_at(1))
    out = tmp_path / "out"
    descriptors = len(os.listdir("/proc/self/fd"))
    try:
        execute(generic(3), out, environ={})
    except JournalError as error:
        assert "the journal's writer cannot start (can't start new thread)" in str(error)
    else:
        raise AssertionError("the run began without its journal's writer")
    assert len(os.listdir("/proc/self/fd")) == descriptors
    assert list(out.iterdir()) == []
    # Nor a drain slowed by a writer that never came (the start counts it busy at once).
    assert librunner.gil_handoff_counts() == (0, 0)
    starts.clear()
    monkeypatch.setattr(journal, "_start_thread", refused_at(2))
    outcome = execute(generic(3), out, environ={})
    assert outcome.all_completed and (outcome.directory / "last.json").is_file()


def test_a_writer_start_interrupted_or_out_of_memory_gives_its_busy_count_back(tmp_path, monkeypatch):
    """The writer counts as busy from before its thread starts (the drain then lets it in):
    whatever ends that start, a Ctrl-C or no memory, before or after the thread began, the
    count comes back to 0 once, or every later drain of the process would pause for it."""
    from runner.execution import journal

    real = journal._thread.start_new_thread

    def refused(raised):
        def start(function, arguments):
            raise raised()
        return start

    def started_then_interrupted(function, arguments):
        real(function, arguments)
        raise KeyboardInterrupt

    journals = []
    real_start = Journal.start

    def kept(self, *arguments, **options):
        journals.append(self)
        return real_start(self, *arguments, **options)

    for start in (refused(KeyboardInterrupt), refused(MemoryError), started_then_interrupted):
        monkeypatch.setattr(Journal, "start", kept)
        monkeypatch.setattr(journal._thread, "start_new_thread", start)
        with pytest.raises((KeyboardInterrupt, MemoryError)):
            execute(generic(3), tmp_path / "out", environ={})
        monkeypatch.undo()
        if start is started_then_interrupted:   # its writer runs: its start done, it has given it back
            assert journals[-1]._started.wait(30)
        assert librunner.gil_handoff_counts() == (0, 0), start


def test_the_cleaning_of_dead_starts_touches_nothing_but_a_dead_start_s_own_files(tmp_path):
    """Old directories that look like dead starts but are not one: a temporary journal that is
    a FIFO (never opened to wait on it), a symlink to a directory elsewhere (never followed),
    a name that is not a LAST id, more files than a start makes. All stay as they were."""
    import uuid

    out = tmp_path / "out"
    out.mkdir()
    old = time.time() - 120

    def start_like(directory: Path, journal_kind: str = "file") -> Path:
        directory.mkdir()
        journal = directory / f".{JOURNAL_NAME}.abcdefgh.tmp"
        if journal_kind == "fifo":
            os.mkfifo(journal)
        else:
            journal.write_text("x")
        (directory / "alt.json").write_text("{}")
        return directory

    fifo = start_like(out / str(uuid.uuid4()), "fifo")
    victim = start_like(tmp_path / "victim")
    link = out / str(uuid.uuid4())
    link.symlink_to(victim, target_is_directory=True)
    not_an_id = start_like(out / "last_backup")
    crowded = start_like(out / str(uuid.uuid4()))
    for number in range(8):
        (crowded / f".alt.json.abcdef{number:02d}.tmp").write_text("y")
    for directory in (fifo, not_an_id, crowded):
        os.utime(directory, (old, old))
    before = {path: sorted(os.listdir(path)) for path in (fifo, victim, not_an_id, crowded)}
    clean_dead_runs(out)
    assert link.is_symlink()
    assert {path: sorted(os.listdir(path)) for path in (fifo, victim, not_an_id, crowded)} == before


def test_is_locked_never_waits_on_a_fifo_and_calls_what_it_cannot_tell_locked(tmp_path):
    """The cleaning of dead runs asks is_locked before it removes anything of a run: a FIFO
    put in a journal's place must not block it (a run's end waits for its cleaning), and a
    file it cannot open or a symlink must read as a live run's, never as a dead one's."""
    from runner.execution.journal import is_locked

    assert is_locked(tmp_path / "absent") is False
    plain = tmp_path / "journal.jsonl"
    plain.write_text("{}\n")
    assert is_locked(plain) is False
    holder = os.open(plain, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert is_locked(plain) is True
    finally:
        os.close(holder)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert is_locked(fifo) is True           # at once: no writer ever opens it
    link = tmp_path / "link"
    link.symlink_to(plain)
    assert is_locked(link) is True


def test_a_ctrl_c_while_start_waits_for_its_writer_ends_the_writer_and_releases_the_journal(tmp_path, monkeypatch):
    """A Ctrl-C during Journal.start's wait for its writer's first hand-over point (attack
    review 11: the writer then looped for the life of the process, the directory locked as a
    live run's and its fds open): the writer ends after its start and releases the journal
    itself; the directory is an interrupted run's, which resume and cleaning take."""
    real = librunner.gil_wait_let_go

    def interrupted(since, seconds):
        real(since, seconds)
        raise KeyboardInterrupt     # where a signal that came during the wait is raised

    monkeypatch.setattr(librunner, "gil_wait_let_go", interrupted)
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(KeyboardInterrupt):
        execute(generic(20), tmp_path / "out", environ={}, journal=True)
    monkeypatch.undo()
    (directory,) = (tmp_path / "out").iterdir()
    journal = directory / JOURNAL_NAME
    assert wait_until(lambda: journal.exists() and not is_locked(journal), 30)
    assert wait_until(lambda: set(os.listdir("/proc/self/fd")) <= fds, 30)
    assert RunState(directory).state == "interrupted"
    assert sorted(p.name for p in directory.iterdir()) == ["alt.json", JOURNAL_NAME]


def test_a_run_whose_first_record_cannot_be_made_leaves_no_directory_and_no_fd(tmp_path, monkeypatch):
    from runner.execution import run

    def refused(*arguments):
        raise MemoryError

    monkeypatch.setattr(run, "_run_started", refused)
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(MemoryError):
        execute(generic(3), tmp_path / "out", environ={}, journal=True)
    assert list((tmp_path / "out").iterdir()) == [] and set(os.listdir("/proc/self/fd")) <= fds


def test_alt_sha256_is_made_under_an_executable_path_that_is_not_utf8(tmp_path):
    """/proc/self/maps, read for the libcrypto hashlib loaded, may name files in any encoding
    (attack review 11: a Python run from a latin-1 directory failed every journaled run with
    UnicodeDecodeError). The run is journaled and its alt_sha256 is alt.json's."""
    import shutil
    import site

    executable = Path(os.path.realpath(sys.executable))
    home = Path(os.fsdecode(b"caf\xe9"))
    copied = tmp_path / home / executable.name
    copied.parent.mkdir()
    shutil.copy2(executable, copied)
    repository = Path(__file__).resolve().parent.parent
    code = textwrap.dedent("""
        import hashlib, pathlib, sys, orjson
        from runner.execution import execute
        doc = {"id": "d", "title": "d", "tasks": [{"id": "t", "description": "d", "parameters": {"task_type": "generic"}}]}
        out = pathlib.Path(sys.argv[1])
        execute(doc, out, write=False, journal=True, environ={})
        (run,) = out.iterdir()
        first = orjson.loads((run / "journal.jsonl").read_bytes().splitlines()[0])
        print(first["alt_sha256"] == hashlib.sha256((run / "alt.json").read_bytes()).hexdigest())
    """)
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONHOME": sys.base_prefix,
                   "PYTHONPATH": os.pathsep.join([str(repository), *site.getsitepackages()])}
    completed = subprocess.run([copied, "-c", code, tmp_path / "out"], capture_output=True, text=True,
                               env=environment, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "True"


def test_the_cleaning_keeps_the_workspace_an_interrupted_run_kept_for_its_resume(tmp_path):
    """A finished run's temporary workspace that is still there is removed by the next run's
    cleaning when the run ended whole (its process was killed just after last.json), and kept
    when it was interrupted (kept for its resume) or its journal does not say (no run_ended
    found in its end)."""
    import shutil
    import tempfile
    import uuid

    out = tmp_path / "out"
    out.mkdir()
    workspaces = {}
    try:
        def finished_run(workspace, ending: str) -> None:
            directory = out / librunner.next_last_id()      # ids made later sort later
            directory.mkdir()
            lines = [{"type": "run_started", "last_id": directory.name, "alt_id": "a", "pid": 0,
                      "workspace": str(workspace), "temporary_workspace": True}]
            if ending != "unsaid":
                lines.append({"type": "run_ended", "interrupted": ending == "interrupted", "ended_at": "x"})
            lines.append({"type": "resumed_by", "last_id": "other", "directory": "d", "started_at": "x"})
            (directory / JOURNAL_NAME).write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
            (directory / "last.json").write_text("{}")

        for ending in ("whole", "interrupted", "unsaid", "whole, taken over", "interrupted, resumed whole"):
            workspace = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX))
            (workspace / "file.txt").write_text(ending)
            finished_run(workspace, ending.split(",")[0])
            workspaces[ending] = workspace
        # Its resume took the workspace over and was interrupted, keeping it for its own resume
        # (review 23: the whole run's cleaning removed it from under it). Its journal spells the
        # folder otherwise, as library_workspace still reads it (review 24).
        finished_run(str(workspaces["whole, taken over"]).replace("/runner-", "//runner-"), "interrupted")
        # Its resume took it over and ended whole, killed before it removed it: the latest
        # run decides, and it goes (review 24: both names kept it for ever).
        finished_run(workspaces["interrupted, resumed whole"], "whole")
        clean_dead_runs(out)
        assert not workspaces["whole"].exists() and not workspaces["interrupted, resumed whole"].exists()
        for ending in ("interrupted", "unsaid", "whole, taken over"):
            assert (workspaces[ending] / "file.txt").read_text() == ending
    finally:
        for workspace in workspaces.values():
            shutil.rmtree(workspace, ignore_errors=True)


def test_a_kept_workspace_is_discarded_only_once_its_run_is_over(tmp_path):
    """discard_kept_workspace_of (the service, for a run cancelled while it was down) removes
    the workspace an interrupted run kept, not while the run's process lives, and nothing a
    directory that is not a run's names."""
    import shutil
    import tempfile
    import uuid

    workspace = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX))
    try:
        (workspace / "file.txt").write_text("x")
        directory = tmp_path / str(uuid.uuid4())
        directory.mkdir()

        def started(pid):
            (directory / JOURNAL_NAME).write_bytes(orjson.dumps(
                {"type": "run_started", "last_id": directory.name, "pid": pid, "workspace": str(workspace),
                 "temporary_workspace": True}) + b"\n")

        started(os.getpid())
        discard_kept_workspace_of(directory)
        assert (workspace / "file.txt").exists()
        renamed = tmp_path / "not-a-run"
        started(0)
        directory.rename(renamed)
        discard_kept_workspace_of(renamed)
        assert (workspace / "file.txt").exists()
        renamed.rename(directory)
        discard_kept_workspace_of(directory)
        assert not workspace.exists()
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
