"""The service's Prometheus metrics (GET /metrics), all named runner_*.

Tasks and their durations come from each run's event stream (an observer per run beside
its event log); AI calls and tokens from the results a run ended with; queue depth and
active runs are read when scraped. One CollectorRegistry per service, not the global one.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

TASK_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth, active_runs):
        self.registry = registry = CollectorRegistry()
        self.accepted = Counter("runner_runs_accepted", "Runs accepted (answered 202)", registry=registry)
        self.runs = Counter("runner_runs", "Runs that ended, by status", ["status"], registry=registry)
        self.tasks = Counter("runner_tasks", "Tasks that ended, by status", ["status"], registry=registry)
        self.task_seconds = Histogram("runner_task_duration_seconds", "Time from a task's first start to its end",
                                      ["status"], buckets=TASK_SECONDS_BUCKETS, registry=registry)
        self.ai_calls = Counter("runner_ai_calls", "AI calls of the tasks of ended runs", registry=registry)
        self.ai_tokens = Counter("runner_ai_tokens", "AI tokens of the tasks of ended runs", ["kind"],
                                 registry=registry)
        Gauge("runner_queue_depth", "Runs waiting for a turn", registry=registry).set_function(queue_depth)
        Gauge("runner_active_runs", "Runs going now", registry=registry).set_function(active_runs)

    def observer(self):
        """An on_event listener for one run: counts its tasks and times them."""
        started: dict = {}

        def observe(event: dict) -> None:
            kind = event.get("event")
            if kind == "task_started":
                started.setdefault(event.get("task_id"), event.get("elapsed_s", 0.0))
            elif kind == "task_finished":
                status = event.get("status") or "unknown"
                self.tasks.labels(status).inc()
                began = started.pop(event.get("task_id"), None)
                if began is not None:
                    self.task_seconds.labels(status).observe(max(0.0, event.get("elapsed_s", began) - began))
        return observe

    def run_ended(self, status: str, results: dict | None = None) -> None:
        self.runs.labels(status).inc()
        for result in (results or {}).values():
            metadata = result.transient_metadata() or {}     # not kept on an inline result
            ai = metadata.get("ai")
            if isinstance(ai, dict) and not metadata.get("reused_from"):
                self.ai_calls.inc()
                for kind in ("prompt_tokens", "completion_tokens"):
                    if type(ai.get(kind)) is int and ai[kind] > 0:
                        self.ai_tokens.labels(kind.split("_")[0]).inc(ai[kind])

    def text(self) -> bytes:
        return generate_latest(self.registry)
