"""LAST files delivered to the archive: a LastFileMessage on NATS for every LAST file
written (run, the Python API, runner_generate_last_file, batches), with a real
nats-server on 127.0.0.1 started here; with the server down, LAST files are still
written and the failure is recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import runner as api
from conftest import dumps
from nats_server import DropOnPublish, NatsServer, Subscriber, decode_last_file_message, free_port

ALT = {"id": "deliver", "title": "delivered", "tasks": [
    {"id": "a", "description": "hello", "parameters": {"task_type": "generic"}},
    {"id": "b", "description": "world", "dependencies": ["a"]}]}


@pytest.fixture(scope="module")
def server():
    running = NatsServer().start()
    yield running
    running.stop()


@pytest.fixture
def subject(monkeypatch, server):
    """A subject of this test's own, RUNNER_NATS_URL/SUBJECT set for it, and its subscriber."""
    name = f"last.files.{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("RUNNER_NATS_URL", server.url)
    monkeypatch.setenv("RUNNER_NATS_SUBJECT", name)
    subscriber = Subscriber(server.url, name)
    yield subscriber
    subscriber.close()


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def write_alt(tmp_path, doc=ALT) -> Path:
    path = tmp_path / f"{doc['id']}.json"
    path.write_text(json.dumps(doc))
    return path


def check_message(data: bytes, directory: Path) -> dict:
    """The message decoded as the archive decodes it, checked against the LAST file on disk."""
    message = decode_last_file_message(data)
    record = json.loads((directory / "last.json").read_text())
    assert message["ID"] == record["id"] == directory.name
    assert message["FilePath"] == str((directory / "last.json").resolve())
    assert Path(message["FilePath"]).is_absolute() and Path(message["FilePath"]).is_file()
    assert message["SuccessRate"] == record["success_rate"]
    assert message["Timestamp"] is not None and message["Timestamp"].tzinfo is not None
    assert message["Metadata"]["alt_file_id"] == record["alt_file_id"]
    assert message["Metadata"]["status"] == record["status"]
    delivery = json.loads((directory / "delivery.json").read_text())
    assert delivery["published"] is True and delivery["message"] == json.loads(data)
    return message


def test_a_run_publishes_one_message_that_the_archive_decodes(subject, tmp_path):
    done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    directory = Path(done.stdout.strip().splitlines()[-1])
    [data] = subject.until_sentinel()
    message = check_message(data, directory)
    assert message["SuccessRate"] == 1.0
    assert "delivery:" not in done.stderr


def test_the_default_subject_is_last_files(server, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNNER_NATS_URL", server.url)
    monkeypatch.delenv("RUNNER_NATS_SUBJECT", raising=False)
    subscriber = Subscriber(server.url, "last.files")
    try:
        written = api.write_last_file(api.parse_alt_file(dumps(ALT)), {}, tmp_path)
        [data] = subscriber.until_sentinel()
    finally:
        subscriber.close()
    assert decode_last_file_message(data)["ID"] == written.last_id
    assert written.delivery["published"] and written.delivery["subject"] == "last.files"


def test_every_way_of_writing_a_last_file_publishes_once(subject, runner, tmp_path):
    directories = []
    # The Python API: run and write_last_file.
    directories.append(Path(tmp_path / "api", api.run(dumps(ALT), tmp_path / "api")["id"]))
    directories.append(api.write_last_file(api.parse_alt_file(dumps(ALT)), {}, tmp_path / "w").directory)
    # The C ABI in this process: runner_generate_last_file and runner_batch_process.
    second = dict(ALT, id="deliver2")
    assert runner.runner_parse_alt_file(dumps(ALT)) == 1
    assert runner.runner_parse_alt_file(dumps(second)) == 1
    last_id = runner.take(runner.runner_generate_last_file(b"deliver", str(tmp_path / "c").encode()))
    directories.append(tmp_path / "c" / last_id)
    batch = json.loads(runner.take(runner.runner_batch_process(b'["deliver", "deliver2"]',
                                                                str(tmp_path / "b").encode())))
    directories += [tmp_path / "b" / batch["deliver"], tmp_path / "b" / batch["deliver2"]]
    # The batch command.
    done = cli("batch", write_alt(tmp_path), write_alt(tmp_path, second), "--out", tmp_path / "cli")
    assert done.returncode == 0, done.stderr
    directories += [tmp_path / "cli" / last for last in json.loads(done.stdout).values()]
    messages = subject.until_sentinel()
    assert len(messages) == len(directories) == 7
    by_id = {decode_last_file_message(m)["ID"]: m for m in messages}
    assert set(by_id) == {d.name for d in directories}
    for directory in directories:
        check_message(by_id[directory.name], directory)


def test_with_the_server_down_the_last_file_is_written_and_the_failure_recorded(monkeypatch, tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"      # nothing listens there
    done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out", env={"RUNNER_NATS_URL": url})
    assert done.returncode == 0, done.stderr
    directory = Path(done.stdout.strip().splitlines()[-1])
    assert json.loads((directory / "last.json").read_text())["status"] == "success"
    delivery = json.loads((directory / "delivery.json").read_text())
    assert delivery["published"] is False and delivery["url"] == url
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    assert all(a["error"] for a in delivery["attempts"])
    assert f"delivery: LAST file {directory.name} not published on last.files at {url} after 3 attempts" \
        in done.stderr
    assert str(directory / "delivery.json") in done.stderr


def test_required_delivery_changes_the_exit_status_but_keeps_the_file(tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"
    done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out",
               env={"RUNNER_NATS_URL": url, "RUNNER_NATS_REQUIRED": "true"})
    assert done.returncode == 3, done.stderr
    directory = Path(done.stdout.strip().splitlines()[-1])
    assert (directory / "last.json").is_file() and (directory / "report.html").is_file()
    assert json.loads((directory / "delivery.json").read_text())["published"] is False
    assert "RUNNER_NATS_REQUIRED=true" in done.stderr
    # The run ended (only its publication failed): its temporary workspace goes as any ended run's.
    workspace = Path(json.loads((directory / "journal.jsonl").read_bytes().splitlines()[0])["workspace"])
    assert "kept for its resume" not in done.stderr and not workspace.exists()


def test_a_server_that_drops_the_connection_on_the_message_has_not_published_it(tmp_path):
    """Published means confirmed by the server: one that closes the connection when the
    message arrives never confirmed it (a flush whose ping got no reply)."""
    dropping = DropOnPublish()
    try:
        done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out",
                   env={"RUNNER_NATS_URL": dropping.url, "RUNNER_NATS_REQUIRED": "true"})
    finally:
        dropping.stop()
    assert dropping.published >= 1            # the message went out, and the server dropped it
    assert done.returncode == 3, done.stderr
    delivery = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "delivery.json").read_text())
    assert delivery["published"] is False
    assert all("did not confirm" in attempt["error"] or "onnection" in attempt["error"]
               for attempt in delivery["attempts"]), delivery["attempts"]


