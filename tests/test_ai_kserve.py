"""The kserve provider against a real KServe v2 gRPC server on 127.0.0.1 (tests/kserve_server.py)."""
from __future__ import annotations

import json
import logging
import subprocess
import threading

import grpc
import pytest

from kserve_server import IMAGES, PLAIN, TRTLLM, UNDECLARED, VLLM, Abort, KServeServer
from runner.ai import AIClient, AIServiceError, AISettings as AIConfig
from runner.execution import cancel_active_runs, execute
from tests.conftest import wait_until

KEY = "sk-KSERVE-LEAKCHECK-77a1"
Code = grpc.StatusCode
FAST_RETRIES = {"RUNNER_RETRY_BASE_SECONDS": "0", "RUNNER_RETRY_MAX_SECONDS": "0"}


@pytest.fixture
def server():
    with KServeServer() as running:
        yield running


def inference_calls(server) -> int:
    return sum(seen.method in ("ModelInfer", "ModelStreamInfer") for seen in server.seen)


def client_for(server, **options) -> AIClient:
    return AIClient(AIConfig(provider="kserve", base_url=server.url, model=options.pop("model", "vllm"), **options))


@pytest.fixture
def client(server):
    with client_for(server) as made:
        yield made


def ai_tasks(count: int = 1, **parameters) -> dict:
    return {"id": "kserve_demo", "title": "KServe demo", "tasks": [
        {"id": f"ask{i}", "description": f"Say hello {i}", "retry_count": 2,
         "parameters": {"task_type": "ai_prompt", **parameters}} for i in range(count)]}


def environ_for(server, **extra) -> dict:
    return {"RUNNER_AI_PROVIDER": "kserve", "RUNNER_AI_SERVICE_URL": server.url, "RUNNER_AI_MODEL": "vllm",
            **FAST_RETRIES, **extra}


# -- calls ---------------------------------------------------------------------------------


def test_a_unary_call_sends_only_declared_inputs_and_reads_the_servers_token_counts(server, client):
    answer = client.complete("hello world", sampling={"temperature": 0.5, "max_tokens": 5, "stop": ["\n"]})
    assert (answer.text, answer.model, answer.provider) == ("reply to: hello world", "vllm", "kserve")
    # The server counts prompt pieces + 100 and answer pieces + 200, so these came from it.
    assert (answer.prompt_tokens, answer.completion_tokens) == (102, 204)
    assert answer.time_to_first_token_ms is None
    inputs = server.inputs_of()
    assert set(inputs) == {name for name, _, _ in VLLM.inputs}
    assert inputs["text_input"] == ("BYTES", [1], b"hello world")
    assert inputs["sampling_parameters"][2] == {"temperature": 0.5, "max_tokens": 5, "stop": ["\n"]}
    assert inputs["stream"][2] is False and inputs["exclude_input_in_output"][2] is True
    assert server.seen[1].request.model_name == "vllm"


def test_a_model_declaring_only_text_input_gets_only_text_input_and_raw_output_is_read(server, client):
    answer = client.complete("one two three", model="plain", sampling={"temperature": 0.1, "max_tokens": 3})
    assert answer.text == "reply to: one two three"
    assert set(server.inputs_of()) == {"text_input"}      # the strict server would refuse any other
    # No counts from this server: the whitespace pieces are counted instead.
    assert (answer.prompt_tokens, answer.completion_tokens) == (3, 5)


def test_a_model_declaring_no_inputs_gets_the_conventional_text_input_and_its_text_output_is_read():
    """MLServer-style metadata: a model whose settings list no inputs or outputs declares none,
    and takes any input; it gets text_input (BYTES, [1]) and answers in text_output."""
    with KServeServer(models=(UNDECLARED, IMAGES)) as server:
        with client_for(server, model="custom") as client:
            answer = client.complete("hello there", sampling={"temperature": 0.2, "max_tokens": 4})
        assert answer.text == "reply to: hello there"
        assert server.inputs_of() == {"text_input": ("BYTES", [1], b"hello there")}
        with client_for(server, model="resnet") as client:
            with pytest.raises(AIServiceError, match="not a text-generation model"):
                client.complete("hello")      # declared inputs: today's checks stand


