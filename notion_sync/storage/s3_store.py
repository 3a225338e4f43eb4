"""The object store of an S3 destination: which files a publish uploads, adoption of snapshots
published before the store, and garbage collection.

    <prefix>/objects/<sha[:2]>/<sha>     each file's bytes, once, whatever snapshots list it
    <prefix>/snapshots/<name>/...        manifest.jsonl, report.json, problems.jsonl, the HTML site
    <prefix>/store.json                  written once every snapshot's files are in the store

**Adoption** (`adopt_snapshots`) moves the files of older snapshots (at `snapshots/<name>/<path>`)
into the store by server-side copies, no byte through the worker (one CopyObject each, which S3
allows up to 5 GB: larger files would need a multipart copy, not done here), and no Notion request.
A file is copied only when its size is the manifest's and its sha256 metadata (old publishes wrote
it) is the manifest's or absent; any other is left in place, counted as damaged, and its snapshot
keeps its per-path copies. Once a snapshot's files are all in the store, those copies are deleted.
Interrupted, it resumes: what is in the store is not copied again.

**Garbage collection** (`collect_garbage`) deletes an object only when no snapshot's manifest lists
its digest and it is older than a grace period by the server's clock. A run publishing right now
(its manifest not uploaded yet) or a dead run's leftovers have no manifest to protect their
objects: the grace period does. Each deletion removes an unreferenced object, so an interrupted
collection leaves every kept snapshot whole, and the next one finishes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from notion_sync.models import GarbageReport, ManifestFile
from notion_sync.snapshot import (
    MANIFEST,
    META_FILES,
    OBJECTS,
    PROBLEMS,
    REPORT,
    SNAPSHOTS,
    STORE_MARKER,
    ManifestUnreadable,
    read_manifest,
)
from notion_sync.storage.digests import DigestSet, path_digest

if TYPE_CHECKING:
    from notion_sync.storage.s3 import S3Destination

logger = logging.getLogger(__name__)
_HEX = frozenset("0123456789abcdef")

# ------------------------------------------------------------------------------------ publishing


def known_digests(remote: S3Destination, mirror: Path, known: DigestSet) -> bool:
    """Fills `known` with the digests of the snapshot `current.json` names, read from the mirror's
    copy of its manifest; returns whether the store must be asked about each new digest instead (a
    pointer but no usable copy: a full refresh on a new machine)."""
    pointer = remote.current()
    if pointer is None:
        return False  # nothing published: no snapshot references anything in the store
    name = str(pointer.get("snapshot", ""))
    if not name or "/" in name or name in (".", ".."):
        return True
    # An old-layout current snapshot whose files adoption could not all move: ask.
    in_store = pointer.get("store") == OBJECTS or remote.has_store_marker()
    manifest = mirror / SNAPSHOTS / name / MANIFEST
    if not in_store or not manifest.is_file():
        return True
    try:
        with read_manifest(manifest) as (_header, entries):
            known.add_many(file.sha256 for entry in entries for file in entry.files)
    except ManifestUnreadable:
        return True
    return False


def listed_files(
    snapshot_dir: Path, listed: DigestSet, totals: list[int]
) -> Iterator[tuple[Path, ManifestFile]]:
    """The files a snapshot's manifest lists, read from it as they are needed; each path is recorded
    in `listed` (as `path_digest`) and counted in `totals` (files, bytes) on the way."""
    base = snapshot_dir.resolve()
    with read_manifest(snapshot_dir) as (_header, entries):
        for entry in entries:
            for file in entry.files:
                path = _inside(base, file.path)
                # A file is listed once per page that shows it; the pointer counts it once.
                if path_digest(file.path) not in listed:
                    listed.add(path_digest(file.path))
                    totals[0] += 1
                    totals[1] += file.size
                yield path, file


def large_files(snapshot_dir: Path, threshold: int) -> Iterator[tuple[Path, ManifestFile]]:
    """The listed files of `threshold` bytes or more, in a first pass over the manifest: their long
    multipart uploads start at once and overlap the many small files."""
    base = snapshot_dir.resolve()
    with read_manifest(snapshot_dir) as (_header, entries):
        for entry in entries:
            for file in entry.files:
                if file.size >= threshold:
                    yield _inside(base, file.path), file


def _inside(base: Path, relpath: str) -> Path:
    path = (base / relpath).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ManifestUnreadable(f"{relpath}: a path outside the snapshot")
    return path


def unlisted_files(snapshot_dir: Path, listed: DigestSet, totals: list[int]) -> Iterator[Path]:
    """The snapshot's files its manifest does not list (the HTML site), then its report and problems
    (the manifest goes last, on its own); each counted in `totals`."""
    for path in sorted(snapshot_dir.rglob("*")):
        relpath = path.relative_to(snapshot_dir).as_posix()
        if (
            not path.is_file()
            or (path.name.startswith(".") and path.name.endswith(".tmp"))
            or relpath in META_FILES
            or path_digest(relpath) in listed
        ):
            continue
        totals[0] += 1
        totals[1] += path.stat().st_size
        yield path
    for name in (REPORT, PROBLEMS):
        if (snapshot_dir / name).is_file():
            totals[0] += 1
            totals[1] += (snapshot_dir / name).stat().st_size
            yield snapshot_dir / name


# ------------------------------------------------------------------------------------ adoption


def adopt_snapshots(remote: S3Destination, heartbeat: Callable[[], None]) -> int:
    """Moves every older snapshot's files into the store, then writes `store.json` unless a file was
    damaged; returns how many objects were copied."""
    copied = damaged = 0
    with DigestSet() as stored:  # digests this adoption found or put in the store
        for name in remote.snapshots():
            snapshot_copied, snapshot_damaged = _adopt_snapshot(remote, name, stored, heartbeat)
            copied += snapshot_copied
            damaged += snapshot_damaged
    if damaged:
        logger.warning(
            "%s: %d files of older snapshots do not match their manifest; left at their paths",
            remote.location.url,
            damaged,
        )
        return copied
    marker = {"store": OBJECTS, "adopted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    remote.client.put_object(
        Bucket=remote.location.bucket,
        Key=remote.location.key(STORE_MARKER),
        Body=json.dumps(marker).encode(),
        ContentType="application/json",
    )
    return copied


def _adopt_snapshot(
    remote: S3Destination, name: str, stored: DigestSet, heartbeat: Callable[[], None]
) -> tuple[int, int]:
    """(copied, damaged) for one snapshot; its per-path copies deleted once all are in the store."""
    prefix = remote.location.snapshot_prefix(name)
    with DigestSet() as at_paths, DigestSet() as adoptable, _manifest_copy(remote, name) as manifest:
        if manifest is None:
            return 0, 0  # being published now, or a dead run's leftovers: nothing lists its files
        at_paths.add_many(path_digest(p) for p in _relpaths(remote, prefix, heartbeat) if p not in META_FILES)
        if at_paths.count() == 0:
            return 0, 0  # published into the store, or adopted already
        counts = [0, 0]
        in_flight: set[str] = set()

        def tasks() -> Iterator[Callable[[threading.Event], tuple[str, bool | None]]]:
            with read_manifest(manifest) as (_header, entries):
                for entry in entries:
                    for file in entry.files:
                        if path_digest(file.path) not in at_paths:
                            continue  # in the store only (or missing: `verify` says so)
                        adoptable.add(path_digest(file.path))
                        if file.sha256 in stored or file.sha256 in in_flight:
                            continue
                        in_flight.add(file.sha256)
                        yield functools.partial(_adopt_file, remote, file, prefix + file.path)

        def done(finished: tuple[str, bool | None]) -> None:
            sha, copied = finished
            in_flight.discard(sha)
            if copied is None:
                counts[1] += 1
                return
            stored.add(sha)
            counts[0] += int(copied)

        try:
            remote.in_threads(tasks(), done, heartbeat, lambda: False)
        except ManifestUnreadable as error:
            logger.warning("%s: snapshot %s not adopted: %s", remote.location.url, name, error)
            return counts[0], counts[1] + 1
        if counts[1] == 0:
            keys = (
                prefix + relpath
                for relpath in _relpaths(remote, prefix, heartbeat)
                if relpath not in META_FILES and path_digest(relpath) in adoptable
            )
            _delete_keys(remote, keys, 1000, heartbeat)
        return counts[0], counts[1]


def _relpaths(remote: S3Destination, prefix: str, heartbeat: Callable[[], None]) -> Iterator[str]:
    """The paths of the objects under `prefix`, relative to it, listed a page at a time."""
    for page in remote.client.get_paginator("list_objects_v2").paginate(
        Bucket=remote.location.bucket, Prefix=prefix
    ):
        for entry in page.get("Contents", []):
            yield str(entry["Key"])[len(prefix) :]
        heartbeat()


def _adopt_file(
    remote: S3Destination, file: ManifestFile, old_key: str, stop: threading.Event
) -> tuple[str, bool | None]:
    """(digest, whether copied); None for a file whose old object does not match its manifest."""
    store_key = remote.object_key(file.sha256)
    if (remote.head(store_key) or {}).get("ContentLength") == file.size:
        return file.sha256, False
    old = remote.head(old_key)
    if old is None or old.get("ContentLength") != file.size:
        return file.sha256, None
    if old.get("Metadata", {}).get("sha256") not in (None, file.sha256):
        return file.sha256, None
    remote.client.copy_object(
        Bucket=remote.location.bucket,
        Key=store_key,
        CopySource={"Bucket": remote.location.bucket, "Key": old_key},
        Metadata={"sha256": file.sha256},
        MetadataDirective="REPLACE",
    )
    return file.sha256, True


# ------------------------------------------------------------------------------------ collection


def collect_garbage(
    remote: S3Destination,
    heartbeat: Callable[[], None],
    dry_run: bool,
    grace_seconds: float,
    batch_size: int,
) -> GarbageReport:
    """Adopts older snapshots first (unless a dry run), so nothing they need is collected; then
    deletes, `batch_size` keys a request, every object no manifest references that is older than
    `grace_seconds` by the server's clock."""
    report = GarbageReport(dry_run=dry_run)
    if not dry_run and not remote.has_store_marker():
        report.adopted = remote.adopt(heartbeat)
    with DigestSet() as referenced:
        for name in remote.snapshots():
            with _manifest_copy(remote, name) as manifest:
                if manifest is None:
                    continue  # only the grace period protects its objects
                try:
                    with read_manifest(manifest) as (_header, entries):
                        referenced.add_many(f.sha256 for entry in entries for f in entry.files)
                except ManifestUnreadable as error:
                    logger.warning(
                        "%s: snapshot %s has no readable manifest: %s", remote.location.url, name, error
                    )
            heartbeat()
        doomed = _unreferenced(remote, referenced, grace_seconds, report, heartbeat)
        if dry_run:
            collections.deque(doomed, maxlen=0)  # counted, not deleted
        else:
            _delete_keys(remote, doomed, batch_size, heartbeat)
    return report


