"""A run's trace as an OTLP/HTTP JSON request body (ExportTraceServiceRequest).

The OTLP specification's JSON mapping: lowerCamelCase names, trace and span ids as hex,
enums as integers, 64-bit integers as decimal strings. What `trace --format otlp-json`
writes, and what `--send` or a collector's /v1/traces takes later.
"""
from __future__ import annotations

from urllib.parse import unquote

from runner.trace.spans import RunTrace

SPAN_KINDS = {"internal": 1, "server": 2, "client": 3}
STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}
SCOPE = "librunner"
DEFAULT_SERVICE_NAME = "librunner"


def resource_attributes(environ) -> dict:
    """The resource of librunner's traces: OTEL_RESOURCE_ATTRIBUTES (key=value,... with
    percent-encoded values), then OTEL_SERVICE_NAME over its service.name (default librunner)."""
    attributes: dict = {}
    for item in str(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")).split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    service = str(environ.get("OTEL_SERVICE_NAME", "")).strip()
    if service:
        attributes["service.name"] = service
    attributes.setdefault("service.name", DEFAULT_SERVICE_NAME)
    return attributes


def any_value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: dict) -> list:
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


def span_json(trace_id: str, span) -> dict:
    out = {"traceId": trace_id, "spanId": span.span_id, "name": span.name,
           "kind": SPAN_KINDS.get(span.kind, 1),
           "startTimeUnixNano": str(span.start_ns), "endTimeUnixNano": str(span.end_ns),
           "attributes": key_values(span.attributes),
           "status": {"code": STATUS_CODES[span.status]}}
    if span.parent_id:
        out["parentSpanId"] = span.parent_id
    if span.message:
        out["status"]["message"] = span.message
    if span.events:
        out["events"] = [{"name": name, "timeUnixNano": str(moment), "attributes": key_values(attributes)}
                         for name, moment, attributes in span.events]
    return out


def otlp_json(trace: RunTrace, resource: dict, version: str | None = None) -> dict:
    scope = {"name": SCOPE}
    if version:
        scope["version"] = version
    return {"resourceSpans": [{
        "resource": {"attributes": key_values(resource)},
        "scopeSpans": [{"scope": scope,
                        "spans": [span_json(trace.ids.trace_id, span) for span in trace.all_spans()]}],
    }]}
