"""The RUNNER_* settings that travel with work sent to a Dask worker.

The submitting process's settings (commands allowed, AI service and key, limits) decide
how its work runs; a worker's own environment only provides the installation, so its
RUNNER_* values are dropped in favour of the submitter's.
"""
from __future__ import annotations

import os

PREFIX = "RUNNER_"


def of_submitter(environ=os.environ) -> dict[str, str]:
    """The RUNNER_* values of the submitting process."""
    return {name: value for name, value in environ.items() if name.startswith(PREFIX)}


def on_worker(travelled: dict[str, str], environ=os.environ) -> dict[str, str]:
    """The worker's environment without its own RUNNER_* values, plus the travelled ones."""
    merged = {name: value for name, value in environ.items() if not name.startswith(PREFIX)}
    merged.update(travelled)
    return merged
