"""Unknown-field warnings name their place as RFC 6901 JSON Pointers ('~' as ~0, '/' as
~1), keys with control characters reach the terminal escaped, and runner_get_warnings
lists a bounded number of warnings with a final entry counting the rest."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import dumps

HOSTILE = {"id": "paths", "title": "Paths", "a/b": 1, "c~d": 2, "e\x1b[2J\nforged: valid": 3,
           "tasks": [{"id": "t", "description": "T", "x/~y": 4}]}


def cli(tmp_path, *args):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(HOSTILE))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    return subprocess.run([sys.executable, "-m", "runner", *args[:1], str(path), *args[1:]], capture_output=True,
                          text=True, env=environ, timeout=60)


def test_warning_paths_are_json_pointers(tmp_path):
    done = cli(tmp_path, "validate", "--json")
    assert done.returncode == 0, done.stderr
    paths = [w["path"] for w in json.loads(done.stdout)["files"][0]["warnings"]]
    assert paths == ["/a~1b", "/c~0d", "/e\x1b[2J\nforged: valid", "/tasks/0/x~1~0y"]


def test_control_characters_of_keys_reach_the_terminal_escaped(tmp_path):
    for done in (cli(tmp_path, "validate"), cli(tmp_path, "run", "--out", str(tmp_path / "out"), "--quiet")):
        printed = done.stdout + done.stderr
        assert "\x1b" not in printed
        assert "/e\\x1b[2J\\nforged: valid: unknown field" in printed
        assert not any(line.startswith("forged") for line in printed.splitlines())


def test_runner_get_warnings_is_bounded_and_counts_the_rest(runner):
    alt = {"id": "many", "title": "Many", "tasks": [{"id": f"t{i}", "description": "T"} for i in range(20)]}
    assert runner.runner_parse_alt_file(dumps(alt)) == 1
    for i in range(20):
        result = {"task_id": f"t{i}", "status": "completed", **{f"extra_{n}": n for n in range(150)}}
        assert runner.runner_add_task_result(b"many", dumps(result)) == 1
    warnings = json.loads(runner.take(runner.runner_get_warnings(b"many")))
    assert len(warnings) == 1001
    assert warnings[0] == {"path": "/task_results/t0/extra_0", "message": "unknown field"}
    assert warnings[-1] == {"path": "/", "message": "... and 2000 more warnings"}
