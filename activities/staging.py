"""Staging activities: prepare, publish (promote whole), discard (compensation), report.

They touch only the disk (and S3 for an `s3://` destination, whose snapshot is assembled in a local
mirror, published there, then uploaded), so they are synchronous and run on the worker's thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.disk import destination_errors
from notion_sync.exporter.publish import (
    check_staged,
    list_site_files,
    load_previous,
    recorded_identity,
    write_manifest,
    write_report,
)
from notion_sync.exporter.shrink import measure_shrink
from notion_sync.history import HistoryError, diff_snapshots
from notion_sync.models import (
    ChangeCounts,
    PrepareInput,
    PreviousSnapshot,
    PublishInput,
    PublishResult,
    ReportInput,
    RetentionPolicy,
    ShrinkCheck,
    ShrinkInput,
    StagingRef,
    WorkspaceIdentity,
)
from notion_sync.render import render_snapshot
from notion_sync.retention import prune_snapshots
from notion_sync.settings import Settings
from notion_sync.snapshot import REPORT, ManifestUnreadable, parse_report, read_report
from notion_sync.storage.destination import open_destination, remote_destination, seed_mirror
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination, UnsafePath
from notion_sync.storage.objects import Interned, ObjectStore, StoreBusy
from notion_sync.storage.s3 import (
    S3DeleteFailed,
    S3Destination,
    SnapshotUnusable,
    TransferCancelled,
    sync_mirror_after_discard,
)
from notion_sync.storage.s3_manifests import delta_previous

# Answers of S3 that another attempt will not change.
_S3_FATAL = {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "404"}

_T = TypeVar("_T")
# How long a publish waits for a folder's object store held by someone else (a `gc` by hand).
STORE_LOCK_WAIT_S = 600


class StagingActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name="prepare_staging")
    def prepare_staging(self, request: PrepareInput) -> PreviousSnapshot | None:
        destination = open_destination(request.staging.destination, self._settings)
        with destination_errors(destination, request.staging.staging_id):
            return self._prepare(request)

    def _prepare(self, request: PrepareInput) -> PreviousSnapshot | None:
        """Creates staging; for a sync, loads the previous snapshot's manifest into the index (also
        for a full refresh: the shrink guard measures against it). Refuses, before writing anything,
        a destination whose snapshots came from another workspace."""
        remote = remote_destination(request.staging.destination, self._settings)
        if remote is not None:
            try:
                remote.check()
            except NoCredentialsError:
                message = (
                    f"{remote.location.url}: no AWS credentials on the worker "
                    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)"
                )
                raise ApplicationError(message, type="S3Unusable", non_retryable=True) from None
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in _S3_FATAL:
                    message = f"{remote.location.url}: cannot use bucket {remote.location.bucket}: {error}"
                    raise ApplicationError(message, type="S3Unusable", non_retryable=True) from None
                raise
        destination = open_destination(request.staging.destination, self._settings)
        other = _other_workspace(request, destination, remote)
        destination.prepare(request.staging.staging_id)
        # A full refresh reuses nothing: it does not download the last snapshot to a new machine.
        if remote is not None and not request.full_refresh:
            try:
                seeded = seed_mirror(destination, remote, activity.heartbeat, activity.is_cancelled)
            except SnapshotUnusable as error:
                activity.logger.warning(
                    "%s: the published snapshot cannot be reused (%s); this run is a full export",
                    remote.location.url,
                    error,
                )
                return None
            except TransferCancelled:
                raise CancelledError("prepare_staging cancelled during the S3 download") from None
            except (ClientError, BotoCoreError) as error:
                # Retried by the activity's policy; files already downloaded are kept and skipped.
                raise ApplicationError(f"S3 download failed: {error}", type="S3DownloadFailed") from None
            if seeded is not None:
                activity.logger.info("%s: snapshot %s downloaded to the mirror", remote.location.url, seeded)
        # For S3, the mirror's snapshot: the one S3 serves (downloaded if the mirror had another).
        current = destination.current()
        if current is None or other is not None:
            # Another workspace's snapshot holds nothing to reuse or to measure this one against.
            return None
        with ExportIndex(destination.index_path(request.staging.staging_id)) as index:
            return load_previous(index, current, activity.heartbeat)

    @activity.defn(name="check_shrink")
    def check_shrink(self, request: ShrinkInput) -> ShrinkCheck:
        """What publishing this run would lose against the previous snapshot and the listing."""
        destination = open_destination(request.staging.destination, self._settings)
        with ExportIndex(destination.index_path(request.staging.staging_id)) as index:
            return measure_shrink(index, request.previous, request.options, activity.heartbeat)

    @activity.defn(name="publish_snapshot")
    def publish_snapshot(self, request: PublishInput) -> PublishResult:
        destination = open_destination(request.staging.destination, self._settings)
        with destination_errors(destination, request.staging.staging_id):
            return self._publish(destination, request)

    def _publish(self, destination: LocalDestination, request: PublishInput) -> PublishResult:
        """Checks staging against the index and its own manifest, then promotes it (see publish)."""
        staging_id = request.staging.staging_id
        staged = destination.staging(staging_id)
        remote = remote_destination(request.staging.destination, self._settings)
        objects = files = problems = 0
        changes: ChangeCounts | None = None
        if staged.exists():
            with ExportIndex(destination.index_path(staging_id)) as index:
                # Rows are never deleted: fewer than were discovered means the index was lost.
                if index.count() < request.report.counters.discovered:
                    detail = (
                        f"its index holds {index.count()} objects of {request.report.counters.discovered}"
                    )
                    raise _damaged(destination, detail)
                objects, files, problems = write_manifest(index, destination, staging_id, activity.heartbeat)
            if request.html:
                # Pages were rendered beside their Markdown; a page a batch did not render gets it here.
                _heartbeating(lambda: render_snapshot(staged, ("html",), keep_page_html=True))
                _heartbeating(lambda: list_site_files(staged))
            damage = check_staged(staged, activity.heartbeat)
            if damage:
                raise _damaged(destination, "; ".join(damage))
            changes = _changes_since(destination.current(), staged)
            report = request.report.model_copy(update={"problems": problems, "changes": changes})
            write_report(destination, staging_id, report, staged=True)
            if remote is None:
                _intern(destination, staged, staged=True)
        elif not destination.snapshot(request.snapshot).is_dir():
            # Neither staging nor the snapshot a previous attempt promoted it to: the folder went away.
            raise _damaged(destination, f"its staging folder {staged} is gone")
        else:
            # A retry after staging became the snapshot: its report.json holds the summary.
            published = read_report(destination.snapshot(request.snapshot))
            changes = published.changes if published is not None else None
            if remote is None:
                _intern(destination, destination.snapshot(request.snapshot), staged=False)
        final = destination.publish(staging_id, request.snapshot)
        retention = request.retention_policy()
        if remote is None:
            removed = False
            if not retention.is_empty():
                # Retention after the switch, so a retry finds the new snapshot current and keeps it.
                removed = _heartbeating(lambda: _prune(destination, retention))
            browsable = self._settings.browsable_snapshots
            _heartbeating(lambda: _tidy_store(destination, browsable, collect=removed))
            return PublishResult(
                snapshot_path=str(final), objects=objects, files=files, problems=problems, changes=changes
            )
        try:
            remote.publish(final, request.snapshot, staging_id, activity.heartbeat, activity.is_cancelled)
            _delta_previous(remote, final)
            if not retention.is_empty():
                remote.prune(retention, activity.heartbeat, grace_seconds=0, run_id=staging_id)
        except TransferCancelled:
            raise CancelledError("publish_snapshot cancelled during the S3 upload") from None
        except (SnapshotUnusable, ManifestUnreadable) as error:
            # The staged snapshot itself is wrong: uploading it again would fail the same way.
            raise ApplicationError(
                f"{remote.location.url}: this export cannot be published ({error}); the last snapshot "
                "stays current",
                type="StagingDamaged",
                non_retryable=True,
            ) from None
        except (ClientError, BotoCoreError, S3UploadFailedError, S3DeleteFailed) as error:
            # Retried by the activity's policy; finished objects are skipped, pruned ones gone, next time.
            raise ApplicationError(f"S3 publish failed: {error}", type="S3UploadFailed") from None
        # The mirror needs only the snapshot S3 serves now, for the next sync to reuse (removing the
        # one before, a folder per page, can outlast the heartbeat timeout).
        _heartbeating(lambda: _prune(destination, RetentionPolicy(keep_last=1)))
        return PublishResult(
            snapshot_path=f"s3://{remote.location.bucket}/{remote.location.snapshot_prefix(request.snapshot)}",
            local_path=str(final),
            objects=objects,
            files=files,
            problems=problems,
            changes=changes,
        )

    @activity.defn(name="discard_staging")
    def discard_staging(self, staging: StagingRef) -> None:
        destination = open_destination(staging.destination, self._settings)
        destination.discard(staging.staging_id)
        remote = remote_destination(staging.destination, self._settings)
        if remote is not None:
            remote.discard(staging.staging_id)
            current = remote.current()
            sync_mirror_after_discard(destination.root, current.get("snapshot") if current else None)

    @activity.defn(name="record_report")
    def record_report(self, request: ReportInput) -> None:
        """The report of a failed or cancelled run, where the destination still takes one: a full
        disk or a vanished folder must not turn compensation itself into a failure."""
        destination = open_destination(request.staging.destination, self._settings)
        try:
            destination.check_links()
            write_report(destination, request.staging.staging_id, request.report, staged=False)
        except (OSError, UnsafePath) as error:
            activity.logger.warning("no report written to %s: %s", destination.reports(), error)


def _damaged(destination: LocalDestination, detail: str) -> ApplicationError:
    return ApplicationError(
        f"{destination.root}: this export's staging is damaged ({detail}); nothing was published and the "
        "last snapshot stays current",
        type="StagingDamaged",
        non_retryable=True,
    )


def _intern(destination: LocalDestination, snapshot: Path, staged: bool) -> None:
    """Makes a folder snapshot's files links into the destination's object store (adopting the
    snapshots written before the store first), under the store's lock: never while a GC deletes.
    A staged file whose bytes are not its manifest's fails the publish (`staged`)."""
    store = ObjectStore(destination.root)

    def intern() -> Interned | None:
        with _store_lock(store) as locked:
            if not locked:
                return None
            store.adopt_existing()
            return store.intern_snapshot(snapshot)

    try:
        interned = _heartbeating(intern)
    except ManifestUnreadable as error:
        # Only deduplication is lost: the snapshot is complete on its own.
        activity.logger.warning("%s: not linked into the object store: %s", snapshot, error)
        return
    if interned is None:
        activity.logger.warning(
            "%s: the object store stayed locked (a `notion-sync gc` running?): this snapshot keeps its "
            "own files, not deduplicated",
            snapshot,
        )
        return
    if interned.damaged and staged:
        raise _damaged(destination, f"{interned.damaged} staged files do not match their manifest entry")
    if interned.unlinked or interned.damaged:
        activity.logger.warning(
            "%s: %d files could not be linked into the object store and keep their own copy",
            snapshot,
            interned.unlinked + interned.damaged,
        )


