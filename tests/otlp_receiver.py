"""A real OTLP/HTTP trace receiver on 127.0.0.1, for tests and benchmarks.

    POST /v1/traces   Content-Type application/x-protobuf or application/json

Each request is decoded with the official opentelemetry-proto messages
(ExportTraceServiceRequest): protobuf with ParseFromString, JSON (hex ids, the OTLP JSON
mapping) with json_format after the ids are turned into the base64 protobuf's JSON uses.
Spans are kept as plain dicts: trace_id, span_id, parent_id (hex), name, kind, start/end
(ns), attributes, events, status code and message, plus the resource's attributes.

`python tests/otlp_receiver.py` runs it in its own process (for the benchmark): it prints
its base URL and serves until its stdin closes, then prints how many spans it received.
"""
from __future__ import annotations

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _attributes(key_values) -> dict:
    return {kv.key: _value(kv.value) for kv in key_values}


def spans_of(request: ExportTraceServiceRequest) -> list[dict]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                    "parent_id": span.parent_span_id.hex() or None, "name": span.name, "kind": span.kind,
                    "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    "attributes": _attributes(span.attributes),
                    "events": [{"name": e.name, "time": e.time_unix_nano, "attributes": _attributes(e.attributes)}
                               for e in span.events],
                    "status": span.status.code, "message": span.status.message,
                    "resource": resource, "scope": scope_spans.scope.name})
    return spans


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP JSON body: ids are hex there, base64 in protobuf's own JSON mapping."""
    document = json.loads(body)
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest())


class OtlpReceiver:
    def __init__(self, status: int = 200):
        self.status = status
        self.spans: list[dict] = []
        self.requests: list[dict] = []        # content type, headers of each request
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                content_type = self.headers.get("Content-Type", "")
                if self.path != "/v1/traces":
                    self._answer(404, b"")
                    return
                if content_type.startswith("application/json"):
                    request = decode_json(body)
                else:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                with receiver.lock:
                    receiver.requests.append({"content_type": content_type, "headers": dict(self.headers)})
                    if receiver.status == 200:
                        receiver.spans.extend(spans_of(request))
                if content_type.startswith("application/json"):
                    self._answer(receiver.status, b"{}", "application/json")
                else:
                    self._answer(receiver.status, ExportTraceServiceResponse().SerializeToString(),
                                 "application/x-protobuf")

            def _answer(self, status, body, content_type="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def traces(self) -> dict:
        """trace id -> its spans."""
        with self.lock:
            out: dict = {}
            for span in self.spans:
                out.setdefault(span["trace_id"], []).append(span)
            return out


if __name__ == "__main__":
    receiver = OtlpReceiver()
    print(receiver.url, flush=True)
    sys.stdin.read()
    print(len(receiver.spans), flush=True)
    receiver.close()
