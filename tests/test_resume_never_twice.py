"""A resume never runs again a command that completed (review 29): not past a journal line
that was damaged, not when the journal's disk refused a write, not when the run was already
resumed. Real runs of real commands, each appending its id to a log in the test's folder;
an interrupted run is made by removing the LAST file, as a kill -9 leaves it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner.execution import execute
from runner.execution.journal import RunState
from test_durable_journal import ENABLED

ENV = {**os.environ, **ENABLED}


def chain(log: Path, count: int) -> dict:
    """count commands, each after the one before, each appending its id to `log`."""
    return {"id": "chain", "title": "Chain", "tasks": [
        {"id": f"t{i}", "description": "d", "dependencies": [f"t{i - 1}"] if i else [],
         "parameters": {"task_type": "system_command", "command": ["sh", "-c", f"echo t{i} >> {log}"]}}
        for i in range(count)]}


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def cli(*argv, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env=env)


def cli_on_a_refusing_disk(disk: str, *argv, env=ENV) -> subprocess.CompletedProcess:
    """The CLI with the journal's disk refusing as RefusingDisk(librunner, <disk>) does, e.g.
    "refused=2" or "start=True"."""
    script = ("import sys; from runner.execution import journal; sys.path.insert(0, sys.argv[1]); "
              "from test_resume_never_twice import RefusingDisk; "
              f"journal.librunner = RefusingDisk(journal.librunner, {disk}); "
              "from runner.cli import main; sys.exit(main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), *map(str, argv)],
                          capture_output=True, text=True, timeout=120, env=env)


def interrupted_run(tmp_path: Path, count: int = 4) -> tuple[Path, Path]:
    """A finished chain whose LAST file is removed: to a resume, a run killed at its end."""
    log = tmp_path / "log"
    first = execute(chain(log, count), tmp_path / "out", environ=ENV)
    assert first.all_completed and ran(log) == [f"t{i}" for i in range(count)]
    (first.directory / "last.json").unlink()
    return first.directory, log


def test_a_damaged_line_in_the_middle_of_the_journal_is_refused_naming_it_and_nothing_runs(tmp_path):
    directory, log = interrupted_run(tmp_path)
    journal = directory / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    number = next(n for n, line in enumerate(lines, 1) if b'"t1"' in line and b"task_results" in line)
    lines[number - 1] = lines[number - 1].replace(b'"t1"', b'"t1\xff', 1)
    journal.write_bytes(b"\n".join(lines))
    for argv in (("resume", directory, "--dry-run"), ("resume", directory), ("show", directory)):
        answer = cli(*argv)
        assert answer.returncode == 2, (argv, answer.stdout, answer.stderr)
        assert f"line {number} is damaged" in answer.stderr and "Traceback" not in answer.stderr, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]
    # A line that is JSON but not an object is damaged too.
    lines[number - 1] = b"[1, 2]"
    journal.write_bytes(b"\n".join(lines))
    answer = cli("resume", directory)
    assert answer.returncode == 2 and f"line {number} is damaged" in answer.stderr, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]


def test_a_last_line_cut_short_is_left_out_and_cut_off_before_the_resume_is_recorded(tmp_path):
    directory, log = interrupted_run(tmp_path)
    journal = directory / "journal.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"type": "task_results", "fie')       # a write cut short
    answer = cli("resume", directory, "--quiet")
    assert answer.returncode == 0, answer.stderr
    assert ran(log) == ["t0", "t1", "t2", "t3"]
    # The resume's record follows the whole lines, not glued to the cut one: show names it.
    after = journal.read_bytes()
    assert after.startswith(whole) and after.count(b"\n") == whole.count(b"\n") + 1
    (resume,) = RunState(directory).resumed_by
    assert Path(resume["directory"]).is_dir()


def killing_chain(log: Path, marks: Path) -> dict:
    """t0, k1, t1, k2, t2, one after the other: each t logs itself; each k kills the runner
    running it (its parent) the first time it runs, and completes every time after."""
    def task(task_id: str, script: str) -> dict:
        return {"id": task_id, "description": "d", "parameters": {"task_type": "system_command",
                                                                   "command": ["sh", "-c", script]}}
    tasks = [task("t0", f"echo t0 >> {log}")]
    for i in (1, 2):
        mark = marks / f"k{i}"
        tasks += [task(f"k{i}", f"if [ ! -e {mark} ]; then touch {mark}; kill -9 $PPID; sleep 30; fi"),
                  task(f"t{i}", f"echo t{i} >> {log}")]
    for before, after in zip(tasks, tasks[1:]):
        after["dependencies"] = [before["id"]]
    return {"id": "killed", "title": "Killed", "tasks": tasks}


def test_a_run_resumed_again_after_its_resume_was_killed_is_carried_on_from_that_resume(tmp_path):
    log, out = tmp_path / "log", tmp_path / "out"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(killing_chain(log, tmp_path)))
    killed = cli("run", path, "--out", out, "--quiet")
    assert killed.returncode == -9 and ran(log) == ["t0"], killed.stderr
    (first,) = out.iterdir()
    killed = cli("resume", first, "--quiet")                # runs k1 again (it never ended), t1, then k2 kills it
    assert killed.returncode == -9 and ran(log) == ["t0", "t1"], killed.stderr
    (second,) = [directory for directory in out.iterdir() if directory != first]
    planned = cli("resume", first, "--dry-run")
    assert planned.returncode == 0 and f"the latest resume of {first.name}" in planned.stdout, planned.stdout
    assert "reuse  t1" in planned.stdout and "run    k2" in planned.stdout, planned.stdout
    done = cli("resume", first, "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"{first} was resumed by {second}: carrying that run on" in done.stderr
    assert ran(log) == ["t0", "t1", "t2"]
    third = Path(done.stdout.split()[-1])
    record = json.loads((third / "last.json").read_bytes())
    assert record["execution"]["resumed_from"] == second.name and record["status"] == "success"
    # Once more: the chain ends at the third run, which finished: nothing to do, nothing runs.
    again = cli("resume", first, "--quiet")
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    assert ran(log) == ["t0", "t1", "t2"]


def test_a_resume_that_cannot_record_itself_in_the_run_it_resumes_runs_nothing(tmp_path, monkeypatch):
    from runner.execution import journal as journal_file
    from runner.execution.resume import ResumeError, resume

    directory, log = interrupted_run(tmp_path)
    (directory / "journal.jsonl").write_bytes(b"".join(
        line for line in (directory / "journal.jsonl").read_bytes().splitlines(keepends=True)
        if b'"t3"' not in line))       # t3 never ended: the resume would run it

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(journal_file, "record_resume", full)
    try:
        resume(directory, environ=ENV)
    except ResumeError as error:
        assert "cannot record the resume in the run's journal (No space left on device): nothing ran" in str(error)
    else:
        raise AssertionError("the resume ran without its record")
    assert ran(log) == ["t0", "t1", "t2", "t3"]
    assert sorted(path.name for path in directory.parent.iterdir()) == [directory.name]


class RefusingDisk:
    """runner.librunner as the journal sees it, but its `refused`-th commit refused as a full
    disk refuses it (the start, and alt.json, which rename, are not commits); with start, the
    journal's start is refused instead."""

    def __init__(self, librunner, refused: int = 0, start: bool = False):
        self._librunner, self._refused, self._start, self.commits = librunner, refused, start, 0

    def __getattr__(self, name):
        return getattr(self._librunner, name)

    def write_synced(self, fd, chunks, *args, **options):
        if self._start and (options.get("rename_to") or b"").endswith(b"journal.jsonl"):
            raise OSError(28, "No space left on device")
        if options.get("rename_to") is None:
            self.commits += 1
            if self.commits == self._refused:
                raise OSError(28, "No space left on device")
        return self._librunner.write_synced(fd, chunks, *args, **options)


