"""The report's timeline: a labelled Gantt chart of a LAST record, as rows of bars with
their places in the plot (the page draws them as inline SVG)."""
from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta, timezone

from runner.last.reader import ATTENTION_ORDER, skip_reason, task_status
from runner.last.record_values import ResultRows, as_dict, as_number, dicts_in, shortened, task_dependencies

TIMELINE_LIMIT = 500         # rows drawn in the timeline
PAGE_ROWS = 100              # rows per page of the timeline (pages after the first are folded)
GANTT_WIDTH, LABEL_WIDTH, ROW_HEIGHT, LABEL_CHARACTERS = 760.0, 200, 20, 30
# Bars of attempts by outcome: stronger than the graph's pastel boxes, so they read as bars.
BAR_COLOURS = {"completed": "#66bb6a", "failed": "#e53935", "timeout": "#fb8c00", "cancelled": "#9e9e9e",
               "skipped": "#cfd8dc", "pending": "#eceff1", "running": "#42a5f5"}


def _moment(stamp):
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _ms_between(start, end) -> float:
    return (end - start).total_seconds() * 1000.0


def _nice_step(span_ms: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten ms) giving at most `ticks` ticks."""
    step = 10.0 ** math.floor(math.log10(max(span_ms / ticks, 1e-3)))
    for factor in (1, 2, 5, 10):
        if span_ms / (step * factor) <= ticks:
            return step * factor
    return step * 10


def _row_order(table: ResultRows, critical: set, limit: int) -> tuple[list[dict], int]:
    """(the results drawn, how many there are): all of them when there are at most `limit`,
    else the unsuccessful ones, then the critical path, then the longest; drawn in order of
    start. Chosen from the table's columns (no result's dict made); only the `limit` kept
    are made."""
    task_ids, statuses, durations = table.task_ids, table.statuses, table.durations
    named = sum(1 for task_id in task_ids if isinstance(task_id, str))
    attention = ATTENTION_ORDER

    def weight(i):
        return (attention.get(statuses[i], 9) >= 5, task_ids[i] not in critical, -(as_number(durations[i]) or 0.0))

    # nsmallest is sorted(...)[:limit], ties kept in the results' order. The weight puts the
    # few results needing attention or on the critical path before all the others: those
    # are weighed one by one, the rest (a million completed tasks) only by their duration,
    # as (-duration, position) pairs made in one pass, without a call per result.
    early = [i for i, (task_id, status) in enumerate(zip(task_ids, statuses))
             if isinstance(task_id, str) and (attention.get(status, 9) < 5 or task_id in critical)]
    if len(early) >= limit:
        kept = heapq.nsmallest(limit, early, key=weight)
    else:
        rest = ((-((duration if type(duration) is int or type(duration) is float else as_number(duration)) or 0.0), i)
                for i, (task_id, status, duration) in enumerate(zip(task_ids, statuses, durations))
                if isinstance(task_id, str) and attention.get(status, 9) >= 5 and task_id not in critical)
        kept = sorted(early, key=weight) + [i for _, i in heapq.nsmallest(limit - len(early), rest)]
    if named <= limit:
        kept.sort()
    return [table.dict_of(i) for i in kept], named


def timeline(record: dict, limit: int = TIMELINE_LIMIT, critical_ids=(), table: ResultRows | None = None) -> dict:
    """A labelled Gantt chart: one row per task (every row names its task), its attempts as
    segments of one bar, the time it waited drawn apart from the time it ran, the critical
    path marked; rows in pages of PAGE_ROWS. Above `limit` tasks the unsuccessful, critical
    and longest are drawn (a note says how many in all). Only drawn rows' stamps are parsed.
    table: the record's ResultRows, when the caller has them already."""
    critical = set(critical_ids)
    table = table if table is not None else ResultRows(record)
    drawn, total = _row_order(table, critical, limit)
    timed, untimed = [], []
    run_start = _moment(as_dict(record.get("execution")).get("started_at")) or _moment(record.get("start_time"))
    for result in drawn:
        # A skipped task has the moment it was skipped as start and end: it gets no bar.
        start, end = _moment(result.get("start_time")), _moment(result.get("end_time"))
        usable = start is not None and end is not None and end >= start and result.get("skipped") is not True
        if usable:
            segments = _segments(result, start, end, run_start)
            # The attempts' exact times (offset_ms) place a fast task to the microsecond, where
            # its stamps only say the millisecond.
            first, last = min(s[0] for s in segments), max(s[1] for s in segments)
            start, end = (first, last) if _exact(segments) else (min(start, first), max(end, last))
            timed.append((start, end, result, segments))
        else:
            untimed.append((start, end, result))
    timed.sort(key=lambda row: (row[0], row[2]["task_id"]))
    origin = _moment(record.get("start_time"))
    if run_start is not None and any(_exact(row[3]) for row in timed):
        origin = run_start
    starts = [row[0] for row in timed]
    if starts and (origin is None or min(starts) < origin):
        origin = min(starts)
    finish = max([row[1] for row in timed], default=None)
    if origin is None or finish is None:
        return {"pages": [], "total": total, "drawn": 0, "span_ms": 0.0, "ticks": []}
    span_ms = max(_ms_between(origin, finish), 1e-3)
    scale = GANTT_WIDTH / span_ms
    dependencies = task_dependencies(record, {row[2]["task_id"] for row in timed})
    needed = {dep for deps in dependencies.values() for dep in deps}
    completed_at = {}
    if needed:
        for task_id, end in zip(table.task_ids, table.end_times):
            if isinstance(task_id, str) and task_id in needed and isinstance(end, str):
                completed_at[task_id] = _moment(end)
    for _, end, result, _ in timed:
        completed_at[result["task_id"]] = end
    rows = []
    for start, end, result, segments in timed:
        task_id = result["task_id"]
        ready = origin
        for dep in dependencies.get(task_id, ()):
            moment = completed_at.get(dep)
            if moment is not None and moment > ready:
                ready = moment
        first = min((s[0] for s in segments), default=start)
        waits = []
        if first > ready:
            waits.append((ready, first, "waiting for a slot" if dependencies.get(task_id) or ready == origin
                          else "waiting"))
        for (a_start, a_end, *_), (b_start, *_) in zip(segments, segments[1:]):
            if b_start > a_end:
                waits.append((a_end, b_start, "waiting to retry"))
        rows.append({
            "task_id": task_id, "label": shortened(task_id, LABEL_CHARACTERS), "status": task_status(result),
            "critical": task_id in critical,
            "runs": [{**_bar(_ms_between(origin, s) * scale, _ms_between(s, e) * scale),
                      "colour": BAR_COLOURS.get(outcome, "#90a4ae"),
                      "title": f"{task_id}: attempt {number} {outcome}, {_ms_between(s, e):.1f} ms"
                               f" from {_ms_between(origin, s):.1f} ms" + (f": {error}" if error else "")}
                     for s, e, number, outcome, error, _ in segments],
            "waits": [{**_bar(_ms_between(origin, a) * scale, _ms_between(a, b) * scale, 0.0),
                       "title": f"{task_id}: {what}, {_ms_between(a, b):.1f} ms"}
                      for a, b, what in waits if _ms_between(a, b) * scale >= 0.5],
            "note": None,
        })
    for _, _, result in untimed:
        status = task_status(result)
        reason = skip_reason(result) or result.get("error") or ""
        rows.append({"task_id": result["task_id"], "label": shortened(result["task_id"], LABEL_CHARACTERS),
                     "status": status, "critical": result["task_id"] in critical, "runs": [], "waits": [],
                     "note": f"{status}" + (f": {shortened(str(reason), 90)}" if reason else "")})
    step = _nice_step(span_ms)
    ticks = [{"x": t * step * scale, "label": _ms_text(t * step)} for t in range(int(span_ms / step) + 1)]
    pages = [{"first": number + 1, "last": min(number + PAGE_ROWS, len(rows)), "rows": rows[number:number + PAGE_ROWS]}
             for number in range(0, len(rows), PAGE_ROWS)]
    return {"pages": pages, "total": total, "drawn": len(rows), "span_ms": span_ms, "ticks": ticks,
            "width": GANTT_WIDTH, "label_width": LABEL_WIDTH, "row": ROW_HEIGHT}


