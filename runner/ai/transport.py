"""HTTP for the AI client: one pooled requests.Session whose requests can be aborted.

requests has no way to abort a call in flight, and a thread blocked in recv() cannot be
interrupted from Python. What does wake it is shutting its socket down from another
thread, so each request gets an `AbortHandle` that learns its connection when urllib3
sends on it, and a `Watchdog` thread shuts that socket down when the caller's cancel
event is set, its deadline passes, or the client is closed. The server sees the
connection close, which is how an AI service learns to stop generating.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The handle of the request the current thread is sending; requests calls urllib3 on the
# caller's thread, so a thread-local is how the handle reaches the connection.
_current = threading.local()

# A waiter with a cancel event is looked at this often (an Event cannot be waited on
# together with others).
CANCEL_POLL = 0.02


def _shut_down(conn) -> None:
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
            _shut_down(conn)

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
            _shut_down(conn)

    def due(self, now: float) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and now >= self.deadline:
            return "deadline"
        return None


class _Abortable:
    """Mixed into urllib3's connections: tells the current request's handle which connection it uses."""

    abort_handle: AbortHandle | None = None

    def _adopt_handle(self) -> None:
        handle = getattr(_current, "handle", None)
        if handle is not None and handle is not self.abort_handle:
            self.abort_handle = handle
            handle.attach(self)

    def connect(self):
        self._adopt_handle()
        super().connect()
        handle = self.abort_handle
        # Aborted while connecting: the socket did not exist yet when abort() looked.
        if handle is not None and handle.reason is not None:
            _shut_down(self)

    def request(self, *args, **kwargs):
        self._adopt_handle()
        return super().request(*args, **kwargs)


class _AbortableHTTPConnection(_Abortable, HTTPConnection):
    pass


class _AbortableHTTPSConnection(_Abortable, HTTPSConnection):
    pass


class _ReturnsCleanly:
    """Mixed into urllib3's pools: a connection leaves its request before it is reused."""

    def _put_conn(self, conn):
        handle = getattr(conn, "abort_handle", None)
        if handle is not None:
            conn.abort_handle = None
            if not handle.detach(conn):
                conn.close()    # aborted: never hand a shut-down socket to the next request
        super()._put_conn(conn)


class _HTTPPool(_ReturnsCleanly, HTTPConnectionPool):
    ConnectionCls = _AbortableHTTPConnection


class _HTTPSPool(_ReturnsCleanly, HTTPSConnectionPool):
    ConnectionCls = _AbortableHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _AbortableAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def pooled_session(url: str, max_connections: int, ca_file: str | None = None) -> requests.Session:
    """A Session for `url`, keeping up to `max_connections` connections alive per host.

    The environment's proxy (HTTP(S)_PROXY, NO_PROXY) and CA bundle settings are read
    once, here (`ca_file`, RUNNER_AI_CA_FILE, comes first): left to requests, they are
    read again on every request, and scanning os.environ twice per call is a fifth of
    requests' own CPU time per call.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(url)
    session.verify = ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    adapter = _AbortableAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
        _current.handle = self.handle
        return self.handle

    def __exit__(self, *exc) -> None:
        _current.handle = None
        self._watchdog.unwatch(self.handle)
