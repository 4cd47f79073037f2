"""Sending spans to an OTLP collector through the OpenTelemetry SDK (pip install 'librunner[otel]').

Imported only when OTEL_* configures an endpoint. librunner makes its spans itself (their
ids and times are those the LAST file records: runner.trace.spans), hands each to the
SDK as a ReadableSpan, and the SDK's BatchSpanProcessor sends them on its own thread
through its OTLP/HTTP exporter (http/protobuf) or, for http/json, an exporter of ours
that sends the same request in the JSON mapping. One processor per configuration per
process: every run of a process (a C host's, the service's) shares it.

An unreachable or failing collector never fails a run: the first failure is one warning
(the SDK's own messages about it are not repeated), and the end of a run waits at most
RUNNER_TRACE_FLUSH_SECONDS for its spans.
"""
from __future__ import annotations

import base64
import logging
import threading

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from runner.trace.settings import ExportSettings
from runner.trace.otlp_json import SCOPE, resource_attributes

log = logging.getLogger("runner")

# The SDK's loggers that speak of an export in progress: what they say during one of ours
# becomes the reason in our single warning instead of lines of its own.
SDK_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.common.http",
               "opentelemetry.sdk._shared_internal")
_KINDS = {"internal": trace_api.SpanKind.INTERNAL, "client": trace_api.SpanKind.CLIENT}
_STATUS = {"unset": trace_api.StatusCode.UNSET, "ok": trace_api.StatusCode.OK, "error": trace_api.StatusCode.ERROR}

_SAMPLED = trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
_UNSET = trace_api.Status(trace_api.StatusCode.UNSET)
_exporting = threading.local()
_processors: dict = {}
_processors_lock = threading.Lock()


class _DuringExport(logging.Filter):
    """Drops the SDK's records logged on a thread while one of our exports runs there,
    keeping the last one's text as the reason of that export's failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_exporting, "active", False):
            try:
                _exporting.reason = record.getMessage()
            except Exception:
                pass
            return False
        return True


_FILTER = _DuringExport()
for _name in SDK_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


class WarningOnce(SpanExporter):
    """An exporter that warns once when spans cannot be sent, until they can be again."""

    def __init__(self, inner: SpanExporter, shown_endpoint: str):
        self.inner = inner
        self.shown_endpoint = shown_endpoint
        self.failing = False
        self.last_problem: str | None = None

    def export(self, spans) -> SpanExportResult:
        _exporting.active, _exporting.reason = True, None
        try:
            result = self.inner.export(spans)
        except Exception as error:      # an exporter's bug must not end the SDK's thread
            result, _exporting.reason = SpanExportResult.FAILURE, f"{type(error).__name__}: {error}"
        finally:
            _exporting.active = False
        if result is SpanExportResult.SUCCESS:
            self.failing = False
            self.last_problem = None
            return result
        self.last_problem = _exporting.reason or "the collector did not accept them"
        if not self.failing:
            self.failing = True
            log.warning("traces: spans could not be sent to %s (%s); the run goes on without them",
                        self.shown_endpoint, self.last_problem)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonSpanExporter(SpanExporter):
    """OTLP/HTTP with the JSON encoding (OTEL_EXPORTER_OTLP_PROTOCOL=http/json): the SDK's
    own protobuf request, in the specification's JSON mapping (hex ids, integer enums)."""

    def __init__(self, endpoint: str, headers: dict, timeout: float):
        import requests

        self.endpoint, self.headers, self.timeout = endpoint, dict(headers), timeout
        self.session = requests.Session()
        self._shutdown = False

    def export(self, spans) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        body = otlp_json_request(spans)
        import orjson
        try:
            response = self.session.post(self.endpoint, data=orjson.dumps(body), timeout=self.timeout,
                                         headers={**self.headers, "Content-Type": "application/json"})
        except Exception as error:
            _exporting.reason = f"{type(error).__name__}: {_first_line(error)}"
            return SpanExportResult.FAILURE
        if 200 <= response.status_code < 300:
            return SpanExportResult.SUCCESS
        _exporting.reason = f"HTTP {response.status_code}"
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown = True
        self.session.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _first_line(error) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def otlp_json_request(spans) -> dict:
    """ReadableSpans as an OTLP/HTTP JSON request body."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in body.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", ()):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = base64.b64decode(link[key]).hex()
    return body


def _exporter(settings: ExportSettings) -> SpanExporter:
    headers = dict(settings.headers)
    timeout = settings.flush_seconds
    if settings.protocol == "http/json":
        return JsonSpanExporter(settings.endpoint, headers, timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=settings.endpoint, headers=headers, timeout=timeout)


def processor_for(settings: ExportSettings) -> BatchSpanProcessor:
    """The process's span processor for `settings` (made on first use)."""
    with _processors_lock:
        processor = _processors.get(settings)
        if processor is None:
            exporter = WarningOnce(_exporter(settings), settings.shown_endpoint)
            # The SDK's queue holds 2048 spans by default and drops what comes beyond: a run
            # ends tasks faster than spans are sent, so its queue is larger (OTEL_BSP_MAX_QUEUE_SIZE
            # still decides when set); what is dropped anyway is said once (WarningOnce).
            processor = BatchSpanProcessor(exporter, schedule_delay_millis=500,
                                           max_queue_size=settings.queue_size)
            processor.runner_exporter = exporter
            _processors[settings] = processor
        return processor


