"""Discovery activities: search, data sources, references, users."""

from __future__ import annotations

from temporalio import activity

from activities.errors import temporal_errors
from notion_sync.exporter import discover
from notion_sync.exporter.context import open_step
from notion_sync.models import DiscoverInput, DiscoverResult, StagingRef
from notion_sync.settings import Settings


class DiscoveryActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn
    async def discover_pages(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors():
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                return await discover.discover_pages(ctx, request.cursor, request.max_requests)

    @activity.defn
    async def discover_data_sources(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors():
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                return await discover.discover_data_sources(ctx, request.cursor)

    @activity.defn
    async def resolve_references(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors():
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                return await discover.resolve_stubs(ctx, limit=100)

    @activity.defn
    async def export_users(self, staging: StagingRef) -> int:
        with temporal_errors():
            async with open_step(self._settings, staging, activity.heartbeat) as ctx:
                return await discover.export_users(ctx)