def test_a_run_whose_journal_fails_stops_and_its_resume_takes_what_it_did_from_its_last_file(tmp_path, monkeypatch):
    """The journal's disk refuses a commit: the journal keeps nothing from there on, so the run
    stops (what it did next, a resume could not know of) and its LAST file holds what it did,
    the refused commit's results included; the resume reuses those and runs the rest."""
    from runner.execution import journal as journal_file
    from runner.execution.resume import resume
    from runner.execution.run import JOURNAL_FAILURE

    log = tmp_path / "log"
    disk = RefusingDisk(journal_file.librunner, refused=3)
    with monkeypatch.context() as patched:
        patched.setattr(journal_file, "librunner", disk)
        first = execute(chain(log, 8), tmp_path / "out", environ=ENV)
    assert first.interrupted and first.signal_name == JOURNAL_FAILURE
    assert any("cannot be written" in w and "the run stops" in w for w in first.facts["journal_warnings"])
    before = ran(log)
    assert 0 < len(before) < 8 and before == [f"t{i}" for i in range(len(before))]
    record = json.loads((first.directory / "last.json").read_bytes())
    completed = {task_id for task_id, result in record["task_results"].items() if result["status"] == "completed"}
    assert completed == set(before)
    # The refused commit held a completed task's result: only the LAST file has it.
    assert completed - set(RunState(first.directory).results), "the journal kept every result"
    planned = cli("resume", first.directory, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert all(f"reuse  {task_id}" in planned.stdout for task_id in before), planned.stdout
    done = resume(first.directory, environ=ENV)
    assert done.all_completed and ran(log) == [f"t{i}" for i in range(8)]


def test_a_run_whose_journal_fails_exits_1_and_says_how_to_finish_it(tmp_path):
    log = tmp_path / "log"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(chain(log, 6)))
    answer = cli_on_a_refusing_disk("refused=2", "run", path, "--out", tmp_path / "out", "--quiet")
    assert answer.returncode == 1, answer.stderr
    (directory,) = (tmp_path / "out").iterdir()
    assert "journal.jsonl cannot be written (No space left on device): the run stops" in answer.stderr
    assert f"interrupted by a journal write failure: pending tasks were cancelled (python -m runner resume " \
           f"{directory} runs them)" in answer.stderr, answer.stderr
    assert 0 < len(ran(log)) < 6
    finished = cli("resume", directory, "--quiet")
    assert finished.returncode == 0, finished.stderr
    assert ran(log) == [f"t{i}" for i in range(6)]
    # Several files at once: the one stopped by its journal did not complete (1), no signal came (not 130).
    other = tmp_path / "other.json"
    other.write_text(json.dumps(chain(tmp_path / "other-log", 6)))
    answer = cli_on_a_refusing_disk("refused=2", "run", path, other, "--out", tmp_path / "many", "--jobs", "1")
    assert answer.returncode == 1 and "the run stops" in answer.stderr, answer.stderr


