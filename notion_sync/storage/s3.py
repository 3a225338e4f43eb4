"""An S3 bucket (or any S3-compatible store) as export destination: `s3://bucket/prefix`.

An export is assembled and published in a local working mirror (a `LocalDestination` under
`NOTION_SYNC_STATE_DIR/s3/<bucket>/<digest of prefix>`), which keeps the last snapshot so the next
sync reuses it. Publishing then uploads the snapshot (see `s3_store` for the object store):

    <prefix>/objects/<sha[:2]>/<sha>           each file's bytes once; only digests the store lacks
    <prefix>/snapshots/<name>/...              report, problems, the HTML site; manifest.jsonl last
    <prefix>/current.json                      {"snapshot": name, "manifest": key, ...}, written last
    <prefix>/publishing.json                   the publishing run's lease, for a hand-run `gc`

Nothing points at `snapshots/<name>/` until `current.json` is replaced (one PUT, atomic in S3), so a
reader that resolves `current.json` sees the old export or the new one, never a mix. An upload that
is interrupted (worker killed, activity retried) resumes: digests an earlier attempt finished are in
its journal, and multipart uploads left over are aborted first. Compensation aborts every multipart
upload and deletes the run's snapshot unless it is current; its objects are garbage to collect.

A mirror that lacks the snapshot `current.json` names (a new machine) gets it by `download`, checked
against the manifest (see `storage/destination.py`, `seed_mirror`); a store object found corrupt is
uploaded again by the next publish from that mirror (its re-upload set). Retention (`prune`) deletes whole
`snapshots/<name>/` prefixes, never the current one, then the objects nothing references.

Endpoint, region and credentials come from boto3's default chain (`AWS_ENDPOINT_URL`, `AWS_REGION`,
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, `~/.aws/config`, instance roles).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from notion_sync.models import GarbageReport, ManifestFile, RetentionPolicy
from notion_sync.retention import RetentionPlan, newest_guarded, plan_retention
from notion_sync.settings import Settings
from notion_sync.snapshot import (
    CURRENT,
    CURRENT_JSON,
    MANIFEST,
    OBJECTS,
    REPORT,
    SNAPSHOTS,
    STORE_MARKER,
    ManifestUnreadable,
    file_digest,
    named_for,
    object_path,
    parse_report,
)
from notion_sync.storage.digests import DigestSet, sha256_and_md5
from notion_sync.storage.s3_url import SCHEME as SCHEME
from notion_sync.storage.s3_url import S3Location as S3Location
from notion_sync.storage.s3_url import S3UrlError as S3UrlError
from notion_sync.storage.s3_url import is_s3 as is_s3
from notion_sync.storage.s3_url import mirror_path as mirror_path
from notion_sync.storage.s3_url import parse_s3_url as parse_s3_url

log = logging.getLogger(__name__)

MIN_PART = 5 << 20
RUN_METADATA = "notion-sync-run"  # on every object: the staging id of the run that uploaded it
# How old an unreferenced object must be before garbage collection run by hand deletes it: a run may
# be uploading the objects of a snapshot whose manifest is not there yet.
GC_GRACE_SECONDS = 6 * 3600
DELETE_BATCH = 1000  # keys per DeleteObjects request, the most S3 takes
_T = TypeVar("_T")


@dataclass
class UploadResult:
    uploaded: int
    skipped: int
    bytes: int


@dataclass
class _Stores:
    """What a publish knows of the object store: digests it holds (`known`, or asked for each when
    `ask_store`), this run's finished uploads (`journal`), digests to upload again (`reupload`)."""

    known: DigestSet
    journal: DigestSet
    reupload: DigestSet
    ask_store: bool


