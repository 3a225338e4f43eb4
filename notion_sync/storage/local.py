"""A local folder as export destination.

Layout of a destination folder:

    DEST/current -> snapshots/<snapshot>      the latest complete export (a symlink, swapped atomically)
    DEST/snapshots/<snapshot>/                 complete exports, each with manifest.jsonl and report.json
    DEST/.notion-sync/staging/<staging id>/    an export in progress (never read by users)
    DEST/.notion-sync/state/<staging id>.sqlite  its export index
    DEST/.notion-sync/reports/                 the report of every run, failed ones included
    DEST/.notion-sync/objects/<aa>/<sha256>    each file's bytes once: snapshot files link here
                                               (`notion_sync/storage/objects.py`)

A reader of `DEST/current` sees the previous export or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from notion_sync.models import ManifestFile
from notion_sync.snapshot import (
    CURRENT,
    INTERNAL,
    OBJECTS,
    SNAPSHOTS,
    current_snapshot,
    file_digest,
    release_base,
)

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class UnsafePath(ValueError):
    """A relative path that would leave the staging folder, or a link where a folder of ours goes."""


class LocalDestination:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    @property
    def internal(self) -> Path:
        return self.root / INTERNAL

    def staging(self, staging_id: str) -> Path:
        return self.internal / "staging" / staging_id

    def index_path(self, staging_id: str) -> Path:
        return self.internal / "state" / f"{staging_id}.sqlite"

    def reports(self) -> Path:
        return self.internal / "reports"

    def current(self) -> Path | None:
        return current_snapshot(self.root)

    def check_links(self) -> None:
        """Refuses folders of ours that are symbolic links: writing through one (planted at
        `DEST/snapshots` or `DEST/.notion-sync`) would write outside the destination."""
        for folder in (
            self.root / SNAPSHOTS,
            self.internal,
            self.internal / "staging",
            self.internal / "state",
            self.internal / "reports",
            self.internal / OBJECTS,
        ):
            if folder.is_symlink():
                raise UnsafePath(
                    f"{folder} is a symbolic link: notion-sync never writes through links inside a "
                    "destination; remove it or choose another destination"
                )

    def snapshot(self, name: str) -> Path:
        return self.root / SNAPSHOTS / name

    def prepare(self, staging_id: str) -> None:
        self.check_links()
        self.staging(staging_id).mkdir(parents=True, exist_ok=True)
        self.index_path(staging_id).parent.mkdir(parents=True, exist_ok=True)

    def write(self, staging_id: str, relpath: str, data: bytes) -> ManifestFile:
        """Writes one file into staging (see `_create` for why without a temporary file and rename)."""
        with _create(self._target(staging_id, relpath)) as stream:
            stream.write(data)
        return ManifestFile(path=relpath, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def describe(self, staging_id: str, relpath: str) -> ManifestFile:
        """The manifest entry of a file already in staging: its size and checksum, read streamed."""
        sha256, size = file_digest(self._target(staging_id, relpath))
        return ManifestFile(path=relpath, sha256=sha256, size=size)

    def adopt(self, staging_id: str, relpath: str, source: Path) -> ManifestFile:
        """Takes an unchanged file from an earlier snapshot: a hard link where possible, else a copy."""
        target = Path(self._target(staging_id, relpath))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return self.describe(staging_id, relpath)

    @contextmanager
    def open_stream(self, staging_id: str, relpath: str) -> Iterator[BinaryIO]:
        """A file in staging written piece by piece; removed again if writing it fails."""
        target = self._target(staging_id, relpath)
        with _create(target) as stream:
            try:
                yield stream
            except BaseException:
                os.unlink(target)
                raise

    def publish(self, staging_id: str, snapshot: str) -> Path:
        """Promotes staging whole to a snapshot and points `current` at it. Safe to repeat."""
        self.check_links()
        staged = self.staging(staging_id)
        final = self.root / SNAPSHOTS / snapshot
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                release_base(final)
                shutil.rmtree(final)
            os.replace(staged, final)
        elif not final.exists():
            raise FileNotFoundError(f"neither staging {staged} nor snapshot {final} exists")
        link = self.root / CURRENT
        tmp_link = self.root / f".{CURRENT}.{staging_id}"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        tmp_link.symlink_to(Path(SNAPSHOTS) / snapshot)
        os.replace(tmp_link, link)
        self.index_path(staging_id).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.index_path(staging_id)}{suffix}").unlink(missing_ok=True)
        return final

    def _target(self, staging_id: str, relpath: str) -> str:
        # Lexical, no `resolve()` (an lstat per path component, per file): staging holds no symlinks.
        base = os.path.normpath(self.staging(staging_id))
        target = os.path.normpath(os.path.join(base, relpath))
        if not target.startswith(base + os.sep):
            raise UnsafePath(relpath)
        return target

    def discard(self, staging_id: str) -> None:
        """Compensation: removes everything this run staged; published snapshots are untouched.
        Through a link planted inside the destination nothing is touched (nothing was staged there)."""
        try:
            self.check_links()
        except UnsafePath:
            return
        # Staged files may be links to store objects: removing them only drops links.
        shutil.rmtree(self.staging(staging_id), ignore_errors=True)
        # Every state file of the run: its index (and SQLite's -wal, -shm), an S3 upload journal, ...
        for path in self.index_path(staging_id).parent.glob(f"{glob.escape(staging_id)}.*"):
            path.unlink(missing_ok=True)
        tmp_link = self.root / f".{CURRENT}.{staging_id}"
        if tmp_link.is_symlink():
            tmp_link.unlink()


def _create(target: str) -> BinaryIO:
    """A new, empty file in staging: one `open` in the common case, no temporary file, no rename.

    Staging is never read as a snapshot before it is published whole, and a file counts only once
    the index records it (page finished, download remembered), after it is written; a retried
    batch writes unrecorded files again. An existing file is unlinked, never truncated: it may be
    a hard link into a published snapshot (`adopt`).
    """
    for _ in range(2):
        try:
            return open(os.open(target, _CREATE, 0o666), "wb")
        except FileNotFoundError:
            _make_folder(os.path.dirname(target))
        except FileExistsError:
            os.unlink(target)
    return open(os.open(target, _CREATE, 0o666), "wb")


def _make_folder(folder: str) -> None:
    """A new file's folder: most are one level below an existing one, so one `mkdir` is enough."""
    try:
        os.mkdir(folder)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        pass


