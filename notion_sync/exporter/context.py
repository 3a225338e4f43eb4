"""What every export step works with: the Notion gateway, the run's index and its destination."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from temporalio import activity

from notion_sync.models import StagingRef
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.gateway import Limits, NotionGateway
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

    def heartbeat(self) -> None:
        """The activity's heartbeat, with what the gateway is waiting for (throttled)."""
        self.gateway.beat()


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


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_listing_requests=settings.max_listing_requests,
        max_retry_after_s=settings.max_retry_after_s,
        object_attempts=settings.object_attempts,
    )


@asynccontextmanager
async def open_gateway(
    settings: Settings, heartbeat: Callable[..., None] | None = None
) -> AsyncIterator[tuple[NotionGateway, aiohttp.ClientSession]]:
    """The budgeted gateway of this workspace's token, over one aiohttp session.

    `heartbeat` (the activity's) is called with the gateway's notice as details while it waits on a
    rate limit or retries, so `control.activity_status` can say so.
    """
    budget = RequestBudget(settings.budget_path(), settings.requests_per_second, settings.burst)
    http = open_session(settings.request_timeout_s)
    gateway = NotionGateway(
        settings.token(),
        settings.notion_base_url,
        budget,
        http,
        timeout_s=settings.request_timeout_s,
        heartbeat=heartbeat,
        limits=limits_of(settings),
        step_attempt=activity.info().attempt if activity.in_activity() else 1,
    )
    try:
        yield gateway, http
    finally:
        await gateway.aclose()
        await http.close()
        budget.close()


@asynccontextmanager
async def open_step(
    settings: Settings, staging: StagingRef, heartbeat: Callable[..., None] | None = None
) -> AsyncIterator[StepContext]:
    destination = open_destination(staging.destination, settings)
    async with open_gateway(settings, heartbeat) as (gateway, http):
        index = ExportIndex(destination.index_path(staging.staging_id))
        # A listing stopped short (a repeated cursor, a cap) is a problem of the object listed.
        gateway.on_problem = index.add_problem
        ctx = StepContext(gateway, index, destination, staging.staging_id, settings, http)
        try:
            yield ctx
        finally:
            for reading in ctx.synced_reads.values():
                reading.cancel()
            index.close()
