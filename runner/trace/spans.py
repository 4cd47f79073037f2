"""The spans of a run: one root, a span per task attempt, a span per AI call inside it.

Made from what the LAST file records (each task's attempts with their started_at and
duration_ms, its AI accounting), whichever way those facts arrive: a LAST record, a
run's journal, or the executor's task_finished events during a live run. One builder
for all three, so a trace exported live and one made from the files later are the same.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from runner import librunner
from runner.trace.ids import TraceIds

UNSUCCESSFUL = ("failed", "timeout", "cancelled")
# The GenAI conventions' provider names (gen_ai.provider.name) of librunner's providers.
GENAI_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "kserve": "kserve", "echo": "echo"}
# Sampling settings the GenAI conventions name.
GENAI_REQUEST = {"temperature": "gen_ai.request.temperature", "top_p": "gen_ai.request.top_p",
                 "max_tokens": "gen_ai.request.max_tokens", "seed": "gen_ai.request.seed",
                 "top_k": "gen_ai.request.top_k"}


@dataclass
class Span:
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    kind: str = "internal"                  # "internal" or "client" (an AI call)
    attributes: dict = field(default_factory=dict)
    status: str = "unset"                   # "unset", "ok" or "error"
    message: str | None = None              # the error, with status "error"
    events: list = field(default_factory=list)   # (name, time_ns, attributes)


@dataclass
class RunTrace:
    ids: TraceIds
    root: Span
    spans: list             # every span but the root: attempts, then their AI calls

    def all_spans(self) -> list:
        return [self.root, *self.spans]


_SECONDS: dict = {}         # "2026-11-24T05:06:32" -> seconds since the epoch (stamps share seconds)


def stamp_ns(text) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 stamp ("2026-11-24T05:06:32.123Z"), or None."""
    if not isinstance(text, str):
        return None
    if len(text) == 24 and text[19] == "." and text[23] == "Z" and text[20:23].isdigit():
        # The LAST file's own form, the one every attempt has: parsed once per second.
        seconds = _SECONDS.get(text[:19])
        if seconds is None:
            seconds = _whole_seconds(text[:19] + "+00:00")
            if seconds is None:
                return None
            if len(_SECONDS) > 100_000:
                _SECONDS.clear()
            _SECONDS[text[:19]] = seconds
        return seconds * 1_000_000_000 + int(text[20:23]) * 1_000_000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    # Exact integer arithmetic: a float of seconds since 1970 cannot hold microseconds.
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000


