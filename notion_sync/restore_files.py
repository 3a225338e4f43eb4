"""`notion-sync restore-files`: a snapshot, or one page's subtree, materialised as the ordinary tree.

The source is a folder destination (`DEST/snapshots/<name>/`, `DEST/current`; a packed snapshot's
listed files read from `DEST/.notion-sync/objects/`, see `snapshot.snapshot_file`) or an S3 destination
(`<prefix>/snapshots/<name>/`, `<prefix>/current.json`), whose listed files are read from the object
store (`<prefix>/objects/<sha[:2]>/<sha>`) or, for a snapshot published before the store, from their
paths under the snapshot (`S3Destination.download`); its own files and `html/` site from their paths.
What is written:

- a whole snapshot: every file its manifest lists, each checked against the manifest's size and
  sha256 as it is written; the snapshot's own `manifest.jsonl`, `report.json` and `problems.jsonl`;
  and the rest of its HTML site under `html/` (the index and stylesheet, which no object lists; from
  S3 checked against each object's sha256 metadata, from a folder copied as it is).
  The result equals the snapshot file for file, and `notion-sync verify` accepts it.
- one page (`--page`, by id or by its Markdown path): that object and every object below it by the
  manifest's `parent` links (pages, databases, data sources, rows), each with every file the manifest
  lists for it, at the same relative paths; no snapshot files, as the manifest would not match.

A mismatch, a missing file or an unsafe manifest path stops the restore and removes what it wrote;
`out` must not exist or be empty, so nothing but the restore is ever removed. Nothing is written
outside `out` (an S3 manifest is downloaded into it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from notion_sync.models import ManifestFile, ManifestObject
from notion_sync.settings import Settings
from notion_sync.snapshot import (
    CURRENT,
    MANIFEST,
    PROBLEMS,
    READ_CHUNK,
    REPORT,
    SNAPSHOTS,
    ManifestUnreadable,
    current_snapshot,
    has_manifest,
    manifest_lines,
    read_manifest,
    snapshot_file,
)
from notion_sync.storage.destination import remote_destination
from notion_sync.storage.s3 import S3Destination, S3UrlError, SnapshotUnusable
from notion_sync.storage.s3_manifests import fetch_manifest
from notion_sync.storage.s3_manifests import has_manifest as s3_has_manifest
from notion_sync.verify import safe_relpath

# The HTML site rendered at publish: part of a snapshot, not listed in its manifest.
SITE = "html/"
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Where an S3 manifest is kept while a page's subtree is read from it (removed at the end).
_PAGE_MANIFEST = f".{MANIFEST}.restore"


class RestoreError(Exception):
    """A restore that cannot be done, or was stopped; the message says why."""


@dataclass
class RestoreResult:
    snapshot: str
    objects: int  # manifest objects restored
    files: int
    bytes: int


def restore_files(
    destination: str,
    out: Path,
    settings: Settings,
    snapshot: str | None = None,
    page: str | None = None,
) -> RestoreResult:
    """Writes snapshot `snapshot` of `destination` (default: the current one), or only the subtree
    of `page`, into `out`. Raises RestoreError (OSError, botocore's errors on I/O failures), with
    `out` left as it was found."""
    try:
        remote = remote_destination(destination, settings)
    except S3UrlError as error:
        raise RestoreError(str(error)) from None
    # The snapshot is found before `out` is touched: a wrong name leaves no folder behind.
    if remote is None:
        source = _folder_snapshot(Path(destination).expanduser(), snapshot)
        name = source.resolve().name
        if out.resolve().is_relative_to(source.resolve()):
            raise RestoreError(f"{out} is inside the snapshot it would restore")
    else:
        name = _s3_snapshot(remote, snapshot)
    created = _claim(out)
    try:
        if remote is None:
            objects = _restore_folder(source, out, page)
        else:
            objects = _restore_s3(remote, out, name, page)
    except BaseException:
        _undo(out, created)
        raise
    files, size = _written(out)
    return RestoreResult(snapshot=name, objects=objects, files=files, bytes=size)


# ------------------------------------------------------------------------------------ the output


def _claim(out: Path) -> bool:
    """Makes sure `out` is an empty folder; True if this restore created it."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RestoreError(f"{out} exists and is not a folder")
    if out.is_dir():
        if any(out.iterdir()):
            raise RestoreError(f"{out} is not empty: restore into a new or empty folder")
        return False
    try:
        out.mkdir(parents=True)
    except OSError as error:
        raise RestoreError(f"cannot create {out}: {error.strerror or error}") from None
    return True


def _undo(out: Path, created: bool) -> None:
    """Removes what the restore wrote (`out` was empty or absent before)."""
    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _target(out: Path, relpath: str) -> Path:
    if not safe_relpath(relpath):
        raise RestoreError(f"{MANIFEST} lists an unsafe path: {relpath!r}")
    return out / relpath


# ------------------------------------------------------------------------------------ the manifest


def _selected(manifest: Path, page: str | None) -> Iterator[ManifestObject]:
    """The manifest's objects to restore, streamed: all of them, or `page` and its descendants.

    For a page the manifest is read twice: once for every object's id and parent (the tree, two short
    strings an object), then for the objects of the subtree.
    """
    try:
        if page is None:
            with read_manifest(manifest) as (_header, entries):
                yield from entries
            return
        wanted = _subtree(manifest, page)
        with read_manifest(manifest) as (_header, entries):
            yield from (entry for entry in entries if entry.id in wanted)
    except ManifestUnreadable as error:
        raise RestoreError(f"the snapshot's {MANIFEST} is unreadable: {error}") from None


def _subtree(manifest: Path, page: str) -> set[str]:
    """Ids of the object `page` names (an id, with or without dashes, or a Markdown path) and of
    every object below it."""
    key = page.replace("-", "").lower()
    root: str | None = None
    children: dict[str, list[str]] = {}
    with read_manifest(manifest) as (_header, entries):
        for entry in entries:
            if entry.parent is not None:
                children.setdefault(entry.parent, []).append(entry.id)
            if root is None and (entry.id.replace("-", "").lower() == key or entry.path == page):
                root = entry.id
    if root is None:
        raise RestoreError(f"no page {page!r} in the snapshot (give its id or its Markdown path)")
    wanted, pending = {root}, [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in wanted:  # a parent loop in a damaged manifest ends here
                wanted.add(child)
                pending.append(child)
    return wanted


# ------------------------------------------------------------------------------------ folders


def _restore_folder(source: Path, out: Path, page: str | None) -> int:
    """Copies the snapshot folder `source`; returns how many manifest objects were restored."""
    selected = 0
    base = source.resolve()
    for entry in _selected(source / MANIFEST, page):
        selected += 1
        for file in entry.files:
            _copy_checked(base, file, out)
    if page is None:
        for name in (MANIFEST, REPORT, PROBLEMS):
            if (base / name).is_file():
                _copy(base / name, out / name)
        if not (base / MANIFEST).is_file():  # kept as a delta: the tree gets it whole
            with manifest_lines(base) as lines, (out / MANIFEST).open("wb") as whole:
                whole.writelines(lines)
        for path in sorted((base / SITE).rglob("*")):
            if path.is_file() and not path.is_symlink():
                _copy(path, out / path.relative_to(base))
    return selected


def _folder_snapshot(root: Path, snapshot: str | None) -> Path:
    if snapshot is None:
        if has_manifest(root):  # a snapshot folder itself
            return root
        current = current_snapshot(root)
        if current is None or not has_manifest(current):
            raise RestoreError(f"{root} is not an export: no {MANIFEST} there nor in {root / CURRENT}")
        return current
    if not _SNAPSHOT_NAME.match(snapshot):
        raise RestoreError(f"{snapshot!r} is not a snapshot name")
    source = root / SNAPSHOTS / snapshot
    if not has_manifest(source):
        known = sorted(p.name for p in (root / SNAPSHOTS).glob("*") if has_manifest(p))
        raise RestoreError(f"no snapshot {snapshot} in {root} (it has: {', '.join(known) or 'none'})")
    return source


def _copy_checked(base: Path, file: ManifestFile, out: Path) -> None:
    """Copies one manifest file (from the tree, or a packed snapshot's store object), checking size
    and sha256 of the bytes as they are written."""
    target = _target(out, file.path)
    source = snapshot_file(base, file)
    # A path in the tree may be a link planted there; a store object's path is made from its digest.
    in_tree = source == base / file.path
    if (in_tree and not source.resolve().is_relative_to(base)) or not source.is_file():
        raise RestoreError(f"{file.path} is missing from the snapshot")
    if target.is_file():  # a file several objects show (listed once per page)
        return
    digest, size = _copy(source, target)
    if (digest, size) != (file.sha256, file.size):
        raise RestoreError(
            f"{file.path} does not match the manifest (size {size}, expected {file.size}; "
            f"sha256 {digest[:12]}…, expected {file.sha256[:12]}…): the snapshot is damaged"
        )


def _copy(source: Path, target: Path) -> tuple[str, int]:
    """Copies a file through a temporary name; returns the (sha256, size) of what was written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, temporary.open("wb") as writer:
        for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    os.replace(temporary, target)
    return digest.hexdigest(), size


# ------------------------------------------------------------------------------------ S3


def _restore_s3(remote: S3Destination, out: Path, snapshot: str, page: str | None) -> int:
    """Downloads the snapshot: the manifest, then every listed file (from the object store, or an
    older snapshot's paths), then the report, problems and `html/` site from their paths, each object
    checked by `S3Destination.download`; returns how many manifest objects were restored."""
    prefix = remote.location.snapshot_prefix(snapshot)
    manifest = out / (MANIFEST if page is None else _PAGE_MANIFEST)
    selected = 0

    def listed_files() -> Iterator[tuple[str, ManifestFile]]:
        nonlocal selected
        for entry in _selected(manifest, page):
            selected += 1
            for file in entry.files:
                _target(out, file.path)
                yield file.path, file  # one listed twice is fetched once (`download` skips it)

    try:
        if not fetch_manifest(remote, snapshot, manifest):
            raise SnapshotUnusable(f"{prefix}{MANIFEST} is missing")
        remote.download(snapshot, listed_files(), out)
        if page is None:
            site = (str(o["Key"])[len(prefix) :] for o in remote.objects(prefix + SITE))
            remote.download(
                snapshot, [(REPORT, None), (PROBLEMS, None), *((path, None) for path in site)], out
            )
    except (SnapshotUnusable, ManifestUnreadable) as error:
        raise RestoreError(f"snapshot {snapshot} in {remote.location.url} is damaged: {error}") from None
    finally:
        if page is not None:
            manifest.unlink(missing_ok=True)
    return selected


def _s3_snapshot(remote: S3Destination, snapshot: str | None) -> str:
    """The name of the snapshot to restore, checked to be there."""
    url = remote.location.url
    if snapshot is None:
        pointer = remote.current()
        if pointer is None:
            raise RestoreError(f"nothing is published in {url} yet (no current.json)")
        snapshot = str(pointer.get("snapshot", ""))
        if not _SNAPSHOT_NAME.match(snapshot):
            raise RestoreError(f"{url}/current.json names no usable snapshot ({snapshot!r})")
    elif not _SNAPSHOT_NAME.match(snapshot):
        raise RestoreError(f"{snapshot!r} is not a snapshot name")
    if not s3_has_manifest(remote, snapshot):
        known = ", ".join(remote.snapshots()) or "none"
        raise RestoreError(f"no snapshot {snapshot} in {url} (it has: {known})")
    return snapshot


def _written(out: Path) -> tuple[int, int]:
    """(files, bytes) now in `out`."""
    files = size = 0
    for folder, _dirs, names in os.walk(out):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size