class SpanSink:
    """Hands librunner's spans of one trace to the processor of `settings` as ReadableSpans."""

    def __init__(self, settings: ExportSettings, environ, version: str | None = None):
        self.settings = settings
        self.processor = processor_for(settings)
        self.resource = Resource(resource_attributes(environ))
        self.scope = InstrumentationScope(SCOPE, version)
        self._parents: dict = {}

    def send(self, trace_ids, spans) -> None:
        trace_id = int(trace_ids.trace_id, 16)
        parents = self._parents
        if parents.get(None) != trace_id:       # a new trace: its parents' contexts are made anew
            parents.clear()
            parents[None] = trace_id
        on_end, resource, scope = self.processor.on_end, self.resource, self.scope
        for span in spans:
            context = trace_api.SpanContext(trace_id, int(span.span_id, 16), False, _SAMPLED)
            parent = None
            if span.parent_id:
                # Most spans share a parent (the run's span): its context is made once.
                parent = parents.get(span.parent_id)
                if parent is None:
                    parent = parents[span.parent_id] = trace_api.SpanContext(
                        trace_id, int(span.parent_id, 16), span.parent_id == trace_ids.parent_span_id, _SAMPLED)
            on_end(ReadableSpan(
                span.name, context=context, parent=parent, resource=resource, attributes=span.attributes,
                events=[Event(name, attributes, moment) for name, moment, attributes in span.events]
                if span.events else (),
                kind=_KINDS.get(span.kind, trace_api.SpanKind.INTERNAL),
                status=_UNSET if span.status == "unset" else
                trace_api.Status(_STATUS[span.status], span.message if span.status == "error" else None),
                start_time=span.start_ns, end_time=span.end_ns, instrumentation_scope=scope))

    def flush(self) -> bool:
        """Waits until what was handed over is sent (at most RUNNER_TRACE_FLUSH_SECONDS)."""
        try:
            return bool(self.processor.force_flush(int(self.settings.flush_seconds * 1000)))
        except Exception:
            log.debug("traces: flush raised", exc_info=True)
            return False


def send_trace(trace, settings: ExportSettings, environ) -> tuple[bool, str | None]:
    """Sends a whole RunTrace now (`trace --send`); (sent, why not)."""
    from runner.cli import version

    sink = SpanSink(settings, environ, version().rpartition(" ")[2])
    exporter = sink.processor.runner_exporter
    sink.send(trace.ids, trace.all_spans())
    flushed = sink.flush()
    if exporter.failing or not flushed:
        return False, exporter.last_problem or f"not sent within {settings.flush_seconds:g} s"
    return True, None
