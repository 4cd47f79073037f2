"""report.html: a self-contained page for a person to see what a run did.

Rendered by Jinja2 in a sandbox with autoescaping: task outputs, errors and ids are
untrusted text. The page has no scripts and no external assets (inline CSS, inline SVG,
the graph as a data: image, where SVG scripts never run), and a Content-Security-Policy
that forbids scripts anyway. At most `task_limit` tasks are detailed (unsuccessful ones
first) and long outputs are cut, so the file stays bounded at 100k tasks; last.json
holds everything.

A LAST file may be old or edited, so the template never reads the record itself: the
functions below give it views with every field present (None when the record lacks it),
and its undefined is strict, so a field the template names but no view has fails loudly
instead of rendering nothing. Links go only to artifact paths of the form artifacts are
stored under; any other path is shown as text.
"""
from __future__ import annotations

import base64
import math
import re
from datetime import datetime, timedelta, timezone

import hashlib
import os
import reprlib
import stat

import orjson
from jinja2 import FileSystemBytecodeCache, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from runner.last.artifacts import is_stored_path
from runner.last.graph_drawing import STATUS_COLOURS, STATUS_ORDER
from runner.last.reader import ATTENTION_ORDER, run_mode, skip_reason, task_status

OUTPUT_LIMIT = 8000          # characters of one task's output shown
TIMELINE_LIMIT = 500         # rows drawn in the timeline
PAGE_ROWS = 100              # rows per page of the timeline (pages after the first are folded)
GANTT_WIDTH, LABEL_WIDTH, ROW_HEIGHT, LABEL_CHARACTERS = 760.0, 200, 20, 30
ANSWER_FOLD_CHARACTERS, ANSWER_FOLD_LINES = 1200, 25   # longer answers are folded
# Bars of attempts by outcome: stronger than the graph's pastel boxes, so they read as bars.
BAR_COLOURS = {"completed": "#66bb6a", "failed": "#e53935", "timeout": "#fb8c00", "cancelled": "#9e9e9e",
               "skipped": "#cfd8dc", "pending": "#eceff1", "running": "#42a5f5"}
ARTIFACT_ERRORS_SHOWN = 500
ATTEMPT_FIELDS = ("number", "started_at", "duration_ms", "outcome", "error", "fault")
AI_FIELDS = ("provider", "model", "prompt_tokens", "completion_tokens", "latency_ms")
TOKEN_FIELDS = ("provider", "calls", "prompt_tokens", "completion_tokens")
FAULT_FIELDS = ("task_id", "attempt", "kind", "detail")
EXECUTION_ROWS = ("mode", "seed", "fault_rate", "max_concurrency", "started_at", "ended_at", "wall_time_ms",
                  "interrupted", "trace_id")
RUN_STATUS_TEXT = {"success": "success", "partialsuccess": "partial success", "failure": "failure"}

_OPTIONS = dict(
    autoescape=True,
    undefined=StrictUndefined,     # the views below have every field; a typo must fail
    trim_blocks=True,
    lstrip_blocks=True,
)


def _cache_directory() -> str:
    """$XDG_CACHE_HOME/librunner (default ~/.cache/librunner), made 0700 if missing; OSError
    unless it is a directory of this user's that no one else can write."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        raise OSError(f"no absolute cache directory ({base!r})")
    directory = os.path.join(base, "librunner")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.lstat(directory)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise OSError(f"{directory} is not a directory only this user can write")
    return directory


class _CompiledPageCache(FileSystemBytecodeCache):
    """The compiled page, kept between processes: compiling it is ~20 ms of every run that
    writes a report, loading it a fraction of a millisecond.

    Jinja2's own cache, in the user's cache directory (_cache_directory; not the temporary
    folder, which a run leaves as it found it). An entry is found by the template's path
    and source checksum (Jinja2) and by the environment it was compiled for (the pattern:
    autoescaping is compiled into the code, so a page compiled under other options is never
    reused). A cache that cannot be read or written is passed over: the page is compiled
    as before.
    """

    def __init__(self):
        settings = repr((SandboxedEnvironment.__qualname__, sorted((k, repr(v)) for k, v in _OPTIONS.items())))
        super().__init__(_cache_directory(),
                         f"__librunner_report_{hashlib.sha1(settings.encode()).hexdigest()[:16]}_%s.cache")

    def load_bytecode(self, bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:        # a truncated or foreign file: compile instead
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except Exception:        # a full disk or a read-only temporary folder
            pass


def _compiled_page_cache():
    try:
        return _CompiledPageCache()
    except (OSError, RuntimeError):     # no safe per-user directory
        return None


_environment = SandboxedEnvironment(loader=PackageLoader("runner.last", "templates"),
                                    bytecode_cache=_compiled_page_cache(), **_OPTIONS)


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


def _ms_between(start, end) -> float:
    return (end - start).total_seconds() * 1000.0


def _nice_step(span_ms: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten ms) giving at most `ticks` ticks."""
    step = 10.0 ** math.floor(math.log10(max(span_ms / ticks, 1e-3)))
    for factor in (1, 2, 5, 10):
        if span_ms / (step * factor) <= ticks:
            return step * factor
    return step * 10


