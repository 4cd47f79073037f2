"""resume: a run killed with SIGKILL is finished without repeating what completed; an edited
ALT file re-runs exactly the changed tasks and their dependents. Real processes, real
commands (a counter file counts how often a command really ran)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from runner.execution import execute
from runner.execution.journal import RunState
from runner.execution.resume import ResumeError, plan, resume
from test_durable_journal import ENABLED, run_directory, start_cli


def cli(*argv, env=None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **ENABLED, **(env or {})})


def count_note_wait_read(alt_id: str, title: str, counter: Path, release: Path) -> dict:
    """A command that counts its runs, a file written in the workspace, a command that waits
    for `release` (30 s at most), then the file read back."""
    return {"id": alt_id, "title": title, "tasks": [
        {"id": "count", "description": "c", "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"echo ran >> {counter}"]}},
        {"id": "note", "description": "n", "parameters": {
            "task_type": "file_operation", "operation": "write", "path": "note.txt", "content": "kept"}},
        {"id": "wait", "description": "w", "dependencies": ["count", "note"], "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"test -f {release} || sleep 30"]}},
        {"id": "read", "description": "r", "dependencies": ["wait"], "parameters": {
            "task_type": "file_operation", "operation": "read", "path": "note.txt"}}]}


def test_a_run_killed_with_sigkill_resumes_without_repeating_completed_commands(tmp_path):
    counter, release = tmp_path / "counter.txt", tmp_path / "release"
    alt = count_note_wait_read("killed", "Killed", counter, release)
    alt["tasks"].append({"id": "ask", "description": "Summarise {{ deps.read.output.content }}",
                         "dependencies": ["read"]})
    child, out = start_cli(tmp_path, alt, "--quiet")
    try:
        directory = run_directory(out)
        assert wait_until(lambda: "wait" in RunState(directory).running, 30)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    assert counter.read_text() == "ran\n"
    assert cli("show", directory, "--json").stdout and \
        json.loads(cli("show", directory, "--json").stdout)["state"] == "interrupted"
    dry = cli("resume", directory, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[1:] == ["reuse  count", "reuse  note", "run    wait  (interrupted: attempt 1 started, never finished)",
                         "run    read  (never started)", "run    ask  (never started)"]
    release.touch()
    resumed = cli("resume", directory, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    new = Path(resumed.stdout.strip().splitlines()[-1])
    assert new != directory and new.parent == directory.parent
    record = json.loads((new / "last.json").read_bytes())
    assert counter.read_text() == "ran\n"       # the completed command did not run again
    results = record["task_results"]
    assert {k: v["status"] for k, v in results.items()} == dict.fromkeys(results, "completed")
    assert record["execution"]["resumed_from"] == directory.name
    assert results["count"]["metadata"]["reused_from"] == directory.name
    assert "reused_from" not in results["wait"]["metadata"]
    # The earlier run's workspace (which still existed) was used: the file written before the kill is read.
    assert results["read"]["output"]["content"] == "kept"
    assert results["ask"]["output"]["text"] == "echo: Summarise kept"
    old = json.loads((directory / "journal.jsonl").read_text().splitlines()[0])
    assert results["count"]["start_time"] == RunState(directory).results["count"]["started_at"]
    assert not Path(old["workspace"]).exists()      # the temporary workspace went with the resumed run
    assert {p.name for p in directory.iterdir()} == {"journal.jsonl", "alt.json"}


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_keeps_its_workspace_and_its_resume_reads_the_files_in_it(tmp_path, how):
    """An interrupted run (its LAST file written, interrupted) kept its temporary workspace,
    and says so: the resume's tasks read what the first run's tasks wrote there (the workspace
    was removed at the interruption, and `read` failed with no such file), then the resume
    removes it. Each in a TMPDIR of its own."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    counter = tmp_path / "counter.txt"
    alt = count_note_wait_read("stopped", "Stopped", counter, tmp_path / "release")
    child, out = start_cli(tmp_path, alt, "--quiet", env_extra={"TMPDIR": str(scratch)})
    try:
        directory = run_directory(out)
        assert wait_until(lambda: "wait" in RunState(directory).running, 30)
        child.send_signal(getattr(signal, how))
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert json.loads((directory / "last.json").read_bytes())["execution"]["interrupted"] is True
    workspace = Path(json.loads((directory / "journal.jsonl").read_text().splitlines()[0])["workspace"])
    assert workspace.parent == scratch and (workspace / "note.txt").read_text() == "kept"
    assert f"its temporary workspace {workspace} is kept for its resume" in stderr
    (tmp_path / "release").touch()
    resumed = cli("resume", directory, "--quiet", env={"TMPDIR": str(scratch)})
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((Path(resumed.stdout.strip().splitlines()[-1]) / "last.json").read_bytes())
    assert record["task_results"]["read"]["output"]["content"] == "kept"
    assert counter.read_text() == "ran\n"
    assert wait_until(lambda: not workspace.exists(), 5) and list(scratch.iterdir()) == []


