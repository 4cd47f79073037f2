"""GET /api/v1/runs/{id}/events: the run's events as Server-Sent Events.

Each event is one `data:` line of JSON (the event as runner_run_events gives it) with
`id:` its number, so a client that reconnects with Last-Event-ID (or ?after=N) gets
what follows. The stream ends once the run has ended (or stopped with the server) and
every event is sent; opened on a finished run, it replays its events and ends.
"""
from __future__ import annotations

import asyncio

import orjson
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.routing import Route

from runner.service.answers import Refusal
from runner.service.routes import registry_of, run_of

PING_SECONDS = 15
# A stream on a run that waits in the queue while the server drains ends: it will not move.
IDLE_CHECK_SECONDS = 1.0


def _after(request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit():
        raise Refusal(422, "invalid Last-Event-ID", [{"path": "Last-Event-ID",
                                                       "message": f"expected an event number, found {raw!r}"}])
    return int(raw)


async def run_events(request):
    run = run_of(request)
    registry = registry_of(request)
    after = _after(request)

    async def stream():
        nonlocal after
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        run.listen(loop, wake)
        try:
            while True:
                wake.clear()
                ended = run.finished.is_set()
                events = run.events_after(after)
                for event in events:
                    after = event["seq"]
                    yield ServerSentEvent(orjson.dumps(event).decode(), id=str(event["seq"]))
                if events:
                    continue
                if ended or (registry.draining and run.execution is None and run.status != "running"):
                    return
                try:
                    await asyncio.wait_for(wake.wait(), IDLE_CHECK_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            run.unlisten(loop, wake)

    return EventSourceResponse(stream(), ping=PING_SECONDS)


ROUTES = [Route("/api/v1/runs/{run_id}/events", run_events, methods=["GET"], name="run_events")]
