"""Staging activities: prepare, publish (promote whole), discard (compensation), report.

They touch only the disk, so they are synchronous and run on the worker's thread pool.
"""

from __future__ import annotations

from temporalio import activity

from notion_sync.exporter.publish import load_previous, write_manifest, write_report
from notion_sync.models import PrepareInput, PreviousSnapshot, PublishInput, PublishResult, StagingRef
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


@activity.defn
def prepare_staging(request: PrepareInput) -> PreviousSnapshot | None:
    """Creates staging; for a sync, loads the previous snapshot's manifest into the index."""
    destination = LocalDestination(request.staging.destination)
    destination.prepare(request.staging.staging_id)
    current = destination.current()
    if request.full_refresh or current is None:
        return None
    with ExportIndex(destination.index_path(request.staging.staging_id)) as index:
        return load_previous(index, current, activity.heartbeat)


@activity.defn
def publish_snapshot(request: PublishInput) -> PublishResult:
    destination = LocalDestination(request.staging.destination)
    staging_id = request.staging.staging_id
    objects = files = 0
    if destination.staging(staging_id).exists():
        with ExportIndex(destination.index_path(staging_id)) as index:
            objects, files = write_manifest(index, destination, staging_id, activity.heartbeat)
        write_report(destination, staging_id, request.report, staged=True)
    final = destination.publish(staging_id, request.snapshot)
    return PublishResult(snapshot_path=str(final), objects=objects, files=files)


@activity.defn
def discard_staging(staging: StagingRef) -> None:
    LocalDestination(staging.destination).discard(staging.staging_id)


@activity.defn
def record_report(request: PublishInput) -> None:
    destination = LocalDestination(request.staging.destination)
    write_report(destination, request.staging.staging_id, request.report, staged=False)