def _prune(destination: LocalDestination, retention: RetentionPolicy) -> bool:
    """Retention under the store's lock (waited for as interning does); whether it removed any.
    A store held past the wait (a long `gc` by hand) skips retention this time, not the publish."""
    with _store_lock(ObjectStore(destination.root)) as held:
        if not held:
            activity.logger.warning("%s: store busy, retention left to the next run", destination.root)
            return False
        return bool(prune_snapshots(destination.root, retention).removed)


def _delta_previous(remote: S3Destination, published: Path) -> None:
    """The snapshot current before this one keeps its S3 manifest as a delta (`s3_manifests`); a
    failure costs only bytes (that manifest stays whole), never the publish."""
    try:
        if _heartbeating(lambda: delta_previous(remote, published.parent, published.name)):
            activity.logger.info("%s: the previous snapshot's manifest is now a delta", remote.location.url)
    except (ManifestUnreadable, OSError, ClientError, BotoCoreError, S3UploadFailedError) as error:
        activity.logger.warning("%s: the previous manifest stays whole: %s", remote.location.url, error)


def _tidy_store(destination: LocalDestination, browsable: int, collect: bool) -> None:
    """Packs the snapshots older than the `browsable` newest (their trees cost a folder per page
    each, their files are in the store) and, after retention removed some, deletes the objects no
    kept snapshot references. Either only saves space: a failure is logged, never fails the run."""
    store = ObjectStore(destination.root)
    try:
        with _store_lock(store) as locked:
            if locked:
                store.pack_old_snapshots(browsable)
                if collect:
                    store.collect_garbage()
    except (ManifestUnreadable, OSError, ValueError) as error:
        activity.logger.warning("%s: object store not tidied: %s", destination.root, error)