def _whole_seconds(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


def _ms_ns(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return 0
    return int(round(value * 1_000_000))


def _int(value) -> int | None:
    return value if type(value) is int else None


def task_facts_of_result(result: dict) -> dict:
    """What the span builder reads of a task result as a LAST file (task_results values) or
    a journal (TaskResult.to_dict()) holds it."""
    metadata = result.get("metadata") if isinstance(result.get("metadata"), dict) else {}
    status = "skipped" if result.get("skipped") is True else result.get("status")
    return {"task_id": result.get("task_id"), "status": status, "error": result.get("error"),
            "task_type": metadata.get("task_type"), "attempts": metadata.get("attempts"),
            "ai": metadata.get("ai"), "output": result.get("output"),
            "completed_at": result.get("end_time", result.get("completed_at"))}


def task_spans(ids: TraceIds, task: dict, *, capture_content: bool = False, open_end_ns: int | None = None) -> list:
    """The spans of one task (task_facts_of_result's dict, or a task_finished event): a
    span per attempt, retries as siblings; an AI call span per call of the attempt that
    produced the task's AI accounting. A task that never started (skipped, cancelled
    before it began) gets one instant span, attempt 0. An attempt without its end (a run
    killed) ends at open_end_ns, marked unfinished."""
    task_id = str(task.get("task_id"))
    task_type = task.get("task_type")
    attempts = [a for a in task.get("attempts") or () if isinstance(a, dict)]
    root_id = ids.root_span_id
    spans = []
    for record in attempts:
        number = _int(record.get("number")) or len(spans) + 1
        start = stamp_ns(record.get("started_at"))
        if start is None:
            continue
        unfinished = record.get("outcome") is None
        end = start + _ms_ns(record.get("duration_ms")) if not unfinished else max(start, open_end_ns or start)
        outcome = record.get("outcome") if not unfinished else "unfinished"
        attributes = {"librunner.task.id": task_id, "librunner.task.attempt": number,
                      "librunner.task.status": outcome}
        if isinstance(task_type, str):
            attributes["librunner.task.type"] = task_type
        if record.get("fault"):
            attributes["librunner.chaos.fault"] = str(record["fault"])
        span = Span(ids.task_span_id(task_id, number), root_id, task_id, start, end, attributes=attributes)
        if outcome in UNSUCCESSFUL:
            span.status, span.message = "error", str(record.get("error") or outcome)
        spans.append(span)
    if not spans:
        moment = stamp_ns(task.get("completed_at")) or open_end_ns
        if moment is None:
            return []
        attributes = {"librunner.task.id": task_id, "librunner.task.attempt": 0,
                      "librunner.task.status": str(task.get("status"))}
        if isinstance(task_type, str):
            attributes["librunner.task.type"] = task_type
        if task.get("error"):
            attributes["librunner.task.reason"] = str(task["error"])
        return [Span(ids.task_span_id(task_id, 0), root_id, task_id, moment, moment, attributes=attributes)]
    ai = task.get("ai")
    if isinstance(ai, dict) and spans[-1].attributes["librunner.task.status"] == "completed":
        spans += ai_spans(ids, spans[-1], ai, task.get("output"), capture_content)
    return spans


def ai_spans(ids: TraceIds, attempt: Span, ai: dict, output, capture_content: bool) -> list:
    """The AI call spans of an attempt, from its accounting (explore mode: one per alternative)."""
    alternatives = ai.get("alternatives")
    if isinstance(alternatives, list) and alternatives:
        calls = [(c, c.get("sampling"), c.get("text")) for c in alternatives if isinstance(c, dict)]
    else:
        text = output.get("text") if isinstance(output, dict) else None
        calls = [(ai, ai.get("sampling"), text)]
    prompt = ai.get("prompt")
    task_id = attempt.attributes["librunner.task.id"]
    number = attempt.attributes["librunner.task.attempt"]
    spans = []
    for index, (call, sampling, text) in enumerate(calls):
        model = call.get("model")
        requested = call.get("request_model", ai.get("request_model")) or model
        start = stamp_ns(call.get("started_at")) or attempt.start_ns
        end = start + _ms_ns(call.get("latency_ms"))
        attributes = {"gen_ai.operation.name": "chat",
                      "gen_ai.provider.name": GENAI_PROVIDERS.get(call.get("provider"), str(call.get("provider")))}
        if isinstance(requested, str):
            attributes["gen_ai.request.model"] = requested
        if isinstance(model, str):
            attributes["gen_ai.response.model"] = model
        for key, name in GENAI_REQUEST.items():
            value = sampling.get(key) if isinstance(sampling, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[name] = value
        if _int(call.get("prompt_tokens")) is not None:
            attributes["gen_ai.usage.input_tokens"] = call["prompt_tokens"]
        if _int(call.get("completion_tokens")) is not None:
            attributes["gen_ai.usage.output_tokens"] = call["completion_tokens"]
        attributes["librunner.task.id"] = task_id
        events = []
        ttft = call.get("time_to_first_token_ms")
        if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) and ttft >= 0:
            events.append(("gen_ai.first_token", start + _ms_ns(ttft),
                           {"gen_ai.response.time_to_first_token": ttft / 1000.0}))
        if capture_content:
            if isinstance(prompt, str):
                attributes["gen_ai.input.messages"] = json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": prompt}]}], ensure_ascii=False)
            if isinstance(text, str):
                attributes["gen_ai.output.messages"] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": text}],
                      "finish_reason": "stop"}], ensure_ascii=False)
        name = f"chat {requested}" if isinstance(requested, str) else "chat"
        spans.append(Span(ids.ai_span_id(task_id, number, index), attempt.span_id, name, start, end,
                          kind="client", attributes=attributes, events=events))
    return spans


def root_span(ids: TraceIds, facts: dict) -> Span:
    """The run's span. facts: alt_id, last_id, mode, seed, status, counts (status -> n),
    total, interrupted, resumed_from, start_ns, end_ns."""
    attributes = {"librunner.alt.id": str(facts.get("alt_id")), "librunner.last.id": str(facts.get("last_id")),
                  "librunner.run.mode": str(facts.get("mode")), "librunner.run.status": str(facts.get("status"))}
    if _int(facts.get("seed")) is not None:
        attributes["librunner.run.seed"] = facts["seed"]
    if facts.get("interrupted"):
        attributes["librunner.run.interrupted"] = True
    if isinstance(facts.get("resumed_from"), str):
        attributes["librunner.run.resumed_from"] = facts["resumed_from"]
    counts = facts.get("counts") or {}
    total = _int(facts.get("total"))
    if total is not None:
        attributes["librunner.tasks.total"] = total
    for status in ("completed", "failed", "timeout", "cancelled", "skipped"):
        if _int(counts.get(status)) is not None:
            attributes[f"librunner.tasks.{status}"] = counts[status]
    span = Span(ids.root_span_id, ids.parent_span_id, f"run {facts.get('alt_id')}",
                facts["start_ns"], max(facts["start_ns"], facts["end_ns"]), attributes=attributes)
    unsuccessful = sum(_int(counts.get(s)) or 0 for s in (*UNSUCCESSFUL, "skipped"))
    if facts.get("interrupted"):
        span.status, span.message = "error", "the run was interrupted"
    elif unsuccessful:
        span.status = "error"
        span.message = f"{unsuccessful} of {total if total is not None else '?'} tasks did not complete"
    return span


