"""/openapi.json: an OpenAPI 3.1 description of every route, made from the routes' table
and the first line of each endpoint's docstring-free summary below."""
from __future__ import annotations

from runner.service.auth import OPEN_PATHS

ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "errors": {
    "type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"},
                                                                 "message": {"type": "string"}}}}}}
RUN = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "alt_id": {"type": "string"},
    "status": {"type": "string", "enum": ["queued", "running", "interrupted", "success", "partialsuccess",
                                          "failure", "cancelled"]},
    "progress": {"type": "object", "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}}},
    "started_at": {"type": ["string", "null"]}, "ended_at": {"type": ["string", "null"]},
    "last_id": {"type": ["string", "null"]}, "last_file_path": {"type": ["string", "null"]},
    "success_rate": {"type": ["number", "null"]}, "error": {"type": ["string", "null"]}}}
RUNNER_RESPONSE = {"type": "object", "properties": {
    "id": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "running", "success", "error",
                                                                     "cancelled"]},
    "lastFile": {"type": ["string", "null"]}, "progress": {"type": "number", "minimum": 0, "maximum": 100},
    "metadata": {"type": "object", "properties": {"startTime": {"type": ["string", "null"]},
                                                  "endTime": {"type": ["string", "null"]},
                                                  "altFile": {"type": "string"}}}}}
ALT_BODY = {"content": {"application/json": {"schema": {"type": "object", "description": "an ALT document"}},
                        "application/yaml": {"schema": {"type": "string", "description": "an ALT document"}}},
            "required": True}

# name of the route -> (summary, success status, success schema or None, error statuses, request body)
OPERATIONS = {
    "post_run": ("Accept an ALT document as a run (durably, before the answer)", "202", RUN,
                 ("200", "401", "409", "413", "422", "429", "503"), ALT_BODY),
    "list_runs": ("List runs, newest first (?status=, ?limit=)", "200", None, ("401", "422"), None),
    "get_run": ("A run's status and progress", "200", RUN, ("401", "404"), None),
    "cancel_run": ("Cancel a queued or running run; it ends cancelled with its LAST file", "202", None,
                   ("401", "404", "409"), None),
    "get_last": ("The run's last.json", "200", None, ("401", "404"), None),
    "get_report": ("The run's report.html", "200", None, ("401", "404"), None),
    "run_events": ("The run's events as Server-Sent Events (Last-Event-ID resumes)", "200", None,
                   ("401", "404"), None),
    "health": ("Alive", "200", None, (), None),
    "ready": ("Ready: output writable, AI service and models reachable", "200", None, ("503",), None),
    "metrics": ("Prometheus metrics (runner_*)", "200", None, (), None),
    "openapi": ("This document", "200", None, ("401",), None),
    "original_health": ("The original runner service's health (a probe: no token needed)", "200", None, (), None),
    "original_status": ("The original runner service's status", "200", None, ("401",), None),
    "original_process": ("Run an ALT file of --alt-dir ({file_path, priority, mode, persona})", "202", None,
                         ("400", "401", "403", "404", "413", "422", "429", "503"),
                         {"content": {"application/json": {"schema": {"type": "object", "required": ["file_path"]}}}}),
    "gateway_run": ("Run an ALT file of --alt-dir ({altFileId, options})", "202", RUNNER_RESPONSE,
                    ("400", "401", "403", "404", "413", "422", "429", "503"),
                    {"content": {"application/json": {"schema": {"type": "object", "required": ["altFileId"]}}}}),
    "gateway_task": ("A run as the gateway's RunnerResponse", "200", RUNNER_RESPONSE, ("401", "404"), None),
    "gateway_cancel": ("Cancel a run (gateway)", "202", RUNNER_RESPONSE, ("401", "404", "409"), None),
    "gateway_last_file": ("A LAST file by its LAST id", "200", None, ("401", "404"), None),
}


def document(app, version: str) -> dict:
    paths: dict = {}
    for route in app.routes:
        summary, ok, schema, errors, body = OPERATIONS[route.name]
        for method in sorted(route.methods - {"HEAD"}):
            responses = {ok: {"description": "OK", **({"content": {"application/json": {"schema": schema}}}
                                                     if schema else {})}}
            for status in errors:
                responses[status] = {"description": "refused",
                                     "content": {"application/json": {"schema": ERROR}}}
            operation = {"operationId": route.name, "summary": summary, "responses": responses}
            if route.param_convertors:
                operation["parameters"] = [{"name": name, "in": "path", "required": True,
                                            "schema": {"type": "string"}} for name in route.param_convertors]
            if body is not None:
                operation["requestBody"] = body
            if route.path in OPEN_PATHS:
                operation["security"] = []  # the probes answer without the token
            paths.setdefault(route.path, {})[method.lower()] = operation
    return {"openapi": "3.1.0", "info": {"title": "librunner: the ALT_LAS Runner Service", "version": version},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}