class S3Destination:
    """Uploads published snapshots and points `current.json` at them; compensates aborted runs."""

    def __init__(self, location: S3Location, settings: Settings, client: Any = None) -> None:
        self.location = location
        self._settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # No endpoint, region or credentials here: boto3's chain (AWS_ENDPOINT_URL included).
            pool = max(10, self._settings.s3_concurrency + 2)
            self._client = boto3.session.Session().client("s3", config=Config(max_pool_connections=pool))
        return self._client

    # ------------------------------------------------------------------------------------ reading

    def check(self) -> None:
        """Fails early (before any Notion request) if the bucket cannot be reached."""
        self.client.head_bucket(Bucket=self.location.bucket)

    def current(self) -> dict[str, Any] | None:
        """The parsed `current.json`, or None if no export was published yet."""
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.location.bucket, Key=self.location.key(CURRENT_JSON))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in (
                "NoSuchKey",
                "NoSuchBucket",
                "404",
                "NotFound",
            ):
                return None
            raise
        data: dict[str, Any] = json.loads(body["Body"].read())
        return data

    def read(self, snapshot: str, relpath: str) -> bytes | None:
        """One small file of a published snapshot (its report), or None if it is not there."""
        from botocore.exceptions import ClientError

        key = self.location.snapshot_prefix(snapshot) + relpath
        try:
            body = self.client.get_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        data: bytes = body["Body"].read()
        return data

    def object_key(self, sha256: str) -> str:
        """The key of a file's bytes in the destination's object store."""
        return self.location.key(object_path(sha256))

    def file_keys(self, snapshot: str, file: ManifestFile) -> tuple[str, str]:
        """Where a snapshot's file may be: in the object store (snapshots published since the store),
        then at its path under the snapshot (snapshots published before it, not yet adopted)."""
        return self.object_key(file.sha256), self.location.snapshot_prefix(snapshot) + file.path

    def open_file(self, snapshot: str, file: ManifestFile) -> Any:
        """A streaming body of one file of a snapshot, from the store or, for an older snapshot, from
        its path. Raises SnapshotUnusable if it is in neither place."""
        from botocore.exceptions import ClientError

        for key in self.file_keys(snapshot, file):
            try:
                return self.client.get_object(Bucket=self.location.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "NotFound"):
                    raise
        raise SnapshotUnusable(f"{file.path} ({file.sha256}) is missing from {self.location.url}")

    def snapshots(self) -> list[str]:
        """Names of the snapshots present under `<prefix>/snapshots/`."""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        root = self.location.key(SNAPSHOTS) + "/"
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=root, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                # Stores with real folders (SeaweedFS) go on listing a prefix whose objects are gone.
                listed = self.client.list_objects_v2(
                    Bucket=self.location.bucket, Prefix=common["Prefix"], MaxKeys=1
                )
                if listed.get("Contents"):
                    names.append(common["Prefix"][len(root) :].rstrip("/"))
        return sorted(names)

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def multipart_uploads(self, prefix: str) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            uploads.extend(page.get("Uploads", []))
        return uploads

    # ------------------------------------------------------------------------------------ publishing

    def publish(
        self,
        snapshot_dir: Path,
        snapshot: str,
        run_id: str,
        heartbeat: Callable[[], None] = lambda: None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> UploadResult:
        """Uploads a local snapshot of the mirror (`<mirror>/snapshots/<name>`): each file the manifest
        lists to the object store unless the store holds its digest, then the files it does not list
        (the HTML site) and report and problems under `snapshots/<name>/`, the manifest last, then
        `current.json`.

        The store's digests are read from the mirror's copy of the manifest `current.json` names, not
        listed from the bucket; without that copy each new digest is asked for (HEAD) instead. Safe to
        repeat after a crash: the upload journal (beside the run's index) holds every digest this run
        finished, and multipart uploads left unfinished are aborted.
        """
        from notion_sync.storage import s3_store
        from notion_sync.storage.local import LocalDestination

        s3_store.take_lease(self, run_id)  # before anything is reused: a hand-run GC waits for us
        if not self.has_store_marker():
            self.adopt(heartbeat)  # the digests of an old-layout current snapshot are then in the store
        prefix = self.location.snapshot_prefix(snapshot)
        self.abort_uploads(prefix)
        self.abort_uploads(self.location.key(OBJECTS) + "/")
        mirror = LocalDestination(snapshot_dir.parent.parent)
        journal_path = mirror.index_path(run_id).with_name(f"{run_id}.uploads.sqlite")
        metadata = {RUN_METADATA: run_id}
        result = UploadResult(uploaded=0, skipped=0, bytes=0)
        totals = [0, 0]  # files and bytes of the snapshot, for the pointer
        with (
            DigestSet() as known,
            DigestSet() as listed,
            DigestSet(journal_path) as journal,
            DigestSet(s3_store.reupload_path(mirror)) as reupload,
        ):
            stores = _Stores(known, journal, reupload, s3_store.known_digests(self, mirror.root, known))
            threshold = self._transfer_config().multipart_threshold
            small = (
                (p, f) for p, f in s3_store.listed_files(snapshot_dir, listed, totals) if f.size < threshold
            )
            files = itertools.chain(s3_store.large_files(snapshot_dir, threshold), small)
            self._upload_stored(files, stores, metadata, result, heartbeat, cancelled)
            present = {o["Key"]: o for o in self.objects(prefix)}
            # The manifest last: `discard` and readers take a snapshot with a manifest as whole.
            for batch in (s3_store.unlisted_files(snapshot_dir, listed, totals), [snapshot_dir / MANIFEST]):
                self._upload_all(snapshot_dir, prefix, batch, present, metadata, result, heartbeat, cancelled)
            pointer = {
                "snapshot": snapshot,
                "prefix": prefix,
                "manifest": prefix + MANIFEST,
                "store": OBJECTS,
                "objects": totals[0] + 1,
                "bytes": totals[1] + (snapshot_dir / MANIFEST).stat().st_size,
                "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            # The switch: one PUT, atomic for readers.
            self.client.put_object(
                Bucket=self.location.bucket,
                Key=self.location.key(CURRENT_JSON),
                Body=json.dumps(pointer, indent=2).encode(),
                ContentType="application/json",
            )
            reupload.discard_many(journal)  # those are good in the store again
            journal.remove()
        s3_store.release_lease(self, run_id)
        return result

    def _upload_stored(
        self,
        files: Iterator[tuple[Path, ManifestFile]],
        stores: _Stores,
        metadata: dict[str, str],
        result: UploadResult,
        heartbeat: Callable[[], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Uploads files to the object store on a pool of threads, each digest once: none the store
        is known to hold (`known`) unless it must be uploaded again (`reupload`), none this run
        finished (`journal`, written as each finishes; asked again once older than the grace period),
        none already in flight."""
        config = self._transfer_config()
        in_flight: set[str] = set()
        journal_fresh = stores.journal.age_seconds() < GC_GRACE_SECONDS / 2

        def tasks() -> Iterator[Callable[[threading.Event], tuple[str, int | None]]]:
            for path, file in files:
                must = file.sha256 in stores.reupload
                finished = file.sha256 in stores.journal
                if (
                    file.sha256 in in_flight
                    or (finished and journal_fresh)
                    or (file.sha256 in stores.known and not must)
                ):
                    result.skipped += 1
                    continue
                in_flight.add(file.sha256)
                ask = not must and (stores.ask_store or finished)
                yield functools.partial(self._store_one, path, file, ask, metadata, config)

        def done(finished: tuple[str, int | None]) -> None:
            sha, sent = finished
            stores.journal.add(sha)
            in_flight.discard(sha)
            if sent is None:
                result.skipped += 1
            else:
                result.uploaded += 1
                result.bytes += sent

        try:
            self.in_threads(tasks(), done, heartbeat, cancelled)
        except BaseException:
            with contextlib.suppress(Exception):  # the next attempt, or compensation, aborts them too
                self.abort_uploads(self.location.key(OBJECTS) + "/")
            raise

    def _store_one(
        self,
        path: Path,
        file: ManifestFile,
        ask: bool,
        metadata: dict[str, str],
        config: Any,
        stop: threading.Event,
    ) -> tuple[str, int | None]:
        """Uploads one file to the store unless asked and found there, written recently enough that no
        collection deletes it before the manifest references it; (digest, bytes sent or None)."""
        from notion_sync.storage.s3_store import fresh_in_store

        if stop.is_set():
            raise TransferCancelled("the transfer was stopped")
        key = self.object_key(file.sha256)
        if ask and fresh_in_store(self, file, GC_GRACE_SECONDS / 2):
            return file.sha256, None
        # Its key is its digest: bytes that are not what the manifest says must never get there.
        if file_digest(path) != (file.sha256, file.size):
            raise SnapshotUnusable(f"{path} does not match its manifest entry ({file.sha256})")
        self.client.upload_file(
            str(path),
            self.location.bucket,
            key,
            ExtraArgs={"Metadata": {**metadata, "sha256": file.sha256}},
            Config=config,
            Callback=_Progress(stop),
        )
        return file.sha256, file.size

    def head(self, key: str) -> dict[str, Any] | None:
        """The HEAD answer of the object at `key` (size, metadata), or None if there is none."""
        from botocore.exceptions import ClientError

        try:
            answer: dict[str, Any] = self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return answer

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        # Single-threaded transfers: the parallelism is across files, and callbacks stay simple.
        threshold = max(1, int(self._settings.s3_multipart_mb * (1 << 20)))
        return TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=max(MIN_PART, threshold),  # S3 refuses parts under 5 MiB but the last
            use_threads=False,
        )

    def _upload_all(
        self,
        root: Path,
        prefix: str,
        paths: Iterable[Path],
        present: dict[str, dict[str, Any]],
        metadata: dict[str, str],
        result: UploadResult,
        heartbeat: Callable[[], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Uploads files under `prefix` at their paths on a pool of threads; this thread heartbeats
        and watches for cancellation."""
        config = self._transfer_config()

        def tasks() -> Iterator[Callable[[threading.Event], int | None]]:
            for path in paths:
                key = prefix + path.relative_to(root).as_posix()
                yield functools.partial(self._upload_one, path, key, present.get(key), metadata, config)

        def count(sent: int | None) -> None:
            if sent is None:
                result.skipped += 1
            else:
                result.uploaded += 1
                result.bytes += sent

        try:
            self.in_threads(iter(tasks()), count, heartbeat, cancelled)
        except BaseException:
            with contextlib.suppress(Exception):  # the next attempt, or compensation, aborts them too
                self.abort_uploads(prefix)
            raise

    def in_threads(
        self,
        tasks: Iterator[Callable[[threading.Event], _T]],
        done: Callable[[_T], None],
        heartbeat: Callable[[], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Runs transfers on a pool of threads, a bounded number queued; this thread heartbeats every
        second and raises TransferCancelled once the activity is cancelled."""
        limit = self._settings.s3_concurrency
        pending: set[Future[_T]] = set()
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=limit) as pool:
            try:
                while True:
                    while len(pending) < limit * 2:
                        task = next(tasks, None)
                        if task is None:
                            break
                        pending.add(pool.submit(task, stop))
                    if not pending:
                        return
                    finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done(future.result())
                    heartbeat()
                    if cancelled():
                        raise TransferCancelled("the transfer was cancelled")
            finally:
                # Transfers running stop at their next chunk (s3transfer aborts a multipart upload
                # that fails); the pool is left only when none runs, so compensation never races.
                stop.set()
                for future in pending:
                    future.cancel()

    def _upload_one(
        self,
        path: Path,
        key: str,
        existing: dict[str, Any] | None,
        metadata: dict[str, str],
        config: Any,
        stop: threading.Event,
    ) -> int | None:
        """Uploads one file unless an identical object is there; the bytes sent, None if skipped."""
        if stop.is_set():
            raise TransferCancelled("the transfer was stopped")
        sha, md5, size = sha256_and_md5(path)
        if existing is not None and existing.get("Size") == size:
            etag = str(existing.get("ETag", "")).strip('"')
            if etag == md5:
                return None
            head = self.client.head_object(Bucket=self.location.bucket, Key=key)
            if head.get("Metadata", {}).get("sha256") == sha:
                return None
        self.client.upload_file(
            str(path),
            self.location.bucket,
            key,
            ExtraArgs={"Metadata": {**metadata, "sha256": sha}},
            Config=config,
            Callback=_Progress(stop),
        )
        return size

    # ------------------------------------------------------------------------------------ seeding

    def download(
        self,
        snapshot: str,
        files: Iterable[tuple[str, ManifestFile | None]],
        into: Path,
        heartbeat: Callable[[], None] = lambda: None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> int:
        """Downloads files of snapshot `snapshot` into the folder `into`, each checked; returns the
        bytes read (see `destination.download_files`)."""
        from notion_sync.storage.destination import download_files

        return download_files(self, snapshot, files, into, heartbeat, cancelled)

    # ------------------------------------------------------------------------------------ compensation

    def abort_uploads(self, prefix: str) -> int:
        """Aborts every multipart upload in progress under `prefix`; returns how many."""
        uploads = self.multipart_uploads(prefix)
        for upload in uploads:
            self.client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        return len(uploads)

    def delete_prefix(self, prefix: str, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Deletes every object under `prefix`, a thousand per request, listed page by page."""
        deleted = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        ):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                continue
            answer = self.client.delete_objects(
                Bucket=self.location.bucket, Delete={"Objects": keys, "Quiet": True}
            )
            # A batch delete answers 200 even when it refused some keys.
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise S3DeleteFailed(f"cannot delete {error.get('Key')}: {error.get('Message')}")
            deleted += len(keys)
            heartbeat()
        return deleted

    def prune(
        self,
        policy: RetentionPolicy,
        heartbeat: Callable[[], None] = lambda: None,
        grace_seconds: float = GC_GRACE_SECONDS,
        run_id: str | None = None,
    ) -> RetentionPlan:
        """Retention: deletes every snapshot `policy` does not keep (`plan_retention`, which also
        keeps the one `current.json` names and the newest that passed the shrink guard), then the
        objects no kept snapshot references (`collect_garbage`, sparing those younger than
        `grace_seconds`: 0 only from the run that publishes, `run_id`, as no other one can be
        uploading then; that run's collection only logs its failure, the snapshot being published).

        Safe to repeat: a prune cut short leaves a snapshot nothing points at, removed next time.
        Unfinished multipart uploads under a removed snapshot are aborted too. By hand (no `run_id`),
        raises StoreBusy before deleting anything while a run is publishing.
        """
        from notion_sync.storage import s3_store

        if run_id is None:
            s3_store.check_lease(self, None)
        current = (self.current() or {}).get("snapshot")
        names = self.snapshots()
        guarded = newest_guarded(reversed(names), lambda name: parse_report(self.read(name, REPORT)))
        plan = plan_retention(names, policy, current if isinstance(current, str) else None, guarded)
        for name in plan.removed:
            if not self._released(name, names):
                continue
            prefix = self.location.snapshot_prefix(name)
            self.abort_uploads(prefix)
            self.delete_prefix(prefix, heartbeat)
        if plan.removed and run_id is not None:
            s3_store.collect_after_publish(self, heartbeat, grace_seconds, run_id)
        elif plan.removed:
            self.collect_garbage(heartbeat=heartbeat, grace_seconds=grace_seconds)
        return plan

    # ------------------------------------------------------------------------------------ the store

    def has_store_marker(self) -> bool:
        """Whether every snapshot here is in the object store (`store.json`, written by `adopt`)."""
        return self.head(self.location.key(STORE_MARKER)) is not None

    def adopt(self, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Moves the files of snapshots published before the object store into it (server-side
        copies), then writes `store.json`; returns how many objects were copied (see `s3_store`)."""
        from notion_sync.storage.s3_store import adopt_snapshots

        return adopt_snapshots(self, heartbeat)

    def collect_garbage(
        self,
        heartbeat: Callable[[], None] = lambda: None,
        dry_run: bool = False,
        grace_seconds: float = GC_GRACE_SECONDS,
        batch_size: int = DELETE_BATCH,
        run_id: str | None = None,
    ) -> GarbageReport:
        """Deletes the objects of the store that no snapshot references and that are older than
        `grace_seconds` by the server's clock, unless a run other than `run_id` is publishing (see
        `s3_store`)."""
        from notion_sync.storage.s3_store import collect_garbage

        return collect_garbage(self, heartbeat, dry_run, grace_seconds, batch_size, run_id)

    def discard(self, run_id: str) -> list[str]:
        """Compensation: no multipart upload left under `snapshots/`, and the snapshot this run
        uploaded deleted unless `current.json` points at it. What it put in the object store is left
        to garbage collection (nothing references it).

        One export per destination runs at a time, so any unfinished upload here is this run's or a
        dead run's. A snapshot is this run's if it is named for the run and its objects carry the run's
        id. Returns the snapshots removed.
        """
        from botocore.exceptions import ClientError

        from notion_sync.storage.s3_store import release_lease

        try:
            self.abort_uploads(self.location.key(SNAPSHOTS) + "/")
            self.abort_uploads(self.location.key(OBJECTS) + "/")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchBucket", "404"):
                return []  # no bucket (the export failed on it): nothing was uploaded
            raise
        release_lease(self, run_id)
        current = (self.current() or {}).get("snapshot")
        removed = []
        for name in self.snapshots():
            if name == current or not named_for(name, run_id):
                continue
            prefix = self.location.snapshot_prefix(name)
            first = next(self.objects(prefix), None)
            if first is None:
                continue
            head = self.client.head_object(Bucket=self.location.bucket, Key=first["Key"])
            if head.get("Metadata", {}).get(RUN_METADATA) == run_id and self._released(
                name, self.snapshots()
            ):
                self.delete_prefix(prefix)
                removed.append(name)
        return removed

    def _released(self, name: str, snapshots: list[str]) -> bool:
        """Whether snapshot `name` may go: no other snapshot's manifest delta is based on it any more."""
        from notion_sync.storage.s3_manifests import release_base

        try:
            release_base(self, name, snapshots)
        except ManifestUnreadable as error:
            log.warning("%s: snapshot %s kept, a manifest depends on it: %s", self.location.url, name, error)
            return False
        return True


class S3DeleteFailed(Exception):
    """S3 refused to delete an object of a batch."""


class SnapshotUnusable(Exception):
    """A snapshot in S3 that cannot be taken as it is: an object missing or not matching its checksum."""


class CorruptObject(SnapshotUnusable):
    """An object of the store whose bytes are not those its key (their sha256) names."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class TransferCancelled(Exception):
    """The activity was cancelled during a transfer; transfers in flight finished or were aborted."""


def sync_mirror_after_discard(mirror: Path, remote_current: str | None) -> None:
    """Points the mirror's `current` back at the snapshot S3 serves, if the mirror has it, and keeps
    no other snapshot. With nothing published in S3 the mirror's snapshot stays, for the next sync."""
    from notion_sync.storage.local import LocalDestination

    snapshots = mirror / SNAPSHOTS
    if remote_current is None or not (snapshots / remote_current).is_dir():
        return
    LocalDestination(mirror).publish("discard", remote_current)
    current = (mirror / CURRENT).resolve()
    for path in snapshots.iterdir():
        if path.is_dir() and path.resolve() != current:
            shutil.rmtree(path, ignore_errors=True)


class _Progress:
    """A transfer callback that stops the transfer once `stop` is set."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def __call__(self, sent: int) -> None:
        if self._stop.is_set():
            raise TransferCancelled("the transfer was stopped")
