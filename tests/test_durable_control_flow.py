"""resume of control-flow documents (issue 18): a completed carrier (a loop's, a call's or a
branch's own segment) is not run again, its construct is replayed once, and every completed
instance is kept, so no command of theirs runs twice. Real commands (python, no shell)
count their runs in a log of the workspace."""
from __future__ import annotations

import os
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


def test_a_reused_loop_segment_s_own_command_is_not_run_again(tmp_path):
    doc = v2([segment("loop", loop={"type": "for_range", "variable": "i", "start": 0, "end": 2, "step": 1,
                                    "body": ["b"]}),
              segment("b", token="b-$i"),
              segment("last", ["loop"], gated=True)])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    first = execute(runner.parse_alt_file(dumps(doc)), tmp_path / "out", workspace=workspace, environ=ENV)
    assert first.results["last"].status == "failed"
    (workspace / "flag").touch()
    again = resume(first.directory, environ=ENV)
    assert again.results["last"].status == "completed"
    assert sorted(lines(workspace)) == ["b-0", "b-1", "last", "loop"]
