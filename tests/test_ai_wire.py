"""Server-sent events, Retry-After and the rate and in-flight limiters, without a server."""
from __future__ import annotations

import threading
import time
from email.utils import format_datetime
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from runner.ai import AIServiceError, retry_after_seconds
from runner.ai.limits import InFlightLimit, RateLimit
from runner.ai.sse import EventStreamError, EventStreamParser, ServerSentEvent, parse_events


def feed_all(chunks) -> list[ServerSentEvent]:
    return list(parse_events(chunks))


def test_events_with_names_multiline_data_and_comments():
    stream = b": keep-alive\n\nevent: message_start\ndata: {\"a\": 1}\n\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n"
    assert feed_all([stream]) == [
        ServerSentEvent("message_start", '{"a": 1}'),
        ServerSentEvent("message", "line one\nline two"),
        ServerSentEvent("message", "[DONE]"),
    ]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(ending):
    stream = b"event: x" + ending + b"data:no space" + ending + ending
    assert feed_all([stream]) == [ServerSentEvent("x", "no space")]


def test_a_crlf_split_across_chunks_is_one_line_end():
    assert feed_all([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == \
        [ServerSentEvent("message", "a"), ServerSentEvent("message", "b")]


def test_an_unfinished_event_at_the_end_is_dropped():
    assert feed_all([b"data: complete\n\ndata: never finished"]) == [ServerSentEvent("message", "complete")]


def test_a_multibyte_character_split_across_chunks():
    data = "data: şğü 日本\n\n".encode()
    assert feed_all([data[:8], data[8:9], data[9:]]) == [ServerSentEvent("message", "şğü 日本")]


def test_invalid_utf8_is_an_error():
    with pytest.raises(EventStreamError, match="not UTF-8"):
        EventStreamParser().feed(b"data: \xff\n\n")


event_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)


@given(events=st.lists(st.tuples(st.sampled_from(["", "delta", "ping"]), st.lists(event_text, min_size=1, max_size=3)),
                       max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
       ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_chunking_gives_the_same_events(events, cuts, ending):
    text = ""
    expected = []
    for name, lines in events:
        if name:
            text += f"event: {name}{ending}"
        text += "".join(f"data: {line}{ending}" for line in lines) + ending
        expected.append(ServerSentEvent(name or "message", "\n".join(lines)))
    data = text.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    assert feed_all(chunks) == expected


def test_a_long_stream_is_parsed_in_linear_pieces():
    # 20 000 events fed byte-chunk by chunk: the buffer never holds more than one line.
    parser = EventStreamParser()
    count = 0
    for _ in range(20000):
        count += len(parser.feed(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n'))
        assert len(parser._buffer) == 0
    assert count == 20000



def test_one_long_line_fed_in_small_pieces_is_parsed_in_linear_time():
    # An 8 MiB data line in 4 KiB feeds: rescanning the buffer from its start on every
    # feed made this quadratic (about 16 GiB scanned, a minute); linear, it takes well
    # under a second. The bound below is only a generous liveness check.
    parser = EventStreamParser()
    piece = b"x" * 4096
    started = time.monotonic()
    assert parser.feed(b"data: ") == []
    for _ in range(2048):
        assert parser.feed(piece) == []
    events = parser.feed(b"\r") + parser.feed(b"\n\r\n")
    assert time.monotonic() - started < 10
    assert events == [ServerSentEvent("message", "x" * (8 * 1024 * 1024))]


# -- Retry-After -----------------------------------------------------------------------------

def test_retry_after_forms():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 42, tzinfo=timezone.utc), usegmt=True)
    earlier = format_datetime(datetime(2026, 1, 1, 11, 0, 0, tzinfo=timezone.utc), usegmt=True)
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": " 1.5 "}) == 1.5
    assert retry_after_seconds({"retry-after": later}, now=now) == 42.0
    assert retry_after_seconds({"retry-after": earlier}, now=now) == 0.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    for junk in ("soon", "-3", "inf", ""):
        assert retry_after_seconds({"retry-after": junk}) is None
    assert retry_after_seconds({}) is None


# -- limits ----------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limit_allows_a_minutes_worth_then_paces():
    clock = FakeClock()
    limit = RateLimit(60, clock=clock)          # one per second once the bucket is empty
    for _ in range(60):
        limit.take(1, sleep=clock.sleep)
    assert clock.slept == []
    limit.take(1, sleep=clock.sleep)
    assert clock.now == pytest.approx(1.0)
    limit.take(1, sleep=clock.sleep)
    assert clock.now == pytest.approx(2.0)


def test_a_request_larger_than_the_capacity_runs_and_leaves_a_debt():
    clock = FakeClock()
    limit = RateLimit(600, clock=clock)         # 10 tokens per second
    limit.take(1000, sleep=clock.sleep)         # more than a minute's worth: runs at once
    assert clock.now == 0.0 and limit.level == pytest.approx(-400)
    limit.take(100, sleep=clock.sleep)          # waits for the debt and its own 100
    assert clock.now == pytest.approx(50.0)


def test_settle_charges_the_difference_between_estimate_and_usage():
    clock = FakeClock()
    limit = RateLimit(1000, clock=clock)
    limit.take(100)
    limit.settle(100, 300)
    assert limit.level == pytest.approx(700)
    limit.settle(300, 0)                        # a failed request is refunded
    assert limit.level == pytest.approx(1000)
    limit.settle(0, -5000)
    assert limit.level == 1000                  # never above capacity


def test_waiting_for_a_rate_stops_at_the_deadline():
    clock = FakeClock()
    limit = RateLimit(60, clock=clock)
    limit.take(60)
    with pytest.raises(AIServiceError) as caught:
        limit.take(1, deadline=0.5, sleep=clock.sleep)
    assert caught.value.kind == "deadline"


def test_the_in_flight_limit_blocks_the_next_caller_until_release():
    limit = InFlightLimit(2)
    limit.acquire()
    limit.acquire()
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (limit.acquire(), entered.set()))
    waiter.start()
    assert not entered.wait(0.1)
    limit.release()
    assert entered.wait(5)
    waiter.join()


def test_waiting_for_a_slot_honours_cancel_and_deadline():
    limit = InFlightLimit(1)
    limit.acquire()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(AIServiceError) as caught:
        limit.acquire(cancel=cancel)
    assert caught.value.kind == "cancelled"
    with pytest.raises(AIServiceError) as caught:
        limit.acquire(deadline=time.monotonic() + 0.05)
    assert caught.value.kind == "deadline"
    limit.release()
    limit.acquire(cancel=threading.Event(), deadline=time.monotonic() + 5)   # free again


@pytest.mark.parametrize("bad", [0, -1])
def test_limits_need_a_positive_size(bad):
    with pytest.raises(ValueError):
        InFlightLimit(bad)
    with pytest.raises(ValueError):
        RateLimit(bad)