def _unreferenced(
    remote: S3Destination,
    referenced: DigestSet,
    grace_seconds: float,
    report: GarbageReport,
    heartbeat: Callable[[], None],
) -> Iterator[str]:
    """The keys of the store's objects that no manifest references and the grace period does not
    spare, listed page by page (counted in `report` as they go by)."""
    store = remote.location.key(OBJECTS) + "/"
    cutoff: datetime | None = None
    for page in remote.client.get_paginator("list_objects_v2").paginate(
        Bucket=remote.location.bucket, Prefix=store
    ):
        if cutoff is None:
            cutoff = _server_time(page) - timedelta(seconds=grace_seconds)
        for entry in page.get("Contents", []):
            key = str(entry["Key"])
            sha = key.rpartition("/")[2]
            if len(sha) != 64 or not _HEX.issuperset(sha) or key != remote.object_key(sha):
                continue  # not an object of the store: not ours to delete
            report.objects += 1
            if sha in referenced:
                report.referenced += 1
            elif entry["LastModified"] > cutoff:
                report.young += 1
            else:
                report.deleted += 1
                report.freed_bytes += int(entry.get("Size", 0))
                yield key
        heartbeat()


def _server_time(page: dict[str, Any]) -> datetime:
    """When the server answered (its Date header): object ages are measured on its clock."""
    date = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    with contextlib.suppress(TypeError, ValueError):
        if date:
            return parsedate_to_datetime(date).astimezone(UTC)
    return datetime.now(UTC)


