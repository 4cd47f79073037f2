"""kill -9 of a run and of its watchdog (which otherwise kills the run's commands, see
test_durable_watchdog.py) cannot stop its commands: their process groups are in its journal,
`show` lists those still running, the next run in the same place says so, and `resume` never
starts a second copy beside one: it waits (RUNNER_RESUME_WAIT_SECONDS), then kills the
group, and says which. Real processes, real signals; the command's log shows the order."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import wait_until
from test_durable_journal import ENABLED
from test_durable_watchdog import watchdog_of

ENV = {**os.environ, **ENABLED, "RUNNER_GRACE_SECONDS": "0.3"}


def gated_command(tmp_path: Path) -> list[str]:
    """Appends "start <pid>", waits for the file gate, appends "end <pid>"."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    return ["sh", "-c", f"echo start $$ >> {log}; while ! test -f {gate}; do sleep 0.05; done; echo end $$ >> {log}"]


def killed_run(tmp_path: Path) -> tuple[Path, int]:
    """A run whose command waits at the gate, killed with SIGKILL after its watchdog: (its
    directory, the command's pid, which still runs)."""
    alt = {"id": "orphan", "title": "Orphan", "tasks": [
        {"id": "effect", "description": "e", "parameters": {"task_type": "system_command",
                                                              "command": gated_command(tmp_path)}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", tmp_path / "alt.json", "--out",
                              tmp_path / "out", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        assert wait_until(lambda: (tmp_path / "log").exists(), 60)
        (directory,) = (tmp_path / "out").iterdir()
        # The group is journaled when the command starts (group commit: within 50 ms).
        assert wait_until(lambda: b"attempt_process" in (directory / "journal.jsonl").read_bytes(), 30)
        os.kill(watchdog_of(child.pid), signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    pid = int((tmp_path / "log").read_text().split()[1])
    os.kill(pid, 0)         # kill -9 of the run left its command running
    return directory, pid


def log_lines(tmp_path: Path) -> list[str]:
    return [line.split()[0] for line in (tmp_path / "log").read_text().splitlines()]


def start_resume(directory: Path, wait: str) -> tuple[subprocess.Popen, list[str]]:
    """`resume DIR`, its stderr collected line by line as it comes."""
    child = subprocess.Popen([sys.executable, "-m", "runner", "resume", directory, "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**ENV, "RUNNER_RESUME_WAIT_SECONDS": wait})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True).start()
    return child, lines


def test_show_and_the_next_run_name_a_dead_runs_command_still_running(tmp_path):
    directory, pid = killed_run(tmp_path)
    try:
        shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                               capture_output=True, text=True, timeout=60, env=ENV)
        assert shown.returncode == 0, shown.stderr
        summary = json.loads(shown.stdout)
        assert summary["state"] == "interrupted"
        assert summary["processes"] == [{"task_id": "effect", "attempt": 1, "pgid": pid}]
        text = subprocess.run([sys.executable, "-m", "runner", "show", directory],
                              capture_output=True, text=True, timeout=60, env=ENV).stdout
        assert f"still running  task effect (attempt 1, process group {pid})" in text
        (tmp_path / "other.json").write_text(json.dumps({"id": "other", "title": "O", "tasks": [
            {"id": "g", "description": "g", "parameters": {"task_type": "generic"}}]}))
        other = subprocess.run([sys.executable, "-m", "runner", "run", tmp_path / "other.json", "--out",
                                tmp_path / "out", "--quiet"], capture_output=True, text=True, timeout=60, env=ENV)
        assert other.returncode == 0, other.stderr
        assert f"still has task 'effect' (attempt 1, process group {pid}) running" in other.stderr
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_a_commands_start_ticks_without_a_read_of_proc_are_the_ones_proc_gives():
    """spawned_ticks (system_command's: the fork's tick on CLOCK_BOOTTIME, no /proc read when
    the clock stayed in one tick) gives what /proc/<pid>/stat says, on that path, on the
    read it falls back to, and without a clock reading; the watchdog, show and resume compare
    it with /proc's to tell the leader from a process that took its number."""
    from runner.execution import watchdog

    tick = 10 ** 9 // os.sysconf("SC_CLK_TCK")
    unread = 0
    for number in range(300):
        before = watchdog.spawn_clock()
        child = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            after = watchdog.spawn_clock()
            if before // tick == after // tick:
                unread += 1
            assert watchdog.spawned_ticks(child.pid, before) == watchdog.start_ticks(child.pid), number
            assert watchdog.spawned_ticks(child.pid, before - 2 * tick) == watchdog.start_ticks(child.pid)
            assert watchdog.spawned_ticks(child.pid, None) == watchdog.start_ticks(child.pid)
        finally:
            child.wait()
    assert unread >= 200        # the path without the read was the one taken, nearly always


def test_the_start_ticks_a_run_journals_for_its_command_are_the_leaders(tmp_path):
    directory, pid = killed_run(tmp_path)
    try:
        records = [json.loads(line) for line in (directory / "journal.jsonl").read_bytes().splitlines()]
        (record,) = [r for r in records if r.get("type") == "attempt_process"]
        from runner.execution.watchdog_process import stat
        assert record["pgid"] == pid and record["start_ticks"] == stat(pid)[2]
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_resume_waits_for_the_dead_runs_command_and_then_runs_it_alone(tmp_path):
    directory, pid = killed_run(tmp_path)
    child, stderr = start_resume(directory, "120")
    try:
        assert wait_until(lambda: any("is still running; waiting up to 120 s" in line for line in stderr), 60), stderr
        assert log_lines(tmp_path) == ["start"]          # no second copy while the first runs
        (tmp_path / "gate").touch()
        assert child.wait(120) == 0, "".join(stderr)
    finally:
        child.kill()
    assert any("ended; its outcome was never recorded" in line for line in stderr)
    # The first copy ended before the second started: never two at once.
    assert log_lines(tmp_path) == ["start", "end", "start", "end"]


def test_resume_kills_the_dead_runs_command_after_its_wait_and_says_so(tmp_path):
    directory, pid = killed_run(tmp_path)
    child, stderr = start_resume(directory, "0.5")
    try:
        assert wait_until(lambda: any(f"killed task 'effect' (attempt 1, process group {pid})" in line
                                      for line in stderr), 60), stderr
        assert wait_until(lambda: len(log_lines(tmp_path)) == 2, 60)
        (tmp_path / "gate").touch()
        assert child.wait(120) == 0, "".join(stderr)
    finally:
        child.kill()
    assert log_lines(tmp_path) == ["start", "start", "end"]       # the first copy never reached its end
    first, second = [int(line.split()[1]) for line in (tmp_path / "log").read_text().splitlines()[:2]]
    assert first == pid and second != pid


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_resume_waits_for_the_earlier_command_stops_it_at_once_and_kills_nothing(tmp_path, number):
    """Ctrl-C or SIGTERM while resume waits for the dead run's command ends the resume then:
    the command runs on (it was waited for the whole RUNNER_RESUME_WAIT_SECONDS, then killed:
    the run's own handlers, which let a run end cleanly, were already in place), and no new
    directory is left that a later resume could take for the run (review 23)."""
    directory, pid = killed_run(tmp_path)
    child, stderr = start_resume(directory, "60")
    try:
        try:
            assert wait_until(lambda: any("waiting up to 60 s" in line for line in stderr), 60), stderr
            child.send_signal(number)
            child.wait(15)
        finally:
            child.kill()
        os.kill(pid, 0)         # still running
        assert not any("killed" in line for line in stderr), stderr
        # SIGTERM's default action ends the process there; Ctrl-C is said in a line (it was a traceback).
        assert child.returncode == (-signal.SIGTERM if number == signal.SIGTERM else 130), stderr
        if number == signal.SIGINT:
            assert wait_until(lambda: any("resume: interrupted" in line for line in stderr), 10), stderr
        assert not any("Traceback" in line for line in stderr), stderr
        assert log_lines(tmp_path) == ["start"]
        assert [p for p in (tmp_path / "out").iterdir()] == [directory]
    finally:
        os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("option, setting, refusal", [
    ("--workspace", {}, "workspace '{path}': it is not a directory"),
    ("--out", {}, "cannot create the LAST directory"),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
])
def test_a_refused_resume_leaves_the_dead_runs_command_directory_and_workspace_alone(tmp_path, option, setting,
                                                                                       refusal):
    """Resume stops the earlier run's commands and cleans its directory only once its run has
    passed every check and begun: `resume --workspace` or `--out` naming a file, or a bad
    OTEL_* setting, is refused, the command still runs, the directory keeps what it held, the
    workspace it would have taken over is still there (a refused --out removed it), and the
    run can still be resumed (review 22)."""
    directory, pid = killed_run(tmp_path)
    workspace = Path(json.loads((directory / "journal.jsonl").read_bytes().splitlines()[0])["workspace"])
    (workspace / "kept.txt").write_text("a finished task's file")
    stray = directory / ".left.tmp"     # what clean_dead_run removes from a dead run's directory
    stray.write_bytes(b"")
    (tmp_path / "a-file").write_text("not a folder")
    try:
        refused = subprocess.run([sys.executable, "-m", "runner", "resume", directory, "--quiet",
                                  *([option, tmp_path / "a-file"] if option else [])], capture_output=True,
                                 text=True, timeout=60, env={**ENV, "RUNNER_RESUME_WAIT_SECONDS": "0", **setting})
        assert refused.returncode != 0
        assert refusal.format(path=tmp_path / "a-file") in refused.stderr, refused.stderr
        assert "killed" not in refused.stderr and "still running" not in refused.stderr
        os.kill(pid, 0)         # still running: not killed for a mistyped option
        assert log_lines(tmp_path) == ["start"] and stray.exists()
        assert (workspace / "kept.txt").read_text() == "a finished task's file"
    finally:
        os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("where", ["in place", "after its end"])
def test_an_ended_attempts_group_number_taken_by_another_group_is_left_alone(tmp_path, where):
    """A command that ended (its attempt_ended journaled) is not the run's any more, even if
    its group's number now leads another group whose leader is gone and a member lives (the
    number was reused after it was reaped): `show` does not list it, the next run does not
    name it, and `resume` neither waits for it nor kills it. Stood in for by pointing the
    ended attempt's record at such a group; "after its end": the record follows the
    attempt's end, as for an attempt abandoned at its deadline before its command started."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    alt = {"id": "reused", "title": "Reused", "tasks": [
        {"id": "short", "description": "s", "parameters": {"task_type": "system_command", "command": ["true"]}},
        {"id": "long", "description": "l", "dependencies": ["short"], "parameters": {
            "task_type": "system_command", "command": gated_command(tmp_path)}}]}
    (tmp_path / "alt.json").write_text(json.dumps(alt))
    env = {**ENV, "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,test,sleep,true"}
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", tmp_path / "alt.json", "--out",
                              tmp_path / "out", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    # An unrelated group whose leader has gone and whose member lives on.
    orphan = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    member = int(orphan.stdout.readline())
    orphan.wait(30)
    try:
        assert wait_until(lambda: log.exists(), 60)
        (directory,) = (tmp_path / "out").iterdir()
        journal = directory / "journal.jsonl"
        assert wait_until(lambda: journal.read_bytes().count(b"attempt_process") == 2, 30)
        child.kill()
        child.wait(30)
        gate.touch()            # the long command ends too: nothing of the run lives on
        lines = journal.read_bytes().splitlines()
        short = [json.loads(line) for line in lines if b'"attempt_process"' in line and b'"short"' in line]
        assert len(short) == 1 and b'"attempt_ended"' in journal.read_bytes()
        edited = json.dumps({**short[0], "pgid": orphan.pid}, separators=(",", ":")).encode()
        kept = [line for line in lines if not (b'"attempt_process"' in line and b'"short"' in line)]
        if where == "in place":
            kept = [edited if b'"attempt_process"' in line and b'"short"' in line else line for line in lines]
        else:
            kept.append(edited)
        journal.write_bytes(b"\n".join(kept) + b"\n")
        shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                               capture_output=True, text=True, timeout=60, env=env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["processes"] == []
        resumed = subprocess.run([sys.executable, "-m", "runner", "resume", directory, "--quiet"],
                                 capture_output=True, text=True, timeout=120,
                                 env={**env, "RUNNER_RESUME_WAIT_SECONDS": "0.5"})
        assert resumed.returncode == 0, resumed.stderr
        assert "short" not in resumed.stderr, resumed.stderr
        os.kill(member, 0)      # still alive: raises if it was killed
    finally:
        child.kill()
        gate.touch()
        try:
            os.killpg(orphan.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_process_record_of_a_damaged_line_is_kept_not_a_crash(tmp_path):
    """An attempt_process line whose task_id is not a string (a damaged or edited journal)
    matches no attempt's end, so it still counts; show reads the journal without a crash."""
    directory, pid = killed_run(tmp_path)
    try:
        journal = directory / "journal.jsonl"
        lines = journal.read_bytes().splitlines()
        damaged = [json.dumps({**json.loads(line), "task_id": ["effect"]}, separators=(",", ":")).encode()
                   if b'"attempt_process"' in line else line for line in lines]
        journal.write_bytes(b"\n".join(damaged) + b"\n")
        shown = subprocess.run([sys.executable, "-m", "runner", "show", directory, "--json"],
                               capture_output=True, text=True, timeout=60, env=ENV)
        assert shown.returncode == 0, shown.stderr
        assert [p["pgid"] for p in json.loads(shown.stdout)["processes"]] == [pid]
    finally:
        os.killpg(pid, signal.SIGKILL)


def test_cleaning_reads_a_process_record_whole_across_a_carriage_return_an_edit_left(tmp_path):
    """processes.recorded (the cleaning's quick read) splits lines where the journal's readers
    do, at "\n": a "\r" an edit left between a record's members (JSON whitespace) does not cut
    it in two and lose the process it names."""
    from runner.execution import processes

    line = b'{"type":"attempt_process","task_id":"a","attempt":1,\r"pgid":4242,"start_ticks":7}'
    (tmp_path / "journal.jsonl").write_bytes(b'{"type":"run_started"}\n' + line + b"\n")
    assert processes.recorded(tmp_path) == [json.loads(line)]
