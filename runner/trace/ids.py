"""The ids of a run's trace: W3C trace context in, span ids out, traceparent for AI calls.

Span ids are derived from the trace id, the LAST id and what the span is (a task's attempt,
an AI call of it), not drawn at random: the trace that `python -m runner trace` makes from
a LAST file later is then the very trace a live export sent (same ids, same times), and the
worker thread of an AI call knows the traceparent to send without asking anyone.

No opentelemetry import here: a run that only joins a trace (TRACEPARENT, no collector)
or a `trace` command writing a file needs none.
"""
from __future__ import annotations

import contextvars
import hashlib
import os
import re
from dataclasses import dataclass

# https://www.w3.org/TR/trace-context/#traceparent-header-field-values
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

# The traceparent an AI call made on this thread sends (set around the call by the ai_prompt
# task, read by the HTTP and gRPC transports). A context variable: each worker thread has its own.
outgoing = contextvars.ContextVar("runner_traceparent", default=None)


def with_trace_context(headers: dict) -> dict:
    """HTTP headers plus the traceparent of the traced AI call in progress on this thread."""
    traceparent = outgoing.get()
    return headers if traceparent is None else {**headers, "traceparent": traceparent}


def trace_metadata(metadata):
    """gRPC call metadata plus the traceparent of the traced AI call in progress on this thread."""
    traceparent = outgoing.get()
    return metadata if traceparent is None else (*(metadata or ()), ("traceparent", traceparent))


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) of a traceparent header value; None when it is
    absent or not one (a bad value is ignored, as the W3C text says a receiver should)."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def derived_span_id(*parts) -> str:
    """A span id (16 hex digits, never all zero) that depends only on `parts`."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode("utf-8", "backslashreplace"),
                             digest_size=8).hexdigest()
    return digest if digest != _ZERO_SPAN else "0000000000000001"


def trace_id_of_last_id(last_id: str) -> str:
    """The trace id of a LAST file that recorded none (a run that was not traced): its
    UUID's 32 hex digits, or a hash of whatever id it has."""
    digits = last_id.replace("-", "").lower() if isinstance(last_id, str) else ""
    if re.fullmatch(r"[0-9a-f]{32}", digits) and digits != _ZERO_TRACE:
        return digits
    return hashlib.blake2b(str(last_id).encode("utf-8", "backslashreplace"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class TraceIds:
    """Where a run's spans hang: its trace, its root span, the span it joined (TRACEPARENT).

    The root span id is drawn at random when the run starts and recorded (the journal's
    run_started, the LAST file's execution); the ids of its attempts and AI calls derive
    from it, so two runs that join one trace never share a span id."""
    trace_id: str
    span_id: str                            # the run's (root) span
    parent_span_id: str | None = None       # the adopted traceparent's span, or None
    sampled: bool = True

    @classmethod
    def for_run(cls, traceparent: str | None = None) -> "TraceIds":
        """A new run's ids: in the trace of `traceparent` when it is one, else a new trace."""
        span_id = os.urandom(8).hex()
        if span_id == _ZERO_SPAN:
            span_id = "0000000000000001"
        adopted = parse_traceparent(traceparent)
        if adopted is not None:
            trace_id, parent, sampled = adopted
            return cls(trace_id, span_id, parent, sampled)
        trace_id = os.urandom(16).hex()
        return cls(trace_id if trace_id != _ZERO_TRACE else "0" * 31 + "1", span_id, None, True)

    @classmethod
    def of_record(cls, record: dict) -> "TraceIds":
        """The ids a LAST record's run had (its execution's trace facts), or, for a run that
        was not traced, ids derived from its LAST id."""
        execution = record.get("execution") if isinstance(record.get("execution"), dict) else {}
        return cls.recorded(record.get("id") or "", execution)

    @classmethod
    def recorded(cls, last_id: str, facts: dict | None) -> "TraceIds":
        """From facts() as a journal or a LAST file recorded them (None: not traced)."""
        facts = facts if isinstance(facts, dict) else {}
        trace_id, span_id, parent = facts.get("trace_id"), facts.get("trace_span_id"), facts.get("trace_parent_span_id")
        if not _is_hex(trace_id, 32):
            trace_id = trace_id_of_last_id(last_id)
        if not _is_hex(span_id, 16):
            span_id = derived_span_id(trace_id, last_id, "run")
        return cls(trace_id, span_id, parent if _is_hex(parent, 16) else None, True)

    @property
    def root_span_id(self) -> str:
        return self.span_id

    def task_span_id(self, task_id: str, attempt: int) -> str:
        """A task's attempt (attempt 0: a task that never started, skipped or cancelled)."""
        return derived_span_id(self.trace_id, self.span_id, "task", task_id, attempt)

    def ai_span_id(self, task_id: str, attempt: int, call: int) -> str:
        return derived_span_id(self.trace_id, self.span_id, "ai", task_id, attempt, call)

    def traceparent(self, span_id: str) -> str:
        return f"00-{self.trace_id}-{span_id}-{'01' if self.sampled else '00'}"

    def facts(self) -> dict:
        """What the journal and the LAST file's execution record of them."""
        facts = {"trace_id": self.trace_id, "trace_span_id": self.span_id}
        if self.parent_span_id is not None:
            facts["trace_parent_span_id"] = self.parent_span_id
        return facts


def _is_hex(value, digits: int) -> bool:
    return isinstance(value, str) and len(value) == digits and re.fullmatch(r"[0-9a-f]+", value) is not None \
        and value.strip("0") != ""
