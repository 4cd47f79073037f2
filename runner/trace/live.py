"""The trace of a run as it goes: an on_event listener of the executor's events.

start() decides, from the environment, whether a run is traced: it is when OTEL_*
configures an OTLP endpoint (its spans are exported) or when it joins a trace
(TRACEPARENT, or a service request's traceparent header: its AI calls carry the trace on).
Each task's spans are made when its task_finished event arrives (the event carries the
attempts and AI accounting the LAST file records) and handed to the exporter at once;
the run's own span when the run ends, from its LAST record. finish() then waits a
bounded time for the collector.

Nothing here imports opentelemetry; runner.trace.export does, only for a run that exports.
"""
from __future__ import annotations

import logging
import os
import threading

from runner.trace import settings as trace_settings
from runner.trace.ids import TraceIds
from runner.trace.spans import root_span, stamp_ns, task_spans

log = logging.getLogger("runner")


def traceparent_of(environ) -> str | None:
    """The trace a run joins: the TRACEPARENT variable (the W3C header's value)."""
    value = environ.get("TRACEPARENT") if environ is not None else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def start(environ=os.environ, traceparent: str | None = None) -> "RunTracing | None":
    """The tracing of a run about to start, or None when it is not traced. traceparent (a
    service request's header) wins over TRACEPARENT. ConfigurationError naming an unusable OTEL_* variable."""
    environ = os.environ if environ is None else environ
    export = trace_settings.export_settings(environ)
    joined = traceparent or traceparent_of(environ)
    if export is None and joined is None:
        return None
    ids = TraceIds.for_run(joined)
    if export is not None:
        parent_sampled = ids.sampled if ids.parent_span_id is not None else None
        sampled = trace_settings.sampled(export, ids.trace_id, parent_sampled)
        if sampled != ids.sampled:
            ids = TraceIds(ids.trace_id, ids.span_id, ids.parent_span_id, sampled)
        if not sampled:
            export = None
    return RunTracing(ids, export, environ, trace_settings.capture_content(environ))


def _sink(export, environ):
    try:
        from runner.trace import export as exporting
    except ImportError as error:
        log.warning("traces: %s is configured but the OpenTelemetry SDK is not installed (%s): "
                    "pip install 'librunner[otel]'; the run goes on without exporting its spans",
                    export.shown_endpoint, error)
        return None
    from runner.cli import version
    return exporting.SpanSink(export, environ, version().rpartition(" ")[2])


class RunTracing:
    """One run's trace: its ids (recorded in the journal and the LAST file, sent to AI
    services) and, when it is exported, the listener that sends its spans.

    The OpenTelemetry SDK is imported and set up on a thread of its own once the run's first
    task has started (a quarter of a second of imports, made while a run waits on its first
    AI calls rather than while it gets them going); spans made meanwhile wait in a list."""

    def __init__(self, ids: TraceIds, export, environ, capture_content: bool):
        self.ids = ids
        self.export = export
        self.capture_content = capture_content
        self.finished = False
        self._lock = threading.Lock()
        self._pending: list | None = []         # spans made before the SDK was ready
        self._sink = None
        self._ready = threading.Event()
        self._environ = environ
        self._set_up = False

    @property
    def exporting(self) -> bool:
        return self.export is not None

    def _start_setting_up(self) -> None:
        if not self._set_up:
            self._set_up = True
            threading.Thread(target=self._prepare, args=(self.export, self._environ), name="runner-trace-setup",
                             daemon=True).start()

    def _prepare(self, export, environ) -> None:
        sink = None
        try:
            sink = _sink(export, environ)
        except Exception:       # tracing never fails a run
            log.warning("traces: the OpenTelemetry exporter could not be set up; the run goes on without it",
                        exc_info=log.isEnabledFor(logging.DEBUG))
        with self._lock:
            self._sink = sink
            pending, self._pending = self._pending, None
        try:
            if sink is not None and pending:
                sink.send(self.ids, pending)
        finally:
            self._ready.set()

    def _send(self, spans: list) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.extend(spans)
                return
            sink = self._sink
        if sink is not None:
            sink.send(self.ids, spans)

    def __call__(self, event: dict) -> None:
        """The on_event listener: a finished task's spans go to the exporter."""
        kind = event.get("event")
        if kind == "task_started" and not self._set_up and self.export is not None:
            self._start_setting_up()        # events of the run's own thread: no lock needed
        if kind != "task_finished" or self.export is None:
            return
        self._start_setting_up()
        spans = task_spans(self.ids, event, capture_content=self.capture_content)
        if spans:
            self._send(spans)

    def finish(self, record: dict | None, execution: dict, counts: dict | None = None) -> None:
        """The run's span, from its LAST record (or, with none written, the execution facts),
        then a bounded wait for the collector. Never raises."""
        if self.finished or self.export is None:
            return
        self.finished = True
        try:
            record = record or {}
            start_ns = stamp_ns(record.get("start_time") or execution.get("started_at")) or 0
            end_ns = stamp_ns(record.get("end_time") or execution.get("ended_at")) or start_ns
            statistics = record.get("statistics") or {}
            counts = statistics.get("status_counts") or counts or {}
            total = statistics.get("total_tasks", execution.get("total"))
            status = record.get("status")
            if status is None:      # no LAST file written here (a Dask worker's run of a whole file)
                completed = counts.get("completed", 0)
                status = "success" if completed == total else "failure" if not completed else "partialsuccess"
            root = root_span(self.ids, {
                "alt_id": record.get("alt_file_id", execution.get("alt_id")), "last_id": record.get("id"),
                "mode": record.get("mode", execution.get("mode")), "seed": execution.get("seed"),
                "status": status, "counts": counts, "total": total,
                "interrupted": execution.get("interrupted"), "resumed_from": execution.get("resumed_from"),
                "start_ns": start_ns, "end_ns": end_ns})
            self._start_setting_up()
            self._ready.wait(self.export.flush_seconds)
            self._send([root])
            if self._sink is not None:
                self._sink.flush()
        except Exception:       # tracing never fails a run
            log.debug("traces: the end of the run's trace raised", exc_info=True)


def fan_out(*listeners):
    """One on_event listener calling each of `listeners` that is not None."""
    present = [listener for listener in listeners if listener is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def each(event: dict) -> None:
        for listener in present:
            try:
                listener(event)
            except Exception:       # one listener's failure does not deprive the others
                log.debug("an event listener raised", exc_info=True)
    return each
