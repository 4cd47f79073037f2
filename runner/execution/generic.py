"""generic: a task whose outcome is its parameters, recorded as its output.

The scheduler runs generic tasks inline (Scheduler.run_inline) outside chaos mode; this
handler is the same rule for attempts that go through a worker (chaos mode).
"""
from __future__ import annotations


def run(ctx) -> dict:
    return dict(ctx.parameters)
