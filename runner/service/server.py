"""serve(config): the registry opened (recovering the runs of an earlier server), then uvicorn.

SIGTERM or Ctrl-C: the service stops accepting runs (POSTs answer 503), interrupts the
running ones (their tasks get the grace period, then each writes its LAST file and is
resumed at the next start), and only then stops listening and exits. A second signal
exits at once.
"""
from __future__ import annotations

import gc
import os
import sys
import threading

import uvicorn

from runner.service.app import create_app
from runner.service.settings import ServiceSettings
from runner.service.registry import Registry

GRACEFUL_SHUTDOWN_SECONDS = 5


class _Server(uvicorn.Server):
    def __init__(self, config, registry: Registry, service: ServiceSettings):
        super().__init__(config)
        self.registry = registry
        self.service = service
        self._draining = False

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        port = self.service.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                port = sock.getsockname()[1]
                break
        url = ServiceSettings(self.service.host, port, self.service.out, None).url
        print(f"runner service listening on {url} (runs in {self.registry.folder})", file=sys.stderr, flush=True)

    def handle_exit(self, sig, frame) -> None:
        if self._draining:
            self.force_exit = True
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._captured_signals.append(sig)
        self.registry.begin_drain()

        def stop_when_drained():
            self.registry.wait_drained()
            self.should_exit = True
        threading.Thread(target=stop_when_drained, name="runner-service-drain", daemon=True).start()


def serve(service: ServiceSettings, environ=os.environ) -> int:
    """Runs the service until a signal stops it; ValueError when it cannot start. With
    service.dask, the heavy tasks of every run go to that Dask cluster (as `run --dask`)."""
    if service.dask is None:
        return _serve(service, environ, None)
    from runner.cluster import connection
    from runner.cluster.placement import DaskPlacement

    with connection.connect(service.dask, environ) as client:
        return _serve(service, environ, DaskPlacement(client))


def _serve(service: ServiceSettings, environ, placement) -> int:
    registry = Registry(service, environ, placement)
    registry.open()
    app = create_app(registry)
    # What the server holds from its start (modules, the recovered runs) is never garbage:
    # out of the collector's sight, a full collection does not walk it and stall every request.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=service.host, port=service.port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                            server_header=False)
    _Server(config, registry, service).run()
    return 0
