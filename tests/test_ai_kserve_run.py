"""A run on the kserve provider: the one AI service check before any task (CLI exit 2, C ABI NULL),
`python -m runner run` end to end, the committed stubs, and gRPC staying out of other runs."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kserve_server import KServeServer
from runner.execution import execute
from tests.conftest import dumps, wait_until

REPO = Path(__file__).resolve().parent.parent
PROTO = REPO / "runner" / "ai" / "proto"


def alt_doc(**metadata) -> dict:
    return {"id": "kserve_run", "title": "KServe run", "metadata": metadata, "tasks": [
        {"id": "ask", "description": "Say hello", "timeout_seconds": 20, "parameters": {"task_type": "ai_prompt"}},
        {"id": "improve", "description": "Improve: {{ deps.ask.output.text }}", "dependencies": ["ask"],
         "parameters": {"task_type": "ai_prompt", "model": "plain"}},
        {"id": "note", "description": "not AI", "parameters": {"task_type": "generic"}}]}


def cli(tmp_path, doc, env, *options):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(doc))
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_AI_")}
    return subprocess.run([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"),
                           "--quiet", *options], capture_output=True, text=True, timeout=120,
                          env={**environ, **env})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inference_calls(server) -> list:
    return [s for s in server.seen if s.method in ("ModelInfer", "ModelStreamInfer")]


def test_the_cli_gets_its_answers_from_the_kserve_server(tmp_path):
    with KServeServer() as server:
        done = cli(tmp_path, alt_doc(), {"RUNNER_AI_PROVIDER": "kserve", "RUNNER_AI_SERVICE_URL": server.url,
                                          "RUNNER_AI_MODEL": "vllm"}, "--stream")
    assert done.returncode == 0, done.stderr
    record = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "last.json").read_text())
    results = record["task_results"]
    assert results["ask"]["output"] == {"text": "reply to: Say hello", "model": "vllm", "provider": "kserve"}
    assert results["improve"]["output"]["text"] == "reply to: Improve: reply to: Say hello"
    assert results["ask"]["metadata"]["ai"]["time_to_first_token_ms"] is not None
    assert [s.method for s in inference_calls(server)] == ["ModelStreamInfer", "ModelStreamInfer"]


def test_sigterm_stops_the_cli_run_and_the_server_sees_its_call_cancelled(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(alt_doc()))
    with KServeServer(delay=60) as server:
        environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_AI_")}
        run = subprocess.Popen([sys.executable, "-m", "runner", "run", str(path), "--out", str(tmp_path / "out"),
                                "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**environ, "RUNNER_AI_SERVICE_URL": server.url, "RUNNER_AI_MODEL": "vllm",
                                    "RUNNER_GRACE_SECONDS": "0.2"})
        try:
            assert wait_until(lambda: len(inference_calls(server)) == 1, 30)
            run.send_signal(signal.SIGTERM)
            _, stderr = run.communicate(timeout=30)
        finally:
            run.kill()
        assert server.cancel_seen.wait(5), "the server never saw the call cancelled"
    assert run.returncode == 143, stderr
    record = json.loads((tmp_path / "out").glob("*/last.json").__next__().read_text())
    assert record["task_results"]["ask"]["status"] == "cancelled"


def test_an_unknown_model_is_one_error_before_any_task_and_exit_2(tmp_path):
    with KServeServer() as server:
        done = cli(tmp_path, alt_doc(model="no-such-model"), {"RUNNER_AI_SERVICE_URL": server.url})
        assert not inference_calls(server)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration: AI service check: ")
    assert "model 'no-such-model' is not ready" in lines[0] and server.url in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_server_that_is_down_is_one_error_before_any_task_and_exit_2(tmp_path):
    url = f"grpc://127.0.0.1:{free_port()}"
    done = cli(tmp_path, alt_doc(), {"RUNNER_AI_SERVICE_URL": url, "RUNNER_AI_MODEL": "vllm"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{url} ServerReady: UNAVAILABLE" in lines[0]


def test_a_task_without_a_model_is_a_configuration_error_naming_it(tmp_path):
    with KServeServer() as server:
        done = cli(tmp_path, alt_doc(), {"RUNNER_AI_SERVICE_URL": server.url})
    assert done.returncode == 2
    assert "task 'ask': AI provider 'kserve' has no default model" in done.stderr


def test_a_server_that_is_not_ready_is_refused(tmp_path):
    with KServeServer() as server:
        server.ready = False
        with pytest.raises(Exception, match="ServerReady: the inference server is not ready") as caught:
            execute(alt_doc(), tmp_path, environ={"RUNNER_AI_SERVICE_URL": server.url, "RUNNER_AI_MODEL": "vllm"})
    assert type(caught.value).__name__ == "ConfigurationError"


def test_the_c_abi_returns_null_with_the_message_when_the_service_is_down(runner, tmp_path, monkeypatch):
    url = f"grpc://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RUNNER_AI_SERVICE_URL", url)
    monkeypatch.setenv("RUNNER_AI_MODEL", "vllm")
    runner.lib.runner_execute_alt_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    runner.lib.runner_execute_alt_file.restype = ctypes.c_void_p
    assert runner.runner_parse_alt_file(dumps(alt_doc())) == 1
    assert runner.lib.runner_execute_alt_file(b"kserve_run", str(tmp_path).encode()) is None
    message = runner.last_error()
    assert message.startswith("runner_execute_alt_file: ") and f"{url} ServerReady: UNAVAILABLE" in message
    assert not any(tmp_path.iterdir())


def test_a_kserve_run_without_grpcio_says_what_to_install(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps(alt_doc()))
    blocked = ("import sys; sys.modules['grpc'] = None; from runner.cli import main; "
               f"sys.exit(main(['run', {str(path)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet']))")
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RUNNER_AI_SERVICE_URL": "grpc://127.0.0.1:1", "RUNNER_AI_MODEL": "m"})
    assert done.returncode == 2
    assert "RUNNER_AI_PROVIDER='kserve' needs the grpcio and protobuf packages" in done.stderr
    assert "pip install 'librunner[grpc]'" in done.stderr


def test_runs_without_the_kserve_provider_never_import_grpc(tmp_path):
    probe = ("import sys, json; from runner.execution import execute; "
             f"doc = json.loads(open({str(tmp_path / 'alt.json')!r}).read()); "
             "execute(doc, None, write=False, environ={}); "
             "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf'))))")
    (tmp_path / "alt.json").write_text(json.dumps(alt_doc()))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("RUNNER_AI_")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["grpc_service", "rpc_status"])
def test_the_committed_stubs_are_those_the_proto_files_generate(tmp_path, name):
    import grpc_tools
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    out = tmp_path / "set.pb"
    assert protoc.main(["protoc", f"-I{REPO}", f"-I{include}", f"--descriptor_set_out={out}",
                        str(PROTO / f"{name}.proto")]) == 0
    generated = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    module = __import__(f"runner.ai.proto.{name}_pb2", fromlist=["DESCRIPTOR"])
    committed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    for message in _messages(generated.message_type):   # protoc adds JSON names; the Python stubs leave them out
        for one in message.field:
            one.ClearField("json_name")
    assert committed == generated, f"runner/ai/proto/{name}_pb2.py is stale: run `make proto`"


def _messages(messages):
    for message in messages:
        yield message
        yield from _messages(message.nested_type)
