"""The AI client against a real OpenAI- and Anthropic-compatible server on 127.0.0.1."""
from __future__ import annotations

import logging
import socket
import threading
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

from ai_server import AIServer, CutStream, Raw, Redirect, Reply, Slow, SlowStream, Status, StreamError
from runner.ai import AIClient, AIServiceError, AISettings as AIConfig

KEY = "sk-LEAKCHECK-7f3a9c1e5b"


@pytest.fixture
def server():
    with AIServer() as running:
        yield running


def make_client(server, provider="openai", **settings) -> AIClient:
    settings.setdefault("api_key", KEY)
    return AIClient(AIConfig(provider=provider, base_url=server.base_url, **settings))


@pytest.fixture
def client(server):
    with make_client(server) as made:
        yield made


@pytest.fixture
def anthropic_client(server):
    with make_client(server, provider="anthropic", model="claude-test") as made:
        yield made


def fail(call) -> AIServiceError:
    with pytest.raises(AIServiceError) as caught:
        call()
    return caught.value


# -- OpenAI-compatible -----------------------------------------------------------------------

def test_plain_completion_carries_text_model_tokens_and_latency(server, client):
    answer = client.complete("count these four words", model="gpt-test",
                             sampling={"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "seed": 7,
                                       "top_k": 40, "stop": "END"})
    assert answer.text == "reply to: count these four words"
    assert (answer.model, answer.provider) == ("gpt-test", "openai")
    assert (answer.prompt_tokens, answer.completion_tokens) == (4, 6)
    assert answer.latency_ms > 0 and answer.time_to_first_token_ms is None
    request = server.seen[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["messages"] == [{"role": "user", "content": "count these four words"}]
    assert {k: request.body[k] for k in ("temperature", "top_p", "max_tokens", "seed", "top_k", "stop")} == \
        {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "seed": 7, "top_k": 40, "stop": ["END"]}
    assert "stream" not in request.body


def test_the_default_model_is_the_configured_one(server):
    with make_client(server, model="configured-model") as client:
        assert client.complete("hi").model == "configured-model"
    with make_client(server) as client:
        assert client.complete("hi").model == "gpt-4o-mini"
    assert [seen.body["model"] for seen in server.seen] == ["configured-model", "gpt-4o-mini"]


def test_streamed_completion_sends_each_piece_and_records_first_token(server, client):
    pieces = []
    answer = client.complete("stream me please", stream=True, on_text=pieces.append)
    assert pieces == ["reply ", "to: ", "stream ", "me ", "please"]
    assert answer.text == "".join(pieces) == "reply to: stream me please"
    assert (answer.prompt_tokens, answer.completion_tokens) == (3, 5)
    assert 0 < answer.time_to_first_token_ms <= answer.latency_ms
    assert server.seen[-1].body["stream"] is True
    assert server.seen[-1].body["stream_options"] == {"include_usage": True}


def test_a_stream_without_usage_leaves_tokens_unknown(server, client):
    server.plan(Reply(usage=False))
    answer = client.complete("a b", stream=True)
    assert answer.text == "reply to: a b"
    assert answer.prompt_tokens is None and answer.completion_tokens is None


def test_a_slowly_streamed_answer_arrives_piece_by_piece(server, client):
    server.plan(SlowStream(interval=0.02))
    pieces = []
    answer = client.complete("one two three", stream=True, on_text=pieces.append)
    assert pieces == ["reply ", "to: ", "one ", "two ", "three"]
    assert answer.text == "reply to: one two three"


@pytest.mark.parametrize("stream", [False, True])
def test_a_gzipped_answer_is_decoded(server, client, stream):
    server.plan(Reply(gzip=True))
    pieces = []
    answer = client.complete("squeeze this", stream=stream, on_text=pieces.append)
    assert answer.text == "".join(pieces) == "reply to: squeeze this"
    assert client.complete("and again").text == "reply to: and again"


def test_non_streamed_answer_goes_to_on_text_once(client):
    pieces = []
    answer = client.complete("whole", on_text=pieces.append)
    assert pieces == [answer.text]


@pytest.mark.parametrize("stream", [False, True])
def test_an_error_in_on_text_is_the_callers_not_a_broken_stream(server, client, stream):
    def closed_stdout(piece):
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        client.complete("hello", stream=stream, on_text=closed_stdout)
    assert client.complete("hello").text == "reply to: hello"


def test_429_with_retry_after_seconds_is_retryable_then_succeeds(server, client):
    server.plan(Status(429, "Rate limit reached for requests", {"Retry-After": "3"}))
    error = fail(lambda: client.complete("hello"))
    assert error.retryable and error.kind == "http" and error.status == 429
    assert error.retry_after == 3.0
    assert "Rate limit reached for requests" in str(error)
    assert client.complete("hello").text == "reply to: hello"


def test_retry_after_as_an_http_date(server, client):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    server.plan(Status(429, "busy", {"Retry-After": format_datetime(when, usegmt=True)}))
    error = fail(lambda: client.complete("hello"))
    assert 25 <= error.retry_after <= 31


def test_500_is_retryable_then_succeeds(server, client):
    server.plan(Status(500, "The server had an error while processing your request"))
    error = fail(lambda: client.complete("hello"))
    assert error.retryable and error.status == 500 and error.retry_after is None
    assert "HTTP 500: The server had an error while processing your request" in str(error)
    assert client.complete("hello").text == "reply to: hello"


def test_other_4xx_fail_at_once_with_the_servers_message(server, client):
    server.plan(Status(400, "This model's maximum context length is 8192 tokens"))
    error = fail(lambda: client.complete("hello"))
    assert not error.retryable and error.status == 400
    assert "This model's maximum context length is 8192 tokens" in str(error)


def test_a_server_slower_than_the_read_timeout_is_a_retryable_timeout(server):
    server.plan(Slow(5))
    with make_client(server, read_timeout=0.2) as client:
        error = fail(lambda: client.complete("hello"))
        assert error.retryable and error.kind == "timeout"
        assert "read timeout" in str(error)
        assert client.complete("again").text == "reply to: again"


def test_a_stream_cut_before_its_end_is_retryable(server, client):
    server.plan(CutStream(pieces=2))
    pieces = []
    error = fail(lambda: client.complete("one two three", stream=True, on_text=pieces.append))
    assert error.retryable and error.kind == "stream"
    assert pieces == ["reply ", "to: "]
    assert client.complete("one two three", stream=True).text == "reply to: one two three"


def test_a_stream_that_ends_cleanly_without_its_final_event_is_retryable(server, client):
    server.plan(CutStream(pieces=3, close=False))
    error = fail(lambda: client.complete("one two three", stream=True))
    assert error.retryable and error.kind == "stream"
    assert "without its final event ('[DONE]')" in str(error)


@pytest.mark.parametrize("provider, path", [("openai", "/chat/completions"), ("anthropic", "/messages")])
@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_is_a_permanent_protocol_error(server, provider, path, code):
    # 307/308 keep the method, the body and (to requests) the x-api-key header: following
    # one would hand the key to whatever host the service names.
    with AIServer() as elsewhere, make_client(server, provider=provider) as client:
        location = f"http://user:hunter2@localhost:{elsewhere.base_url.rsplit(':', 1)[1]}{path}"
        server.plan(Redirect(location, code))
        error = fail(lambda: client.complete("hello", stream=provider == "anthropic"))
        assert elsewhere.seen == []
    assert not error.retryable and error.kind == "protocol" and error.status == code
    assert f"HTTP {code}" in str(error) and "redirect" in str(error)
    assert "hunter2" not in str(error) and "localhost" not in str(error) and KEY not in str(error)
    assert len(server.seen) == 1


def test_the_key_is_scrubbed_from_errors_in_its_escaped_form_too(server):
    # A message quoting the header with %r shows a backslash in the key doubled.
    key = "sk-BACK\\SLASH-4e1d"
    server.plan(Status(400, f"invalid header value {'Bearer ' + key!r}"))
    with make_client(server, api_key=key) as client:
        error = fail(lambda: client.complete("hello"))
    assert error.status == 400 and "invalid header value 'Bearer [redacted]'" in str(error)
    assert "SLASH" not in str(error)


@pytest.mark.parametrize("provider, sampling, expected", [
    # OpenAI-compatible: temperature 0..2, top_p alongside is fine.
    ("openai", {"temperature": 1.2, "top_p": 0.95}, {"temperature": 1.2, "top_p": 0.95}),
    ("openai", {"temperature": 2.5, "top_p": 0.95, "seed": 3}, {"temperature": 2.0, "top_p": 0.95, "seed": 3}),
    # Anthropic: temperature 0..1 and never together with top_p; no seed in its API.
    ("anthropic", {"temperature": 1.2, "top_p": 0.95, "seed": 3}, {"temperature": 1.0, "max_tokens": 1024}),
    ("anthropic", {"temperature": 0.3, "top_p": 0.5, "top_k": 5}, {"temperature": 0.3, "top_k": 5, "max_tokens": 1024}),
    ("anthropic", {"top_p": 0.5, "max_tokens": 9}, {"top_p": 0.5, "max_tokens": 9}),
])
def test_sampling_is_sent_within_what_the_provider_accepts(server, provider, sampling, expected):
    from runner.ai import sent_sampling

    with make_client(server, provider=provider) as client:
        client.complete("hello", sampling=sampling)
    body = server.seen[-1].body
    sent = {name: body[name] for name in ("temperature", "top_p", "top_k", "seed", "max_tokens") if name in body}
    assert sent == expected
    assert sent_sampling(provider, sampling) == expected


def test_connection_refused_is_a_retryable_connect_error():
    # The port stays bound (so nothing else can take it) but never listens: the kernel
    # refuses every connection to it.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with AIClient(AIConfig(provider="openai", base_url=f"http://127.0.0.1:{port}/v1")) as client:
            error = fail(lambda: client.complete("hello"))
    assert error.retryable and error.kind == "connect"
    assert "Connection refused" in str(error)


@pytest.fixture
def unanswered_port():
    """A port whose listener never accepts: once its backlog is full, the kernel drops new SYNs,
    so connecting to it hangs until the connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.settimeout(0.2)
                fillers.append(filler)
                try:
                    filler.connect(("127.0.0.1", port))
                except OSError:
                    break           # the backlog is full
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_a_connect_timeout_is_told_apart_from_a_read_timeout(unanswered_port):
    config = AIConfig(provider="openai", base_url=f"http://127.0.0.1:{unanswered_port}/v1", connect_timeout=0.2)
    with AIClient(config) as client:
        error = fail(lambda: client.complete("hello"))
    assert error.retryable and error.kind == "connect"
    assert "could not connect within 0.2 s" in str(error)


def test_the_call_timeout_bounds_a_connect_in_progress(unanswered_port):
    config = AIConfig(provider="openai", base_url=f"http://127.0.0.1:{unanswered_port}/v1", connect_timeout=60)
    with AIClient(config) as client:
        error = fail(lambda: client.complete("hello", timeout=0.3))
    assert error.kind == "deadline" and error.retryable


def test_the_environments_proxy_is_used(server, monkeypatch):
    # The loopback server stands in for the proxy: it is asked for the absolute URL.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    with AIClient(AIConfig(provider="openai", base_url="http://ai-service.invalid/v1")) as client:
        assert client.complete("via proxy").text == "reply to: via proxy"
    assert server.seen[-1].path == "http://ai-service.invalid/v1/chat/completions"


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not JSON"),
    (b'{"choices": []}', "choices[0].message.content"),
    (b'{"choices": [{"message": {"content": 5}}]}', "expected a string"),
])
def test_a_malformed_answer_is_a_protocol_error(server, client, body, reason):
    server.plan(Raw(body))
    error = fail(lambda: client.complete("hello"))
    assert not error.retryable and error.kind == "protocol"
    assert reason in str(error)


def test_invalid_utf8_in_a_stream_is_a_protocol_error(server, client):
    server.plan(Raw(b"data: \xff\xfe\n\n", content_type="text/event-stream"))
    error = fail(lambda: client.complete("hello", stream=True))
    assert error.kind == "protocol" and "not UTF-8" in str(error)


def test_connections_are_kept_alive_and_reused(server, client):
    for n in range(10):
        client.complete(f"request {n}")
    assert server.connections == 1


# -- limits ----------------------------------------------------------------------------------

def run_together(client, count: int, **call) -> list:
    results = [None] * count

    def one(index):
        try:
            results[index] = client.complete(f"prompt {index}", **call)
        except Exception as error:      # reported through the results, asserted by the test
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_in_flight_limit_holds_as_counted_by_the_server():
    with AIServer(delay=0.05) as server, make_client(server, max_concurrency=3) as client:
        results = run_together(client, 24)
        assert [r.text for r in results] == [f"reply to: prompt {i}" for i in range(24)]
        assert 2 <= server.max_in_flight <= 3


def test_without_a_tight_limit_the_server_sees_more_at_once():
    # The control for the test above: the server's count does see concurrency.
    with AIServer(delay=0.2) as server, make_client(server, max_concurrency=16) as client:
        run_together(client, 16)
        assert server.max_in_flight > 3


def test_the_requests_per_minute_limit_holds_back_the_next_request(server):
    with make_client(server, requests_per_minute=1) as client:
        client.complete("first")
        error = fail(lambda: client.complete("second", timeout=0.2))
    assert error.kind == "deadline" and "waiting for an AI request slot" in str(error)
    assert len(server.seen) == 1


def test_the_tokens_per_minute_limit_charges_real_usage(server):
    with make_client(server, tokens_per_minute=50) as client:
        # Estimated at a few tokens, the answer reports 60 used: the minute's allowance is spent.
        server.plan(Reply(text="word " * 59 + "word"))
        assert client.complete("short").completion_tokens == 60
        error = fail(lambda: client.complete("next", timeout=0.2))
    assert error.kind == "deadline"
    assert len(server.seen) == 1


def test_a_large_prompt_and_answer(server, client):
    prompt = "lorem ipsum " * 400_000         # 4.8 MB
    answer = client.complete(prompt)
    assert answer.text == "reply to: " + prompt and answer.prompt_tokens == 800_000


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_beyond_the_size_cap_is_refused(server, client, monkeypatch, stream):
    monkeypatch.setattr("runner.ai.http_transport.MAX_ANSWER_BYTES", 2000)
    error = fail(lambda: client.complete("x " * 2000, stream=stream))
    assert error.kind == "protocol" and "larger than 2000 bytes" in str(error)


def test_many_threads_share_one_client(server, client):
    results = run_together(client, 40, stream=True)
    assert [r.text for r in results] == [f"reply to: prompt {i}" for i in range(40)]
    # The in-flight limit bounds the connections too: the pool reuses them.
    assert server.connections <= client.config.max_concurrency


# -- cancellation ----------------------------------------------------------------------------

def test_cancel_aborts_the_request_and_the_server_sees_the_disconnect(server, client):
    server.plan(Slow(30))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    error = fail(lambda: client.complete("hello", cancel=cancel))
    assert error.kind == "cancelled" and not error.retryable
    assert server.wait_for_disconnects(1) == 1
    assert client.complete("after").text == "reply to: after"     # the pool is healthy


def test_cancel_during_a_stream_aborts_it(server, client):
    server.plan(SlowStream(interval=5))
    cancel = threading.Event()
    error = fail(lambda: client.complete("a b c", stream=True, on_text=lambda piece: cancel.set(), cancel=cancel))
    assert error.kind == "cancelled"
    assert server.wait_for_disconnects(1) == 1


def test_the_call_timeout_aborts_the_request(server, client):
    server.plan(Slow(30))
    error = fail(lambda: client.complete("hello", timeout=0.2))
    assert error.kind == "deadline" and error.retryable
    assert server.wait_for_disconnects(1) == 1


def test_cancel_while_waiting_for_a_slot(server):
    server.plan(Slow(30))
    with make_client(server, max_concurrency=1) as client:
        blocker = threading.Event()
        holder = threading.Thread(target=lambda: fail(lambda: client.complete("hold", cancel=blocker)))
        holder.start()
        while not server.seen:
            time.sleep(0.01)
        waiting = threading.Event()
        threading.Timer(0.1, waiting.set).start()
        error = fail(lambda: client.complete("queued", cancel=waiting))
        assert error.kind == "cancelled" and "waiting for an AI request slot" in str(error)
        blocker.set()
        holder.join()
        assert len(server.seen) == 1


def test_close_aborts_requests_in_flight_and_refuses_new_ones(server):
    server.plan(Slow(30))
    client = make_client(server)
    errors = []
    worker = threading.Thread(target=lambda: errors.append(fail(lambda: client.complete("hello"))))
    worker.start()
    while not server.seen:
        time.sleep(0.01)
    client.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert errors[0].kind == "closed"
    assert server.wait_for_disconnects(1) == 1
    assert fail(lambda: client.complete("again")).kind == "closed"


# -- Anthropic -------------------------------------------------------------------------------

def test_anthropic_completion(server, anthropic_client):
    answer = anthropic_client.complete("hello claude", sampling={"temperature": 0.5, "seed": 3, "top_k": 5,
                                                                  "stop": ["\n\nHuman:"]})
    assert answer.text == "reply to: hello claude"
    assert (answer.provider, answer.model) == ("anthropic", "claude-test")
    assert (answer.prompt_tokens, answer.completion_tokens) == (2, 4)
    request = server.seen[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in request.headers
    assert request.body["max_tokens"] == 1024 and request.body["temperature"] == 0.5
    assert request.body["top_k"] == 5 and request.body["stop_sequences"] == ["\n\nHuman:"]
    assert "seed" not in request.body and "stop" not in request.body       # the Messages API has no seed


def test_anthropic_stream(server, anthropic_client):
    pieces = []
    answer = anthropic_client.complete("stream it", stream=True, on_text=pieces.append)
    assert pieces == ["reply ", "to: ", "stream ", "it"]
    assert answer.text == "reply to: stream it"
    assert (answer.prompt_tokens, answer.completion_tokens) == (2, 4)
    assert answer.time_to_first_token_ms is not None


def test_anthropic_errors_and_cut_streams(server, anthropic_client):
    server.plan(Status(529, "Overloaded", {"Retry-After": "1"}), Status(400, "max_tokens: too large"),
                CutStream(pieces=1, close=False))
    error = fail(lambda: anthropic_client.complete("x"))
    assert error.retryable and error.retry_after == 1.0 and "Overloaded" in str(error)
    error = fail(lambda: anthropic_client.complete("x"))
    assert not error.retryable and "max_tokens: too large" in str(error)
    error = fail(lambda: anthropic_client.complete("x", stream=True))
    assert error.retryable and "message_stop" in str(error)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_error_event_mid_stream_is_retryable_with_its_message(server, provider):
    server.plan(StreamError("Overloaded, try again", pieces=2))
    pieces = []
    with make_client(server, provider=provider) as client:
        error = fail(lambda: client.complete("a b c", stream=True, on_text=pieces.append))
    assert error.retryable and error.kind == "stream"
    assert "Overloaded, try again" in str(error) and pieces == ["reply ", "to: "]


# -- the key ---------------------------------------------------------------------------------

def test_the_api_key_never_leaks(caplog):
    caplog.set_level(logging.DEBUG)
    produced = []
    with AIServer(api_key="the-right-key") as server:
        for provider in ("openai", "anthropic"):
            config = AIConfig(provider=provider, base_url=server.base_url, api_key=KEY, read_timeout=0.2)
            with AIClient(config) as client:
                produced += [repr(config), str(config), repr(client)]
                # The server refuses the key and quotes it back, as real services do.
                error = fail(lambda: client.complete("hello"))
                assert error.status == 401 and "Incorrect API key provided: [redacted]" in str(error)
                produced += [str(error), repr(error), str(error.args)]
    with AIServer(api_key=KEY) as server:
        with make_client(server, read_timeout=0.2) as client:
            answer = client.complete("hello", stream=True)
            produced += [repr(answer), str(answer.accounting())]
            server.plan(Slow(5), CutStream(1), StreamError(f"bad request from key {KEY}"))
            for call in (lambda: client.complete("x"), lambda: client.complete("x", stream=True),
                         lambda: client.complete("x", stream=True)):
                error = fail(call)
                produced += [str(error), repr(error)]
    produced += [record.getMessage() for record in caplog.records]
    produced += [str(record.args) for record in caplog.records]
    assert produced and not [text for text in produced if KEY in text]