def _delete_keys(
    remote: S3Destination, keys: Iterator[str], batch_size: int, heartbeat: Callable[[], None]
) -> None:
    """Deletes `keys`, `batch_size` (≤ 1000) a request; fails on the first key S3 refuses."""
    from notion_sync.storage.s3 import S3DeleteFailed

    size = max(1, min(batch_size, 1000))
    while batch := list(itertools.islice(keys, size)):
        answer = remote.client.delete_objects(
            Bucket=remote.location.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        # A batch delete answers 200 even when it refused some keys.
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise S3DeleteFailed(f"cannot delete {error.get('Key')}: {error.get('Message')}")
        heartbeat()


@contextlib.contextmanager
def _manifest_copy(remote: S3Destination, name: str) -> Iterator[IO[bytes] | None]:
    """A snapshot's manifest copied into a temporary file (streamed: memory stays flat), or None if
    the snapshot has none."""
    from botocore.exceptions import ClientError

    key = remote.location.snapshot_prefix(name) + MANIFEST
    try:
        answer = remote.client.get_object(Bucket=remote.location.bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            yield None
            return
        raise
    with tempfile.TemporaryFile() as copy, contextlib.closing(answer["Body"]) as body:
        for chunk in body.iter_chunks(1 << 20):
            copy.write(chunk)
        copy.seek(0)
        yield copy
