"""A feature configured without its optional package is a configuration mistake found by the
checks before a run: exit 2, one message naming the extra to install; nothing runs, nothing
is retried. The package is made absent for the child process only: a sitecustomize on its
PYTHONPATH puts a finder first on sys.meta_path that finds no such module (as if it had never
been installed in that environment)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import extras

ABSENT = """
import sys

class _NotInstalled:
    blocked = {blocked!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def without(tmp_path: Path, *modules: str) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ABSENT.format(blocked=set(modules)))
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OTEL_"))}, "PYTHONPATH": path}


def alt_file(tmp_path: Path, tasks: list) -> Path:
    path = tmp_path / "alt.json"
    path.write_text(json.dumps({"id": "extras", "title": "Extras", "tasks": tasks}))
    return path


GENERIC = [{"id": "g", "description": "g", "parameters": {"task_type": "generic"}}]


def run(tmp_path, env, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", "run", alt_file(tmp_path, GENERIC if not extra else extra[0]),
                           "--out", tmp_path / "out", "--quiet", *extra[1:]],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_nats_url_without_nats_py_is_refused_before_the_run_naming_the_extra(tmp_path):
    env = {**without(tmp_path, "nats"), "RUNNER_NATS_URL": "nats://127.0.0.1:4222"}
    done = run(tmp_path, env)
    assert done.returncode == 2, done.stderr
    assert "RUNNER_NATS_URL needs the [nats] extra" in done.stderr
    assert done.stderr.count("pip install 'librunner[nats]'") == 1
    assert not (tmp_path / "out").exists()          # nothing ran, nothing was written


def test_dask_without_distributed_is_refused_naming_the_extra(tmp_path):
    done = run(tmp_path, without(tmp_path, "distributed"), GENERIC, "--dask", "local:1")
    assert done.returncode == 2, done.stderr
    assert "--dask needs the [dask] extra" in done.stderr and "pip install 'librunner[dask]'" in done.stderr


@pytest.mark.parametrize("extra", sorted(extras.EXTRAS))
def test_every_extra_of_pyproject_is_known_and_installed_for_the_tests(extra):
    # [test] includes every extra: here none is missing, and each name is one pyproject declares.
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f"\n{extra} = [" in pyproject
    assert extras.missing(extra) == [] or extra == "server"