def test_a_resume_whose_journal_cannot_start_runs_nothing_and_the_next_one_runs_each_task_once(tmp_path):
    """A resume without its journal would leave no trace of what it did where the run it
    resumes leads (latest_resume follows only a journal that began): it stops before its first
    command. A plain run still goes on without one (test_durable_start_gate.py)."""
    log, out = tmp_path / "log", tmp_path / "out"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(killing_chain(log, tmp_path)))
    assert cli("run", path, "--out", out, "--quiet").returncode == -9 and ran(log) == ["t0"]
    (first,) = out.iterdir()
    refused = cli_on_a_refusing_disk("start=True", "resume", first, "--quiet")
    assert refused.returncode == 1, refused.stderr
    assert "the run stops before anything with an effect" in refused.stderr, refused.stderr
    assert f"pending tasks were cancelled (python -m runner resume {first} runs them)" in refused.stderr
    assert ran(log) == ["t0"]
    for expected_code, expected in ((-9, ["t0", "t1"]), (0, ["t0", "t1", "t2"])):     # k2 kills the first
        answer = cli("resume", first, "--quiet")
        assert answer.returncode == expected_code and ran(log) == expected, (answer.stderr, ran(log))


def test_a_service_run_whose_journal_cannot_start_runs_nothing_until_the_next_start(tmp_path, monkeypatch,
                                                                                   task_type_registry):
    """The service runs again, at its next start, a run it has no journal of: a run it could not
    journal stops before its first effect (here a task type of the user's), and runs once."""
    import asyncio

    from runner import parse_alt_file
    from runner.execution import journal as journal_file
    from test_service_drain_delivery import DOCUMENT, ended_after_a_restart, register_nap, service

    napping = register_nap([False])
    registry = service(tmp_path)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(journal_file, "librunner", RefusingDisk(journal_file.librunner, start=True))
            run = asyncio.run(registry.accept(parse_alt_file(DOCUMENT), DOCUMENT))
            assert run.finished.wait(60)
    finally:
        registry.close()
    assert napping == [] and run.status == "interrupted" and not run.is_final, (run.status, run.error)
    again = ended_after_a_restart(tmp_path, run.id)
    assert napping == ["nap"] and again.status == "success", (again.status, again.error)