@contextmanager
def _store_lock(store: ObjectStore) -> Iterator[bool]:
    """The store's lock, waited for at most STORE_LOCK_WAIT_S (a `gc` by hand may hold it for long:
    the run goes on without deduplicating rather than fail after all its work); yields whether held."""
    deadline = time.monotonic() + STORE_LOCK_WAIT_S
    while True:
        try:
            with store.try_lock():
                yield True
                return
        except StoreBusy:
            if time.monotonic() > deadline:
                yield False
                return
            time.sleep(2)


def _heartbeating(work: Callable[[], _T]) -> _T:
    """Runs local work that may outlast the heartbeat timeout, heartbeating while it runs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(work)
        while True:
            try:
                return running.result(timeout=5)
            except FutureTimeout:
                activity.heartbeat()


def _changes_since(previous: Path | None, staged: Path) -> ChangeCounts | None:
    """The report's change summary, None for a first snapshot or a previous one that cannot be read:
    the summary informs, it never stops a publish."""
    if previous is None:
        return None
    try:
        return _heartbeating(lambda: diff_snapshots(previous, staged, markdown=False).counts())
    except HistoryError as error:
        activity.logger.warning("no change summary against %s: %s", previous.name, error)
        return None


def _other_workspace(
    request: PrepareInput, destination: LocalDestination, remote: S3Destination | None
) -> WorkspaceIdentity | None:
    """The workspace of the destination's current snapshot if it is not this run's: refused
    (non-retryable, before anything is written) unless the user forced it."""
    if request.identity is None:
        return None
    if remote is not None:
        pointer = remote.current()
        name = str(pointer.get("snapshot", "")) if pointer else ""
        report = parse_report(remote.read(name, REPORT)) if name else None
    else:
        report = read_report(destination.current())
    recorded = recorded_identity(report)
    if recorded is None or recorded.same_workspace(request.identity):
        return None
    url = request.staging.destination
    if request.force_workspace:
        activity.logger.warning(
            "%s holds snapshots of %s; exporting %s into it as asked (--force-workspace)",
            url,
            recorded.describe(),
            request.identity.describe(),
        )
        return recorded
    raise ApplicationError(
        f"{url} holds snapshots of {recorded.describe()}, but this credential belongs to "
        f"{request.identity.describe()}: nothing was written. Export to another destination, or pass "
        "--force-workspace to export into this one anyway.",
        type="WorkspaceMismatch",
        non_retryable=True,
    )
