"""The routes ALT_LAS's callers use, as thin aliases over the same runs.

The original runner service's own:
    GET  /api/v1/health    {"status": "ok", "service": "runner-service", "version"}
    GET  /api/v1/status    {status, version, uptime_seconds, processed_files, success_rate, active_tasks}
    POST /api/v1/process   {file_path, priority?, mode?, persona?} -> 202 {request_id, alt_file_id,
                           status: "processing", last_file_path: null}; request_id is the run's id
The API gateway's RunnerService client:
    POST /run {altFileId, options}  -> 202 RunnerResponse {id, status, lastFile, progress, metadata}
    GET  /tasks/{id}                -> RunnerResponse
    POST /tasks/{id}/cancel         -> RunnerResponse
    GET  /files/last/{lastFileId}   -> the LAST JSON
Files are named relative to --alt-dir and never read outside it.
"""
from __future__ import annotations

import re
from pathlib import Path

import orjson
from starlette.responses import FileResponse
from starlette.routing import Route

from runner.service import accepting
from runner.service.answers import JSONAnswer, Refusal
from runner.service.routes import health, registry_of, run_of

# A request of these routes names a file and a few options: it is small.
MAX_REQUEST_BYTES = 64 * 1024
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GATEWAY_STATUS = {"queued": "pending", "running": "running", "interrupted": "running", "success": "success",
                  "partialsuccess": "error", "failure": "error", "cancelled": "cancelled"}
ORIGINAL_PRIORITIES = ("low", "medium", "high", "critical")


