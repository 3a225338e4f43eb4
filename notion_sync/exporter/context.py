"""What every export step works with: the Notion gateway, the run's index and its destination."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from notion_sync.models import StagingRef
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.gateway import NotionGateway
from notion_sync.settings import Settings
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


@dataclass
class StepContext:
    gateway: NotionGateway
    index: ExportIndex
    destination: LocalDestination
    staging_id: str
    settings: Settings


@asynccontextmanager
async def open_step(
    settings: Settings, staging: StagingRef, on_request: Callable[[], None] | None = None
) -> AsyncIterator[StepContext]:
    destination = LocalDestination(staging.destination)
    budget = RequestBudget(settings.budget_path(), settings.requests_per_second, settings.burst)
    gateway = NotionGateway(
        settings.token(),
        settings.notion_base_url,
        budget,
        timeout_s=settings.request_timeout_s,
        on_request=on_request,
    )
    index = ExportIndex(destination.index_path(staging.staging_id))
    try:
        yield StepContext(gateway, index, destination, staging.staging_id, settings)
    finally:
        index.close()
        await gateway.aclose()
        budget.close()