def check_destination(root: Path) -> str | None:
    """Why `root` cannot hold an export, or None if it can."""
    if root.exists() and not root.is_dir():
        return f"{root} exists and is not a folder"
    for folder in (root / SNAPSHOTS, root / INTERNAL):
        if folder.is_symlink():
            return f"{folder} is a symbolic link; notion-sync never writes through links inside a destination"
    current = root / CURRENT
    if current.exists() and not current.is_symlink():
        return f"{current} exists and was not made by notion-sync; choose another destination"
    snapshots = root / SNAPSHOTS
    if snapshots.exists() and not (root / INTERNAL).is_dir():
        return f"{snapshots} exists and was not made by notion-sync; choose another destination"
    probe = root if root.exists() else next((p for p in root.parents if p.exists()), None)
    if probe is None or not os.access(probe, os.W_OK):
        return f"{root} is not writable"
    return None


def no_space_message(destination: LocalDestination, staging_id: str) -> str:
    """What a user needs to know when the destination's disk is full: how much is free, how much
    this export had staged, and how much the last snapshot took (about what a new one needs)."""
    probe = next((p for p in (destination.root, *destination.root.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    staged = _size(destination.staging(staging_id))
    current = destination.current()
    last = f", the last snapshot takes {_size(current) >> 20} MB" if current is not None else ""
    return (
        f"no space left on device at {destination.root}: {free >> 20} MB free, this export had staged "
        f"{staged >> 20} MB{last}; staging is removed and the last snapshot stays current"
    )


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
