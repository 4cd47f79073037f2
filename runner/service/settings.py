"""The service's settings: command-line options first, then RUNNER_* variables.

    RUNNER_BIND_ADDRESS        host:port (default 127.0.0.1:8080)
    RUNNER_OUTPUT_DIR          where runs and their LAST directories go (default ./output)
    RUNNER_ALT_FILES_DIR       the ALT files /api/v1/process and POST /run may name
    RUNNER_API_TOKEN           Bearer token every route but the probes needs
    RUNNER_MAX_CONCURRENT_RUNS runs at once (default 4); the rest queue
    RUNNER_MAX_QUEUED_RUNS     runs waiting at most (default 10000); more are refused (429)

A bad value is a ValueError naming the variable; binding to an address other than the
loopback without a token is one too (anyone who reaches the port could run commands).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from runner import settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_CONCURRENT_RUNS = 4
DEFAULT_MAX_QUEUED_RUNS = 10000


@dataclass(frozen=True)
class ServiceSettings:
    host: str
    port: int
    out: Path
    alt_dir: Path | None
    token: str | None = None
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS
    max_queued_runs: int = DEFAULT_MAX_QUEUED_RUNS
    dask: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_address(environ) -> tuple[str | None, int | None]:
    raw = settings.text("RUNNER_BIND_ADDRESS", environ)
    if raw is None:
        return None, None
    host, _, port = raw.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"RUNNER_BIND_ADDRESS={raw!r}: expected host:port, e.g. 127.0.0.1:8080")
    return host, int(port)


def load(host: str | None = None, port: int | None = None, out=None, alt_dir=None, dask: str | None = None,
         environ=os.environ) -> ServiceSettings:
    """The settings of `serve`; ValueError names what is wrong."""
    bound_host, bound_port = _bind_address(environ)
    host = host or bound_host or DEFAULT_HOST
    port = port if port is not None else bound_port if bound_port is not None else DEFAULT_PORT
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: expected 0 to 65535")
    token = environ.get("RUNNER_API_TOKEN") or None
    if token is not None and (token != token.strip() or not all(" " < c <= "~" for c in token)):
        raise ValueError("RUNNER_API_TOKEN: expected printable ASCII without blanks (it travels in a header)")
    if token is None and not is_loopback(host):
        raise ValueError(f"refusing to listen on {host}, which is not a loopback address, without RUNNER_API_TOKEN: "
                         "set it (callers then send 'Authorization: Bearer <token>') or bind to 127.0.0.1")
    alt_dir = alt_dir or settings.text("RUNNER_ALT_FILES_DIR", environ)
    if alt_dir is not None and not Path(alt_dir).is_dir():
        raise ValueError(f"ALT files directory '{alt_dir}' (--alt-dir, RUNNER_ALT_FILES_DIR) is not a directory")
    return ServiceSettings(
        host=host, port=port, out=settings.output_dir(out, environ).absolute(),
        alt_dir=None if alt_dir is None else Path(alt_dir).resolve(), token=token,
        max_concurrent_runs=settings.integer("RUNNER_MAX_CONCURRENT_RUNS", DEFAULT_MAX_CONCURRENT_RUNS, environ),
        max_queued_runs=settings.integer("RUNNER_MAX_QUEUED_RUNS", DEFAULT_MAX_QUEUED_RUNS, environ),
        dask=dask or settings.text("RUNNER_DASK_SCHEDULER", environ),
    )
