"""The object store of a folder destination: each file's bytes once, under their sha256.

    DEST/.notion-sync/objects/<aa>/<sha256>   one inode per distinct content, read-only (0o444)
    DEST/.notion-sync/store.json              written once every snapshot of DEST is in the store
    DEST/.notion-sync/store.lock              held (flock) while a run interns or a GC deletes
    DEST/.notion-sync/store-tmp/              links being made (left over only by an interrupted run)

A browsable snapshot is an ordinary tree: each of its files is a hard link to the store object
holding its bytes, so an unchanged file costs a directory entry. Older snapshots are packed: their
tree is removed once every file is in the store, and their manifest lists what they reference. An
object is therefore referenced exactly when it has a link besides the store's own (a tree, or a
running export's staging) or a packed snapshot's manifest lists it: that is what garbage collection
checks. Where a link is impossible (too many links, a file system without hard links), the snapshot
keeps its own copy: complete, not deduplicated (and never packed).

Nothing ever writes into an object: files are replaced by links (a temporary link, then a rename),
never truncated or rewritten, and objects are read-only so that an editor saving through `current/`
fails instead of changing every snapshot at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from notion_sync.models import GarbageReport, ManifestFile
from notion_sync.snapshot import (
    INTERNAL,
    OBJECTS,
    PACKED,
    SNAPSHOTS,
    STORE_MARKER,
    ManifestUnreadable,
    current_snapshot,
    delta_base,
    file_digest,
    is_packed,
    object_path,
    read_manifest,
    stored_manifest,
    write_manifest_delta,
)
from notion_sync.storage.digests import DigestSet

log = logging.getLogger(__name__)

STORE_FORMAT = {"format": "notion-sync-store", "version": 1}
LOCK = "store.lock"
TMP = "store-tmp"
READ_ONLY = 0o444
# Why a hard link cannot be made: too many links to the inode (ext4: 65,000), or a file system
# (or a pair of them) without hard links. The file then stays as it is.
_NO_LINK = {errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}
# Heartbeat every so many files or objects.
_BEAT = 1000


class StoreBusy(RuntimeError):
    """Another process (a run publishing, another GC) holds the store's lock."""


class Interned(NamedTuple):
    """What interning one snapshot did to its files."""

    # Files replaced by a link to the object already holding their bytes.
    linked: int
    # Files that became a new object (linked into the store).
    added: int
    # Files left as they were because no link could be made (they keep their own copy).
    unlinked: int
    # Files whose bytes do not match their manifest entry (left as they are, never stored).
    damaged: int = 0


class _Outcome(Enum):
    SAME = "same"  # already the store's inode
    LINKED = "linked"
    ADDED = "added"
    UNLINKED = "unlinked"
    MISSING = "missing"  # not in the snapshot: verify names it
    DAMAGED = "damaged"  # its bytes are not what the manifest says


