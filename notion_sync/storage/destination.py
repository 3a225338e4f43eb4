"""Where an export is assembled: the destination folder itself for a local destination, a working
mirror under the state folder for an S3 destination (`s3://bucket/prefix`, see `storage/s3.py`)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from notion_sync.models import ManifestFile
from notion_sync.settings import Settings
from notion_sync.snapshot import MANIFEST, REPORT, ManifestUnreadable, read_manifest
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
    raises SnapshotUnusable and leaves nothing behind (and deletes an object of the store whose bytes
    are not those its digest names, so the next publish uploads it again).
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
        remote.download(name, [(MANIFEST, None), (REPORT, None)], staging, heartbeat, cancelled)
        remote.download(name, _reused_files(staging / MANIFEST), staging, heartbeat, cancelled)
    except CorruptObject as error:
        shutil.rmtree(staging, ignore_errors=True)
        # Bytes that are not what their key names are garbage to every snapshot: gone, the export
        # that follows (a full one) finds the digest missing and uploads it again.
        remote.client.delete_object(Bucket=remote.location.bucket, Key=error.key)
        raise
    except (SnapshotUnusable, TransferCancelled):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    mirror.publish(seed_id, name)
    return name


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
