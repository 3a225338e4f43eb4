"""The object store of an S3 destination: which files a publish uploads, adoption of snapshots
published before the store, and garbage collection.

    <prefix>/objects/<sha[:2]>/<sha>     each file's bytes, once, whatever snapshots list it
    <prefix>/snapshots/<name>/...        manifest.jsonl, report.json, problems.jsonl, the HTML site
    <prefix>/store.json                  written once every snapshot is adopted (or found damaged)
    <prefix>/publishing.json             the lease of the run publishing now: {"run", "started"}

**Adoption** (`adopt_snapshots`) moves the files of older snapshots (at `snapshots/<name>/<path>`)
into the store by server-side copies, no byte through the worker (one CopyObject each, which S3
allows up to 5 GB: larger files would need a multipart copy, not done here), and no Notion request.
A file is copied only when its size is the manifest's and its sha256 metadata (old publishes wrote
it) is the manifest's or absent; any other is left in place, counted as damaged, and its snapshot
keeps its per-path copies. A file without that metadata is read and hashed first. Once a snapshot's
files are all in the store, those copies are deleted. Interrupted, it resumes: what is in the store is
not copied again. `store.json` names the snapshots found damaged, so adoption runs once (`verify`
still reports their damage) and a publish asks the store about the digests of a damaged current one.

**Garbage collection** (`collect_garbage`) deletes an object only when no snapshot's manifest lists
its digest and it is older than a grace period by the server's clock. A run publishing right now
(its manifest not uploaded yet) or a dead run's leftovers have no manifest to protect their
objects: the grace period does. A snapshot whose manifest cannot be read stops the collection before
it deletes anything. A run reusing an old unreferenced object (found by HEAD on a new machine) is
protected by its lease: a collection checks it before listing and before each batch of deletions,
and stops (`StoreBusy`) while another run's lease is younger than `LEASE_SECONDS`. Each deletion
removes an unreferenced object, so an interrupted collection leaves every kept snapshot whole, and
the next one finishes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
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
from notion_sync.storage.s3 import S3DeleteFailed
from notion_sync.storage.s3_manifests import base_of, stored_objects

if TYPE_CHECKING:
    from notion_sync.storage.local import LocalDestination
    from notion_sync.storage.s3 import S3Destination

logger = logging.getLogger(__name__)
_HEX = frozenset("0123456789abcdef")
LEASE = "publishing.json"
# A lease older than this is a dead run's: a publish takes hours at most, not a day.
LEASE_SECONDS = 24 * 3600
# Digests whose object in the store was found corrupt: the next publish uploads them whatever it holds.
REUPLOAD = "reupload.sqlite"
_MISSING = ("NoSuchKey", "404", "NotFound")


class CollectionRefused(S3DeleteFailed):
    """Garbage collection deleted nothing (more): a snapshot's manifest is unreadable, or a run is
    publishing."""


class StoreBusy(CollectionRefused):
    """Another run holds the destination's publish lease: collecting now could delete what it reuses."""


def reupload_path(mirror: LocalDestination) -> Path:
    """The mirror's durable set of digests to upload again (see `REUPLOAD`)."""
    return mirror.internal / "state" / REUPLOAD


# ------------------------------------------------------------------------------------ the lease


def take_lease(remote: S3Destination, run_id: str) -> None:
    """Writes `publishing.json` for `run_id` (started: the server's time), replacing any other."""
    answer = remote.client.list_objects_v2(Bucket=remote.location.bucket, Prefix=remote.location.key(LEASE))
    started = _server_time(answer).strftime("%Y-%m-%dT%H:%M:%SZ")
    remote.client.put_object(
        Bucket=remote.location.bucket,
        Key=remote.location.key(LEASE),
        Body=json.dumps({"run": run_id, "started": started}).encode(),
        ContentType="application/json",
    )


def release_lease(remote: S3Destination, run_id: str) -> None:
    """Deletes `publishing.json` if it is `run_id`'s."""
    lease = _read_lease(remote)
    if lease is not None and lease[0] == run_id:
        remote.client.delete_object(Bucket=remote.location.bucket, Key=remote.location.key(LEASE))


def check_lease(remote: S3Destination, run_id: str | None) -> None:
    """Raises StoreBusy if a run other than `run_id` holds a lease younger than `LEASE_SECONDS`."""
    lease = _read_lease(remote)
    if lease is None or lease[0] == run_id or lease[1] >= LEASE_SECONDS:
        return
    raise StoreBusy(
        f"a run is publishing here (run {lease[0] or 'unknown'}, for {int(lease[1]) // 60} minutes); "
        "nothing (more) deleted, try again later"
    )


