"""Aborting AI calls in flight: a handle per call and one watchdog thread per client.

A thread blocked in recv() cannot be interrupted from Python. What does wake it is
shutting its socket down from another thread, so each call gets an `AbortHandle` that
learns its connection when the transport sends on it, and a `Watchdog` thread shuts that
socket down when the caller's cancel event is set, its deadline passes, or the client is
closed. The server sees the connection close, which is how an AI service learns to stop
generating. Nothing here needs an HTTP library, so a client of the offline provider
loads none (runner.ai.transport holds the requests side).
"""
from __future__ import annotations

import math
import threading
import time

# The handle of the request the current thread is sending; requests calls urllib3 on the
# caller's thread, so a thread-local is how the handle reaches the connection.
current = threading.local()

# A waiter with a cancel event is looked at this often (an Event cannot be waited on
# together with others).
CANCEL_POLL = 0.02


def shut_down(conn) -> None:
    import socket       # here: a client of the offline provider never gets this far

    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass        # already closed by the other side: the reader wakes up anyway


class AbortHandle:
    """One request's cancel event, deadline and connection; `abort` closes the connection."""

    __slots__ = ("cancel", "deadline", "reason", "_conn", "_lock")

    def __init__(self, cancel: threading.Event | None, deadline: float | None):
        self.cancel = cancel
        self.deadline = deadline
        self.reason: str | None = None      # "cancelled" | "deadline" | "closed" once aborted
        self._conn = None
        self._lock = threading.Lock()

    def attach(self, conn) -> None:
        with self._lock:
            self._conn = conn
            aborted = self.reason is not None
        if aborted:
            shut_down(conn)

    def detach(self, conn) -> bool:
        """Called as the connection goes back to the pool; False if the request was aborted."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
            return self.reason is None

    def abort(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            conn = self._conn
        if conn is not None:
            shut_down(conn)

    def due(self, now: float) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and now >= self.deadline:
            return "deadline"
        return None


class Watchdog:
    """One thread per client that aborts requests whose cancel event or deadline has come."""

    def __init__(self):
        self._changed = threading.Condition()
        self._handles: set[AbortHandle] = set()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._wake_at = 0.0         # when the thread looks next (inf: only when notified)

    def watch(self, handle: AbortHandle) -> None:
        with self._changed:
            if self._closed:
                handle.abort("closed")
                return
            self._handles.add(handle)
            if handle.cancel is None and handle.deadline is None:
                return      # only close() can abort it: nothing for the thread to do
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="runner-ai-watchdog", daemon=True)
                self._thread.start()
            # Wake the thread only if it would otherwise look too late: under load most
            # requests arrive while it already polls, and waking it for each costs CPU.
            due = time.monotonic() + CANCEL_POLL if handle.cancel is not None else handle.deadline
            if handle.deadline is not None:
                due = min(due, handle.deadline)
            if due < self._wake_at:
                self._changed.notify()

    def unwatch(self, handle: AbortHandle) -> None:
        with self._changed:
            self._handles.discard(handle)

    def close(self) -> None:
        """Abort everything in flight and stop the thread."""
        with self._changed:
            self._closed = True
            handles = list(self._handles)
            self._changed.notify()
        for handle in handles:
            handle.abort("closed")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                wait = None
                for handle in list(self._handles):
                    reason = handle.due(now)
                    if reason is not None:
                        handle.abort(reason)
                        self._handles.discard(handle)
                        continue
                    if handle.cancel is not None:
                        wait = CANCEL_POLL if wait is None else min(wait, CANCEL_POLL)
                    if handle.deadline is not None:
                        left = handle.deadline - now
                        wait = left if wait is None else min(wait, left)
                self._wake_at = math.inf if wait is None else now + wait
                self._changed.wait(wait)


class WatchedRequest:
    """Context for one request: the handle is current on this thread and watched meanwhile."""

    __slots__ = ("handle", "_watchdog")

    def __init__(self, watchdog: Watchdog, handle: AbortHandle):
        self.handle = handle
        self._watchdog = watchdog

    def __enter__(self) -> AbortHandle:
        self._watchdog.watch(self.handle)
        current.handle = self.handle
        return self.handle

    def __exit__(self, *exc) -> None:
        current.handle = None
        self._watchdog.unwatch(self.handle)
