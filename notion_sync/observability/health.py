"""Health endpoints for the probes: /healthz (liveness) and /readyz (readiness)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from temporalio.client import Client

if TYPE_CHECKING:
    # A type only: notion_sync.workers imports this package.
    from notion_sync.workers import WorkerGroup


class Health:
    """/healthz: the process serves requests (liveness). /readyz: the worker polls and Temporal answers."""

    def __init__(self, client: Client, worker: WorkerGroup) -> None:
        self._client = client
        self._worker = worker

    async def live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, _request: web.Request) -> web.Response:
        problems: list[str] = []
        if not self._worker.is_running or self._worker.is_shutdown:
            problems.append("worker not running")
        else:
            try:
                await self._client.service_client.check_health(timeout=timedelta(seconds=2))
            except Exception as error:  # any failure means not ready
                problems.append(f"temporal unreachable: {type(error).__name__}")
        body = {"status": "unavailable" if problems else "ok", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)


@contextlib.asynccontextmanager
async def health_server(port: int | None, client: Client, worker: WorkerGroup) -> AsyncIterator[int | None]:
    """Serves the health endpoints on 0.0.0.0:port while the block runs; yields the bound port."""
    if port is None:
        yield None
        return
    health = Health(client, worker)
    app = web.Application()
    app.router.add_get("/healthz", health.live)
    app.router.add_get("/readyz", health.ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)  # nosec B104 # probes reach the worker from outside its container
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
