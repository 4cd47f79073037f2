"""Where a run's traces go, from the standard OTEL_* variables (and two of librunner's).

Read without importing opentelemetry: a run with no endpoint configured imports none of it.

    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   the traces URL, as given
    OTEL_EXPORTER_OTLP_ENDPOINT          the collector's base URL; /v1/traces is added
    OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL http/protobuf (default) or http/json
    OTEL_EXPORTER_OTLP[_TRACES]_HEADERS  key=value,... (percent-encoded values), e.g. an API key
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG]
    OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none   no export
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true   prompts and answers in AI spans
    RUNNER_TRACE_FLUSH_SECONDS           how long the end of a run waits for its spans to be sent (5)
    RUNNER_TRACE_URL_TEMPLATE            a link to a trace for the report, with {trace_id}
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from runner import settings
from runner.errors import ConfigurationError
from runner.settings import shown

PROTOCOLS = ("http/protobuf", "http/json")
DEFAULT_FLUSH_SECONDS = 5.0
DEFAULT_QUEUE_SIZE = 65536      # spans waiting to be sent, per process (the SDK's default is 2048)
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
            "parentbased_traceidratio")


@dataclass(frozen=True)
class ExportSettings:
    endpoint: str                       # the traces URL
    protocol: str
    headers: tuple                      # ((name, value), ...): may hold secrets, never shown
    flush_seconds: float
    sampler: str
    sampler_ratio: float
    queue_size: int = 65536

    @property
    def shown_endpoint(self) -> str:
        return shown_url(self.endpoint)


def shown_url(url: str) -> str:
    """The URL for messages: no user, password, query or fragment (they may hold a token)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "(an unusable URL)"


def _either(name: str, environ) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>."""
    return settings.text(f"OTEL_EXPORTER_OTLP_TRACES_{name}", environ) or \
        settings.text(f"OTEL_EXPORTER_OTLP_{name}", environ)


def export_settings(environ=os.environ) -> ExportSettings | None:
    """Where spans go; None when no OTLP endpoint is configured (or export is turned off).
    ConfigurationError naming the variable when one is set to something unusable."""
    if (settings.text("OTEL_SDK_DISABLED", environ) or "").lower() == "true":
        return None
    exporters = (settings.text("OTEL_TRACES_EXPORTER", environ) or "otlp").lower()
    if "otlp" not in [part.strip() for part in exporters.split(",")]:
        return None
    endpoint = settings.text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", environ)
    name = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    if endpoint is None:
        base = settings.text("OTEL_EXPORTER_OTLP_ENDPOINT", environ)
        if base is None:
            return None
        name = "OTEL_EXPORTER_OTLP_ENDPOINT"
        endpoint = base.rstrip("/") + "/v1/traces"
    try:
        parts = urlsplit(endpoint)
        parts.port      # a port that is not a number raises here
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise ConfigurationError(f"{name}={shown(shown_url(endpoint))}: expected an http:// or https:// URL of an OTLP collector")
    protocol = (_either("PROTOCOL", environ) or "http/protobuf").lower()
    if protocol not in PROTOCOLS:
        raise ConfigurationError(f"OTEL_EXPORTER_OTLP_PROTOCOL={shown(protocol)}: expected one of {', '.join(PROTOCOLS)} "
                         "(librunner sends OTLP over HTTP; grpc is not supported)")
    headers = []
    for item in (_either("HEADERS", environ) or "").split(","):
        key, sep, value = item.partition("=")
        if not item.strip():
            continue
        if not sep or not key.strip():
            raise ConfigurationError("OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas "
                             "(the values are not shown: they may hold a key)")
        headers.append((key.strip().lower(), unquote(value.strip())))
    flush = settings.number("RUNNER_TRACE_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS, environ, maximum=600,
                            above_minimum=True)
    sampler = (settings.text("OTEL_TRACES_SAMPLER", environ) or "parentbased_always_on").lower()
    if sampler not in SAMPLERS:
        raise ConfigurationError(f"OTEL_TRACES_SAMPLER={shown(sampler)}: expected one of {', '.join(SAMPLERS)}")
    ratio = 1.0
    if sampler.endswith("traceidratio"):
        ratio = settings.number("OTEL_TRACES_SAMPLER_ARG", 1.0, environ, maximum=1.0)
    queue = settings.integer("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE_SIZE, environ)
    return ExportSettings(endpoint, protocol, tuple(headers), flush, sampler, ratio, queue)


def sampled(export: ExportSettings, trace_id: str, parent_sampled: bool | None) -> bool:
    """The sampler's decision for a run's trace (parent_sampled: the adopted traceparent's
    flag, None for a new trace), as the SDK's samplers of the same names decide."""
    name = export.sampler
    if name.startswith("parentbased_") and parent_sampled is not None:
        return parent_sampled
    name = name.removeprefix("parentbased_")
    if name == "always_on":
        return True
    if name == "always_off":
        return False
    # TraceIdRatioBased: the trace id's low 64 bits below ratio * 2^64.
    return int(trace_id[16:], 16) < round(export.sampler_ratio * (1 << 64))


def capture_content(environ=os.environ) -> bool:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true: prompts and answers go into AI spans."""
    return (settings.text("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", environ) or "").lower() == "true"


def trace_url(trace_id: str | None, environ=os.environ) -> str | None:
    """RUNNER_TRACE_URL_TEMPLATE with the trace id, e.g. http://localhost:16686/trace/{trace_id}."""
    template = settings.text("RUNNER_TRACE_URL_TEMPLATE", environ)
    if not template or not trace_id or "{trace_id}" not in template \
            or not template.lower().startswith(("http://", "https://")):
        return None         # only a web link goes into the page (no javascript: or file: URL)
    return template.replace("{trace_id}", trace_id)
