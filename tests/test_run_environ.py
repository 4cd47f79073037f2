"""A run's `environ` is where all of its RUNNER_* settings come from, the output directory
included: preflight checked the directory it named while the run wrote to the one
os.environ named (or ./output)."""
from __future__ import annotations

from runner.execution import execute

ALT = {"id": "environ", "title": "environ", "tasks": [{"id": "a", "description": "a"}]}


def test_runner_output_dir_is_read_from_the_runs_environ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNNER_OUTPUT_DIR", str(tmp_path / "from_process"))
    outcome = execute(ALT, environ={"RUNNER_OUTPUT_DIR": str(tmp_path / "from_environ")})
    assert outcome.directory.parent == tmp_path / "from_environ"
    assert (outcome.directory / "last.json").is_file()
    assert not (tmp_path / "from_process").exists()


def test_an_environ_without_it_means_the_default_not_the_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNNER_OUTPUT_DIR", str(tmp_path / "from_process"))
    outcome = execute(ALT, environ={})
    assert outcome.directory.parent == tmp_path / "output"
    assert not (tmp_path / "from_process").exists()
