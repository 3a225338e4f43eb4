"""What every export step works with: the Notion gateway, the run's index and its destination."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from notion_sync.models import StagingRef
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.gateway import NotionGateway, tls_context
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
    # Downloads of files go to their storage hosts, not to the API: no budget, no token.
    http: httpx.AsyncClient


@asynccontextmanager
async def open_step(
    settings: Settings, staging: StagingRef, on_request: Callable[[], None] | None = None
) -> AsyncIterator[StepContext]:
    destination = open_destination(staging.destination, settings)
    budget = RequestBudget(settings.budget_path(), settings.requests_per_second, settings.burst)
    gateway = NotionGateway(
        settings.token(),
        settings.notion_base_url,
        budget,
        timeout_s=settings.request_timeout_s,
        on_request=on_request,
    )
    index = ExportIndex(destination.index_path(staging.staging_id))
    http = httpx.AsyncClient(timeout=settings.request_timeout_s, follow_redirects=True, verify=tls_context())
    try:
        yield StepContext(gateway, index, destination, staging.staging_id, settings, http)
    finally:
        await http.aclose()
        index.close()
        await gateway.aclose()
        budget.close()
