"""Limits on AI requests: how many are in flight, and how many requests/tokens per minute.

One set of limiters belongs to one AIClient, and the client is shared by every task of
a run and of a batch, so the limits hold across all of them (the Rust original made a
semaphore per task, which limited nothing). Waiting honours the caller's cancel event
and deadline, so a cancelled task never sits in a queue.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from runner.ai.errors import AIServiceError

# How often a waiter with a cancel event looks at it: threading.Event cannot be waited on
# together with a semaphore, so waits are sliced.
_CANCEL_POLL = 0.02


def _stop_reason(cancel: threading.Event | None, deadline: float | None, now: float) -> AIServiceError | None:
    if cancel is not None and cancel.is_set():
        return AIServiceError("cancelled while waiting for an AI request slot", retryable=False, kind="cancelled")
    if deadline is not None and now >= deadline:
        return AIServiceError("the call's timeout passed while waiting for an AI request slot",
                              retryable=True, kind="deadline")
    return None


class InFlightLimit:
    """At most `limit` requests at once."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"in-flight limit {limit!r}: expected at least 1")
        self.limit = limit
        self._slots = threading.Semaphore(limit)

    def acquire(self, cancel: threading.Event | None = None, deadline: float | None = None) -> None:
        if cancel is None and deadline is None:
            self._slots.acquire()
            return
        while True:
            now = time.monotonic()
            stop = _stop_reason(cancel, deadline, now)
            if stop is not None:
                raise stop
            wait = _CANCEL_POLL if cancel is not None else deadline - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._slots.acquire(timeout=wait):
                return

    def release(self) -> None:
        self._slots.release()


class RateLimit:
    """A token bucket refilled at `per_minute`/60 per second, holding at most `per_minute`.

    A request takes `amount` (1 for requests, an estimate for tokens) once the bucket
    holds min(amount, capacity), and may drive it negative: a request larger than a
    minute's allowance still runs, and the debt delays the next ones. `settle` corrects
    an estimate once the real usage is known.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic):
        if per_minute < 1:
            raise ValueError(f"rate limit {per_minute!r} per minute: expected at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._level = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, amount: float) -> float:
        """Take `amount` and return 0, or return how many seconds to wait before trying again."""
        with self._lock:
            self._refill()
            need = min(amount, self.capacity)
            if self._level >= need:
                self._level -= amount
                return 0.0
            return (need - self._level) / self.rate

    def take(self, amount: float, cancel: threading.Event | None = None, deadline: float | None = None,
             *, sleep: Callable[[float], None] = time.sleep) -> None:
        while True:
            wait = self.try_take(amount)
            if wait <= 0.0:
                return
            now = self._clock()
            stop = _stop_reason(cancel, deadline, now)
            if stop is not None:
                raise stop
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            if cancel is not None:
                cancel.wait(min(wait, _CANCEL_POLL * 5))
            else:
                sleep(wait)
            stop = _stop_reason(cancel, deadline, self._clock())
            if stop is not None:
                raise stop

    def settle(self, estimated: float, actual: float) -> None:
        """Charge the difference between what a request was estimated to use and what it used."""
        with self._lock:
            self._refill()
            self._level = min(self.capacity, self._level - (actual - estimated))

    @property
    def level(self) -> float:
        with self._lock:
            self._refill()
            return self._level
