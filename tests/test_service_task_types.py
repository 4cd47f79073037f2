"""Users' task types on a real `python -m runner serve` under uvicorn: a plugin installed into
a directory on the server's PYTHONPATH (its entry point) runs the files that use it, posted
or named in --alt-dir, also on the workers of `serve --dask local:1`; an unknown type is
refused with the normal 422 naming it."""
from __future__ import annotations

import json
import os

import pytest

from runner_service import RunnerService
from task_type_plugin import install_shouting_plugin


def shouting(alt_id: str, task_type: str = "shout", **parameters) -> dict:
    return {"id": alt_id, "title": alt_id, "tasks": [
        {"id": "first", "description": "shout", "parameters": {"task_type": task_type, "text": "hey", **parameters}},
        {"id": "second", "description": "after", "dependencies": ["first"],
         "parameters": {"task_type": task_type, "text": "again"}}]}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("service_types")
    site = install_shouting_plugin(root / "site")
    alt_dir = root / "alt"
    alt_dir.mkdir()
    (alt_dir / "shout.json").write_text(json.dumps(shouting("from_dir", times=3)))
    mark = root / "loaded.txt"
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    server = RunnerService(root / "out", alt_dir, environ={"PYTHONPATH": path,
                                                           "PLUGIN_LOADED_MARK": str(mark)}).start()
    server.mark = mark
    yield server
    server.stop()


def last_of(service, run_id: str) -> dict:
    answer = service.get(f"/api/v1/runs/{run_id}/last")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_posted_file_using_a_plugins_type_runs_it(service):
    answer = service.post("/api/v1/runs", data=json.dumps(shouting("posted", times=2)))
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    view = service.wait_for(run_id)
    assert view["status"] == "success", view
    results = last_of(service, run_id)["task_results"]
    assert results["first"]["output"] == {"text": "HEYHEY"}
    assert results["second"]["output"] == {"text": "AGAIN"}
    assert results["first"]["metadata"]["log"] == ["INFO shouting"]
    assert "loaded" in service.mark.read_text()


def test_a_file_of_the_alt_directory_using_a_plugins_type_runs_it(service):
    answer = service.post("/api/v1/process", json={"file_path": "shout.json"})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["request_id"]
    assert service.wait_for(run_id)["status"] == "success"
    assert last_of(service, run_id)["task_results"]["first"]["output"] == {"text": "HEYHEYHEY"}


def test_an_unknown_type_is_refused_422_naming_it(service):
    answer = service.post("/api/v1/runs", data=json.dumps(shouting("typo", task_type="shuot")))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    paths = {error["path"]: error["message"] for error in body["errors"]}
    assert set(paths) == {"/tasks/0/parameters/task_type", "/tasks/1/parameters/task_type"}
    assert "'shuot'" in paths["/tasks/0/parameters/task_type"]
    assert "did you mean 'shout'?" in paths["/tasks/0/parameters/task_type"]
    assert "is a plugin missing?" in paths["/tasks/0/parameters/task_type"]
    listed = service.get("/api/v1/runs").json()
    assert "typo" not in json.dumps(listed)


def test_a_plugins_parameters_are_checked_422_with_their_pointers(service):
    answer = service.post("/api/v1/runs", data=json.dumps(shouting("bad", times="many")))
    assert answer.status_code == 422, answer.text
    paths = {error["path"]: error["message"] for error in answer.json()["errors"]}
    assert set(paths) == {"/tasks/0/parameters/times"}
    assert "'many' is not of type 'integer'" in paths["/tasks/0/parameters/times"]


def test_serve_with_dask_runs_a_plugins_tasks_on_a_worker(tmp_path):
    site = install_shouting_plugin(tmp_path / "site")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    # The local cluster's worker processes inherit the server's PYTHONPATH: the plugin is
    # installed there too, and the worker loads it by its entry point's name.
    server = RunnerService(tmp_path / "out", environ={"PYTHONPATH": path},
                           extra_args=["--dask", "local:1"]).start(timeout=120)
    try:
        answer = server.post("/api/v1/runs", data=json.dumps(shouting("on_dask", times=2)))
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["id"]
        assert server.wait_for(run_id, timeout=120)["status"] == "success"
        results = last_of(server, run_id)["task_results"]
        assert results["first"]["output"] == {"text": "HEYHEY"}
        assert results["first"]["metadata"]["worker"]["address"].startswith("tcp://127.0.0.1:")
        assert results["second"]["metadata"]["log"] == ["INFO shouting"]
    finally:
        server.stop()
