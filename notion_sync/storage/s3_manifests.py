"""Manifest deltas in S3: an older snapshot's manifest kept as its differences from the next one's.

Once a publish has made a new snapshot current, the snapshot that was current before keeps its
manifest as `snapshots/<name>/manifest.delta.jsonl` (see `snapshot.py`, manifest deltas), built in
the mirror, where both manifests are, and checked there before the whole manifest is deleted. A
reader gets any snapshot's whole manifest with `fetch_manifest`, which downloads the chain of deltas
down to a whole manifest and rebuilds it, checked against the delta's digest. Before a snapshot is
deleted (retention, compensation), each delta based on it is made whole again (`release_base`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from notion_sync.models import ManifestDeltaHeader, ManifestObject
from notion_sync.snapshot import (
    KEEP_WHOLE_EVERY,
    MANIFEST,
    MANIFEST_DELTA,
    SNAPSHOTS,
    ManifestUnreadable,
    build_manifest_delta,
    delta_base,
    file_digest,
    manifest_lines,
    read_manifest,
    stored_delta_objects,
)

if TYPE_CHECKING:
    from notion_sync.storage.s3 import S3Destination

log = logging.getLogger(__name__)

_MISSING = ("NoSuchKey", "404", "NotFound")


def _get(remote: S3Destination, key: str) -> Any | None:
    """The answer to a GET of `key`, or None if there is no such object."""
    from botocore.exceptions import ClientError

    try:
        return remote.client.get_object(Bucket=remote.location.bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise


def _stream_to(answer: Any, target: Path) -> None:
    with target.open("wb") as out:
        _copy_body(answer, out)


def _copy_body(answer: Any, out: IO[bytes]) -> None:
    with contextlib.closing(answer["Body"]) as body:
        for chunk in body.iter_chunks(1 << 20):
            out.write(chunk)


def has_manifest(remote: S3Destination, name: str) -> bool:
    """Whether snapshot `name` has its manifest in S3, whole or as a delta."""
    prefix = remote.location.snapshot_prefix(name)
    return any(next(remote.objects(prefix + file), None) is not None for file in (MANIFEST, MANIFEST_DELTA))


def fetch_manifest(remote: S3Destination, name: str, target: Path) -> bool:
    """Writes snapshot `name`'s whole manifest to `target`, downloading it, or its delta chain and
    rebuilding it (checked against each delta's digest); False if the snapshot has neither.

    Raises ManifestUnreadable if a delta of the chain, or the base it names, cannot be read."""
    with tempfile.TemporaryDirectory(prefix="notion-sync-manifest-", dir=target.parent) as scratch:
        chain = Path(scratch) / SNAPSHOTS
        chain.mkdir()
        if not _fetch_chain(remote, name, chain):
            return False
        tmp = target.with_name(f".{target.name}.tmp")
        with manifest_lines(chain / name) as lines, tmp.open("wb") as out:
            out.writelines(lines)
        os.replace(tmp, target)
    return True


def _fetch_chain(remote: S3Destination, name: str, chain: Path) -> bool:
    """Downloads `name`'s whole manifest, or its delta and (in turn) its base's, into `chain/<name>/`."""
    folder = chain / name
    while True:
        folder.mkdir(exist_ok=True)
        prefix = remote.location.snapshot_prefix(folder.name)
        whole = _get(remote, prefix + MANIFEST)
        if whole is not None:
            _stream_to(whole, folder / MANIFEST)
            return True
        delta = _get(remote, prefix + MANIFEST_DELTA)
        if delta is None:
            if folder.name == name:
                return False
            raise ManifestUnreadable(
                f"{remote.location.url}: snapshot {folder.name}, a delta's base, is gone"
            )
        _stream_to(delta, folder / MANIFEST_DELTA)
        base = delta_base(folder)
        if base is None or "/" in base or base <= folder.name:
            raise ManifestUnreadable(f"{remote.location.url}: snapshot {folder.name} has a damaged delta")
        folder = chain / base


@contextlib.contextmanager
def stored_objects(remote: S3Destination, name: str) -> Iterator[Iterator[ManifestObject] | None]:
    """The objects snapshot `name`'s manifest holds as stored (all of a whole one; a delta's own
    lines), streamed from a temporary copy; None if it has no manifest. With `base_of`, garbage
    collection reads each snapshot once, never a delta's whole chain."""
    prefix = remote.location.snapshot_prefix(name)
    for file in (MANIFEST, MANIFEST_DELTA):
        answer = _get(remote, prefix + file)
        if answer is None:
            continue
        with tempfile.TemporaryFile() as copy:
            _copy_body(answer, copy)
            copy.seek(0)
            if file == MANIFEST:
                with read_manifest(copy) as (_header, entries):
                    yield entries
            else:
                yield stored_delta_objects(f"{prefix}{file}", copy)
        return
    yield None