def test_sampling_goes_to_inputs_of_its_own_in_the_declared_type_and_rank(server, client):
    client.complete("hi", model="ensemble", sampling={"max_tokens": 7, "temperature": 0.25, "seed": 9, "top_p": 0.5})
    inputs = server.inputs_of()
    assert set(inputs) == {"text_input", "max_tokens", "temperature", "random_seed", "stream"}
    assert inputs["text_input"] == ("BYTES", [1, 1], b"hi")
    assert inputs["max_tokens"] == ("INT32", [1, 1], 7)
    assert inputs["temperature"] == ("FP32", [1, 1], 0.25)
    assert inputs["random_seed"] == ("UINT64", [1, 1], 9)


def test_model_metadata_is_read_once_per_model_for_many_concurrent_calls(server, client):
    threads = [threading.Thread(target=client.complete, args=(f"p{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.complete("other", model="plain")
    assert server.metadata_calls == 2
    assert len([s for s in server.seen if s.method == "ModelInfer"]) == 13


def test_a_streamed_answer_hands_each_piece_to_on_text_and_records_time_to_first_token(server, client):
    pieces = []
    answer = client.complete("stream me", stream=True, on_text=pieces.append)
    assert pieces == ["reply ", "to: ", "stream ", "me"]
    assert answer.text == "reply to: stream me"
    assert answer.time_to_first_token_ms is not None and answer.time_to_first_token_ms <= answer.latency_ms
    # Each response carried the server's count of its own tokens: 200 + its pieces, summed.
    assert answer.completion_tokens == sum(200 + 1 for _ in pieces)
    stream_calls = [s for s in server.seen if s.method == "ModelStreamInfer"]
    assert len(stream_calls) == 1
    assert server.inputs_of()["stream"][2] is True
    assert stream_calls[0].request.parameters["triton_enable_empty_final_response"].bool_param is True


def test_without_token_counts_a_stream_counts_its_pieces(server, client):
    answer = client.complete("a b", model="plain", stream=True, on_text=lambda _: None)
    assert answer.text == "reply to: a b" and answer.completion_tokens == 4


def test_a_server_without_model_stream_infer_falls_back_to_unary_once_with_a_log_line(caplog):
    with KServeServer(streaming=False) as server, client_for(server) as client:
        pieces = []
        with caplog.at_level(logging.WARNING, logger="runner.ai"):
            first = client.complete("one", stream=True, on_text=pieces.append)
            second = client.complete("two", stream=True, on_text=pieces.append)
    assert (first.text, second.text) == ("reply to: one", "reply to: two")
    assert pieces == ["reply to: one", "reply to: two"]
    assert [s.method for s in server.seen if s.method != "ModelMetadata"] == ["ModelInfer", "ModelInfer"]
    warnings = [r.getMessage() for r in caplog.records if "UNIMPLEMENTED" in r.getMessage()]
    assert len(warnings) == 1 and "unary ModelInfer" in warnings[0]


def test_the_in_flight_limit_holds_over_grpc(server):
    server.delay = 0.1
    with client_for(server, max_concurrency=2) as client:
        threads = [threading.Thread(target=client.complete, args=(f"p{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.most_in_flight == 2


# -- keys, status codes, retries -----------------------------------------------------------


def test_the_key_goes_as_bearer_metadata_and_never_into_errors():
    with KServeServer(key=KEY) as server:
        with client_for(server, api_key=KEY) as client:
            assert client.complete("hi").text == "reply to: hi"
            assert server.seen[-1].metadata["authorization"] == f"Bearer {KEY}"
            server.plan(Abort(Code.PERMISSION_DENIED, f"key {KEY} may not use this model"))
            with pytest.raises(AIServiceError) as caught:
                client.complete("hi")
        assert KEY not in str(caught.value) and "key [redacted] may not use" in str(caught.value)
        with client_for(server, api_key="sk-wrong") as client, pytest.raises(AIServiceError) as caught:
            client.complete("hi")
        assert caught.value.code == "UNAUTHENTICATED" and not caught.value.retryable


@pytest.mark.parametrize("code, retryable", [
    (Code.UNAVAILABLE, True), (Code.RESOURCE_EXHAUSTED, True), (Code.ABORTED, True),
    (Code.DEADLINE_EXCEEDED, True), (Code.INTERNAL, True),
    (Code.INVALID_ARGUMENT, False), (Code.NOT_FOUND, False), (Code.UNIMPLEMENTED, False),
    (Code.UNAUTHENTICATED, False), (Code.PERMISSION_DENIED, False), (Code.FAILED_PRECONDITION, False),
])
def test_each_status_code_says_whether_another_attempt_can_help(server, client, code, retryable):
    client.complete("warm up")      # metadata read: the planned failure hits ModelInfer
    server.plan(Abort(code, f"the server says {code.name.lower()}"))
    with pytest.raises(AIServiceError) as caught:
        client.complete("hi", timeout=30)
    error = caught.value
    assert (error.kind, error.code, error.retryable) == ("grpc", code.name, retryable)
    assert f"{server.url} ModelInfer: {code.name}: " in str(error)
    assert f"the server says {code.name.lower()}" in str(error)


def test_an_answer_over_the_size_limit_is_refused_and_not_retried(server, monkeypatch):
    monkeypatch.setattr("runner.ai.completion.MAX_ANSWER_BYTES", 2000)
    prompt = "word " * 500
    with client_for(server) as client:
        with pytest.raises(AIServiceError) as caught:
            client.complete(prompt)
        assert (caught.value.code, caught.value.retryable) == ("RESOURCE_EXHAUSTED", False)
        assert "larger than max" in str(caught.value)
        with pytest.raises(AIServiceError) as caught:
            client.complete(prompt, stream=True, on_text=lambda _: None)
        assert (caught.value.kind, caught.value.retryable) == ("protocol", False)
        assert "the stream is larger than 2000 bytes" in str(caught.value)


def test_an_unknown_model_is_named(server, client):
    with pytest.raises(AIServiceError) as caught:
        client.complete("hi", model="no-such-model")
    assert caught.value.code == "NOT_FOUND" and not caught.value.retryable
    assert "model 'no-such-model'" in str(caught.value)


def test_a_model_that_is_not_a_text_model_is_refused_before_any_inference(server, client):
    with pytest.raises(AIServiceError, match="model 'resnet' is not a text-generation model"):
        client.complete("hi", model="resnet")
    assert not [s for s in server.seen if s.method == "ModelInfer"]


def test_resource_exhausted_carries_the_servers_retry_delay(server, client):
    client.complete("warm up")
    server.plan(Abort(Code.RESOURCE_EXHAUSTED, "slow down", retry_delay=1.5),
                Abort(Code.RESOURCE_EXHAUSTED, "slow down", trailers=(("retry-after-ms", "250"),)))
    for expected in (1.5, 0.25):
        with pytest.raises(AIServiceError) as caught:
            client.complete("hi")
        assert caught.value.retryable and caught.value.retry_after == pytest.approx(expected)


def test_the_executor_retries_retryable_codes_and_stops_at_permanent_ones(server, tmp_path):
    server.plan(Abort(Code.UNAVAILABLE, "restarting"), Abort(Code.ABORTED, "conflict"))
    outcome = execute(ai_tasks(), tmp_path, environ=environ_for(server))
    ask = outcome.results["ask0"]
    assert ask.status == "completed" and ask.output["provider"] == "kserve"
    assert [a["outcome"] for a in ask.metadata["attempts"]] == ["failed", "failed", "completed"]
    assert "UNAVAILABLE: restarting" in ask.metadata["attempts"][0]["error"]
    assert ask.metadata["ai"]["prompt_tokens"] == 103 and ask.metadata["ai"]["provider"] == "kserve"

    server.plan(Abort(Code.INVALID_ARGUMENT, "bad tensor"))
    outcome = execute(ai_tasks(), tmp_path, environ=environ_for(server))
    ask = outcome.results["ask0"]
    assert ask.status == "failed" and len(ask.metadata["attempts"]) == 1
    assert "INVALID_ARGUMENT: bad tensor" in ask.error


def test_explore_mode_sends_each_samples_sampling_and_records_the_alternatives(server, tmp_path):
    outcome = execute(ai_tasks(explore_samples=2), tmp_path, mode="explore", environ=environ_for(server))
    ai = outcome.results["ask0"].metadata["ai"]
    assert [alternative["sampling"] for alternative in ai["alternatives"]] == [{"temperature": 0.7},
                                                                               {"temperature": 0.9}]
    assert [server.inputs_of(n)["sampling_parameters"][2] for n in (-2, -1)] == [{"temperature": 0.7},
                                                                                 {"temperature": 0.9}]
    assert all(alternative["provider"] == "kserve" for alternative in ai["alternatives"])


# -- deadlines and cancellation ------------------------------------------------------------


def test_a_slow_model_is_cut_by_the_task_timeout_and_the_server_sees_the_cancellation(server, tmp_path):
    server.delay = 30
    alt = {"id": "slow", "title": "slow", "tasks": [
        {"id": "ask", "description": "take your time", "timeout_seconds": 0.5,
         "parameters": {"task_type": "ai_prompt"}}]}
    outcome = execute(alt, tmp_path, environ=environ_for(server))
    ask = outcome.results["ask"]
    assert ask.status == "timeout" and "timed out after 0.5 s" in ask.error
    assert server.cancel_seen.wait(5), "the server never saw the call cancelled"


def test_an_interrupted_run_cancels_its_calls_after_the_grace_period(server, tmp_path):
    server.delay = 30
    outcome = {}
    environ = {**environ_for(server), "RUNNER_GRACE_SECONDS": "0.2"}
    runner = threading.Thread(target=lambda: outcome.update(result=execute(ai_tasks(), tmp_path, environ=environ)))
    runner.start()
    assert wait_until(lambda: inference_calls(server) == 1, 10)
    assert cancel_active_runs() == 1        # what runner_cleanup does
    runner.join(10)
    assert outcome["result"].interrupted and outcome["result"].results["ask0"].status == "cancelled"
    assert server.cancel_seen.wait(5)


def test_the_grpc_deadline_is_the_calls_remaining_time(server, client):
    server.plan(5.0)
    with pytest.raises(AIServiceError) as caught:
        client.complete("hi", timeout=0.4)
    assert caught.value.kind == "deadline" and caught.value.retryable
    assert server.cancel_seen.wait(5)


def test_a_cancel_event_cancels_a_streamed_call_at_once(server, client):
    cancel = threading.Event()
    server.plan(30.0)
    pieces = []

    def first_piece(piece):
        pieces.append(piece)
        cancel.set()
    with pytest.raises(AIServiceError) as caught:
        client.complete("hi", stream=True, on_text=first_piece, cancel=cancel, timeout=60)
    assert caught.value.kind == "cancelled" and pieces == ["reply "]
    assert server.cancel_seen.wait(5)


def test_closing_the_client_cancels_calls_in_flight(server):
    client = client_for(server)
    client.complete("warm up")
    server.plan(30.0)
    failures = []

    def call():
        try:
            client.complete("hi", timeout=60)
        except AIServiceError as error:
            failures.append(error)
    thread = threading.Thread(target=call)
    thread.start()
    assert wait_until(lambda: inference_calls(server) == 2, 10)
    client.close()
    thread.join(5)
    assert not thread.is_alive() and failures[0].kind == "closed"
    assert server.cancel_seen.wait(5)


def test_a_server_going_away_mid_run_fails_the_attempt_as_unavailable_and_the_retry_reaches_its_successor(tmp_path):
    first = KServeServer(delay=30).__enter__()
    port = first.port
    alt = ai_tasks()
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(
        result=execute(alt, tmp_path, environ={**environ_for(first), "RUNNER_RETRY_BASE_SECONDS": "0.3",
                                               "RUNNER_RETRY_MAX_SECONDS": "0.3"})))
    runner.start()
    try:
        assert wait_until(lambda: inference_calls(first) == 1, 10)
        first.stop(0)
        with KServeServer(port=port) as second:
            runner.join(20)
            assert not runner.is_alive()
            assert [s.method for s in second.seen if s.method != "ModelMetadata"] == ["ModelInfer"]
    finally:
        first.stop(0)
    ask = outcome["result"].results["ask0"]
    assert ask.status == "completed", ask.metadata["attempts"]
    attempts = ask.metadata["attempts"]
    assert attempts[-1]["outcome"] == "completed"
    assert all("UNAVAILABLE" in a["error"] for a in attempts[:-1]) and len(attempts) >= 2


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    where = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(where / "key.pem"), "-out", str(where / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return where / "cert.pem", where / "key.pem"


def test_tls_with_a_self_signed_certificate_verified_by_the_ca_file(certificate):
    cert, key = certificate
    with KServeServer(tls=(cert.read_bytes(), key.read_bytes()), key=KEY) as server:
        assert server.url.startswith("grpcs://")
        with client_for(server, ca_file=str(cert), api_key=KEY) as client:
            client.check_ready(["vllm"], timeout=5)
            assert client.complete("secure").text == "reply to: secure"
        # Without the CA file the system's CAs do not know this certificate: no call gets through.
        with client_for(server) as client, pytest.raises(AIServiceError) as caught:
            client.complete("secure", timeout=5)
        assert caught.value.code == "UNAVAILABLE"
        assert len([s for s in server.seen if s.method == "ModelInfer"]) == 1
