"""Plugins: a distribution installed into a temporary directory on PYTHONPATH (a dist-info
with entry_points.txt in the group librunner.task_types) is seen by `validate`, `run` and
`task-types`, loaded only by the files that use its type."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from task_type_plugin import install_shouting_plugin


@pytest.fixture
def plugin_path(tmp_path) -> Path:
    return install_shouting_plugin(tmp_path / "site")


def cli(site: Path, *argv, mark: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    if mark is not None:
        env["PLUGIN_LOADED_MARK"] = str(mark)
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env=env)


def write_alt(path: Path, *tasks) -> Path:
    path.write_text(json.dumps({"id": "plug", "title": "Plugin", "tasks": list(tasks)}))
    return path


def test_task_types_lists_the_plugin_with_its_distribution_and_parameters(plugin_path):
    listed = cli(plugin_path, "task-types", "--json")
    assert listed.returncode == 0, listed.stderr
    kinds = {k["name"]: k for k in json.loads(listed.stdout)["task_types"]}
    assert kinds["shout"]["origin"] == "plugin"
    assert kinds["shout"]["distribution"] == "shouting" and kinds["shout"]["version"] == "1.2.0"
    assert kinds["shout"]["handler"] == "shouting.shout"
    assert kinds["shout"]["parameters"]["required"] == ["text"]
    assert kinds["generic"]["origin"] == "built-in"
    text = cli(plugin_path, "task-types")
    assert "plugin shouting 1.2.0" in text.stdout


def test_validate_and_run_use_the_plugin_and_only_files_using_it_load_it(plugin_path, tmp_path):
    mark = tmp_path / "loaded.txt"
    plain = write_alt(tmp_path / "plain.json", {"id": "g", "description": "g", "parameters": {"task_type": "generic"}})
    assert cli(plugin_path, "validate", plain, mark=mark).returncode == 0
    assert not mark.exists()

    bad = write_alt(tmp_path / "bad.json", {"id": "s", "description": "s",
                                            "parameters": {"task_type": "shout", "text": 5, "tims": 2}})
    refused = cli(plugin_path, "validate", bad, mark=mark)
    assert refused.returncode != 0
    assert "/tasks/0/parameters/text" in refused.stdout + refused.stderr
    assert "did you mean 'times'?" in refused.stdout + refused.stderr

    good = write_alt(tmp_path / "good.json", {"id": "s", "description": "s",
                                              "parameters": {"task_type": "shout", "text": "hey", "times": 2}})
    assert cli(plugin_path, "validate", good).returncode == 0
    ran = cli(plugin_path, "run", good, "--out", tmp_path / "out", "--quiet", "--json", mark=mark)
    assert ran.returncode == 0, ran.stderr
    (last,) = (tmp_path / "out").glob("*/last.json")
    result = json.loads(last.read_text())["task_results"]["s"]
    assert result["output"] == {"text": "HEYHEY"}
    assert result["metadata"]["log"] == ["INFO shouting"]
    assert mark.read_text().count("loaded") >= 1


def test_an_unknown_type_without_its_plugin_is_refused_with_suggestions(plugin_path, tmp_path):
    typo = write_alt(tmp_path / "typo.json", {"id": "s", "description": "s", "parameters": {"task_type": "shuot"}})
    refused = cli(plugin_path, "validate", typo)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "did you mean 'shout'?" in output and "is a plugin missing?" in output
    missing = cli(tmp_path, "run", typo, "--out", tmp_path / "out")
    assert missing.returncode != 0 and "is a plugin missing?" in missing.stdout + missing.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_plugin_that_cannot_be_imported_is_named_with_its_error(plugin_path, tmp_path):
    (plugin_path / "shouting" / "__init__.py").write_text("raise ImportError('needs libshout')\n")
    good = write_alt(tmp_path / "good.json", {"id": "s", "description": "s",
                                              "parameters": {"task_type": "shout", "text": "hey"}})
    refused = cli(plugin_path, "validate", good)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "the plugin shouting could not be loaded" in output and "needs libshout" in output
    listed = cli(plugin_path, "task-types")
    assert listed.returncode == 1 and "needs libshout" in listed.stdout