def test_a_construct_whose_segment_completed_record_the_disk_refused_does_not_repeat_its_own_command(
        tmp_path, monkeypatch):
    """A loop's and a call's own segments are commands: the record that the own command
    completed (segment_completed) may be the commit the disk refuses; the run stops and
    cancels the construct, whose LAST result keeps that output, and the resume replays the
    construct from it. Every commit refused in turn; no command runs twice."""
    from runner import parse_alt_file
    from runner.execution import journal as journal_file
    from runner.execution.resume import resume
    from conftest import dumps
    from test_durable_control_flow import ENV as FLOW_ENV, lines, segment, v2

    branch = {"condition": {"operator": "gt", "left": "n", "right": 0}, "if_body": ["yes"], "else_body": []}
    document = dumps(v2(
        [segment("loop1", loop={"type": "for_range", "variable": "i", "start": 0, "end": 3, "step": 1, "body": ["b1"]}),
         segment("b1", token="b1-$i"),
         segment("call", ["loop1"], function_call={"function_name": "mark", "arguments": {"n": "c"}}),
         segment("f", token="f-$n"), segment("g", ["f"], token="g-$n"),
         segment("yes", ["call"], condition=branch), segment("last", ["yes"])],
        functions=[{"name": "mark", "parameters": [{"name": "n", "type": "string", "required": True}],
                    "body": ["f", "g"]}],
        global_variables=[{"name": "n", "type": "number", "value": 1}]))
    stopped = 0
    for refused in range(1, 11):
        workspace = tmp_path / str(refused) / "ws"
        workspace.mkdir(parents=True)
        with monkeypatch.context() as patched:
            patched.setattr(journal_file, "librunner", RefusingDisk(journal_file.librunner, refused=refused))
            first = execute(parse_alt_file(document), tmp_path / str(refused) / "out", workspace=workspace,
                            environ=FLOW_ENV)
        stopped += first.interrupted
        done = resume(first.directory, environ=FLOW_ENV)
        ran_here = lines(workspace)
        assert done.all_completed and len(ran_here) == len(set(ran_here)) == 9, (refused, ran_here)
    assert stopped >= 3        # refusals that came while the run went on, not after its end


def test_a_required_start_the_disk_refuses_at_once_stops_the_resume_however_late_its_run_looks(
        tmp_path, monkeypatch):
    """The writer's thread may fail the start before the run registers what a failure does (one
    CPU: always): the start is required from before that thread starts (review 31)."""
    import time

    from runner.execution import journal as journal_file
    from runner.execution.resume import resume
    from runner.execution.run import JOURNAL_FAILURE

    log, out = tmp_path / "log", tmp_path / "out"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(killing_chain(log, tmp_path)))
    assert cli("run", path, "--out", out, "--quiet").returncode == -9 and ran(log) == ["t0"]
    (tmp_path / "k2").touch()       # k2 kills no resume here (this process would be the one)
    (first,) = out.iterdir()
    when_failed = journal_file.Journal.when_failed

    def late(journal, callback, **options):
        time.sleep(0.2)         # the writer's start has failed by now
        when_failed(journal, callback, **options)
    with monkeypatch.context() as patched:
        patched.setattr(journal_file.Journal, "when_failed", late)
        patched.setattr(journal_file, "librunner", RefusingDisk(journal_file.librunner, start=True))
        refused = resume(first, environ=ENV)
    assert refused.interrupted and refused.signal_name == JOURNAL_FAILURE and ran(log) == ["t0"]


