"""What every export step works with: the Notion gateway, the run's index and its destination."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from notion_sync.models import StagingRef
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.gateway import NotionGateway
from notion_sync.notion.transport import open_session
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


@dataclass
class StepContext:
    gateway: NotionGateway
    index: ExportIndex
    destination: LocalDestination
    staging_id: str
    settings: Settings
    # Downloads of files go to their storage hosts, not to the API: no budget, no token. The gateway
    # sends its requests through the same session (one connection pool per step).
    http: aiohttp.ClientSession
    # Synced-block originals being read, so pages read side by side read each once.
    synced_reads: dict[str, asyncio.Future[list[dict[str, Any]]]] = field(default_factory=dict)


def throttled(beat: Callable[[], None], interval_s: float = 0.5) -> Callable[[], None]:
    """`beat` at most every `interval_s`: Temporal sends heartbeats every few seconds at most anyway,
    and one call per request or page cost ~2 % of a worker's CPU."""
    last = -interval_s

    def call() -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval_s:
            last = now
            beat()

    return call


@asynccontextmanager
async def open_gateway(
    settings: Settings, on_request: Callable[[], None] | None = None
) -> AsyncIterator[tuple[NotionGateway, aiohttp.ClientSession]]:
    """The budgeted gateway of this workspace's token, over one aiohttp session."""
    budget = RequestBudget(settings.budget_path(), settings.requests_per_second, settings.burst)
    http = open_session(settings.request_timeout_s)
    gateway = NotionGateway(
        settings.token(),
        settings.notion_base_url,
        budget,
        http,
        timeout_s=settings.request_timeout_s,
        on_request=throttled(on_request) if on_request else None,
    )
    try:
        yield gateway, http
    finally:
        await gateway.aclose()
        await http.close()
        budget.close()


@asynccontextmanager
async def open_step(
    settings: Settings, staging: StagingRef, on_request: Callable[[], None] | None = None
) -> AsyncIterator[StepContext]:
    destination = open_destination(staging.destination, settings)
    async with open_gateway(settings, on_request) as (gateway, http):
        index = ExportIndex(destination.index_path(staging.staging_id))
        ctx = StepContext(gateway, index, destination, staging.staging_id, settings, http)
        try:
            yield ctx
        finally:
            for reading in ctx.synced_reads.values():
                reading.cancel()
            index.close()