class ObjectStore:
    """The object store of the folder destination `root`. Interning and collecting garbage are to be
    done under `lock()` (runs) or `try_lock()` (commands), never both at once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.internal = self.root / INTERNAL
        self.objects = self.internal / OBJECTS
        self.marker = self.internal / STORE_MARKER
        self._tmp = self.internal / TMP
        self._folders: set[str] = set()
        # Files whose bytes did not match their manifest in the last `adopt_existing`.
        self.damaged = 0

    def object(self, sha256: str) -> Path:
        return self.internal / object_path(sha256)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the store's lock, waiting for it as long as it takes."""
        with self._locked(blocking=True):
            yield

    @contextmanager
    def try_lock(self) -> Iterator[None]:
        """Holds the store's lock, or raises StoreBusy at once if someone else holds it."""
        with self._locked(blocking=False):
            yield

    @contextmanager
    def _locked(self, blocking: bool) -> Iterator[None]:
        self.internal.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.internal / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(
                    f"{self.root}: a run is publishing to this destination (or another command holds "
                    "its object store); try again later"
                ) from None
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def intern_snapshot(self, folder: Path, heartbeat: Callable[[], None] = lambda: None) -> Interned:
        """Makes every file `folder`'s manifest lists a link to the store object of its digest (the
        manifest's digests were taken from the bytes as written: nothing is read again). Safe to run
        again on the same folder after an interruption at any point.

        Raises ManifestUnreadable if the folder's manifest cannot be read."""
        counts = dict.fromkeys(_Outcome, 0)
        for file, path in _listed_files(folder, heartbeat):
            if path is not None:
                counts[self._intern_file(path, file.sha256, file.size)] += 1
        return Interned(
            counts[_Outcome.LINKED],
            counts[_Outcome.ADDED],
            counts[_Outcome.UNLINKED],
            counts[_Outcome.DAMAGED],
        )

    def adopt_existing(self, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Moves the files of snapshots written before the store into it (oldest snapshot first), each
        one only if its bytes match its manifest; returns how many were adopted, 0 once the store's
        marker says it was done. A damaged file is left as it is, logged and counted (`damaged`):
        verify names it. Reads the disk only; interruptible and repeatable."""
        self.damaged = 0
        if self.marker.is_file():
            return 0
        adopted = 0
        snapshots = self.root / SNAPSHOTS
        names = sorted(p.name for p in snapshots.glob("*") if p.is_dir() and not p.is_symlink())
        for name in names:
            try:
                adopted += self._adopt_snapshot(snapshots / name, heartbeat)
            except ManifestUnreadable as error:
                log.warning("%s: not adopted into the object store: %s", snapshots / name, error)
        if self.damaged:
            log.warning(
                "%s: %d files do not match their manifest and were not adopted", self.root, self.damaged
            )
        self._write_marker()
        return adopted

    def pack_snapshot(self, snapshot: Path, heartbeat: Callable[[], None] = lambda: None) -> bool:
        """Removes a snapshot's tree, keeping its manifest, report and problems: its files are read
        from the store from then on (`snapshot.snapshot_file`). Only when every file it lists has its
        object in the store and lies inside the snapshot as a plain file (else it stays a tree, and
        False is returned). The marker is written before any file goes and marked complete after
        the last, so an interrupted pack is finished by the next one and never mistaken for damage.
        Raises ManifestUnreadable if the manifest cannot be read."""
        inside = os.path.realpath(snapshot) + os.sep
        if not is_packed(snapshot):
            for file, path in _listed_files(snapshot, heartbeat):
                if path is None or not self._holds(file.sha256, file.size):
                    return False
                # A link planted in the tree (to a folder of the user's) is never followed.
                if os.path.lexists(path) and not _plain_file_inside(path, inside):
                    return False
            _write_json(snapshot / PACKED, {"packed": True, "complete": False, "store": STORE_FORMAT})
        for _file, path in _listed_files(snapshot, heartbeat):
            if path is not None and _plain_file_inside(path, inside):
                os.unlink(path)
        _remove_empty_folders(snapshot)
        _write_json(snapshot / PACKED, {"packed": True, "complete": True, "store": STORE_FORMAT})
        return True

    def pack_old_snapshots(self, browsable: int, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Packs every snapshot but the `browsable` newest and the current one (and finishes an
        interrupted pack); returns how many were packed now."""
        snapshots = self.root / SNAPSHOTS
        current = current_snapshot(self.root)
        names = sorted(p.name for p in snapshots.glob("*") if p.is_dir() and not p.is_symlink())
        packed = 0
        older = names[: max(0, len(names) - max(1, browsable))]
        for name, newer in zip(older, names[1:], strict=False):
            folder = snapshots / name
            if folder == current:
                continue
            try:
                if not _packed_completely(folder):
                    packed += self.pack_snapshot(folder, heartbeat)
                if _packed_completely(folder):
                    write_manifest_delta(folder, snapshots / newer)
            except ManifestUnreadable as error:
                log.warning("%s: kept as it is, a manifest is unreadable: %s", folder, error)
        return packed

    def collect_garbage(
        self, heartbeat: Callable[[], None] = lambda: None, dry_run: bool = False
    ) -> GarbageReport:
        """Deletes the objects nothing references: no file links them (one link: the store's own) and
        no packed snapshot lists them. Adopts the snapshots written before the store first (not on a
        dry run, which changes nothing). Exact, and safe to interrupt anywhere: each deletion is of
        an object nothing references. Raises ManifestUnreadable (and deletes nothing) if a packed
        snapshot's manifest cannot be read: what it references would be unknown."""
        report = GarbageReport(dry_run=dry_run)
        if not dry_run:
            report.adopted = self.adopt_existing(heartbeat)
            self._remove_leftovers()
        if not self.objects.is_dir():
            return report
        with self._packed_digests(heartbeat) as listed:
            with os.scandir(self.objects) as folders:
                names = sorted(entry.name for entry in folders if entry.is_dir(follow_symlinks=False))
            for name in names:
                with os.scandir(self.objects / name) as entries:
                    for entry in entries:
                        self._collect(entry, listed, report, dry_run)
                        if report.objects % _BEAT == 0:
                            heartbeat()
        return report

    @contextmanager
    def _packed_digests(self, heartbeat: Callable[[], None]) -> Iterator[DigestSet]:
        """The digests every packed snapshot lists (they hold no link to their objects). A manifest
        kept as a delta is read as stored, not rebuilt: what it does not list, its base does, and
        every base is read too (a base still a tree among them: some of its files may be copies
        rather than links, so its objects are held by its list as well)."""
        with DigestSet() as listed:
            bases: set[str] = set()
            for folder in sorted((self.root / SNAPSHOTS).glob(f"*/{PACKED}")):
                with stored_manifest(folder.parent) as entries:
                    listed.add_many(file.sha256 for entry in entries for file in entry.files)
                base = delta_base(folder.parent)
                if base is not None and not is_packed(self.root / SNAPSHOTS / base):
                    bases.add(base)
                heartbeat()
            for base in sorted(bases):
                with read_manifest(self.root / SNAPSHOTS / base) as (_header, entries):
                    listed.add_many(file.sha256 for entry in entries for file in entry.files)
            yield listed

    def _holds(self, sha256: str, size: int) -> bool:
        try:
            return os.stat(self.object(sha256)).st_size == size
        except (OSError, ValueError):
            return False

    @staticmethod
    def _collect(entry: os.DirEntry[str], listed: DigestSet, report: GarbageReport, dry_run: bool) -> None:
        """One object counted, and deleted if nothing links or lists it."""
        report.objects += 1
        try:
            status = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return
        if status.st_nlink > 1 or entry.name in listed:
            report.referenced += 1
            return
        if not dry_run:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                return
        report.deleted += 1
        report.freed_bytes += status.st_size

    def _adopt_snapshot(self, snapshot: Path, heartbeat: Callable[[], None]) -> int:
        adopted = 0
        inside = os.path.realpath(snapshot) + os.sep
        for file, path in _listed_files(snapshot, heartbeat):
            # A manifest or a link planted in an old snapshot never reaches a file outside it.
            if path is None or not os.path.realpath(path).startswith(inside):
                continue
            if self._is_stored(path, file.sha256):
                continue
            try:
                found = file_digest(path)
            except OSError:
                continue  # missing: verify names it
            if found != (file.sha256, file.size):
                self.damaged += 1
                log.warning("%s does not match its manifest: not adopted", path)
                continue
            if self._intern_file(path, file.sha256, file.size) in (_Outcome.LINKED, _Outcome.ADDED):
                adopted += 1
        return adopted

    def _is_stored(self, path: str, sha256: str) -> bool:
        try:
            return os.path.samestat(os.lstat(path), os.stat(self.object(sha256)))
        except (OSError, ValueError):  # ValueError: not a digest (the file cannot match it either)
            return False

    def _intern_file(self, path: str, sha256: str, size: int) -> _Outcome:
        """One snapshot file made a link to its object, or its object made from it."""
        try:
            file = os.lstat(path)
        except FileNotFoundError:
            return _Outcome.MISSING
        if not stat.S_ISREG(file.st_mode):
            return _Outcome.MISSING  # a link or a folder where a file is listed: verify names it
        target = self.object(sha256)
        try:
            stored = os.stat(target)
        except FileNotFoundError:
            stored = None
        if stored is not None and os.path.samestat(file, stored):
            return _Outcome.SAME
        if stored is not None and stored.st_size == size:
            # The file is replaced by the object, never written into: it may be shared.
            return _Outcome.LINKED if self._link(target, path) else _Outcome.UNLINKED
        # No object yet (or a damaged one of the wrong size): the file becomes it, read-only, once
        # its bytes are checked (only new content is read: every later copy just links to it).
        try:
            if file_digest(path) != (sha256, size):
                log.warning("%s does not match its manifest: not stored", path)
                return _Outcome.DAMAGED
        except OSError:
            return _Outcome.MISSING
        self._folder(target.parent)
        made = self._link(path, str(target), read_only=True)
        return _Outcome.ADDED if made else _Outcome.UNLINKED

    def _link(self, source: str | Path, target: str | Path, read_only: bool = False) -> bool:
        """Makes `target` a link to `source`'s inode (a temporary link, then an atomic rename); False
        where no link can be made (`target` is left as it was)."""
        self._folder(self._tmp)
        tmp = self._tmp / f"{os.getpid()}-{uuid.uuid4().hex}"
        try:
            os.link(source, tmp, follow_symlinks=False)
        except OSError as error:
            if error.errno in _NO_LINK:
                log.debug("no link from %s to %s: %s", target, source, error)
                return False
            raise
        try:
            if read_only:
                try:
                    os.chmod(tmp, READ_ONLY)
                except PermissionError:  # a file of another user: shared all the same, just writable
                    log.warning("%s cannot be made read-only", target)
            os.replace(tmp, target)
        finally:
            # Gone after the rename, unless `tmp` and `target` already were the same inode.
            tmp.unlink(missing_ok=True)
        return True

    def _folder(self, folder: Path) -> None:
        key = str(folder)
        if key not in self._folders:  # at most 256 + 1 folders: the set stays small
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(key)

    def _remove_leftovers(self) -> None:
        """The temporary links of an interrupted intern: each holds an object's link count up."""
        if not self._tmp.is_dir():
            return
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                Path(entry.path).unlink(missing_ok=True)

    def _write_marker(self) -> None:
        self.internal.mkdir(parents=True, exist_ok=True)
        tmp = self.marker.with_name(f".{STORE_MARKER}.{os.getpid()}")
        tmp.write_text(json.dumps(STORE_FORMAT))
        os.replace(tmp, self.marker)


def _plain_file_inside(path: str, inside: str) -> bool:
    """Whether `path` is a regular file (not a link) in a folder that lies inside the snapshot."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISREG(mode) and (os.path.realpath(os.path.dirname(path)) + os.sep).startswith(inside)


def _packed_completely(snapshot: Path) -> bool:
    try:
        marker = json.loads((snapshot / PACKED).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("complete") is True


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _remove_empty_folders(snapshot: Path) -> None:
    for dirpath, _dirs, _files in os.walk(snapshot, topdown=False):
        if Path(dirpath) != snapshot:
            with contextlib.suppress(OSError):  # not empty: unlisted files (the site's index) stay
                os.rmdir(dirpath)


def _listed_files(snapshot: Path, heartbeat: Callable[[], None]) -> Iterator[tuple[ManifestFile, str | None]]:
    """Every file a snapshot's manifest lists, with where it lies in the snapshot (None for a path
    that would leave it), streamed, heartbeating every so many objects."""
    with read_manifest(snapshot) as (_header, entries):
        for number, entry in enumerate(entries, start=1):
            if number % _BEAT == 0:
                heartbeat()
            for file in entry.files:
                yield file, _listed(snapshot, file.path)


def _listed(folder: Path, relpath: str) -> str | None:
    """Where a manifest path lies in `folder`, or None for one that would leave it."""
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or ".." in parts:
        return None
    return os.path.join(folder, relpath)
