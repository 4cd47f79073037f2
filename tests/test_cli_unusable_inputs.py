"""Unusable inputs every command refuses up front with exit 2 and one clear line, no traceback:
an ALT file larger than RUNNER_MAX_ALT_BYTES or not a regular file (one bounded reader for
validate, run, run FILE... and resume --alt), a file name that is not UTF-8, and a
RUNNER_NATS_URL whose port is not a port."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.last.delivery import redacted

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "alt" / "generic.json"


def cli(*argv, env: dict | None = None, stdin=None) -> subprocess.CompletedProcess:
    # bytes: a file name that is not UTF-8 goes to the child as it is
    return subprocess.run([os.fsencode(sys.executable), b"-m", b"runner",
                           *[a if isinstance(a, bytes) else os.fsencode(str(a)) for a in argv]],
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, capture_output=True, timeout=60,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def assert_refused(done: subprocess.CompletedProcess, *words: str) -> str:
    error = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, (done.returncode, error)
    assert "Traceback" not in error, error
    for word in words:
        assert word in error, error
    return error


@pytest.fixture
def previous_run(tmp_path) -> Path:
    done = cli("run", EXAMPLE, "--out", tmp_path / "first", "--quiet")
    assert done.returncode == 0, done.stderr
    return tmp_path / "first" / done.stdout.decode().strip().rsplit("/", 1)[-1]


def test_every_command_reads_at_most_the_limit(tmp_path, previous_run):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"id": "big", "title": "t", "tasks": [
        {"id": "a", "description": "x" * 5000, "parameters": {"task_type": "generic"}}]}))
    env = {"RUNNER_MAX_ALT_BYTES": "1000"}
    out = tmp_path / "out"
    for argv in (("run", big, "--out", out), ("run", big, EXAMPLE, "--out", tmp_path / "many"),
                 ("resume", previous_run, "--alt", big, "--out", out), ("validate", big)):
        done = cli(*argv, env=env)
        error = done.stderr.decode() + done.stdout.decode()
        assert done.returncode == (1 if argv[0] == "validate" else 2) or len(argv) == 5, (argv, error)
        assert done.returncode != 0 and "Traceback" not in error, (argv, error)
        assert "more than the limit of 1000 (RUNNER_MAX_ALT_BYTES)" in error, (argv, error)
    assert not out.exists() or not any(out.iterdir())     # the single-file commands ran nothing


def test_devices_and_fifos_are_refused_without_being_read(tmp_path, previous_run):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)         # nobody writes to it: reading would block forever
    for source in ("/dev/zero", fifo):
        assert_refused(cli("run", source, "--out", tmp_path / "out"), "not a regular file")
        assert_refused(cli("resume", previous_run, "--alt", source, "--out", tmp_path / "out"),
                       "not a regular file")
        assert_refused(cli("validate", source), "not a regular file")
    done = cli("run", "/dev/zero", EXAMPLE, "--out", tmp_path / "many")
    assert "Traceback" not in done.stderr.decode()
    assert "not a regular file" in (done.stdout + done.stderr).decode()


def test_standard_input_is_read_up_to_the_limit(tmp_path):
    with open("/dev/zero", "rb") as zeros:
        done = cli("run", "-", "--out", tmp_path / "out", env={"RUNNER_MAX_ALT_BYTES": "4096"}, stdin=zeros)
    assert_refused(done, "more than the limit of 4096 (RUNNER_MAX_ALT_BYTES)")
    with open(EXAMPLE, "rb") as example:
        assert cli("run", "-", "--out", tmp_path / "out", "--quiet", stdin=example).returncode == 0


def test_a_file_name_that_is_not_utf8_is_refused_with_its_bytes(tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/\xff.json"
    shutil.copy(EXAMPLE, name)
    for argv in ((b"run", name, b"--out", os.fsencode(str(tmp_path / "out"))),
                 (b"run", name, os.fsencode(str(EXAMPLE)), b"--out", os.fsencode(str(tmp_path / "out"))),
                 (b"validate", name, b"--json")):
        assert_refused(cli(*argv), "not valid UTF-8", "\\xff.json")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["nats://user:s3cret@127.0.0.1:notaport", "nats://user:s3cret@127.0.0.1:99999"])
def test_a_nats_url_with_a_bad_port_is_refused_before_the_run(tmp_path, url):
    error = assert_refused(cli("run", EXAMPLE, "--out", tmp_path / "out", env={"RUNNER_NATS_URL": url}),
                           "RUNNER_NATS_URL")
    assert "s3cret" not in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["nats://user:s3cret@127.0.0.1:notaport", "nats://user:s3cret@127.0.0.1:99999",
                                 "nats://user:s3cret@[::1", "nats://tok3n@host:4222/x", "nats://h:4222"])
def test_redaction_never_raises_and_never_keeps_a_secret(url):
    shown = redacted(url)
    assert "s3cret" not in shown and "tok3n" not in shown
    if "@" not in url:
        assert shown == url