def _row_order(results: list[dict], critical: set, limit: int) -> list[dict]:
    """The results drawn when there are more than `limit`: unsuccessful ones, then the critical
    path, then the longest; drawn in order of start."""
    if len(results) <= limit:
        return results

    def weight(result):
        duration = _number(result.get("duration_ms")) or 0.0
        return (ATTENTION_ORDER.get(task_status(result), 9) >= 5, result.get("task_id") not in critical, -duration)

    return sorted(results, key=weight)[:limit]


def timeline(record: dict, limit: int = TIMELINE_LIMIT, critical_ids=()) -> dict:
    """A labelled Gantt chart: one row per task (every row names its task), its attempts as
    segments of one bar, the time it waited drawn apart from the time it ran, the critical
    path marked; rows in pages of PAGE_ROWS. Above `limit` tasks the unsuccessful, critical
    and longest are drawn (a note says how many in all). Only drawn rows' stamps are parsed."""
    critical = set(critical_ids)
    results = [r for r in _dicts(list(_dict(record.get("task_results")).values()))
               if isinstance(r.get("task_id"), str)]
    total = len(results)
    drawn = _row_order(results, critical, limit)
    timed, untimed = [], []
    run_start = _moment(_dict(record.get("execution")).get("started_at")) or _moment(record.get("start_time"))
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
    completed_at = {}
    for result in results:
        end = result.get("end_time")
        if isinstance(end, str):
            completed_at[result["task_id"]] = _moment(end)
    for _, end, result, _ in timed:
        completed_at[result["task_id"]] = end
    dependencies = _dependencies(record)
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
            "task_id": task_id, "label": _short(task_id), "status": task_status(result),
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
        rows.append({"task_id": result["task_id"], "label": _short(result["task_id"]), "status": status,
                     "critical": result["task_id"] in critical, "runs": [], "waits": [],
                     "note": f"{status}" + (f": {_short(str(reason), 90)}" if reason else "")})
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
    for attempt in _dicts(_dict(result.get("metadata")).get("attempts")):
        a_start, duration = _moment(attempt.get("started_at")), _number(attempt.get("duration_ms"))
        if a_start is None or duration is None or duration < 0:
            continue
        offset = _number(attempt.get("offset_ms"))
        # Exact when on this run's clock: a result reused by a resume keeps the offset of
        # the run that made it, whose start was another.
        exact = run_start is not None and offset is not None and offset >= 0 and             abs(_ms_between(a_start, run_start + timedelta(milliseconds=offset))) <= 2.0
        if exact:
            a_start = run_start + timedelta(milliseconds=offset)
        a_end = a_start + timedelta(milliseconds=duration)
        error = attempt.get("error")
        out.append((a_start, a_end, attempt.get("number"), str(attempt.get("outcome") or "?"),
                    _short(str(error), 120) if error else None, exact))
    if not out:
        out.append((start, end, 1, str(task_status(result)), None, False))
    return out


def _dependencies(record: dict) -> dict:
    """Task id -> the ids it depends on, from the execution graph's edges."""
    out: dict = {}
    for edge in _dicts(_dict(record.get("execution_graph")).get("edges")):
        if isinstance(edge.get("target"), str) and isinstance(edge.get("source"), str):
            out.setdefault(edge["target"], []).append(edge["source"])
    return out


