"""Where an export is assembled: the destination folder itself for a local destination, a working
mirror under the state folder for an S3 destination (`s3://bucket/prefix`, see `storage/s3.py`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from notion_sync.models import ManifestFile
from notion_sync.settings import Settings
from notion_sync.snapshot import MANIFEST, REPORT, ManifestUnreadable, read_manifest
from notion_sync.storage.digests import DigestSet
from notion_sync.storage.local import LocalDestination
from notion_sync.storage.s3 import (
    CorruptObject,
    S3Destination,
    SnapshotUnusable,
    TransferCancelled,
    is_s3,
    mirror_path,
    parse_s3_url,
)
from notion_sync.storage.s3_store import object_sha256, reupload_path

SEED = "seed-"  # staging folder of a snapshot being downloaded into the mirror
# What a sync reads from its previous snapshot besides manifest and report: the saved JSON of each
# object and the downloaded files it links or copies. Markdown, CSV and HTML are written anew.
REUSED = ("json/", "files/")
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def open_destination(destination: str, settings: Settings) -> LocalDestination:
    """The local folder in which a run stages, publishes and keeps its snapshots."""
    if is_s3(destination):
        return LocalDestination(mirror_path(parse_s3_url(destination), settings))
    return LocalDestination(destination)


def remote_destination(destination: str, settings: Settings) -> S3Destination | None:
    """Where a published snapshot is uploaded to, if the destination is not a local folder."""
    if is_s3(destination):
        return S3Destination(parse_s3_url(destination), settings)
    return None


def seed_mirror(
    mirror: LocalDestination,
    remote: S3Destination,
    heartbeat: Callable[[], None] = lambda: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> str | None:
    """Makes the snapshot `current.json` names the mirror's current one, downloading it if the mirror
    has another one or none (a new machine, a wiped state folder); returns its name if downloaded.

    Only what a sync reuses is downloaded, each file checked against the manifest, into a staging
    folder that becomes a snapshot by one rename: the mirror never holds half a snapshot as current.
    A download cut short resumes on the next attempt; one that finds a corrupt or missing object
    raises SnapshotUnusable and leaves nothing behind. An object of the store whose bytes are not
    those its digest names, read twice, is recorded in the mirror's re-upload set: the next publish
    uploads it over the bad one (other snapshots may list it: it is never deleted here).
    """
    pointer = remote.current()
    if pointer is None:
        return None  # nothing published yet: the mirror's own snapshot, if any, stays the base
    name = str(pointer.get("snapshot", ""))
    if not _SNAPSHOT_NAME.match(name):
        raise SnapshotUnusable(f"current.json names no usable snapshot ({name!r})")
    current = mirror.current()
    if current is not None and current.name == name:
        return None
    seed_id = SEED + name
    staging = mirror.staging(seed_id)
    for stale in staging.parent.glob(SEED + "*"):  # left by a seed of a snapshot since replaced
        if stale != staging:
            shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        try:
            _seed(remote, name, staging, heartbeat, cancelled)
        except CorruptObject as error:
            if _corrupt_again(remote, error.key):
                raise
            _seed(remote, name, staging, heartbeat, cancelled)  # a bad read: files done are kept
    except CorruptObject as error:
        shutil.rmtree(staging, ignore_errors=True)
        if _corrupt_again(remote, error.key):  # read a second (or third) time: no passing bad read
            _record_reupload(mirror, error.key)
        raise
    except (SnapshotUnusable, TransferCancelled):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    mirror.publish(seed_id, name)
    return name


def _seed(
    remote: S3Destination,
    name: str,
    staging: Path,
    heartbeat: Callable[[], None],
    cancelled: Callable[[], bool],
) -> None:
    remote.download(name, [(MANIFEST, None), (REPORT, None)], staging, heartbeat, cancelled)
    remote.download(name, _reused_files(staging / MANIFEST), staging, heartbeat, cancelled)


def _corrupt_again(remote: S3Destination, key: str) -> bool:
    """Whether the object at `key` (a store key: its name is its sha256) still reads as other bytes."""
    return object_sha256(remote, key, threading.Event()) != key.rpartition("/")[2]


def _record_reupload(mirror: LocalDestination, key: str) -> None:
    """Records a corrupt store object's digest: the next publish uploads its bytes again."""
    with DigestSet(reupload_path(mirror)) as reupload:
        reupload.add(key.rpartition("/")[2])


