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
from datetime import datetime, timezone

import hashlib
import os
import stat

import orjson
from jinja2 import FileSystemBytecodeCache, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from runner.last.artifacts import is_stored_path
from runner.last.graph_drawing import STATUS_COLOURS, STATUS_ORDER
from runner.last.reader import run_mode, skip_reason, task_status

OUTPUT_LIMIT = 8000          # characters of one task's output shown
TIMELINE_LIMIT = 400         # bars drawn in the timeline
ARTIFACT_ERRORS_SHOWN = 500
ATTEMPT_FIELDS = ("number", "started_at", "duration_ms", "outcome", "error", "fault")
AI_FIELDS = ("provider", "model", "prompt_tokens", "completion_tokens", "latency_ms")
TOKEN_FIELDS = ("provider", "calls", "prompt_tokens", "completion_tokens")
FAULT_FIELDS = ("task_id", "attempt", "kind", "detail")
EXECUTION_ROWS = ("mode", "seed", "fault_rate", "max_concurrency", "started_at", "ended_at", "wall_time_ms",
                  "interrupted")
RUN_STATUS_TEXT = {"success": "success", "partialsuccess": "partial success", "failure": "failure"}
ATTENTION_ORDER = {"failed": 0, "timeout": 1, "cancelled": 2, "pending": 3, "running": 4, "skipped": 5, "completed": 6}

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
    """Bars (task, start offset, length, status) for the tasks with both timestamps
    (skipped tasks have the moment they were skipped as both: they get no bar).

    Above `limit` tasks the longest are drawn. Only the drawn bars' stamps are parsed
    when every stamp has the executor's uniform format: 100k parses cost more than the
    rest of the page.
    """
    spans = [(result["start_time"], result["end_time"], result["task_id"], result["status"],
              result.get("duration_ms"))
             for result in record["task_results"].values()
             if isinstance(result.get("start_time"), str) and isinstance(result.get("end_time"), str)
             and result.get("skipped") is not True]
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
    }


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


def _tasks(record: dict, artifacts: list[dict], limit: int) -> list[dict]:
    results = _dicts(list(record["task_results"].values()))
    if len(results) > limit:
        results = sorted(results, key=lambda r: ATTENTION_ORDER.get(task_status(r), 9))[:limit]
    artifacts_by_task: dict = {}
    for artifact in artifacts:
        artifacts_by_task.setdefault(artifact["task_id"], []).append(artifact)
    descriptions = _descriptions(record)
    shown = []
    for result in results:
        metadata = _dict(result.get("metadata"))
        ai = metadata.get("ai")
        task_id, status = result.get("task_id"), task_status(result)
        shown.append({
            "id": task_id, "status": status, "colour": STATUS_COLOURS.get(status, "#fff"),
            "description": descriptions.get(task_id),
            "duration_ms": _number(result.get("exact_duration_ms", result.get("duration_ms"))),
            "started_at": result.get("start_time") if status != "skipped" else None,
            "completed_at": result.get("end_time"), "output": _pretty(result.get("output")),
            "error": result.get("error"),
            "attempts": [_fields(a, ATTEMPT_FIELDS) for a in _dicts(metadata.get("attempts"))],
            "ai": _fields(ai, AI_FIELDS) if isinstance(ai, dict) else None,
            "skipped_reason": skip_reason(result),
            "artifacts": artifacts_by_task.get(task_id, []),
        })
    return shown


def _execution(execution: dict) -> dict:
    return {"rows": [(key, execution[key]) for key in EXECUTION_ROWS if execution.get(key) is not None],
            "faults": [_fields(f, FAULT_FIELDS) for f in _dicts(execution.get("faults"))[:1000]]}


def report_template():
    """The compiled page (Jinja2 keeps it after the first call)."""
    return _environment.get_template("report.html.j2")


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
    tasks = _tasks(record, artifacts, task_limit)
    return report_template().render(
        run=_run(record), statistics=_statistics(statistics), total=total, status_bar=status_bar,
        timeline=timeline(record), graph_image=graph_image, graph_note=graph_note, tasks=tasks,
        hidden_tasks=max(len(record["task_results"]) - len(tasks), 0), artifacts=artifacts,
        artifact_errors=[_fields(e, ("task_id", "name", "error"))
                         for e in _dicts(_dict(record.get("metadata")).get("artifact_errors"))[:ARTIFACT_ERRORS_SHOWN]],
        execution=_execution(_dict(record.get("execution"))),
    )
