"""The offline echo provider: what a run gets with no RUNNER_AI_SERVICE_URL."""
from __future__ import annotations

import threading

import pytest

from runner.ai import AIServiceError, Completion, client_from_environment


@pytest.fixture
def echo():
    with client_from_environment({}) as client:
        yield client


def test_echo_answers_from_the_prompt_and_says_so(echo):
    answer = echo.complete("Summarise the quarterly report", model="gpt-4o")
    assert answer.text == "echo: Summarise the quarterly report"
    assert (answer.model, answer.provider) == ("echo", "echo")
    assert (answer.prompt_tokens, answer.completion_tokens) == (4, 5)
    assert answer.latency_ms >= 0 and answer.time_to_first_token_ms is None
    assert answer.accounting() == {k: v for k, v in vars(answer).items() if k != "text"}


def test_echo_is_deterministic(echo):
    first, second = echo.complete("same prompt"), echo.complete("same prompt")
    assert first.text == second.text and first.completion_tokens == second.completion_tokens
    assert echo.complete("other prompt").text != first.text


def test_echo_streams_its_pieces(echo):
    pieces = []
    answer = echo.complete("a  b\nc", stream=True, on_text=pieces.append)
    assert "".join(pieces) == answer.text == "echo: a  b\nc"
    assert pieces == ["echo: ", "a  ", "b\n", "c"]
    assert answer.time_to_first_token_ms is not None


def test_echo_honours_max_tokens(echo):
    assert echo.complete("one two three four", sampling={"max_tokens": 3}).text == "echo: one two "


def test_echo_honours_stop_sequences(echo):
    answer = echo.complete("first line. END second line", sampling={"stop": ["END", "line"], "top_k": 3})
    assert answer.text == "echo: first "


def test_echo_honours_cancel(echo):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(AIServiceError) as caught:
        echo.complete("anything", cancel=cancel)
    assert caught.value.kind == "cancelled" and not caught.value.retryable


def test_echo_cancelled_mid_stream_stops_sending(echo):
    cancel = threading.Event()
    pieces = []

    def take(piece):
        pieces.append(piece)
        cancel.set()

    with pytest.raises(AIServiceError):
        echo.complete("one two three", stream=True, on_text=take, cancel=cancel)
    assert pieces == ["echo: "]


def test_echo_empty_prompt(echo):
    answer = echo.complete("")
    assert isinstance(answer, Completion) and answer.text == "echo: " and answer.prompt_tokens == 0


def test_a_closed_client_refuses_calls(echo):
    echo.close()
    with pytest.raises(AIServiceError, match="closed"):
        echo.complete("x")
