"""Export activities: layout, batches of pages, tables."""

from __future__ import annotations

from temporalio import activity

from activities.disk import on_destination
from activities.errors import temporal_errors
from notion_sync.exporter.context import open_step
from notion_sync.exporter.layout import place_objects
from notion_sync.exporter.pages import export_range
from notion_sync.exporter.tables import write_table_files
from notion_sync.models import (
    BatchInput,
    BatchResult,
    LayoutInput,
    LayoutResult,
    TablesInput,
    TablesResult,
)
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.index import ExportIndex


class ExportActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name="assign_paths")
    def assign_paths(self, request: LayoutInput) -> LayoutResult:
        destination = open_destination(request.staging.destination, self._settings)
        with (
            on_destination(self._settings, request.staging),
            ExportIndex(destination.index_path(request.staging.staging_id)) as index,
        ):
            placed = place_objects(index, activity.heartbeat, request.layout)
            return LayoutResult(placed=placed, max_seq=index.max_seq())

    @activity.defn
    async def export_batch(self, request: BatchInput) -> BatchResult:
        with temporal_errors(), on_destination(self._settings, request.staging):
            async with open_step(self._settings, request.staging, activity.heartbeat) as ctx:
                counters = await export_range(
                    ctx,
                    request.seq_from,
                    request.seq_to,
                    request.options,
                    request.previous,
                    self._settings.page_concurrency,
                    # With the gateway's notice (waiting on a rate limit, retrying), not without.
                    ctx.heartbeat,
                )
                counters.api_requests = ctx.gateway.requests
                return BatchResult(counters=counters)

    @activity.defn(name="write_tables")
    def write_tables(self, request: TablesInput) -> TablesResult:
        destination = open_destination(request.staging.destination, self._settings)
        with (
            on_destination(self._settings, request.staging),
            ExportIndex(destination.index_path(request.staging.staging_id)) as index,
        ):
            staging_id = request.staging.staging_id
            return write_table_files(
                index,
                destination,
                staging_id,
                request.seq_from,
                request.limit,
                activity.heartbeat,
                notion_layout=request.layout == "notion",
                bom=request.csv_bom,
            )
