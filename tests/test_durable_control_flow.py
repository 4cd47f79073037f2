"""resume of control-flow documents (issue 18): a completed carrier (a loop's, a call's or a
branch's own segment) is not run again, its construct is replayed once, and every completed
instance is kept, so no command of theirs runs twice. Real commands (python, no shell)
count their runs in a log of the workspace."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import runner
from runner.execution import execute
from runner.execution.resume import resume

from tests.conftest import dumps

PYTHON = os.path.realpath(sys.executable)
ENV = {**os.environ, "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": PYTHON}
# Appends argv[1] to `log` in the workspace; with argv[2] "gated", fails unless `flag` exists.
APPEND = ("import os,sys\n"
          "if sys.argv[2:] == ['gated'] and not os.path.exists('flag'): sys.exit(3)\n"
          "open('log','a').write(sys.argv[1]+'\\n')\n")


def command(token: str, gated: bool = False) -> list:
    return [PYTHON, "-I", "-S", "-c", APPEND, token, *(["gated"] if gated else [])]


def segment(segment_id, deps=(), token=None, gated=False, **fields):
    parameters = [{"name": "command", "value": command(token or segment_id, gated)}]
    return {"id": segment_id, "task_type": "system_command", "content": f"do {segment_id}",
            "parameters": parameters, "dependencies": list(deps), **fields}


def v2(segments, functions=(), global_variables=()):
    return {"id": "flow-resume", "version": "2.0", "command": "c", "language": "en", "mode": "Normal",
            "segments": segments, "global_variables": list(global_variables), "functions": list(functions)}


def lines(workspace: Path) -> list[str]:
    log = workspace / "log"
    return log.read_text().split() if log.exists() else []


def test_resume_runs_no_completed_carrier_or_instance_of_loops_calls_and_branches_again(tmp_path):
    """Two loops in a row whose own segments are commands, a call, and a branch written on its
    member; the last segment fails the first time. The resume runs only that segment: before
    the fix the reused loop segments ran their commands again, and a second loop crashed the
    resume ('task index 0 is not running')."""
    branch = {"condition": {"operator": "gt", "left": "n", "right": 0}, "if_body": ["yes"], "else_body": []}
    doc = v2([segment("loop1", loop={"type": "for_range", "variable": "i", "start": 0, "end": 2, "step": 1,
                                     "body": ["b1"]}),
              segment("b1", token="b1-$i"),
              segment("loop2", ["loop1"], loop={"type": "for_range", "variable": "j", "start": 0, "end": 2, "step": 1,
                                                "body": ["b2"]}),
              segment("b2", token="b2-$j"),
              segment("call", ["loop2"], function_call={"function_name": "mark", "arguments": {"n": "c"}}),
              segment("f", token="f-$n"),
              segment("yes", ["call"], condition=branch),
              segment("last", ["yes"], gated=True)],
             functions=[{"name": "mark", "parameters": [{"name": "n", "type": "string", "required": True}],
                         "body": ["f"]}],
             global_variables=[{"name": "n", "type": "number", "value": 1}])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", workspace=workspace, environ=ENV)
    assert first.results["last"].status == "failed"
    done_once = ["loop1", "b1-0", "b1-1", "loop2", "b2-0", "b2-1", "call", "f-c", "yes"]
    assert sorted(lines(workspace)) == sorted(done_once)
    (workspace / "flag").touch()
    again = resume(first.directory, environ=ENV)
    assert {r.status for r in again.results.values()} == {"completed"}, \
        {k: (r.status, r.error) for k, r in again.results.items()}
    assert sorted(lines(workspace)) == sorted(done_once + ["last"])
    for task_id in ("b1[0]", "b2[1]", "call/f", "yes"):
        assert again.results[task_id].metadata["reused_from"] == first.last_id


def failed_loop_run(tmp_path: Path):
    """A loop whose own segment and two instances (b[0], b[1]) are commands, then a segment
    that fails until the workspace has a flag: (that first run, its workspace)."""
    doc = v2([segment("loop", loop={"type": "for_range", "variable": "i", "start": 0, "end": 2, "step": 1,
                                    "body": ["b"]}),
              segment("b", token="b-$i"),
              segment("last", ["loop"], gated=True)])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", workspace=workspace, environ=ENV)
    assert first.results["last"].status == "failed"
    return first, workspace


def test_a_reused_loop_segment_s_own_command_is_not_run_again(tmp_path):
    first, workspace = failed_loop_run(tmp_path)
    (workspace / "flag").touch()
    again = resume(first.directory, environ=ENV)
    assert again.results["last"].status == "completed"
    assert sorted(lines(workspace)) == ["b-0", "b-1", "last", "loop"]


# ---- the reuse rule is structural for control flow too: recorded when the resume starts ----

GATED = ("import os,sys,time\n"
         "open('groups','a').write(str(os.getpid())+'\\n')\n"
         "while not os.path.exists('gate'): time.sleep(0.02)\n"
         "open('log','a').write(sys.argv[1]+'\\n')\n")


def flow_with_a_gate() -> dict:
    """m maps a command over three items (low priority); wait (critical) blocks on the file
    `gate`; after needs both. One task at a time, a resume takes wait first and never reaches
    m while wait blocks."""
    return {"id": "gate-flow", "title": "g", "variables": {"items": [0, 1, 2]}, "tasks": [
        {"id": "m", "description": "m", "priority": "low", "for_each": {"variable": "x", "iterable": "items"},
         "parameters": {"task_type": "system_command", "command": command("m-$x")}},
        {"id": "wait", "description": "w", "priority": "critical",
         "parameters": {"task_type": "system_command", "command": [PYTHON, "-I", "-S", "-c", GATED, "wait"]}},
        {"id": "after", "description": "a", "dependencies": ["m", "wait"],
         "parameters": {"task_type": "system_command", "command": command("after")}}]}


def start_cli(*argv, concurrency=4):
    return subprocess.Popen([sys.executable, "-m", "runner", *map(str, argv), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**ENV, "RUNNER_MAX_CONCURRENT_TASKS": str(concurrency)})


def stop(child, workspace: Path, how, gated: int) -> None:
    """Stops a runner process (kill -9 or SIGTERM) once `gated` gated commands have started,
    and the gated commands it left running."""
    from conftest import wait_until
    groups = workspace / "groups"
    assert wait_until(lambda: groups.exists() and len(groups.read_text().split()) >= gated, 60)
    child.send_signal(how)
    child.communicate(timeout=60)
    for group in (workspace / "groups").read_text().split() if (workspace / "groups").exists() else ():
        try:
            os.killpg(int(group), signal.SIGKILL)
        except ProcessLookupError:
            pass


def new_directory(out: Path, before: set, child) -> Path:
    from conftest import wait_until
    assert wait_until(lambda: any((d / "journal.jsonl").exists() for d in set(out.iterdir()) - before), 60), \
        child.stderr.read() if child.poll() is not None else ""
    (directory,) = set(out.iterdir()) - before
    return directory


def killed_while_waiting(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The first run, killed (SIGKILL) once m's instances completed while wait blocks."""
    from conftest import wait_until
    from runner.execution.journal import RunState
    workspace, out = tmp_path / "workspace", tmp_path / "out"
    workspace.mkdir()
    out.mkdir()
    (tmp_path / "alt.json").write_text(__import__("json").dumps(flow_with_a_gate()))
    child = start_cli("run", tmp_path / "alt.json", "--out", out, "--workspace", workspace)
    directory = new_directory(out, set(), child)
    done = {"m[0]", "m[1]", "m[2]"}
    assert wait_until(lambda: done <= set(RunState(directory).results) and "wait" in RunState(directory).running, 60)
    stop(child, workspace, signal.SIGKILL, 1)
    return directory, workspace, out