def test_required_delivery_through_the_c_abi(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNNER_NATS_URL", f"nats://127.0.0.1:{free_port()}")
    assert runner.runner_parse_alt_file(dumps(ALT)) == 1
    last_id = runner.take(runner.runner_generate_last_file(b"deliver", str(tmp_path / "a").encode()))
    assert last_id and (tmp_path / "a" / last_id / "last.json").is_file()
    monkeypatch.setenv("RUNNER_NATS_REQUIRED", "true")
    assert runner.runner_generate_last_file(b"deliver", str(tmp_path / "b").encode()) is None
    error = runner.last_error()
    assert error.startswith("runner_generate_last_file: LAST file ")
    assert "not published on last.files" in error and "(RUNNER_NATS_REQUIRED=true)" in error
    [directory] = (tmp_path / "b").iterdir()
    assert (directory / "last.json").is_file() and str(directory) in error


def test_a_restarted_server_gets_the_next_files(monkeypatch, tmp_path):
    """The cached connection is dropped when the server goes, and made again when it is back."""
    server = NatsServer().start()
    monkeypatch.setenv("RUNNER_NATS_URL", server.url)
    alt = api.parse_alt_file(dumps(ALT))
    try:
        subscriber = Subscriber(server.url, "last.files")
        first = api.write_last_file(alt, {}, tmp_path)
        assert len(subscriber.until_sentinel()) == 1
        subscriber.close()
        server.stop()
        missed = api.write_last_file(alt, {}, tmp_path)
        assert missed.delivery["published"] is False and (missed.directory / "last.json").is_file()
        server = NatsServer(server.port).start()
        subscriber = Subscriber(server.url, "last.files")
        again = api.write_last_file(alt, {}, tmp_path)
        [data] = subscriber.until_sentinel()
        subscriber.close()
    finally:
        server.stop()
    assert first.delivery["published"] and again.delivery["published"]
    assert decode_last_file_message(data)["ID"] == again.last_id


def test_credentials_in_the_url_stay_out_of_records_and_output(tmp_path):
    url = f"nats://archiver:s3cret-token@127.0.0.1:{free_port()}"
    done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out", env={"RUNNER_NATS_URL": url})
    directory = Path(done.stdout.strip().splitlines()[-1])
    text = (directory / "delivery.json").read_text()
    assert "s3cret-token" not in text and "archiver" not in text and "***@127.0.0.1" in text
    assert "s3cret-token" not in done.stderr + done.stdout


@pytest.mark.parametrize("variables, words", [
    ({"RUNNER_NATS_URL": "http://127.0.0.1:4222"}, "RUNNER_NATS_URL='http://127.0.0.1:4222': expected a NATS"),
    ({"RUNNER_NATS_URL": "nats://127.0.0.1:1", "RUNNER_NATS_SUBJECT": "last.*"}, "RUNNER_NATS_SUBJECT='last.*'"),
    ({"RUNNER_NATS_URL": "nats://127.0.0.1:1", "RUNNER_NATS_REQUIRED": "maybe"}, "RUNNER_NATS_REQUIRED='maybe'"),
    ({"RUNNER_NATS_URL": "nats://127.0.0.1:1", "RUNNER_NATS_TIMEOUT": "0"}, "RUNNER_NATS_TIMEOUT='0'"),
])
def test_bad_delivery_settings_are_configuration_errors(variables, words, tmp_path):
    done = cli("run", write_alt(tmp_path), "--out", tmp_path / "out", env=variables)
    assert done.returncode == 2 and words in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_runs_that_do_not_publish_never_import_the_client(tmp_path):
    code = ("import sys, runner; runner.run(open(sys.argv[1], 'rb').read(), sys.argv[2]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nats', 'asyncio')))")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_NATS")}
    done = subprocess.run([sys.executable, "-c", code, str(write_alt(tmp_path)), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