def trace_of_record(record: dict, *, capture_content: bool = False) -> RunTrace:
    """The trace of a finished run from its LAST record."""
    from runner.last.reader import task_status

    ids = TraceIds.of_record(record)
    execution = record.get("execution") if isinstance(record.get("execution"), dict) else {}
    statistics = record.get("statistics") if isinstance(record.get("statistics"), dict) else {}
    results = [r for r in record["task_results"].values() if isinstance(r, dict)]
    counts = statistics.get("status_counts")
    if not isinstance(counts, dict):
        counts = {}
        for result in results:
            counts[task_status(result)] = counts.get(task_status(result), 0) + 1
    start = stamp_ns(record.get("start_time"))
    end = stamp_ns(record.get("end_time"))
    spans = []
    for result in results:
        spans += task_spans(ids, task_facts_of_result(result), capture_content=capture_content, open_end_ns=end)
    start, end = _bounds(start, end, spans)
    root = root_span(ids, {"alt_id": record.get("alt_file_id"), "last_id": record.get("id"), "mode": record.get("mode"),
                           "seed": execution.get("seed"), "status": record.get("status"), "counts": counts,
                           "total": statistics.get("total_tasks", len(results)),
                           "interrupted": execution.get("interrupted"),
                           "resumed_from": execution.get("resumed_from"), "start_ns": start, "end_ns": end})
    return RunTrace(ids, root, spans)


def trace_of_journal(directory, *, capture_content: bool = False) -> RunTrace:
    """The trace of a run from its journal: one still going, one interrupted (killed) or
    one that ended without its LAST file. Attempts still open end at the last moment the
    journal records, marked unfinished. ValueError/JournalError/OSError when there is no readable journal."""
    from runner.execution.journal import JOURNAL_NAME, RunState, read_records

    run = RunState(directory)       # the journal's own checks (JournalError naming a bad line)
    if not run.start:
        raise ValueError(f"{directory}: the run was killed before its journal's first record: nothing to trace")
    ids = TraceIds.recorded(run.last_id, run.start.get("trace"))
    try:
        alt = librunner.parse_alt_file(run.alt_source())
        types = {task.id: task.task_type for task in alt.tasks}
        total = len(types)
    except (OSError, librunner.RunnerError):      # JournalError, AltValidationError
        types, total = {}, None
    open_attempts: dict = {}       # task id -> attempt records in order
    latest = stamp_ns(run.start.get("started_at")) or 0
    for record in read_records(Path(directory) / JOURNAL_NAME):
        kind = record.get("type")
        if kind == "attempt_started" and isinstance(record.get("task_id"), str):
            attempts = open_attempts.setdefault(record["task_id"], [])
            attempts.append({"number": record.get("attempt"), "started_at": record.get("started_at"),
                             "duration_ms": None, "outcome": None, "error": None,
                             "fault": (record.get("fault") or {}).get("kind")
                             if isinstance(record.get("fault"), dict) else None})
            latest = max(latest, stamp_ns(record.get("started_at")) or 0)
        elif kind == "attempt_ended" and isinstance(record.get("task_id"), str):
            for attempt in open_attempts.get(record["task_id"], ()):
                if attempt["number"] == record.get("attempt"):
                    attempt.update(duration_ms=record.get("duration_ms"), outcome=record.get("outcome"),
                                   error=record.get("error"))
                    began = stamp_ns(attempt["started_at"])
                    if began is not None:
                        latest = max(latest, began + _ms_ns(record.get("duration_ms")))
    for result in run.results.values():
        latest = max(latest, stamp_ns(result.get("completed_at")) or 0)
    end = stamp_ns((run.ended or {}).get("ended_at")) or latest
    spans = []
    for result in run.results.values():
        spans += task_spans(ids, task_facts_of_result(result), capture_content=capture_content, open_end_ns=end)
    for task_id, attempts in open_attempts.items():
        if task_id in run.results:
            continue
        spans += task_spans(ids, {"task_id": task_id, "task_type": types.get(task_id), "attempts": attempts},
                            capture_content=capture_content, open_end_ns=end)
    start, end = _bounds(stamp_ns(run.start.get("started_at")), end, spans)
    counts = run.counts()
    done = sum(counts.values())
    status = "success" if total is not None and counts.get("completed", 0) == total else \
        "failure" if not counts.get("completed") else "partialsuccess"
    root = root_span(ids, {"alt_id": run.start.get("alt_id"), "last_id": run.last_id, "mode": run.start.get("mode"),
                           "seed": run.start.get("seed"), "status": status if run.ended else run.state,
                           "counts": counts, "total": total,
                           "interrupted": (run.ended or {}).get("interrupted", True) if run.state != "running"
                           else False, "resumed_from": run.start.get("resumed_from"),
                           "start_ns": start, "end_ns": end})
    if total is not None and done < total and not root.message and run.state != "running":
        root.status, root.message = "error", f"the run ended with {total - done} of {total} tasks not done"
    return RunTrace(ids, root, spans)


def _bounds(start: int | None, end: int | None, spans: list) -> tuple[int, int]:
    """The run's span: the recorded times, else those of its tasks."""
    if start is None:
        start = min((s.start_ns for s in spans), default=end or 0)
    if end is None:
        end = max((s.end_ns for s in spans), default=start)
    return start, max(start, end)