def resumed_until_wait_runs(directory: Path, out: Path):
    """A resume, one task at a time, once its journal says wait runs (m not reached)."""
    from conftest import wait_until
    from runner.execution.journal import RunState
    before = set(out.iterdir())
    child = start_cli("resume", directory, concurrency=1)
    second = new_directory(out, before, child)
    assert wait_until(lambda: "wait" in RunState(second).running, 60)
    return child, second


def resumed_to_the_end(directory: Path, workspace: Path) -> None:
    """Opens the gate and resumes `directory` from the CLI: every effect happened once."""
    (workspace / "gate").touch()
    done = subprocess.run([sys.executable, "-m", "runner", "resume", directory, "--quiet"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(lines(workspace)) == ["after", "m-0", "m-1", "m-2", "wait"]


def test_a_control_flow_resume_killed_before_reaching_its_loop_keeps_the_loop_s_instances(tmp_path):
    from runner.execution.journal import RunState, read_records
    directory, workspace, out = killed_while_waiting(tmp_path)
    assert sorted(lines(workspace)) == ["m-0", "m-1", "m-2"]
    child, second = resumed_until_wait_runs(directory, out)
    # The loop is not reached (wait blocks the only slot); its task and instances are in the
    # journal's first lines all the same.
    records = read_records(second / "journal.jsonl")
    assert [r["type"] for r in records[:2]] == ["run_started", "task_results"]
    state = RunState(second)
    for task_id in ("m[0]", "m[1]", "m[2]"):
        assert state.results[task_id]["status"] == "completed"
        assert state.results[task_id]["metadata"]["reused_from"] == directory.name
    stop(child, workspace, signal.SIGKILL, 2)
    resumed_to_the_end(second, workspace)


def test_sigterm_of_a_control_flow_resume_records_its_unreached_loop_as_reused(tmp_path):
    directory, workspace, out = killed_while_waiting(tmp_path)
    child, second = resumed_until_wait_runs(directory, out)
    stop(child, workspace, signal.SIGTERM, 2)
    record = json.loads((second / "last.json").read_bytes())
    assert record["task_results"]["m"]["status"] == "completed"
    assert record["task_results"]["m"]["metadata"]["reused_from"] == directory.name
    resumed_to_the_end(second, workspace)


def test_a_loop_segment_s_own_command_is_not_repeated_when_its_body_failed(tmp_path):
    """The segment's own command completed, then an instance of its body failed (so the
    segment is recorded failed): the resume runs the loop again from the command's recorded
    output, and the command once."""
    doc = v2([segment("loop", loop={"type": "for_range", "variable": "i", "start": 0, "end": 2, "step": 1,
                                    "body": ["b"]}),
              segment("b", token="b-$i", gated=True)])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", workspace=workspace, environ=ENV)
    assert first.results["loop"].status == "failed"
    assert lines(workspace) == ["loop"]
    (workspace / "flag").touch()
    from runner.execution.resume import plan
    assert "reuse  loop  (its own system_command completed; its construct runs again)" in \
        plan(first.directory).describe().splitlines()
    again = resume(first.directory, environ=ENV)
    assert {k: r.status for k, r in again.results.items()} == {"loop": "completed", "b[0]": "completed",
                                                               "b[1]": "completed"}
    assert sorted(lines(workspace)) == ["b-0", "b-1", "loop"]


def test_a_loop_segment_s_own_command_is_not_repeated_after_a_kill_during_its_loop(tmp_path):
    from conftest import wait_until
    from runner.execution.journal import RunState
    waiting = {"id": "w", "task_type": "system_command", "content": "w", "dependencies": [],
               "parameters": [{"name": "command", "value": [PYTHON, "-I", "-S", "-c", GATED, "w-$i"]}]}
    doc = v2([segment("loop", loop={"type": "for_range", "variable": "i", "start": 0, "end": 1, "step": 1,
                                    "body": ["w"]}), waiting])
    workspace, out = tmp_path / "workspace", tmp_path / "out"
    workspace.mkdir()
    out.mkdir()
    (tmp_path / "alt.json").write_text(json.dumps(doc))
    child = start_cli("run", tmp_path / "alt.json", "--out", out, "--workspace", workspace)
    directory = new_directory(out, set(), child)
    assert wait_until(lambda: "w[0]" in RunState(directory).running, 60)
    stop(child, workspace, signal.SIGKILL, 1)
    assert lines(workspace) == ["loop"]
    (workspace / "gate").touch()
    done = subprocess.run([sys.executable, "-m", "runner", "resume", directory, "--quiet"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(lines(workspace)) == ["loop", "w-0"]


def looped(bound: int = 3) -> dict:
    """A command before a for_range loop of commands, a loop of a call of a function of two
    commands, and a last command."""
    return v2([segment("head"),
               {"id": "loop", "task_type": "generic", "content": "loop", "dependencies": ["head"],
                "loop": {"type": "for_range", "variable": "i", "start": 0, "end": bound, "step": 1, "body": ["b"]}},
               segment("b", token="b-$i"),
               {"id": "calls", "task_type": "generic", "content": "calls", "dependencies": ["loop"],
                "loop": {"type": "for_range", "variable": "k", "start": 0, "end": 2, "step": 1, "body": ["call"]}},
               {"id": "call", "task_type": "generic", "content": "call",
                "function_call": {"function_name": "fn", "arguments": {"n": "c$k"}}},
               segment("fa", token="fa-$n"),
               segment("fb", ["fa"], token="fb-$n"),
               segment("tail", ["calls"])],
              functions=[{"name": "fn", "parameters": [{"name": "n", "type": "string", "required": True}],
                          "body": ["fa", "fb"]}])


def test_resume_with_force_from_or_an_edited_file_repeats_no_completed_instance_command(tmp_path):
    """--force of another task, --from a loop and an edited loop bound: completed instance
    commands are kept as flat ones are (before, any of these re-ran every loop's and call's
    commands: only an unforced resume of the same file reused instances)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(looped())), tmp_path / "out", workspace=workspace, environ=ENV)
    assert {r.status for r in first.results.values()} == {"completed"}
    done = ["head", "b-0", "b-1", "b-2", "fa-c0", "fb-c0", "fa-c1", "fb-c1", "tail"]
    assert sorted(lines(workspace)) == sorted(done)
    forced = resume(first.directory, force=["tail"], environ=ENV)
    assert sorted(lines(workspace)) == sorted(done + ["tail"])
    assert forced.results["b[1]"].metadata["reused_from"] == first.last_id
    assert forced.results["call[1]/fb[1]"].metadata["reused_from"] == first.last_id
    resume(forced.directory, from_task="loop", environ=ENV)
    assert sorted(lines(workspace)) == sorted(done + ["tail"])
    edited = resume(forced.directory, alt_source=dumps(looped(bound=5)), environ=ENV)
    assert sorted(lines(workspace)) == sorted(done + ["tail", "b-3", "b-4"])
    assert edited.results["b[4]"].status == "completed" and "reused_from" not in edited.results["b[4]"].metadata


def test_forcing_a_loop_or_a_template_runs_its_instances_again(tmp_path):
    """What the user forces runs again: a loop's instances with --force of the loop, a
    function body's instances with --force of the body's segment."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(looped(bound=2))), tmp_path / "out", workspace=workspace,
                    environ=ENV)
    done = ["head", "b-0", "b-1", "fa-c0", "fb-c0", "fa-c1", "fb-c1", "tail"]
    assert sorted(lines(workspace)) == sorted(done)
    again = resume(first.directory, force=["loop"], environ=ENV)
    assert sorted(lines(workspace)) == sorted(done + ["b-0", "b-1"])
    resume(again.directory, force=["fb"], environ=ENV)
    assert sorted(lines(workspace)) == sorted(done + ["b-0", "b-1", "fb-c0", "fb-c1"])


def test_an_edited_instance_result_is_refused_with_its_line_and_its_command_is_not_run_again(tmp_path):
    """An instance's earlier result the core refuses (its duration made text) was left out of
    what the resume reuses, so its completed command ran again; it is refused like any
    result, with its line, before anything runs."""
    from runner.execution.resume import ResumeError

    first, workspace = failed_loop_run(tmp_path)
    assert first.results["b[0]"].status == "completed"
    ran = sorted(lines(workspace))
    journal = first.directory / "journal.jsonl"
    edited = []
    for number, line in enumerate(journal.read_bytes().splitlines(), 1):
        record = json.loads(line)
        if record.get("type") == "task_results":
            for row in record["rows"]:
                if row[0] == "b[0]":
                    row[record["fields"].index("duration_ms")] = "soon"
                    line, at = json.dumps(record).encode(), number
        edited.append(line)
    journal.write_bytes(b"\n".join(edited) + b"\n")
    (workspace / "flag").touch()
    try:
        resume(first.directory, environ=ENV)
    except ResumeError as error:
        assert f"journal.jsonl: line {at}: the earlier result of task 'b[0]'" in str(error), str(error)
    else:
        raise AssertionError("the resume reused nothing of an edited instance and went on")
    assert sorted(lines(workspace)) == ran       # no command ran again
