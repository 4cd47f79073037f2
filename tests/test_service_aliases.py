"""The routes ALT_LAS's callers use, on a real `python -m runner serve`: the original runner
service's /api/v1/health, /api/v1/status and /api/v1/process, and the API gateway's
POST /run, GET /tasks/{id}, POST /tasks/{id}/cancel and GET /files/last/{id}; files named
only inside --alt-dir."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runner_service import RunnerService

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "alt"
SLEEP = shutil.which("sleep")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("aliases")
    alt_dir = root / "alt"
    alt_dir.mkdir()
    (alt_dir / "demo.json").write_bytes((EXAMPLES / "demo.json").read_bytes())
    (alt_dir / "seg.alt.yaml").write_bytes((EXAMPLES / "segmentation.alt.yaml").read_bytes())
    (alt_dir / "nap.json").write_text(json.dumps({"id": "nap", "title": "nap", "tasks": [
        {"id": "nap", "description": "nap", "timeout_seconds": 600,
         "parameters": {"task_type": "system_command", "command": [SLEEP, "60"]}}]}))
    (alt_dir / "broken.json").write_text('{"id": "broken", "tasks": [{"id": 3}]}')
    (root / "secret.json").write_text(json.dumps({"id": "secret", "title": "s", "tasks": [
        {"id": "t", "description": "x"}]}))
    (alt_dir / "escape.json").symlink_to(root / "secret.json")
    server = RunnerService(root / "out", alt_dir, environ={
        "RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": SLEEP,
        "RUNNER_GRACE_SECONDS": "0.2"}).start()
    yield server
    server.stop()


def test_the_original_health_and_status(service):
    health = service.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["service"] == "runner-service" and health["version"]
    status = service.get("/api/v1/status").json()
    assert set(status) == {"status", "version", "uptime_seconds", "processed_files", "success_rate", "active_tasks"}
    assert status["status"] == "ok"


def test_process_runs_a_file_of_the_alt_directory_followed_by_its_request_id(service):
    answer = service.post("/api/v1/process", json={"file_path": "demo.json", "priority": "high",
                                                   "persona": "release_manager"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "processing" and body["last_file_path"] is None
    assert body["alt_file_id"] == "demo_release_notes"
    view = service.wait_for(body["request_id"])
    assert view["status"] == "success"
    assert view["priority"] == "high"
    last = service.get(f"/api/v1/runs/{body['request_id']}/last").json()
    assert last["persona"] == "release_manager"
    processed = service.get("/api/v1/status").json()["processed_files"]
    assert processed >= 1


def test_process_with_an_absolute_path_inside_the_directory(service):
    answer = service.post("/api/v1/process", json={"file_path": str(service.alt_dir / "seg.alt.yaml")})
    assert answer.status_code == 202, answer.text
    assert service.wait_for(answer.json()["request_id"])["status"] in ("success", "partialsuccess")


@pytest.mark.parametrize("file_path", ["../secret.json", "escape.json", "/etc/passwd", "/etc/nonexistent"])
def test_process_never_reads_outside_the_alt_directory(service, file_path):
    answer = service.post("/api/v1/process", json={"file_path": file_path})
    assert answer.status_code == 403, answer.text
    assert "outside" in answer.json()["error"]


def test_process_of_a_missing_or_invalid_file(service):
    missing = service.post("/api/v1/process", json={"file_path": "nothing.json"})
    assert missing.status_code == 404
    assert "File not found" in missing.json()["error"]
    invalid = service.post("/api/v1/process", json={"file_path": "broken.json"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"]
    bad = service.post("/api/v1/process", json={"file_path": 3, "mode": "fast"})
    assert bad.status_code == 422
    assert {error["path"] for error in bad.json()["errors"]} == {"/file_path", "/mode"}
    assert service.post("/api/v1/process", data="[1]").status_code == 400


def test_the_gateway_runs_follows_and_fetches_the_last_file(service):
    answer = service.post("/run", json={"altFileId": "demo", "options": {"metadata": {"userId": "u-7"}}})
    assert answer.status_code == 202, answer.text
    response = answer.json()
    assert response["status"] in ("pending", "running")
    assert set(response) == {"id", "status", "lastFile", "progress", "metadata"}
    service.wait_for(response["id"])
    task = service.get(f"/tasks/{response['id']}").json()
    assert task["status"] == "success"
    assert task["progress"] == 100
    assert task["metadata"]["userId"] == "u-7"
    assert task["metadata"]["altFile"] == "demo.json"
    assert task["metadata"]["startTime"] and task["metadata"]["endTime"]
    last = service.get(f"/files/last/{task['lastFile']}")
    assert last.status_code == 200
    assert last.json()["id"] == task["lastFile"]


def test_the_gateway_names_files_by_id_with_or_without_suffix(service):
    for alt_file_id in ("seg", "seg.alt.yaml", "demo.json"):
        answer = service.post("/run", json={"altFileId": alt_file_id})
        assert answer.status_code == 202, (alt_file_id, answer.text)
    for alt_file_id in ("../secret", "nothing", ".hidden"):
        assert service.post("/run", json={"altFileId": alt_file_id}).status_code in (403, 404), alt_file_id
    assert service.post("/run", json={"altFileId": "escape"}).status_code == 403
    assert service.post("/run", json={}).status_code == 422


def test_the_gateway_cancels_a_task(service):
    task_id = service.post("/run", json={"altFileId": "nap"}).json()["id"]
    service.wait_for(task_id, ("running",))
    answer = service.post(f"/tasks/{task_id}/cancel")
    assert answer.status_code == 202
    service.wait_for(task_id)
    task = service.get(f"/tasks/{task_id}").json()
    assert task["status"] == "cancelled"
    assert task["lastFile"]
    assert service.get(f"/files/last/{task['lastFile']}").status_code == 200


@pytest.mark.parametrize("last_id", ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "00000000-0000-0000-0000-000000000000"])
def test_files_last_answers_404_for_anything_but_a_known_last_id(service, last_id):
    assert service.get(f"/files/last/{last_id}").status_code == 404
    assert service.get("/tasks/unknown").status_code == 404


def test_a_directory_swapped_for_a_symlink_after_the_check_is_still_refused(tmp_path):
    # alt_dir_file resolved the path while `sub` was a directory of --alt-dir; by the time the
    # file is opened, `sub` is a symlink to a directory outside. The opened file is refused.
    from runner.alt_input import AltInputError, read_alt_input
    from runner.service.accepting import alt_dir_file

    alt_dir, outside = tmp_path / "alt", tmp_path / "outside"
    (alt_dir / "sub").mkdir(parents=True)
    outside.mkdir()
    document = json.dumps({"id": "x", "title": "x", "tasks": [{"id": "t", "description": "x"}]}).encode()
    (alt_dir / "sub" / "run.json").write_bytes(document)
    (outside / "run.json").write_bytes(b'{"id": "secret"}')
    (alt_dir / "inner.json").symlink_to(alt_dir / "sub" / "run.json")
    checked = alt_dir_file(alt_dir.resolve(), "sub/run.json")
    assert read_alt_input(str(checked), None, str(alt_dir.resolve())) == document
    assert read_alt_input(str(alt_dir_file(alt_dir.resolve(), "inner.json")), None,
                          str(alt_dir.resolve())) == document
    (alt_dir / "sub").rename(tmp_path / "moved")
    (alt_dir / "sub").symlink_to(outside)
    with pytest.raises(AltInputError) as refused:
        read_alt_input(str(checked), None, str(alt_dir.resolve()))
    assert refused.value.outside
    assert "outside the ALT files directory" in str(refused.value)
