"""The optional extras of pyproject.toml, and whether the packages a feature needs are there.

A feature that needs an extra (a configured NATS archive, the kserve provider, --dask, ...)
asks `missing(extra)` before it is used: the answer comes from the import system's finders
without importing anything (a run that does not use a feature never imports its package).
`problem(extra, feature)` words the refusal the checks before a run give (exit 2): what is
missing, and the one command that installs it. A new extra adds a line to EXTRAS.
"""
from __future__ import annotations

import importlib.util

# extra name -> the top-level modules its packages provide (what must be importable).
EXTRAS = {
    "nats": ("nats",),                                      # nats-py: RUNNER_NATS_URL
    "grpc": ("grpc", "google.protobuf"),                    # grpcio, protobuf: RUNNER_AI_PROVIDER=kserve
    "dask": ("distributed",),                               # --dask, RUNNER_DASK_SCHEDULER
    "otel": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),   # OTEL_* export
    "server": ("starlette", "uvicorn", "sse_starlette", "prometheus_client"),  # python -m runner serve
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here (empty: the extra is installed)."""
    absent = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):       # a parent package missing, or a broken one
            found = False
        if not found:
            absent.append(module)
    return absent


def problem(extra: str, feature: str) -> str | None:
    """Why `feature` cannot be used here (its extra's packages are missing), or None."""
    absent = missing(extra)
    if not absent:
        return None
    return (f"{feature} needs the [{extra}] extra, which is not installed ({', '.join(absent)} not found): "
            f"pip install 'librunner[{extra}]'")
