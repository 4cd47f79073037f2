"""The views the report page is rendered from: every field present (None when the record
lacks it), texts cut to bounded lengths, unsuccessful tasks first. The page never reads the
record itself, and its undefined is strict, so a field the template names but no view has
fails loudly instead of rendering nothing.
"""
from __future__ import annotations

import base64
import itertools
import re
import reprlib

import orjson

from runner.last.artifacts import is_stored_path
from runner.last.graph_drawing import STATUS_COLOURS, STATUS_ORDER
from runner.last.reader import ATTENTION_ORDER, run_mode, skip_reason, task_status
from runner.last.record_values import (ResultRows, as_dict, as_number, dicts_in, graph_nodes, picked, shortened,
                                      task_dependencies)
from runner.last.timeline import timeline

OUTPUT_LIMIT = 8000          # characters of one task's output shown
ANSWER_FOLD_CHARACTERS, ANSWER_FOLD_LINES = 1200, 25   # longer answers are folded
ARTIFACT_ERRORS_SHOWN = 500
ATTEMPT_FIELDS = ("number", "started_at", "duration_ms", "outcome", "error", "fault")
AI_FIELDS = ("provider", "model", "prompt_tokens", "completion_tokens", "latency_ms")
TOKEN_FIELDS = ("provider", "calls", "prompt_tokens", "completion_tokens")
FAULT_FIELDS = ("task_id", "attempt", "kind", "detail")
EXECUTION_ROWS = ("mode", "seed", "fault_rate", "max_concurrency", "started_at", "ended_at", "wall_time_ms",
                  "interrupted", "trace_id")
RUN_STATUS_TEXT = {"success": "success", "partialsuccess": "partial success", "failure": "failure"}


def _clipped(value, budget: list, depth: int = 0):
    """value cut down to about budget[0] characters of strings, for display: a 30 MB output
    must not be written out as JSON whole only to show its first 8000 characters."""
    if budget[0] <= 0 or depth > 64:
        budget[0] = -1
        return "\u2026"
    if isinstance(value, str):
        budget[0] -= len(value) + 2
        return value if budget[0] >= 0 else value[: len(value) + budget[0]]
    if isinstance(value, dict):
        clipped = {}
        for key, item in value.items():
            if budget[0] <= 0:
                budget[0] = -1
                break
            budget[0] -= len(str(key)) + 4
            clipped[key] = _clipped(item, budget, depth + 1)
        return clipped
    if isinstance(value, (list, tuple)):
        clipped = []
        for item in value:
            if budget[0] <= 0:
                budget[0] = -1
                break
            clipped.append(_clipped(item, budget, depth + 1))
        return clipped
    budget[0] -= 8
    return value


