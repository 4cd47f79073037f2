"""The RUNNER_* settings that travel with work sent to a Dask worker.

The submitting process's settings (commands allowed, AI service and key, limits) decide
how its work runs; a worker's own environment only provides the installation, so its
RUNNER_* values are dropped in favour of the submitter's. So are the OTEL_* ones and
TRACEPARENT: a file run on a worker is traced as the submitter says, in its trace.
"""
from __future__ import annotations

import os

PREFIX = "RUNNER_"
TRAVELLING = (PREFIX, "OTEL_", "TRACEPARENT")


def of_submitter(environ=os.environ) -> dict[str, str]:
    """The RUNNER_* (and OTEL_*, TRACEPARENT) values of the submitting process."""
    return {name: value for name, value in environ.items() if name.startswith(TRAVELLING)}


def on_worker(travelled: dict[str, str], environ=os.environ) -> dict[str, str]:
    """The worker's environment without its own travelling values, plus the travelled ones."""
    merged = {name: value for name, value in environ.items() if not name.startswith(TRAVELLING)}
    merged.update(travelled)
    return merged
