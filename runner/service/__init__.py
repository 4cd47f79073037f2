"""The Runner Service over HTTP (`python -m runner serve`): a door onto runner.execution.

Starlette under uvicorn (pip install 'librunner[server]'); nothing here is imported by
runs that do not serve. One concept a module:

    settings    ServiceSettings: bind address, directories, token, limits (RUNNER_* variables)
    store       the durable log of accepted runs (group-committed fsync before each 202)
    runs        ServiceRun: one accepted run, its status and its numbered events
    queue       RunQueue: priority then arrival, at most RUNNER_MAX_CONCURRENT_RUNS at once
    registry    Registry: accept, cancel, recover after a restart, drain on SIGTERM
    auth        RUNNER_API_TOKEN as a Bearer token, compared in constant time
    routes      the native API (/api/v1/runs...) and the probes
    aliases     the routes ALT_LAS's callers use (the original's /api/v1, the gateway's)
    events      Server-Sent Events of a run, resumable with Last-Event-ID
    metrics     Prometheus metrics, built from the runs' event streams
    openapi     /openapi.json
    app         create_app(config): the ASGI application
    server      serve(config): uvicorn, the listening line, SIGTERM
"""