def _reused_files(manifest: Path) -> Iterator[tuple[str, ManifestFile]]:
    """The files a sync may take from a snapshot, read from its manifest line by line."""
    try:
        with read_manifest(manifest) as (_header, entries):
            for entry in entries:
                for file in entry.files:
                    if file.path.startswith(REUSED):
                        yield file.path, file
    except ManifestUnreadable as error:
        raise SnapshotUnusable(str(error)) from None


def download_files(
    remote: S3Destination,
    snapshot: str,
    files: Iterable[tuple[str, ManifestFile | None]],
    into: Path,
    heartbeat: Callable[[], None] = lambda: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """Downloads files of snapshot `snapshot` into the folder `into`; returns the bytes read.

    A file given with its manifest entry is read from the object store (or, in a snapshot not yet
    adopted, from its path under `snapshots/<snapshot>/`); one without (the manifest, report,
    problems, the HTML site) from its path. Each object is streamed to a temporary file, checked
    against the manifest's size and sha256 when given and against the sha256 in its metadata, and
    only then renamed into place: a file in `into` is whole and checked, so a resumed download
    skips it. A mismatch or a missing object raises SnapshotUnusable.
    """
    prefix = remote.location.snapshot_prefix(snapshot)
    base = into.resolve()
    in_flight: set[str] = set()
    received = 0

    def tasks() -> Iterator[Callable[[threading.Event], tuple[str, int]]]:
        for relpath, expected in files:
            target = (base / relpath).resolve()
            if not target.is_relative_to(base) or target == base:
                raise SnapshotUnusable(f"{relpath}: a path outside the snapshot")
            # Files are listed once per page that shows them; a shared one is fetched once.
            if relpath in in_flight or target.is_file():
                continue
            in_flight.add(relpath)
            # A listed file is in the store, or at its path in a snapshot older than the store.
            keys = remote.file_keys(snapshot, expected) if expected is not None else (prefix + relpath,)
            yield functools.partial(_download_one, remote, keys, relpath, target, expected)

    def done(finished: tuple[str, int]) -> None:
        nonlocal received
        in_flight.discard(finished[0])
        received += finished[1]

    remote.in_threads(tasks(), done, heartbeat, cancelled)
    return received


def _download_one(
    remote: S3Destination,
    keys: tuple[str, ...],
    relpath: str,
    target: Path,
    expected: ManifestFile | None,
    stop: threading.Event,
) -> tuple[str, int]:
    """Downloads the first of `keys` there is into `target`, checked (see `download`)."""
    from botocore.exceptions import ClientError

    if stop.is_set():
        raise TransferCancelled("the transfer was stopped")
    answer: dict[str, Any] | None = None
    for key in keys:
        try:
            answer = remote.client.get_object(Bucket=remote.location.bucket, Key=key)
            break
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "NotFound"):
                raise
    if answer is None:
        raise SnapshotUnusable(f"{relpath} is missing (looked for {', '.join(keys)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    sha = hashlib.sha256()
    size = 0
    try:
        with contextlib.closing(answer["Body"]) as body, tmp.open("wb") as stream:
            for chunk in body.iter_chunks(1 << 20):
                if stop.is_set():
                    raise TransferCancelled("the transfer was stopped")
                sha.update(chunk)
                stream.write(chunk)
                size += len(chunk)
        digest = sha.hexdigest()
        claimed = answer.get("Metadata", {}).get("sha256")
        if expected is not None and key == remote.object_key(expected.sha256) and digest != expected.sha256:
            raise CorruptObject(key, f"{key}: its content does not match its checksum")
        if claimed not in (None, digest) or (
            expected is not None and (expected.sha256, expected.size) != (digest, size)
        ):
            raise SnapshotUnusable(f"{key}: its content does not match its checksum")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return relpath, size