def _bar(x: float, width: float, least: float = 1.5) -> dict:
    """A bar's place and width in the plot: at least `least` wide to be seen, and inside the
    plot (a bar at its right edge is drawn ending there, not past it)."""
    width = min(max(width, least), GANTT_WIDTH)
    return {"x": min(max(x, 0.0), GANTT_WIDTH - width), "width": width}


def _exact(segments: list[tuple]) -> bool:
    return all(segment[5] for segment in segments)


def _segments(result: dict, start, end, run_start=None) -> list[tuple]:
    """(start, end, number, outcome, error, exact) of each attempt; one segment when none are
    recorded. An attempt with offset_ms (ms after the run's start, on its clock) is exact."""
    out = []
    for attempt in dicts_in(as_dict(result.get("metadata")).get("attempts")):
        a_start, duration = _moment(attempt.get("started_at")), as_number(attempt.get("duration_ms"))
        if a_start is None or duration is None or duration < 0:
            continue
        offset = as_number(attempt.get("offset_ms"))
        # Exact when on this run's clock: a result reused by a resume keeps the offset of
        # the run that made it, whose start was another.
        exact = (run_start is not None and offset is not None and offset >= 0
                 and abs(_ms_between(a_start, run_start + timedelta(milliseconds=offset))) <= 2.0)
        if exact:
            a_start = run_start + timedelta(milliseconds=offset)
        a_end = a_start + timedelta(milliseconds=duration)
        error = attempt.get("error")
        out.append((a_start, a_end, attempt.get("number"), str(attempt.get("outcome") or "?"),
                    shortened(str(error), 120) if error else None, exact))
    if not out:
        out.append((start, end, 1, str(task_status(result)), None, False))
    return out


def _ms_text(value: float) -> str:
    """An axis label: 0 ms, 250 ms, 1.5 s, 2 min 5 s."""
    if value < 1000:
        return f"{value:g} ms"
    if value < 60_000:
        return f"{value / 1000:g} s"
    minutes, seconds = divmod(value / 1000, 60)
    return f"{minutes:.0f} min {seconds:.0f} s"