def _short(text: str, limit: int = LABEL_CHARACTERS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _ms_text(value: float) -> str:
    """An axis label: 0 ms, 250 ms, 1.5 s, 2 min 5 s."""
    if value < 1000:
        return f"{value:g} ms"
    if value < 60_000:
        return f"{value / 1000:g} s"
    minutes, seconds = divmod(value / 1000, 60)
    return f"{minutes:.0f} min {seconds:.0f} s"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _number(value):
    """value if it is a number (not a bool), else None: the template formats numbers."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _fields(source: dict, names) -> dict:
    return {name: source.get(name) for name in names}


def _run(record: dict) -> dict:
    """The header facts of the run."""
    generator = _dict(_dict(record.get("metadata")).get("generator"))
    return {
        "id": record["id"], "title": record.get("title") or "", "alt_file_id": record.get("alt_file_id"),
        "mode": run_mode(record), "created_at": record.get("created_at"), "summary": record.get("summary") or "",
        "status": record.get("status") or "",
        "status_text": RUN_STATUS_TEXT.get(record.get("status"), record.get("status") or ""),
        "success_rate": _number(record.get("success_rate")) or 0.0,
        "execution_time_ms": _number(record.get("execution_time_ms")) or 0.0,
        "generator_version": generator.get("version") or "",
        "interrupted": _interruption(_dict(record.get("execution"))),
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
    critical = _dict(statistics.get("critical_path"))
    task_ids = critical.get("task_ids")
    return {
        "total_task_time_ms": _number(statistics.get("total_task_time_ms")) or 0.0,
        "parallelism": _number(statistics.get("parallelism")),
        "critical_path": {"duration_ms": _number(critical.get("duration_ms")) or 0.0,
                          "task_ids": [str(t) for t in task_ids] if isinstance(task_ids, list) else []}
        if critical else None,
        "retries": _number(_dict(statistics.get("retries")).get("total")),
        "tokens": {str(model): _fields(usage, TOKEN_FIELDS)
                   for model, usage in _dict(statistics.get("tokens")).items() if isinstance(usage, dict)},
    }


def _artifact(artifact: dict) -> dict:
    """An artifact's row; href only for a path of the stored form (the file is editable)."""
    path = artifact.get("path")
    sha256 = artifact.get("sha256")
    return {**_fields(artifact, ("name", "task_id", "artifact_type", "mime_type", "size_bytes")),
            "href": path if is_stored_path(path) else None,
            "sha256": sha256[:16] if isinstance(sha256, str) else ""}


def _descriptions(record: dict) -> dict:
    """Task id -> its description, from the execution graph's nodes (the ALT file's text)."""
    nodes = _dicts(_dict(record.get("execution_graph")).get("nodes"))
    return {node.get("id"): node.get("description") for node in nodes}


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
            "first_line": _short(first_line, 100), "cut": cut}


def _ai(ai) -> dict | None:
    if not isinstance(ai, dict):
        return None
    prompt = ai.get("prompt")
    return {**_fields(ai, AI_FIELDS), "ttft_ms": _number(ai.get("time_to_first_token_ms")),
            "latency_ms": _number(ai.get("latency_ms")),
            "prompt": _pretty(prompt) if isinstance(prompt, str) else None,
            "prompt_characters": len(prompt) if isinstance(prompt, str) else 0,
            "alternatives": len(ai["alternatives"]) if isinstance(ai.get("alternatives"), list) else None}


def _tasks(record: dict, artifacts: list[dict], limit: int, critical: set) -> list[dict]:
    """The task details, unsuccessful ones first (then in file order)."""
    results = sorted(_dicts(list(record["task_results"].values())),
                     key=lambda r: ATTENTION_ORDER.get(task_status(r), 9) >= 5)[:limit]
    artifacts_by_task: dict = {}
    for artifact in artifacts:
        artifacts_by_task.setdefault(artifact["task_id"], []).append(artifact)
    descriptions = _descriptions(record)
    dependencies = _dependencies(record)
    shown = []
    for result in results:
        metadata = _dict(result.get("metadata"))
        task_id, status = result.get("task_id"), task_status(result)
        answer = _answer(result.get("output"))
        shown.append({
            "id": task_id, "status": status, "colour": STATUS_COLOURS.get(status, "#fff"),
            "description": descriptions.get(task_id), "critical": task_id in critical,
            "dependencies": [str(d) for d in dependencies.get(task_id, [])],
            "duration_ms": _number(result.get("exact_duration_ms", result.get("duration_ms"))),
            "started_at": result.get("start_time") if status != "skipped" else None,
            "completed_at": result.get("end_time"),
            "answer": answer, "output": "" if answer is not None else _pretty(result.get("output")),
            "error": result.get("error"),
            "attempts": [{**_fields(a, ATTEMPT_FIELDS), "duration_ms": _number(a.get("duration_ms"))}
                         for a in _dicts(metadata.get("attempts"))],
            "ai": _ai(metadata.get("ai")),
            "skipped_reason": skip_reason(result),
            "artifacts": artifacts_by_task.get(task_id, []),
        })
    return shown


