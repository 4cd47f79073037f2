"""The native API (/api/v1/runs...) and the probes (/health, /ready, /metrics, /openapi.json)."""
from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from runner.errors import ConfigurationError
from runner.service import accepting
from runner.service.answers import JSONAnswer, Refusal, problem
from runner.service.runs import STATUSES

MAX_LIST = 1000


def version() -> str:
    from importlib import metadata
    try:
        return metadata.version("librunner")
    except metadata.PackageNotFoundError:
        return "unknown"


def registry_of(request):
    return request.app.state.registry


def run_of(request):
    run = registry_of(request).get(request.path_params["run_id"])
    if run is None:
        raise Refusal(404, f"no run {request.path_params['run_id']!r}")
    return run


def links(run) -> dict:
    base = f"/api/v1/runs/{run.id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel", "last": f"{base}/last",
            "report": f"{base}/report"}


def accepted_answer(run, created: bool) -> JSONAnswer:
    body = {"id": run.id, "status": run.status, "alt_id": run.alt_id, "links": links(run)}
    return JSONAnswer(body, status_code=202 if created else 200, headers={"Location": links(run)["self"]})


def _query_options(request) -> dict:
    from runner import EXECUTION_MODES, PRIORITIES

    query = request.query_params
    errors = []
    mode = query.get("mode")
    if mode is not None and mode not in EXECUTION_MODES:
        errors.append({"path": "?mode", "message": f"expected one of {', '.join(EXECUTION_MODES)}, found {mode!r}"})
    seed = query.get("seed")
    if seed is not None:
        if not seed.isdigit():
            errors.append({"path": "?seed", "message": f"expected a whole number >= 0, found {seed!r}"})
        else:
            seed = int(seed)
    priority = query.get("priority")
    if priority is not None and priority not in PRIORITIES:
        errors.append({"path": "?priority", "message": f"expected one of {', '.join(PRIORITIES)}, found {priority!r}"})
    if errors:
        raise Refusal(422, "invalid query parameters", errors)
    return {"mode": mode, "seed": seed, "priority": priority}


async def post_run(request):
    registry = registry_of(request)
    accepting.check_open(registry)
    options = _query_options(request)
    key = accepting.idempotency_key(request)
    document = await accepting.read_body(request, accepting.max_alt_bytes())
    digest = accepting.digest_of(document, options["mode"], options["seed"], options["priority"])
    run, created = await accepting.accept(registry, document, key=key, digest=digest, origin="api",
                                          traceparent=accepting.trace_parent(request), **options)
    return accepted_answer(run, created)


async def get_run(request):
    run = run_of(request)
    return JSONAnswer({**run.view(), "links": links(run)})


async def list_runs(request):
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise Refusal(422, "invalid query parameters",
                      [{"path": "?status", "message": f"expected one of {', '.join(STATUSES)}, found {status!r}"}])
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise Refusal(422, "invalid query parameters",
                      [{"path": "?limit", "message": f"expected a whole number from 1 to {MAX_LIST}, found {raw!r}"}])
    runs = registry_of(request).listed(status, int(raw))
    return JSONAnswer({"runs": [run.view() for run in runs]})


async def cancel_run(request):
    run = run_of(request)
    if not registry_of(request).cancel(run):
        raise Refusal(409, f"run {run.id} has ended ({run.status}): nothing to cancel")
    return JSONAnswer({"id": run.id, "status": run.status, "cancel_requested": True, "links": links(run)},
                      status_code=202)


def product_of(request, run, name: str, media_type: str):
    """A file of the run's LAST directory, once it is written; only inside --out."""
    if run.directory is None:
        raise Refusal(404, f"run {run.id} has no LAST file yet ({run.status})")
    out = registry_of(request).config.out.resolve()
    path = Path(run.directory, name).resolve()
    if out not in path.parents or not path.is_file():
        raise Refusal(404, f"run {run.id} has no {name}")
    return FileResponse(path, media_type=media_type)


async def get_last(request):
    return product_of(request, run_of(request), "last.json", "application/json")


async def get_report(request):
    return product_of(request, run_of(request), "report.html", "text/html; charset=utf-8")


async def health(request):
    return JSONAnswer({"status": "ok", "service": "runner-service", "version": request.app.state.version})


def _readiness(registry) -> list[str]:
    from runner.execution.preflight import Preflight, output_directory

    problems = [] if not registry.draining else ["the service is stopping"]
    problems += output_directory(Preflight(None, registry.folder, registry.environ))
    try:
        from runner.ai.settings import settings_from_environment
        config = settings_from_environment(registry.environ)
    except ConfigurationError as error:
        return problems + [f"AI configuration: {error}"]
    if config.provider != "echo":
        from runner.ai import AIServiceError
        try:
            client = registry.ai_client()
            models = [config.default_model] if config.default_model else []
            client.check_ready(models, config.connect_timeout)
        except (AIServiceError, ValueError) as error:
            problems.append(f"AI service: {error}")
    return problems


async def ready(request):
    problems = await run_in_threadpool(_readiness, registry_of(request))
    if problems:
        return problem(503, "not ready: " + "; ".join(problems), [{"path": "/", "message": p} for p in problems])
    return JSONAnswer({"status": "ready"})


async def metrics(request):
    registry = registry_of(request)
    return Response(registry.metrics.text(), media_type=registry.metrics.content_type)


async def openapi(request):
    from runner.service.openapi import document
    return JSONAnswer(document(request.app, request.app.state.version))


ROUTES = [
    Route("/api/v1/runs", post_run, methods=["POST"], name="post_run"),
    Route("/api/v1/runs", list_runs, methods=["GET"], name="list_runs"),
    Route("/api/v1/runs/{run_id}", get_run, methods=["GET"], name="get_run"),
    Route("/api/v1/runs/{run_id}/cancel", cancel_run, methods=["POST"], name="cancel_run"),
    Route("/api/v1/runs/{run_id}/last", get_last, methods=["GET"], name="get_last"),
    Route("/api/v1/runs/{run_id}/report", get_report, methods=["GET"], name="get_report"),
    Route("/health", health, methods=["GET"], name="health"),
    Route("/ready", ready, methods=["GET"], name="ready"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
    Route("/openapi.json", openapi, methods=["GET"], name="openapi"),
]
