"""HTTP for the AI client: one pooled requests.Session whose requests can be aborted.

requests has no way to abort a call in flight. Its connections here tell the call's
AbortHandle (runner.ai.watchdog) which socket they use, so the client's Watchdog can shut
that socket down when the call is cancelled, its deadline passes, or the client closes;
an aborted connection never goes back to the pool.
"""
from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from runner.ai.watchdog import AbortHandle, current, shut_down


class _Abortable:
    """Mixed into urllib3's connections: tells the current request's handle which connection it uses."""

    abort_handle: AbortHandle | None = None

    def _adopt_handle(self) -> None:
        handle = getattr(current, "handle", None)
        if handle is not None and handle is not self.abort_handle:
            self.abort_handle = handle
            handle.attach(self)

    def connect(self):
        self._adopt_handle()
        super().connect()
        handle = self.abort_handle
        # Aborted while connecting: the socket did not exist yet when abort() looked.
        if handle is not None and handle.reason is not None:
            shut_down(self)

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


def _no_tls(url: str, proxies: dict) -> bool:
    """True when requests to `url` use no TLS at all: http:// through no proxy or an http:// one."""
    if not url.lower().startswith("http://"):
        return False
    proxy = proxies.get("http") or proxies.get("all")
    return not proxy or proxy.lower().startswith("http://")


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
    if _no_tls(url, session.proxies):
        # Nothing to verify on plain HTTP, and requests stats a CA path (os.path.isdir) on
        # every request: a syscall, so the GIL changes hands once more per call.
        session.verify = True
    session.trust_env = False
    adapter = _AbortableAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


