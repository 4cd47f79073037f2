"""Traces of runs: OpenTelemetry spans of every run, task attempt and AI call, live
(runner.trace.live, exported through the OpenTelemetry SDK when OTEL_* configures a
collector) or made later from a LAST file or journal (runner.trace.spans, written as
Chrome Trace Event JSON by runner.trace.chrome or OTLP JSON by runner.trace.otlp_json).

Nothing here imports opentelemetry until spans are actually exported.
"""