def payload_chain(log: Path) -> dict:
    """t0 writes a file in the workspace that t3, three commands later, reads."""
    document = chain(log, 4)
    document["tasks"][0]["parameters"]["command"] = ["sh", "-c", f"echo payload > data; echo t0 >> {log}"]
    document["tasks"][3]["parameters"]["command"] = ["sh", "-c", f"cat data && echo t3 >> {log}"]
    return document


def test_a_run_stopped_by_its_journal_keeps_its_workspace_for_the_resume(tmp_path, monkeypatch):
    from runner.execution import journal as journal_file
    from runner.execution.resume import resume

    log = tmp_path / "log"
    with monkeypatch.context() as patched:
        patched.setattr(journal_file, "librunner", RefusingDisk(journal_file.librunner, refused=2))
        first = execute(payload_chain(log), tmp_path / "out", environ=ENV)
    assert first.interrupted and first.workspace_kept and (first.workspace / "data").read_text() == "payload\n"
    done = resume(first.directory, environ=ENV)
    assert done.all_completed and ran(log) == ["t0", "t1", "t2", "t3"], done.results["t3"].error
    assert not first.workspace.exists()        # the resume that ended removed it


def test_a_resume_that_cannot_begin_leaves_the_workspace_it_took_over(tmp_path, monkeypatch):
    from runner.execution import journal as journal_file
    from runner.execution.resume import resume

    log, out = tmp_path / "log", tmp_path / "out"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(killing_chain(log, tmp_path)))
    assert cli("run", path, "--out", out, "--quiet").returncode == -9 and ran(log) == ["t0"]
    (tmp_path / "k2").touch()       # k2 kills no resume here
    (first,) = out.iterdir()
    workspace = Path(RunState(first).start["workspace"])
    (workspace / "data").write_text("payload\n")      # as t0 might have left it, kept for the resume
    with monkeypatch.context() as patched:
        patched.setattr(journal_file, "librunner", RefusingDisk(journal_file.librunner, start=True))
        refused = resume(first, environ=ENV)
    assert refused.interrupted and refused.workspace == workspace and ran(log) == ["t0"]
    assert (workspace / "data").read_text() == "payload\n"
    done = resume(first, environ=ENV)
    assert done.all_completed and ran(log) == ["t0", "t1", "t2"] and not workspace.exists()


def test_a_run_whose_journal_fails_once_every_task_completed_exits_0_and_keeps_no_workspace(tmp_path):
    """Nothing is left for a resume: its temporary workspace goes, as a finished run's does
    (review 32: it was kept for a resume that finds nothing to do, and never removed)."""
    log = tmp_path / "log"
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(chain(log, 1)))
    answer = cli_on_a_refusing_disk("refused=1", "run", path, "--out", tmp_path / "out", "--quiet",
                                    env={**ENV, "TMPDIR": str(tmp_path)})
    assert answer.returncode == 0 and "cannot be written" in answer.stderr, answer.stderr
    assert "kept for its resume" not in answer.stderr and "interrupted" not in answer.stderr, answer.stderr
    assert ran(log) == ["t0"] and not list(tmp_path.glob("runner-workspace-*"))


def test_a_resumed_by_record_naming_a_path_no_file_can_have_is_not_followed(tmp_path):
    """A journal's record is not trusted with a path: one with a NUL byte, which no system call
    takes, names no resume (it raised ValueError out of resume and show)."""
    directory, log = interrupted_run(tmp_path)
    journal = directory / "journal.jsonl"
    journal.write_bytes(b"".join(line for line in journal.read_bytes().splitlines(keepends=True)
                                 if b'"t3"' not in line))
    named = "01a24e7e-9c9e-76a7-a226-28317a89e6c6"
    record = {"type": "resumed_by", "last_id": named, "directory": f"{tmp_path}\u0000x/{named}", "started_at": "x"}
    journal.write_bytes(journal.read_bytes() + json.dumps(record).encode() + b"\n")
    for argv in (("show", directory), ("resume", directory, "--dry-run")):
        answer = cli(*argv)
        assert answer.returncode == 0 and "Traceback" not in answer.stderr, (argv, answer.stderr)
    assert "run    t3" in answer.stdout, answer.stdout
