"""Staging activities: prepare, publish (promote whole), discard (compensation), report.

They touch only the disk, so they are synchronous and run on the worker's thread pool.
"""

from __future__ import annotations

from temporalio import activity

from notion_sync.exporter.publish import load_previous, write_manifest, write_report
from notion_sync.models import PrepareInput, PreviousSnapshot, PublishInput, PublishResult, StagingRef
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.index import ExportIndex


class StagingActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name="prepare_staging")
    def prepare_staging(self, request: PrepareInput) -> PreviousSnapshot | None:
        """Creates staging; for a sync, loads the previous snapshot's manifest into the index."""
        destination = open_destination(request.staging.destination, self._settings)
        destination.prepare(request.staging.staging_id)
        current = destination.current()
        if request.full_refresh or current is None:
            return None
        with ExportIndex(destination.index_path(request.staging.staging_id)) as index:
            return load_previous(index, current, activity.heartbeat)

    @activity.defn(name="publish_snapshot")
    def publish_snapshot(self, request: PublishInput) -> PublishResult:
        destination = open_destination(request.staging.destination, self._settings)
        staging_id = request.staging.staging_id
        objects = files = 0
        if destination.staging(staging_id).exists():
            with ExportIndex(destination.index_path(staging_id)) as index:
                objects, files = write_manifest(index, destination, staging_id, activity.heartbeat)
            write_report(destination, staging_id, request.report, staged=True)
        final = destination.publish(staging_id, request.snapshot)
        return PublishResult(snapshot_path=str(final), objects=objects, files=files)

    @activity.defn(name="discard_staging")
    def discard_staging(self, staging: StagingRef) -> None:
        open_destination(staging.destination, self._settings).discard(staging.staging_id)

    @activity.defn(name="record_report")
    def record_report(self, request: PublishInput) -> None:
        destination = open_destination(request.staging.destination, self._settings)
        write_report(destination, request.staging.staging_id, request.report, staged=False)
