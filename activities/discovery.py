"""Discovery activities: search, data sources, references, users."""

from __future__ import annotations

import logging
from pathlib import Path

from temporalio import activity

from activities.disk import on_destination
from activities.errors import temporal_errors
from notion_sync.exporter import discover
from notion_sync.exporter.carry import CarryOverError, carry_previous_objects
from notion_sync.exporter.context import open_gateway, open_step
from notion_sync.models import (
    CarryOverInput,
    CarryOverResult,
    DiscoverInput,
    DiscoverResult,
    StagingRef,
    UsersResult,
    WorkspaceIdentity,
)
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.index import ExportIndex
from notion_sync.workspaces import identity_of

log = logging.getLogger(__name__)


class DiscoveryActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn
    async def identify_workspace(self, staging: StagingRef) -> WorkspaceIdentity:
        """Who this worker's credential is in Notion; touches nothing at the destination."""
        with temporal_errors():
            async with open_gateway(self._settings, activity.heartbeat) as (gateway, _):
                identity = identity_of(await gateway.me())
        log.info("export to %s runs as %s", staging.destination, identity.describe())
        return identity

    @activity.defn(name="carry_over")
    def carry_over(self, request: CarryOverInput) -> CarryOverResult:
        """Starts a changes-only sync from the previous snapshot's objects (disk only)."""
        destination = open_destination(request.staging.destination, self._settings)
        with (
            on_destination(self._settings, request.staging),
            ExportIndex(destination.index_path(request.staging.staging_id)) as index,
        ):
            try:
                carried = carry_previous_objects(index, Path(request.previous.path), activity.heartbeat)
            except CarryOverError as error:
                log.warning("previous snapshot unusable, listing everything instead: %s", error)
                return CarryOverResult(carried=0, usable=False)
        return CarryOverResult(carried=carried, usable=True)

    @activity.defn
    async def discover_pages(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors(), on_destination(self._settings, request.staging):
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                if request.edited_since:
                    return await discover.discover_changed_page_batch(
                        ctx, request.cursor, request.max_requests, request.edited_since
                    )
                return await discover.discover_page_batch(ctx, request.cursor, request.max_requests)

    @activity.defn
    async def discover_data_sources(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors(), on_destination(self._settings, request.staging):
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                if request.edited_since:
                    return await discover.discover_changed_data_source_batch(
                        ctx, request.cursor, request.edited_since
                    )
                return await discover.discover_data_source_batch(ctx, request.cursor)

    @activity.defn
    async def resolve_references(self, request: DiscoverInput) -> DiscoverResult:
        with temporal_errors(), on_destination(self._settings, request.staging):
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                return await discover.resolve_stubs(ctx, limit=100)

    @activity.defn
    async def export_users(self, staging: StagingRef) -> UsersResult:
        with temporal_errors(), on_destination(self._settings, staging):
            async with open_step(self._settings, staging, activity.heartbeat) as ctx:
                users = await discover.write_users(ctx)
                return UsersResult(users=users, api_requests=ctx.gateway.requests)