def _read_lease(remote: S3Destination) -> tuple[str, float] | None:
    """(run, age in seconds by the server's clock) of the lease, or None if there is none."""
    from botocore.exceptions import ClientError

    try:
        answer = remote.client.get_object(Bucket=remote.location.bucket, Key=remote.location.key(LEASE))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    with contextlib.closing(answer["Body"]) as body:
        raw = body.read(64 * 1024)
    try:
        run = str(json.loads(raw).get("run", ""))
    except (ValueError, AttributeError):
        run = ""  # unreadable: a lease all the same, of no run that could ignore it
    return run, (_server_time(answer) - answer["LastModified"]).total_seconds()


def fresh_in_store(remote: S3Destination, file: ManifestFile, max_age: float) -> bool:
    """Whether the store holds `file`'s digest with its size, written less than `max_age` seconds
    ago by the server's clock: an older unreferenced object may be collected before this run's
    manifest references it (a HEAD refreshes nothing)."""
    answer = remote.head(remote.object_key(file.sha256))
    if answer is None or answer.get("ContentLength") != file.size:
        return False
    return bool((_server_time(answer) - answer["LastModified"]).total_seconds() < max_age)


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
    damaged = [] if pointer.get("store") == OBJECTS else damaged_snapshots(remote)
    if damaged is None or name in damaged:
        return True
    manifest = mirror / SNAPSHOTS / name / MANIFEST
    if not manifest.is_file():
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
    for path in _walk_files(snapshot_dir):
        relpath = path.relative_to(snapshot_dir).as_posix()
        if (
            (path.name.startswith(".") and path.name.endswith(".tmp"))
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


def _walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder`, read one directory entry at a time (never a whole listing:
    `json/pages/` alone holds a file per page)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk_files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


# ------------------------------------------------------------------------------------ adoption


def adopt_snapshots(remote: S3Destination, heartbeat: Callable[[], None]) -> int:
    """Moves every older snapshot's files into the store, then writes `store.json`, naming the
    snapshots with a damaged file (left at their paths, reported); returns how many objects were
    copied."""
    copied = 0
    damaged: list[str] = []
    with DigestSet() as stored:  # digests this adoption found or put in the store
        for name in remote.snapshots():
            snapshot_copied, snapshot_damaged = _adopt_snapshot(remote, name, stored, heartbeat)
            copied += snapshot_copied
            if snapshot_damaged:
                damaged.append(name)
                logger.warning(
                    "%s: %d files of snapshot %s do not match its manifest; left at their paths",
                    remote.location.url,
                    snapshot_damaged,
                    name,
                )
    marker = {
        "store": OBJECTS,
        "adopted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "damaged": damaged,
    }
    remote.client.put_object(
        Bucket=remote.location.bucket,
        Key=remote.location.key(STORE_MARKER),
        Body=json.dumps(marker).encode(),
        ContentType="application/json",
    )
    return copied


def damaged_snapshots(remote: S3Destination) -> list[str] | None:
    """The snapshots `store.json` names as not adopted (damaged), or None without a marker."""
    from botocore.exceptions import ClientError

    try:
        key = remote.location.key(STORE_MARKER)
        answer = remote.client.get_object(Bucket=remote.location.bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    with contextlib.closing(answer["Body"]) as body:
        raw = body.read(1 << 20)
    try:
        names = json.loads(raw).get("damaged", [])
    except (ValueError, AttributeError):
        return None  # unreadable: as if there were none, so adoption runs again
    return [str(n) for n in names] if isinstance(names, list) else []


def _adopt_snapshot(
    remote: S3Destination, name: str, stored: DigestSet, heartbeat: Callable[[], None]
) -> tuple[int, int]:
    """(copied, damaged) for one snapshot; its per-path copies deleted once all are in the store."""
    prefix = remote.location.snapshot_prefix(name)
    with DigestSet() as at_paths, DigestSet() as adoptable, _manifest_copy(remote, name) as manifest:
        if manifest is None:
            return 0, 0  # being published now, or a dead run's leftovers: nothing lists its files
        at_paths.add_many(path_digest(p) for p in _relpaths(remote, prefix, heartbeat) if p not in META_FILES)
        counts = [0, 0]
        in_flight: set[str] = set()

        def listed_at_paths() -> Generator[ManifestFile]:
            """The listed files still at their paths (unlisted ones, the site index, are not)."""
            manifest.seek(0)
            with read_manifest(manifest) as (_header, entries):
                for entry in entries:
                    for file in entry.files:
                        if path_digest(file.path) in at_paths:
                            yield file

        def tasks() -> Iterator[Callable[[threading.Event], tuple[str, bool | None]]]:
            for file in listed_at_paths():
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
            with contextlib.closing(listed_at_paths()) as first_pass:
                if next(first_pass, None) is None:
                    return 0, 0  # published into the store, or adopted already
            remote.in_threads(tasks(), done, heartbeat, lambda: False)
        except (ManifestUnreadable, ValueError) as error:
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
    claimed = old.get("Metadata", {}).get("sha256")
    # Without the metadata (rare), only the bytes themselves can say they are what the manifest lists.
    if claimed is None:
        claimed = object_sha256(remote, old_key, stop)
    if claimed != file.sha256:
        return file.sha256, None
    remote.client.copy_object(
        Bucket=remote.location.bucket,
        Key=store_key,
        CopySource={"Bucket": remote.location.bucket, "Key": old_key},
        Metadata={"sha256": file.sha256},
        MetadataDirective="REPLACE",
    )
    return file.sha256, True


def object_sha256(remote: S3Destination, key: str, stop: threading.Event) -> str:
    """The sha256 of an object's bytes, read through (streamed)."""
    from notion_sync.storage.s3 import TransferCancelled

    sha = hashlib.sha256()
    answer = remote.client.get_object(Bucket=remote.location.bucket, Key=key)
    with contextlib.closing(answer["Body"]) as body:
        for chunk in body.iter_chunks(1 << 20):
            if stop.is_set():
                raise TransferCancelled("the transfer was stopped")
            sha.update(chunk)
    return sha.hexdigest()


# ------------------------------------------------------------------------------------ collection


def collect_garbage(
    remote: S3Destination,
    heartbeat: Callable[[], None],
    dry_run: bool,
    grace_seconds: float,
    batch_size: int,
    run_id: str | None = None,
) -> GarbageReport:
    """Adopts older snapshots first (unless a dry run), so nothing they need is collected; then
    deletes, `batch_size` keys a request, every object no manifest references that is older than
    `grace_seconds` by the server's clock.

    Raises CollectionRefused, before deleting anything, if a snapshot's manifest cannot be read, and
    StoreBusy (before listing, or between two batches) while a run other than `run_id` holds the
    publish lease."""
    report = GarbageReport(dry_run=dry_run)
    if not dry_run:
        check_lease(remote, run_id)
        if not remote.has_store_marker():
            report.adopted = remote.adopt(heartbeat)
    with DigestSet() as referenced:
        names = remote.snapshots()
        bases: dict[str, str] = {}
        without_manifest: set[str] = set()
        for name in names:
            # A delta lists what differs from its base; the base, a kept snapshot, lists the rest.
            base = base_of(remote, name)
            if base is not None:
                bases[base] = name
            try:
                with stored_objects(remote, name) as entries:
                    if entries is None:
                        # Being published, or a dead run's leftovers (the grace period protects their
                        # objects); unless a delta read here is based on it (checked below).
                        without_manifest.add(name)
                        continue
                    referenced.add_many(f.sha256 for entry in entries for f in entry.files)
            except (ManifestUnreadable, ValueError) as error:
                raise CollectionRefused(
                    f"nothing deleted: the manifest of snapshot {name} cannot be read ({error}), "
                    "so what it references is unknown"
                ) from None
            heartbeat()
        # A base gone (or whole again and removed by a prune meanwhile): what the delta inherited
        # from it was not read, so nothing may be deleted.
        for base, name in bases.items():
            if base not in names or base in without_manifest:
                raise CollectionRefused(
                    f"nothing deleted: snapshot {name}'s manifest is based on {base}, which has none now"
                )
        doomed = _unreferenced(remote, referenced, grace_seconds, report, heartbeat)
        if dry_run:
            collections.deque(doomed, maxlen=0)  # counted, not deleted
        else:
            _delete_keys(remote, doomed, batch_size, heartbeat, lambda: check_lease(remote, run_id))
    return report


def collect_after_publish(
    remote: S3Destination, heartbeat: Callable[[], None], grace_seconds: float, run_id: str
) -> None:
    """The collection a publishing run makes after its retention: the snapshot is published by then,
    so a collection that fails is only reported (the next one, or `gc`, finishes it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        collect_garbage(remote, heartbeat, False, grace_seconds, 1000, run_id)
    except (ClientError, BotoCoreError, S3DeleteFailed, ManifestUnreadable, ValueError) as error:
        logger.warning("%s: garbage collection after publishing failed: %s", remote.location.url, error)


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
    remote: S3Destination,
    keys: Iterator[str],
    batch_size: int,
    heartbeat: Callable[[], None],
    before_batch: Callable[[], None] = lambda: None,
) -> None:
    """Deletes `keys`, `batch_size` (≤ 1000) a request; fails on the first key S3 refuses.
    `before_batch` runs once a batch is listed, before it is deleted (and may raise to stop)."""
    size = max(1, min(batch_size, 1000))
    while batch := list(itertools.islice(keys, size)):
        before_batch()
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