async def _json_object(request) -> dict:
    body = await accepting.read_body(request, MAX_REQUEST_BYTES)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Refusal(400, f"the request body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise Refusal(400, "the request body must be a JSON object")
    return value


def _text_field(value, path: str, choices=None, errors: list | None = None):
    if value is None:
        return None
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expected = f"one of {', '.join(choices)}" if choices else "a string"
        errors.append({"path": path, "message": f"expected {expected}, found {orjson.dumps(value).decode()[:60]}"})
        return None
    return value


def _persona_edit(persona: str | None):
    if persona is None:
        return None

    def edit(alt):
        if alt.persona == persona:
            return None
        document = alt.to_dict()
        document["persona"] = persona
        return orjson.dumps(document)
    return edit


# ---- the original's routes ------------------------------------------------------------

async def status(request):
    from runner.service.runs import FINAL

    registry = registry_of(request)
    counts = registry.counts()
    processed = sum(counts.get(status, 0) for status in FINAL)
    return JSONAnswer({
        "status": "stopping" if registry.draining else "ok", "version": request.app.state.version,
        "uptime_seconds": int(registry.uptime_seconds), "processed_files": processed,
        "success_rate": counts.get("success", 0) / processed if processed else 0.0,
        "active_tasks": counts.get("queued", 0) + counts.get("running", 0),
    })


async def process(request):
    from runner import EXECUTION_MODES

    registry = registry_of(request)
    accepting.check_open(registry)
    body = await _json_object(request)
    errors: list = []
    file_path = body.get("file_path")
    if not isinstance(file_path, str) or not file_path:
        errors.append({"path": "/file_path", "message": "expected the path of an ALT file (a string)"})
    priority = _text_field(body.get("priority"), "/priority", ORIGINAL_PRIORITIES, errors)
    mode = _text_field(body.get("mode"), "/mode", EXECUTION_MODES, errors)
    persona = _text_field(body.get("persona"), "/persona", None, errors)
    if errors:
        raise Refusal(422, "invalid request", errors)
    path = accepting.alt_dir_file(registry.config.alt_dir, file_path)
    document = await accepting.read_alt_dir_file(registry.config.alt_dir, path)
    digest = accepting.digest_of(document, mode, priority, persona)
    run, created = await accepting.accept(registry, document, key=accepting.idempotency_key(request), digest=digest,
                                          origin="process", mode=mode, priority=priority, alt_file=str(path),
                                          traceparent=accepting.trace_parent(request),
                                          edit=_persona_edit(persona))
    return JSONAnswer({"request_id": run.id, "alt_file_id": run.alt_id, "status": "processing",
                       "last_file_path": None}, status_code=202 if created else 200,
                      headers={"Location": f"/api/v1/runs/{run.id}"})


# ---- the gateway's routes -------------------------------------------------------------

def runner_response(run) -> dict:
    view = run.view()
    total = view["progress"]["total"]
    final = run.is_final
    progress = 100 if final else (int(100 * view["progress"]["done"] / total) if total else 0)
    metadata = dict(run.metadata) if isinstance(run.metadata, dict) else {}
    metadata.update(startTime=view["started_at"] or view["accepted_at"], endTime=view["ended_at"],
                    altFile=Path(run.alt_file).name if run.alt_file else run.alt_id)
    return {"id": run.id, "status": GATEWAY_STATUS.get(run.status, "pending"), "lastFile": run.last_id,
            "progress": progress, "metadata": metadata}


async def gateway_run(request):
    from runner import EXECUTION_MODES

    registry = registry_of(request)
    accepting.check_open(registry)
    body = await _json_object(request)
    errors: list = []
    alt_file_id = body.get("altFileId")
    if not isinstance(alt_file_id, str) or not alt_file_id:
        errors.append({"path": "/altFileId", "message": "expected the name of an ALT file (a string)"})
    options = body.get("options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        errors.append({"path": "/options", "message": "expected an object"})
        options = {}
    mode = _text_field(options.get("mode"), "/options/mode", EXECUTION_MODES, errors)
    priority = _text_field(options.get("priority"), "/options/priority", ORIGINAL_PRIORITIES, errors)
    persona = _text_field(options.get("persona"), "/options/persona", None, errors)
    metadata = options.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append({"path": "/options/metadata", "message": "expected an object"})
    if errors:
        raise Refusal(422, "invalid request", errors)
    if "/" in alt_file_id or "\\" in alt_file_id or alt_file_id.startswith("."):
        raise Refusal(404, "File not found")
    path = accepting.alt_dir_file(registry.config.alt_dir, alt_file_id, accepting.ALT_SUFFIXES)
    document = await accepting.read_alt_dir_file(registry.config.alt_dir, path)
    digest = accepting.digest_of(document, mode, priority, persona, orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS))
    run, created = await accepting.accept(registry, document, key=accepting.idempotency_key(request), digest=digest,
                                          origin="gateway", mode=mode, priority=priority, metadata=metadata,
                                          alt_file=str(path), edit=_persona_edit(persona),
                                          traceparent=accepting.trace_parent(request))
    return JSONAnswer(runner_response(run), status_code=202 if created else 200,
                      headers={"Location": f"/tasks/{run.id}"})


async def gateway_task(request):
    return JSONAnswer(runner_response(run_of(request)))


async def gateway_cancel(request):
    run = run_of(request)
    if not registry_of(request).cancel(run):
        raise Refusal(409, f"task {run.id} has ended ({GATEWAY_STATUS.get(run.status)}): nothing to cancel")
    return JSONAnswer(runner_response(run), status_code=202)


async def gateway_last_file(request):
    last_id = request.path_params["last_id"]
    if not UUID.fullmatch(last_id):
        raise Refusal(404, f"no LAST file {last_id!r}")
    registry = registry_of(request)
    directory = registry.last_directories.get(last_id)
    candidates = [Path(directory)] if directory else []
    candidates.append(registry.config.out / last_id)      # a LAST directory `run --out` wrote there
    out = registry.config.out.resolve()
    for candidate in candidates:
        path = (candidate / "last.json").resolve()
        if out in path.parents and path.is_file():
            return FileResponse(path, media_type="application/json")
    raise Refusal(404, f"no LAST file {last_id!r}")


ROUTES = [
    Route("/api/v1/health", health, methods=["GET"], name="original_health"),
    Route("/api/v1/status", status, methods=["GET"], name="original_status"),
    Route("/api/v1/process", process, methods=["POST"], name="original_process"),
    Route("/run", gateway_run, methods=["POST"], name="gateway_run"),
    Route("/tasks/{run_id}", gateway_task, methods=["GET"], name="gateway_task"),
    Route("/tasks/{run_id}/cancel", gateway_cancel, methods=["POST"], name="gateway_cancel"),
    Route("/files/last/{last_id}", gateway_last_file, methods=["GET"], name="gateway_last_file"),
]
