"""report.html: a self-contained page for a person to see what a run did.

Rendered by Jinja2 in a sandbox with autoescaping: task outputs, errors and ids are
untrusted text. The page has no scripts and no external assets (inline CSS, inline SVG,
the graph as a data: image, where SVG scripts never run), and a Content-Security-Policy
that forbids scripts anyway. At most `task_limit` tasks are detailed (unsuccessful ones
first) and long outputs are cut, so the file stays bounded at 100k tasks; last.json
holds everything.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import orjson
from jinja2 import ChainableUndefined, PackageLoader
from jinja2.sandbox import SandboxedEnvironment

from runner.graph_render import STATUS_COLOURS, STATUS_ORDER

OUTPUT_LIMIT = 8000          # characters of one task's output shown
TIMELINE_LIMIT = 400         # bars drawn in the timeline
ATTENTION_ORDER = {"failed": 0, "timeout": 1, "cancelled": 2, "pending": 3, "running": 4, "skipped": 5, "completed": 6}

_environment = SandboxedEnvironment(
    loader=PackageLoader("runner", "report/templates"),
    autoescape=True,
    undefined=ChainableUndefined,  # records of older versions lack some fields
    trim_blocks=True,
    lstrip_blocks=True,
)


def _pretty(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            text = repr(value)
    if len(text) > OUTPUT_LIMIT:
        text = text[:OUTPUT_LIMIT] + f"\n\u2026 ({len(text) - OUTPUT_LIMIT} more characters in last.json)"
    return text


def _moment(stamp):
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _uniform(stamps) -> bool:
    """Stamps of one length ending in Z order like their times (compared without parsing)."""
    first = len(stamps[0])
    return all(len(stamp) == first and stamp[-1] == "Z" for stamp in stamps)


def timeline(record: dict, limit: int = TIMELINE_LIMIT) -> dict:
    """Bars (task, start offset, length, status) for the tasks with both timestamps.

    Above `limit` tasks the longest are drawn. Only the drawn bars' stamps are parsed
    when every stamp has the executor's uniform format: 100k parses cost more than the
    rest of the page.
    """
    spans = [(result["started_at"], result["completed_at"], result["task_id"], result["status"],
              result.get("duration_ms"))
             for result in record["task_results"].values()
             if isinstance(result.get("started_at"), str) and isinstance(result.get("completed_at"), str)]
    timed = len(spans)
    if spans and _uniform([s[0] for s in spans] + [s[1] for s in spans]):
        origin, finish = _moment(min(s[0] for s in spans)), _moment(max(s[1] for s in spans))
        if len(spans) > limit:
            spans = sorted(spans, key=lambda s: s[4] if isinstance(s[4], (int, float)) else 0.0,
                           reverse=True)[:limit]
        parsed = [(_moment(s[0]), _moment(s[1]), s[2], s[3]) for s in spans]
    else:
        parsed = [(_moment(s[0]), _moment(s[1]), s[2], s[3]) for s in spans]
        parsed = [p for p in parsed if p[0] is not None and p[1] is not None]
        origin = min((p[0] for p in parsed), default=None)
        finish = max((p[1] for p in parsed), default=None)
        if len(parsed) > limit:
            parsed = sorted(parsed, key=lambda p: p[1] - p[0], reverse=True)[:limit]
    parsed = [p for p in parsed if p[0] is not None and p[1] is not None and p[1] >= p[0]]
    if not parsed or origin is None or finish is None:
        return {"bars": [], "total": 0, "span_ms": 0.0}
    span_ms = max((finish - origin).total_seconds() * 1000.0, 1e-3)
    parsed.sort(key=lambda p: (p[0], p[2]))
    width = 900.0
    bars = [{"task_id": task_id, "status": status,
             "x": (start - origin).total_seconds() * 1000.0 / span_ms * width,
             "width": max((end - start).total_seconds() * 1000.0 / span_ms * width, 1.0),
             "start_ms": (start - origin).total_seconds() * 1000.0,
             "duration_ms": (end - start).total_seconds() * 1000.0,
             "colour": STATUS_COLOURS.get(status, "#ffffff")}
            for start, end, task_id, status in parsed]
    row = max(3, min(14, 1200 // len(bars)))   # at most ~1200 px tall however many bars
    return {"bars": bars, "total": max(timed, len(bars)), "span_ms": span_ms, "width": width, "row": row}


def _tasks(record: dict, limit: int) -> list[dict]:
    results = list(record["task_results"].values())
    if len(results) > limit:
        results = sorted(results, key=lambda r: ATTENTION_ORDER.get(r["status"], 9))[:limit]
    artifacts_by_task: dict = {}
    for artifact in record.get("artifacts", ()):
        artifacts_by_task.setdefault(artifact["task_id"], []).append(artifact)
    shown = []
    for result in results:
        metadata = result.get("metadata") or {}
        attempts = metadata.get("attempts") if isinstance(metadata.get("attempts"), list) else []
        shown.append({
            "id": result["task_id"], "status": result["status"], "colour": STATUS_COLOURS.get(result["status"], "#fff"),
            "duration_ms": result.get("duration_ms"), "started_at": result.get("started_at"),
            "completed_at": result.get("completed_at"), "output": _pretty(result.get("output")),
            "error": result.get("error"), "attempts": [a for a in attempts if isinstance(a, dict)],
            "ai": metadata.get("ai") if isinstance(metadata.get("ai"), dict) else None,
            "skipped_reason": metadata.get("skipped_reason"),
            "artifacts": artifacts_by_task.get(result["task_id"], []),
        })
    return shown


def render_report(record: dict, graph_svg: str | None = None, *, task_limit: int = 1000,
                  graph_note: str | None = None) -> str:
    """The HTML page of a LAST record; graph_svg is drawn inline as an image when given."""
    statistics = record.get("statistics", {})
    counts = statistics.get("status_counts", {})
    total = statistics.get("total_tasks", len(record["task_results"])) or 0
    status_bar = [{"status": s, "count": counts.get(s, 0), "colour": STATUS_COLOURS[s],
                   "percent": 100.0 * counts.get(s, 0) / total if total else 0.0}
                  for s in STATUS_ORDER if counts.get(s)]
    graph_image = ("data:image/svg+xml;base64," + base64.b64encode(graph_svg.encode("utf-8")).decode("ascii")
                   if graph_svg else None)
    tasks = _tasks(record, task_limit)
    return _environment.get_template("report.html.j2").render(
        record=record, statistics=statistics, counts=counts, total=total, status_bar=status_bar,
        timeline=timeline(record), graph_image=graph_image, graph_note=graph_note, tasks=tasks,
        hidden_tasks=max(len(record["task_results"]) - len(tasks), 0),
        artifacts=record.get("artifacts", []),
        artifact_errors=(record.get("metadata") or {}).get("artifact_errors", []),
        execution=record.get("execution") or {},
    )