def test_two_resumes_of_one_chain_of_runs_never_share_its_kept_workspace(tmp_path):
    """A run interrupted keeps its workspace, its resume is interrupted and keeps it too: both
    directories name it. While a resume of one works in it, a resume of the other is refused
    (they shared it, and the first to end removed it from under the other: review 23)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch), "RUNNER_GRACE_SECONDS": "0.3"}
    alt = {"id": "chain", "title": "Chain", "tasks": [
        {"id": "note", "description": "n", "parameters": {
            "task_type": "file_operation", "operation": "write", "path": "note.txt", "content": "kept"}},
        {"id": "wait", "description": "w", "dependencies": ["note"], "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"while ! test -f {tmp_path / 'release'}; "
                                                                   "do sleep 0.05; done"]}}]}
    child, out = start_cli(tmp_path, alt, "--quiet", env_extra=env)

    def stopped(process, directory):
        assert wait_until(lambda: "wait" in RunState(directory).running, 30)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)

    def resuming(directory):
        return subprocess.Popen([sys.executable, "-m", "runner", "resume", str(directory), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **ENABLED, **env})

    first = run_directory(out)
    stopped(child, first)
    child = resuming(first)
    assert wait_until(lambda: len(list(out.glob("*/journal.jsonl"))) == 2, 30)
    (second,) = [d for d in out.iterdir() if d != first]
    stopped(child, second)
    workspace = Path(RunState(first).start["workspace"])
    assert RunState(second).start["workspace"] == str(workspace) and (workspace / "note.txt").exists()
    child = resuming(second)
    try:
        assert wait_until(lambda: any("wait" in RunState(journal.parent).running
                                      for journal in out.glob("*/journal.jsonl")
                                      if journal.parent not in (first, second)), 30)
        (third,) = [journal.parent for journal in out.glob("*/journal.jsonl") if journal.parent not in (first, second)]
        # The first run was resumed by the second, which the third carries on: a resume of the
        # first is one of the third (latest_resume), which is still going.
        refused = cli("resume", first, "--quiet", env=env)
        assert refused.returncode == 2 and f"{first}: the run is being resumed by pid {child.pid} (as {third})" \
            in refused.stderr, refused.stderr
        # Without that record (a resume by an earlier librunner, which wrote it at its end, killed
        # before it), the first run's own resume is refused by the workspace's lock.
        journal = first / "journal.jsonl"
        journal.write_bytes(b"".join(line for line in journal.read_bytes().splitlines(keepends=True)
                                     if b'"resumed_by"' not in line))
        refused = cli("resume", first, "--quiet", env=env)
        assert refused.returncode != 0 and "is in use by another resume" in refused.stderr, refused.stderr
        assert (workspace / "note.txt").read_text() == "kept"
        (tmp_path / "release").touch()
        assert child.wait(60) == 0, child.stderr.read()
    finally:
        (tmp_path / "release").touch()      # any command still waiting ends
        child.kill()
    assert wait_until(lambda: not workspace.exists(), 5)


def chain() -> dict:
    return {"id": "edit", "title": "Edit", "tasks": [
        {"id": "a", "description": "alpha"},
        {"id": "b", "description": "b", "dependencies": ["a"], "parameters": {"prompt": "beta after {{ deps.a.output.text }}"}},
        {"id": "c", "description": "gamma after {{ deps.b.output.text }}", "dependencies": ["b"]},
        {"id": "d", "description": "delta"},
        {"id": "e", "description": "e", "parameters": {"task_type": "generic", "x": 1}}]}


def test_resume_after_editing_one_prompt_reruns_it_and_its_dependents_only(tmp_path):
    first = execute(chain(), tmp_path, environ={})
    edited = chain()
    edited["tasks"][1]["parameters"]["prompt"] = "BETA after {{ deps.a.output.text }}"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    dry = cli("resume", first.directory, "--alt", tmp_path / "edited.json", "--dry-run")
    assert dry.stdout.splitlines()[1:] == [
        "reuse  a", "run    b  (prompt changed)", "run    c  (dependency b re-runs)", "reuse  d", "reuse  e"]
    outcome = resume(first.directory, json.dumps(edited).encode(), environ={})
    results = {k: v.to_dict() for k, v in outcome.results.items()}
    assert results["b"]["output"]["text"] == "echo: BETA after echo: alpha"
    assert results["c"]["output"]["text"] == "echo: gamma after echo: BETA after echo: alpha"
    for reused in "ade":
        assert results[reused]["metadata"]["reused_from"] == first.last_id
        assert results[reused]["completed_at"] == first.results[reused].completed_at
    # Resuming the resumed run changes nothing and keeps where each result came from.
    again = plan(outcome.directory, environ={})
    assert [t.action for t in again.tasks] == ["reuse"] * 5
    assert again.reuse[0].metadata["reused_from"] == first.last_id


def test_the_mode_and_the_model_are_part_of_the_key(tmp_path):
    first = execute(chain(), tmp_path, environ={})
    edited = chain()
    edited["tasks"][3]["parameters"] = {"model": "other-model"}
    edited["tasks"][4]["parameters"]["x"] = 2
    reasons = {t.task_id: t.reason for t in plan(first.directory, json.dumps(edited).encode(), environ={}).tasks}
    assert reasons == {"a": "", "b": "", "c": "", "d": "model changed", "e": "parameters changed"}


def test_only_failed_from_and_force(tmp_path):
    counter = tmp_path / "counter.txt"
    alt = {"id": "flags", "title": "Flags", "tasks": [
        {"id": "count", "description": "c", "parameters": {
            "task_type": "system_command", "command": ["sh", "-c", f"echo ran >> {counter}"]}},
        {"id": "bad", "description": "b", "dependencies": ["count"], "parameters": {
            "task_type": "system_command", "command": ["false"]}},
        {"id": "ask", "description": "question"}]}
    env = {**ENABLED, "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sh,false"}
    first = execute(alt, tmp_path, environ=env)
    edited = json.loads(json.dumps(alt))
    edited["tasks"][2]["description"] = "another question"
    edited["tasks"][0]["parameters"]["command"] = ["sh", "-c", f"echo again >> {counter}"]
    source = json.dumps(edited).encode()
    actions = lambda p: {t.task_id: (t.action, t.reason) for t in p.tasks}  # noqa: E731
    assert actions(plan(first.directory, source, environ=env)) == {
        "count": ("reuse", "edited, but a completed system_command is not repeated without --force"),
        "bad": ("run", "failed"), "ask": ("run", "prompt changed")}
    assert actions(plan(first.directory, source, only_failed=True, environ=env))["ask"] == ("reuse", "")
    assert actions(plan(first.directory, source, from_task="count", environ=env))["bad"] == ("run", "failed")
    forced = resume(first.directory, source, force=["count"], environ=env)
    assert counter.read_text() == "ran\nagain\n"
    assert "reused_from" not in forced.results["count"].metadata
    with pytest.raises(ResumeError, match="--force nope: no such task"):
        plan(first.directory, force=["nope"], environ=env)


def test_what_cannot_be_resumed_is_refused_with_the_reason(tmp_path):
    from runner import write_last_file, parse_alt_file

    written = write_last_file(parse_alt_file(json.dumps(chain())), {}, tmp_path)
    with pytest.raises(ResumeError, match="no journal.jsonl"):
        plan(written.directory)
    answer = cli("resume", tmp_path / "missing")
    assert answer.returncode == 2 and "no journal.jsonl" in answer.stderr


def test_a_workspace_that_cannot_be_locked_is_resumed_in_all_the_same(tmp_path, monkeypatch, caplog):
    """A file system without flock on directories (ENOLCK on some network and FUSE mounts):
    the resume goes on, saying so; a lock held by another resume refuses it (review 24)."""
    import errno
    import fcntl

    from runner.execution import resume as resume_module

    real = fcntl.flock

    def refused(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(resume_module.fcntl, "flock", refused)
    assert resume_module._lock_workspace(tmp_path) is None
    assert "cannot be locked (No locks available)" in caplog.text
    monkeypatch.setattr(resume_module.fcntl, "flock", real)
    held = resume_module._lock_workspace(tmp_path)
    try:
        with pytest.raises(ResumeError, match="in use by another resume"):
            resume_module._lock_workspace(tmp_path)
    finally:
        os.close(held)
    os.close(resume_module._lock_workspace(tmp_path))       # let go: taken again
