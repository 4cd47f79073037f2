"""`python -m runner`: version, config and smoke, as a person runs them."""
from __future__ import annotations

import json
import subprocess
import sys

from runner import buildinfo


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_version_prints_the_library_version_json():
    completed = cli("version")
    assert completed.returncode == 0
    version = json.loads(completed.stdout)
    assert version["name"] == "librunner" and version["python"] and version["cython"]


def test_config_prints_flags_that_find_the_header_and_library():
    completed = cli("config", "--cflags", "--libs")
    flags = completed.stdout.split()
    include = next(f[2:] for f in flags if f.startswith("-I"))
    assert (buildinfo.include_dir() / "runner_ffi.h").samefile(f"{include}/runner_ffi.h")
    assert f"-L{buildinfo.library_dir()}" in flags and "-lrunner" in flags
    assert f"-Wl,-rpath,{buildinfo.library_dir()}" in flags


def test_config_writes_a_pkg_config_file():
    completed = cli("config", "--pkg-config")
    assert "Name: librunner" in completed.stdout
    assert f"libdir={buildinfo.library_dir()}" in completed.stdout


def test_smoke_runs_the_documented_flow_in_a_child_and_says_ok():
    completed = cli("smoke")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[-1] == "smoke: ok"
    assert "smoke: LAST file success rate: 50.00%" in lines


def test_smoke_fails_on_a_library_that_is_not_librunner(tmp_path):
    bogus = tmp_path / "librunner.so"
    bogus.write_bytes(b"not an ELF file")
    completed = cli("smoke", "--library", str(bogus))
    assert completed.returncode == 1
    assert completed.stdout.splitlines()[-1].startswith("smoke: FAILED")