def base_of(remote: S3Destination, name: str) -> str | None:
    """The snapshot `name`'s manifest delta is based on, or None (a whole manifest, or none)."""
    answer = _get(remote, remote.location.snapshot_prefix(name) + MANIFEST_DELTA)
    if answer is None:
        return None
    with contextlib.closing(answer["Body"]) as body:
        head = _first_line(body)
    try:
        return ManifestDeltaHeader.model_validate_json(head).base
    except ValueError:
        return None  # as `snapshot.delta_base`: reading the delta itself then says what is wrong


def _first_line(body: IO[bytes]) -> bytes:
    head = b""
    for chunk in iter(lambda: body.read(4096), b""):
        head += chunk
        if b"\n" in head or len(head) > 1 << 16:
            break
    return head.partition(b"\n")[0] + b"\n"


def delta_previous(remote: S3Destination, mirror_snapshots: Path, published: str) -> bool:
    """After `published` became current: the snapshot before it (the newest older one the mirror
    holds whole) keeps its manifest in S3 as a delta against `published`'s. Only when the mirror's
    copy is the bytes S3 holds (their sha256), and the delta, built in the mirror, rebuilds it; the
    delta is uploaded before the whole manifest is deleted. Returns whether a delta was made."""
    older = sorted(
        p.name for p in mirror_snapshots.iterdir() if p.name < published and (p / MANIFEST).is_file()
    )
    if not older or not (mirror_snapshots / published / MANIFEST).is_file():
        return False
    previous = mirror_snapshots / older[-1]
    if (remote.current() or {}).get("snapshot") != published:
        return False  # another run published since: the one it replaced is its business
    if _deltas_before(remote, previous.name) >= KEEP_WHOLE_EVERY - 1:
        return False  # it ends the chain of the deltas before it
    prefix = remote.location.snapshot_prefix(previous.name)
    head = remote.head(prefix + MANIFEST)
    if head is None or head.get("Metadata", {}).get("sha256") != file_digest(previous / MANIFEST)[0]:
        return False  # gone, already a delta, or not what the mirror holds: left as it is
    built = previous / f".{MANIFEST_DELTA}.s3"
    try:
        if not build_manifest_delta(previous, mirror_snapshots / published, built):
            return False
        remote.client.upload_file(str(built), remote.location.bucket, prefix + MANIFEST_DELTA)
    finally:
        built.unlink(missing_ok=True)
    remote.client.delete_object(Bucket=remote.location.bucket, Key=prefix + MANIFEST)
    return True


def _deltas_before(remote: S3Destination, name: str) -> int:
    """How many of the snapshots just before `name` in S3 keep a delta, up to the first whole one
    (one listing of the snapshots' own keys: a few per snapshot)."""
    root = remote.location.key(SNAPSHOTS) + "/"
    whole: set[str] = set()
    delta: set[str] = set()
    for item in remote.objects(root):
        snapshot, _, file = str(item["Key"])[len(root) :].partition("/")
        if file == MANIFEST:
            whole.add(snapshot)
        elif file == MANIFEST_DELTA:
            delta.add(snapshot)
    count = 0
    for older in sorted((n for n in whole | delta if n < name), reverse=True):
        if older in whole or older not in delta:
            break
        count += 1
    return count


def release_base(remote: S3Destination, name: str, snapshots: list[str]) -> None:
    """Before snapshot `name` is deleted: each of `snapshots` whose delta is based on it gets its
    whole manifest back (rebuilt through the chain and checked, uploaded, then the delta deleted).
    Raises ManifestUnreadable if one cannot be rebuilt: `name` must then stay."""
    for other in snapshots:
        if other >= name or base_of(remote, other) != name:
            continue
        prefix = remote.location.snapshot_prefix(other)
        with tempfile.TemporaryDirectory(prefix="notion-sync-manifest-") as scratch:
            whole = Path(scratch) / MANIFEST
            if not fetch_manifest(remote, other, whole):
                continue
            remote.client.upload_file(
                str(whole),
                remote.location.bucket,
                prefix + MANIFEST,
                ExtraArgs={"Metadata": {"sha256": file_digest(whole)[0]}},
            )
        remote.client.delete_object(Bucket=remote.location.bucket, Key=prefix + MANIFEST_DELTA)
        log.info("%s: snapshot %s has its whole manifest again", remote.location.url, other)