def _pretty(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if len(value) <= OUTPUT_LIMIT:
            return value
        return value[:OUTPUT_LIMIT] + f"\n\u2026 ({len(value) - OUTPUT_LIMIT} more characters in last.json)"
    budget = [OUTPUT_LIMIT]
    shown = _clipped(value, budget)
    try:
        text = orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = reprlib.repr(value)
    if budget[0] < 0 or len(text) > OUTPUT_LIMIT:
        text = text[:OUTPUT_LIMIT] + "\n\u2026 (more characters in last.json)"
    return text


def _run(record: dict) -> dict:
    """The header facts of the run."""
    generator = as_dict(as_dict(record.get("metadata")).get("generator"))
    return {
        "id": record["id"], "title": record.get("title") or "", "alt_file_id": record.get("alt_file_id"),
        "mode": run_mode(record), "created_at": record.get("created_at"), "summary": record.get("summary") or "",
        "status": record.get("status") or "",
        "status_text": RUN_STATUS_TEXT.get(record.get("status"), record.get("status") or ""),
        "success_rate": as_number(record.get("success_rate")) or 0.0,
        "execution_time_ms": as_number(record.get("execution_time_ms")) or 0.0,
        "generator_version": generator.get("version") or "",
        "interrupted": _interruption(as_dict(record.get("execution"))),
    }


def _interruption(execution: dict) -> str | None:
    """What the top of the page says of a run that was stopped before its end, or None."""
    if execution.get("interrupted") is not True:
        return None
    by = execution.get("interrupted_by")
    return ("Interrupted" + (f" by {by}" if isinstance(by, str) and by else "")
            + ": the run was stopped before its end; pending tasks were cancelled. "
              "python -m runner resume on its LAST directory runs the rest.")


def _statistics(statistics: dict) -> dict:
    critical = as_dict(statistics.get("critical_path"))
    task_ids = critical.get("task_ids")
    return {
        "total_task_time_ms": as_number(statistics.get("total_task_time_ms")) or 0.0,
        "parallelism": as_number(statistics.get("parallelism")),
        "critical_path": {"duration_ms": as_number(critical.get("duration_ms")) or 0.0,
                          "task_ids": [str(t) for t in task_ids] if isinstance(task_ids, list) else []}
        if critical else None,
        "retries": as_number(as_dict(statistics.get("retries")).get("total")),
        "tokens": {str(model): picked(usage, TOKEN_FIELDS)
                   for model, usage in as_dict(statistics.get("tokens")).items() if isinstance(usage, dict)},
    }


def _artifact(artifact: dict) -> dict:
    """An artifact's row; href only for a path of the stored form (the file is editable)."""
    path = artifact.get("path")
    sha256 = artifact.get("sha256")
    return {**picked(artifact, ("name", "task_id", "artifact_type", "mime_type", "size_bytes")),
            "href": path if is_stored_path(path) else None,
            "sha256": sha256[:16] if isinstance(sha256, str) else ""}


def _descriptions(record: dict, wanted: set) -> dict:
    """Task id -> its description, from the execution graph's nodes (the ALT file's text),
    for the tasks in `wanted`."""
    descriptions_of = getattr(record.get("execution_graph"), "descriptions_of", None)
    typed = descriptions_of(wanted) if descriptions_of is not None else None
    if typed is not None:       # the core's graph: no node made
        return typed
    return {node.get("id"): node.get("description") for node in graph_nodes(record) if node.get("id") in wanted}


FENCE = re.compile(r"^```[ \t]*([\w+.#-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _answer(output) -> dict | None:
    """An AI answer ({"text": ...}) as text and code blocks, for people: None for other outputs
    (shown as JSON). Long answers are folded; past OUTPUT_LIMIT characters they are cut."""
    if not isinstance(output, dict) or not isinstance(output.get("text"), str):
        return None
    text = output["text"]
    cut = len(text) - OUTPUT_LIMIT if len(text) > OUTPUT_LIMIT else 0
    if cut:
        text = text[:OUTPUT_LIMIT]
    blocks, position = [], 0
    for match in FENCE.finditer(text):
        if match.start() > position:
            blocks.append({"code": False, "text": text[position:match.start()].strip("\n"), "language": ""})
        blocks.append({"code": True, "text": match.group(2).rstrip("\n"), "language": match.group(1)})
        position = match.end()
    if position < len(text):
        blocks.append({"code": False, "text": text[position:].strip("\n"), "language": ""})
    lines = text.count("\n") + 1
    first_line = text.strip().split("\n", 1)[0] if text.strip() else ""
    return {"blocks": [b for b in blocks if b["text"] or b["code"]], "characters": len(output["text"]),
            "lines": lines, "folded": len(text) > ANSWER_FOLD_CHARACTERS or lines > ANSWER_FOLD_LINES,
            "first_line": shortened(first_line, 100), "cut": cut}


def _ai(ai) -> dict | None:
    if not isinstance(ai, dict):
        return None
    prompt = ai.get("prompt")
    return {**picked(ai, AI_FIELDS), "ttft_ms": as_number(ai.get("time_to_first_token_ms")),
            "latency_ms": as_number(ai.get("latency_ms")),
            "prompt": _pretty(prompt) if isinstance(prompt, str) else None,
            "prompt_characters": len(prompt) if isinstance(prompt, str) else 0,
            "alternatives": len(ai["alternatives"]) if isinstance(ai.get("alternatives"), list) else None}


def _tasks(record: dict, table: ResultRows, artifacts: list[dict], limit: int, critical: set) -> list[dict]:
    """The task details, unsuccessful ones first (then in file order)."""
    # The first `limit` by (needs attention, place): the few statuses told apart once, not per result.
    statuses = table.statuses
    attention = {status for status in set(statuses) if ATTENTION_ORDER.get(status, 9) < 5}
    limit = max(limit, 0)
    chosen = [i for i, status in enumerate(statuses) if status in attention][:limit] if attention else []
    if len(chosen) < limit:
        chosen += itertools.islice((i for i, status in enumerate(statuses) if status not in attention),
                                   limit - len(chosen))
    results = [table.dict_of(i) for i in chosen]
    artifacts_by_task: dict = {}
    for artifact in artifacts:
        artifacts_by_task.setdefault(artifact["task_id"], []).append(artifact)
    wanted = {result.get("task_id") for result in results if isinstance(result.get("task_id"), str)}
    descriptions = _descriptions(record, wanted)
    dependencies = task_dependencies(record, wanted)
    shown = []
    for result in results:
        metadata = as_dict(result.get("metadata"))
        task_id, status = result.get("task_id"), task_status(result)
        answer = _answer(result.get("output"))
        shown.append({
            "id": task_id, "status": status, "colour": STATUS_COLOURS.get(status, "#fff"),
            "description": descriptions.get(task_id), "critical": task_id in critical,
            "dependencies": [str(d) for d in dependencies.get(task_id, [])],
            "duration_ms": as_number(result.get("exact_duration_ms", result.get("duration_ms"))),
            "started_at": result.get("start_time") if status != "skipped" else None,
            "completed_at": result.get("end_time"),
            "answer": answer, "output": "" if answer is not None else _pretty(result.get("output")),
            "error": result.get("error"),
            "attempts": [{**picked(a, ATTEMPT_FIELDS), "duration_ms": as_number(a.get("duration_ms"))}
                         for a in dicts_in(metadata.get("attempts"))],
            "ai": _ai(metadata.get("ai")),
            "skipped_reason": skip_reason(result),
            "artifacts": artifacts_by_task.get(task_id, []),
        })
    return shown


def _execution(execution: dict) -> dict:
    from runner.trace.settings import trace_url

    trace_id = execution.get("trace_id")
    return {"rows": [(key.replace("_", " "), _human(key, execution[key]))
                     for key in EXECUTION_ROWS if execution.get(key) is not None],
            "faults": [picked(f, FAULT_FIELDS) for f in dicts_in(execution.get("faults"))[:1000]],
            # RUNNER_TRACE_URL_TEMPLATE: the run's trace in the team's tracing UI (Jaeger, Tempo...)
            "trace_url": trace_url(trace_id) if isinstance(trace_id, str) else None}


def _human(key: str, value) -> str:
    """A value for people: booleans as yes/no, durations in ms with one decimal."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_ms") and as_number(value) is not None:
        return milliseconds(value)
    return str(value)


def milliseconds(value) -> str:
    """1234.5678 -> '1234.6 ms'; from a minute on, '75000.0 ms (1 min 15 s)'."""
    if as_number(value) is None:
        return "\u2013"
    text = f"{value:.1f} ms"
    if value >= 60_000:
        minutes, seconds = divmod(value / 1000, 60)
        text += f" ({minutes:.0f} min {seconds:.0f} s)"
    return text


def size(value) -> str:
    """Bytes for people: 512 B, 1.5 KB, 2.3 MB (powers of 1024)."""
    if as_number(value) is None:
        return "\u2013"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def percent(value) -> str:
    return "\u2013" if as_number(value) is None else f"{value * 100:.1f}%"


def count(value) -> str:
    return "\u2013" if as_number(value) is None else f"{value:,}"


# The page formats numbers with these (passed with the data, so any environment renders it).
FORMATS = {"ms": milliseconds, "size": size, "percent": percent, "count": count}


def page_view(record: dict, graph_svg: str | None, task_limit: int, graph_note: str | None) -> dict:
    """Everything the page shows of a LAST record, by the names the template reads."""
    statistics = as_dict(record.get("statistics"))
    counts = as_dict(statistics.get("status_counts"))
    total = as_number(statistics.get("total_tasks")) or len(record["task_results"])
    status_bar = [{"status": s, "count": counts[s], "colour": STATUS_COLOURS[s],
                   "percent": 100.0 * counts[s] / total if total else 0.0}
                  for s in STATUS_ORDER if as_number(counts.get(s))]
    graph_image = ("data:image/svg+xml;base64," + base64.b64encode(graph_svg.encode("utf-8")).decode("ascii")
                   if graph_svg else None)
    artifacts = [_artifact(a) for a in dicts_in(record.get("artifacts"))]
    shown_statistics = _statistics(statistics)
    critical = (shown_statistics["critical_path"] or {}).get("task_ids") or []
    table = ResultRows(record)     # both the task list and the timeline choose from it
    tasks = _tasks(record, table, artifacts, task_limit, set(critical))
    return dict(
        run=_run(record), statistics=shown_statistics, total=total, status_bar=status_bar,
        timeline=timeline(record, critical_ids=critical, table=table), graph_image=graph_image, graph_note=graph_note, tasks=tasks,
        hidden_tasks=max(len(record["task_results"]) - len(tasks), 0), artifacts=artifacts,
        artifact_errors=[picked(e, ("task_id", "name", "error"))
                         for e in dicts_in(as_dict(record.get("metadata")).get("artifact_errors"))[:ARTIFACT_ERRORS_SHOWN]],
        execution=_execution(as_dict(record.get("execution"))), **FORMATS,
    )