def _execution(execution: dict) -> dict:
    from runner.trace.config import trace_url

    trace_id = execution.get("trace_id")
    return {"rows": [(key.replace("_", " "), _human(key, execution[key]))
                     for key in EXECUTION_ROWS if execution.get(key) is not None],
            "faults": [_fields(f, FAULT_FIELDS) for f in _dicts(execution.get("faults"))[:1000]],
            # RUNNER_TRACE_URL_TEMPLATE: the run's trace in the team's tracing UI (Jaeger, Tempo...)
            "trace_url": trace_url(trace_id) if isinstance(trace_id, str) else None}


def report_template():
    """The compiled page (Jinja2 keeps it after the first call)."""
    return _environment.get_template("report.html.j2")


def _human(key: str, value) -> str:
    """A value for people: booleans as yes/no, durations in ms with one decimal."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_ms") and _number(value) is not None:
        return milliseconds(value)
    return str(value)


def milliseconds(value) -> str:
    """1234.5678 -> '1234.6 ms'; from a minute on, '75000.0 ms (1 min 15 s)'."""
    if _number(value) is None:
        return "\u2013"
    text = f"{value:.1f} ms"
    if value >= 60_000:
        minutes, seconds = divmod(value / 1000, 60)
        text += f" ({minutes:.0f} min {seconds:.0f} s)"
    return text


def size(value) -> str:
    """Bytes for people: 512 B, 1.5 KB, 2.3 MB (powers of 1024)."""
    if _number(value) is None:
        return "\u2013"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def percent(value) -> str:
    return "\u2013" if _number(value) is None else f"{value * 100:.1f}%"


def count(value) -> str:
    return "\u2013" if _number(value) is None else f"{value:,}"


# The page formats numbers with these (passed with the data, so any environment renders it).
FORMATS = {"ms": milliseconds, "size": size, "percent": percent, "count": count}


def render_report(record: dict, graph_svg: str | None = None, *, task_limit: int = 1000,
                  graph_note: str | None = None) -> str:
    """The HTML page of a LAST record; graph_svg is drawn inline as an image when given."""
    statistics = _dict(record.get("statistics"))
    counts = _dict(statistics.get("status_counts"))
    total = _number(statistics.get("total_tasks")) or len(record["task_results"])
    status_bar = [{"status": s, "count": counts[s], "colour": STATUS_COLOURS[s],
                   "percent": 100.0 * counts[s] / total if total else 0.0}
                  for s in STATUS_ORDER if _number(counts.get(s))]
    graph_image = ("data:image/svg+xml;base64," + base64.b64encode(graph_svg.encode("utf-8")).decode("ascii")
                   if graph_svg else None)
    artifacts = [_artifact(a) for a in _dicts(record.get("artifacts"))]
    shown_statistics = _statistics(statistics)
    critical = (shown_statistics["critical_path"] or {}).get("task_ids") or []
    tasks = _tasks(record, artifacts, task_limit, set(critical))
    return report_template().render(
        run=_run(record), statistics=shown_statistics, total=total, status_bar=status_bar,
        timeline=timeline(record, critical_ids=critical), graph_image=graph_image, graph_note=graph_note, tasks=tasks,
        hidden_tasks=max(len(record["task_results"]) - len(tasks), 0), artifacts=artifacts,
        artifact_errors=[_fields(e, ("task_id", "name", "error"))
                         for e in _dicts(_dict(record.get("metadata")).get("artifact_errors"))[:ARTIFACT_ERRORS_SHOWN]],
        execution=_execution(_dict(record.get("execution"))), **FORMATS,
    )
