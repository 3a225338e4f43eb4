"""`notion-sync verify`: check an export folder, an archive or an S3 destination against its manifest.

Every file listed in `manifest.jsonl` must be present with the listed size and sha256. Files present
but not listed are reported as extra, except the snapshot's own `manifest.jsonl`, `problems.jsonl`,
`report.json` and an `html/` folder. Hashes are computed streaming, chunk by chunk.

A folder snapshot is checked where its files are read: a browsable one (a tree) in its tree; a packed
one (`packed.json`: an older snapshot whose tree was removed, see `snapshot.snapshot_file`) in the
destination's object store, so a store object missing is a missing file, one whose bytes changed a
corrupt one, and any file under the packed folder that is not its own nor listed an extra one.

An archive (see `notion_sync/archive.py`) is checked part by part against its `<name>.sha256` file
first, then entry by entry against the manifest it carries as its first entry.

An S3 destination (`s3://bucket/prefix`) is checked on the snapshot `current.json` names (or one
named). Its prefix `snapshots/<name>/` is listed once: since the object store it holds only the
manifest, report and problems (and the `html/` site), while every listed file's bytes are the object
`objects/<sha[:2]>/<sha>`; a snapshot published before the store (or half adopted) still holds some
or all of its files at their paths. Each listed file is read where that listing says: at its path if
it is there, otherwise from the store. It is downloaded streamed and hashed, a few at a time, and
compared with the manifest's size and sha256: a file in neither place is missing, one whose bytes
differ is corrupt, and an object under the snapshot prefix that is not a snapshot file, not listed
and not under `html/` is extra.

With `deep`, Markdown and CSV are also re-rendered from the snapshot's JSON (`render.render_snapshot`)
into a temporary folder and compared with the snapshot's own: an edit made after the export, even
with the manifest updated to match, shows. An archive or S3 snapshot is re-rendered from a temporary
copy of its manifest, JSON, Markdown and CSV (taken while they are hashed); its downloads are only
marked present, as the renderer asks no more of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from notion_sync.models import ManifestFile
from notion_sync.render import render_snapshot
from notion_sync.settings import Settings
from notion_sync.snapshot import (
    CURRENT,
    CURRENT_JSON,
    MANIFEST,
    MANIFEST_DELTA,
    META_FILES,
    PACKED,
    READ_CHUNK,
    SNAPSHOTS,
    ManifestUnreadable,
    file_digest,
    has_manifest,
    is_packed,
    read_manifest,
    snapshot_file,
    stream_digest,
)
from notion_sync.storage.s3 import S3Destination, S3UrlError, is_s3, parse_s3_url
from notion_sync.storage.s3_manifests import fetch_manifest

ALLOWED_FOLDERS = ("html/",)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz")
# What `deep` re-renders from the JSON and compares (downloads under files/ may have any name).
RENDERED_SUFFIXES = (".md", ".csv")
RENDER_INPUTS = ("json/",)
NOT_RENDERED = ("files/", "html/")
_PART = re.compile(r"^(?P<base>.+?)(?:\.part(?P<number>\d{3,}))?(?P<ext>\.zip|\.tar\.gz)$")


class NotAnExport(ValueError):
    """The path is neither a snapshot, a destination with a `current` snapshot, nor an archive."""


class StoreUnreachable(NotAnExport):
    """An S3 destination that cannot be read: no such bucket, no credentials, no endpoint."""


@dataclass
class Mismatch:
    path: str
    reason: str


@dataclass
class VerifyReport:
    target: str
    kind: Literal["folder", "archive", "s3"]
    files: int = 0
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    corrupted: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # With `deep`: Markdown and CSV files re-rendered, and those that differ from the snapshot's.
    rerendered: int | None = None
    differing: list[Mismatch] = field(default_factory=list)
    # S3 and packed folders: how many listed files were read from the object store (the others from
    # their paths).
    from_store: int | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.corrupted or self.errors or self.differing)

    def summary(self, limit: int = 50) -> str:
        if self.ok:
            deep = (
                "" if self.rerendered is None else f", {self.rerendered} Markdown/CSV files re-rendered alike"
            )
            return f"OK: {self.verified} files verified{self._store()}{deep} ({self.kind} {self.target})"
        counts = (
            f"{len(self.missing)} missing, {len(self.extra)} extra, {len(self.corrupted)} corrupted, "
            f"{len(self.differing)} differ from a re-render, {len(self.errors)} other problems"
        )
        verified = f"{self.verified}/{self.files} files verified{self._store()}"
        lines = [f"FAILED: {self.target} ({self.kind}): {counts}; {verified}"]
        listed: list[tuple[str, str]] = [
            *(("error", e) for e in self.errors),
            *(("missing", p) for p in self.missing),
            *(("corrupted", f"{c.path}: {c.reason}") for c in self.corrupted),
            *(("extra", p) for p in self.extra),
            *(("rendering", f"{d.path}: {d.reason}") for d in self.differing),
        ]
        lines += [f"  {label:<9}  {text}" for label, text in listed[:limit]]
        if len(listed) > limit:
            lines.append(f"  ... and {len(listed) - limit} more")
        return "\n".join(lines)

    def _store(self) -> str:
        return "" if self.from_store is None else f", {self.from_store} read from the object store"


def resolve_snapshot(path: Path) -> Path:
    """A snapshot folder itself, or the snapshot a destination's `current` points to."""
    if has_manifest(path):
        return path
    if has_manifest(path / CURRENT):
        return (path / CURRENT).resolve()
    raise NotAnExport(f"{path} is not an export: no {MANIFEST} there nor in {path / CURRENT}")


def safe_relpath(path: str) -> bool:
    """A manifest path that stays inside the snapshot (checked on the string: pathlib interns parts)."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "\\" not in path


def is_allowed_extra(relpath: str) -> bool:
    return relpath in META_FILES or relpath == MANIFEST_DELTA or relpath.startswith(ALLOWED_FOLDERS)


def verify(
    path: str | Path, deep: bool = False, snapshot: str | None = None, settings: Settings | None = None
) -> VerifyReport:
    """Verifies an export folder (snapshot or destination), an archive (any of its parts) or an S3
    destination; `snapshot` names one of a destination's snapshots instead of its current one.

    Raises NotAnExport (StoreUnreachable for an S3 destination that cannot be read).
    """
    if snapshot is not None and (not snapshot or "/" in snapshot or snapshot in (".", "..")):
        raise NotAnExport(f"{snapshot!r} is not a snapshot name")
    if is_s3(path):
        settings = settings or Settings()
        try:
            remote = S3Destination(parse_s3_url(path), settings)
        except S3UrlError as error:
            raise NotAnExport(str(error)) from None
        return _verify_s3(remote, snapshot, deep, settings.s3_concurrency)
    path = Path(path).expanduser()
    if path.is_file() and (path.name.endswith(".sha256") or _PART.match(path.name)):
        if snapshot is not None:
            raise NotAnExport(f"{path} is an archive: it holds one snapshot, --snapshot does not apply")
        report = VerifyReport(target=str(path), kind="archive")
        with tempfile.TemporaryDirectory(prefix="notion-sync-verify-") as scratch:
            _verify_archive(path, report, _RenderInputs(Path(scratch)) if deep else None)
        return report
    if snapshot is not None:
        if not has_manifest(path / SNAPSHOTS / snapshot):
            raise NotAnExport(f"{path} has no snapshot {snapshot!r} (no {SNAPSHOTS}/{snapshot}/{MANIFEST})")
        path = path / SNAPSHOTS / snapshot
    # Resolved: a packed snapshot finds its store from its own place (`DEST/snapshots/<name>`).
    folder = resolve_snapshot(path).resolve()
    report = VerifyReport(target=str(folder), kind="folder")
    _verify_folder(folder, report)
    if deep:
        compare_rendering(folder, report)
    return report


class _Expected:
    """The files a manifest lists, checked off as they are seen."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        self.files: dict[str, ManifestFile] = {}
        self.seen: set[str] = set()

    def load(self, manifest: Path | IO[bytes]) -> bool:
        try:
            with read_manifest(manifest) as (header, objects):
                count = 0
                for entry in objects:
                    count += 1
                    for file in entry.files:
                        if not safe_relpath(file.path):
                            self.report.errors.append(f"{MANIFEST} lists an unsafe path: {file.path!r}")
                        else:
                            self.files[file.path] = file
        except ManifestUnreadable as error:
            self.report.errors.append(f"{MANIFEST} is unreadable: {str(error).splitlines()[0]}")
            return False
        if count != header.objects:
            self.report.errors.append(f"{MANIFEST} lists {count} objects, its header says {header.objects}")
        self.report.files = len(self.files)
        return True

    def check(self, relpath: str, sha256: str, size: int) -> None:
        expected = self.files.get(relpath)
        if expected is None or relpath in self.seen:
            if not is_allowed_extra(relpath):
                self.report.extra.append(relpath if expected is None else f"{relpath} (duplicate)")
            return
        self.seen.add(relpath)
        if size != expected.size:
            self.report.corrupted.append(Mismatch(relpath, f"size {size}, expected {expected.size}"))
        elif sha256 != expected.sha256:
            self.report.corrupted.append(Mismatch(relpath, "sha256 differs from the manifest"))
        else:
            self.report.verified += 1

    def finish(self) -> None:
        self.report.missing.extend(sorted(set(self.files) - self.seen))
        # Sorted like an S3 report, whose files finish hashing in any order.
        self.report.extra.sort()
        self.report.corrupted.sort(key=lambda mismatch: mismatch.path)


class _RenderInputs:
    """A temporary copy of what `deep` needs from a snapshot that is not a folder: the manifest and
    JSON a re-render reads, the Markdown and CSV it is compared with, and the downloads marked present
    by empty files (the renderer only asks whether a database's icon or cover was downloaded)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def copy_of(self, relpath: str) -> Path | None:
        """Where to copy a listed file while it is hashed, or None if `deep` needs no copy of it."""
        if relpath == MANIFEST or relpath.startswith(RENDER_INPUTS):
            return self.root / relpath
        if relpath.endswith(RENDERED_SUFFIXES) and not relpath.startswith(NOT_RENDERED):
            return self.root / relpath
        return None

    def mark_present(self, relpath: str) -> None:
        if relpath.startswith("files/"):
            marker = self.root / relpath
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()


def _digest_and_copy(stream: IO[bytes], copy_to: Path | None) -> tuple[str, int]:
    """(sha256 hex, size) of what `stream` holds, written to `copy_to` as well when given."""
    if copy_to is None:
        return stream_digest(stream)
    copy_to.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with copy_to.open("wb") as copy:
        for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
            digest.update(chunk)
            copy.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def compare_rendering(snapshot: Path, report: VerifyReport) -> None:
    """Re-renders Markdown and CSV from the snapshot's JSON and reports each file that differs from the
    snapshot's own (read where `snapshot_file` finds it) or that the snapshot lacks. Files already
    reported missing or corrupted are not reported again."""
    reported = set(report.missing) | {mismatch.path for mismatch in report.corrupted}
    with tempfile.TemporaryDirectory(prefix="notion-sync-rerender-") as scratch:
        out = Path(scratch)
        try:
            render_snapshot(snapshot, ("md", "csv"), out)
        except (OSError, ValueError, KeyError, TypeError) as error:
            # a JSON file missing or damaged: the manifest check says which; this says why deep stopped
            report.errors.append(f"the snapshot's JSON could not be re-rendered: {error}")
            return
        report.rerendered = 0
        # Each listed file is compared with its re-rendering, which is then removed: what is left
        # was re-rendered but is not in the snapshot (the manifest streamed, memory flat).
        try:
            with read_manifest(snapshot) as (_header, objects):
                for entry in objects:
                    for file in entry.files:
                        rendered = out / file.path
                        if not safe_relpath(file.path) or not rendered.is_file():
                            continue
                        report.rerendered += 1
                        original = snapshot_file(snapshot, file)
                        if file.path not in reported and file_digest(original) != file_digest(rendered):
                            report.differing.append(
                                Mismatch(file.path, "differs from its re-rendering from the JSON")
                            )
                        rendered.unlink()
        except ManifestUnreadable:
            return  # reported by the manifest check already
        for dirpath, _dirnames, filenames in os.walk(out):
            for name in filenames:
                relpath = Path(dirpath, name).relative_to(out).as_posix()
                report.rerendered += 1
                if relpath not in reported:
                    report.differing.append(
                        Mismatch(relpath, "re-rendered from the JSON, not in the snapshot")
                    )
    report.differing.sort(key=lambda mismatch: mismatch.path)


def _verify_s3(remote: S3Destination, snapshot: str | None, deep: bool, workers: int) -> VerifyReport:
    from botocore.exceptions import BotoCoreError, ClientError

    url = remote.location.url
    try:
        return _verify_s3_snapshot(remote, snapshot, deep, workers)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("NoSuchBucket", "404", "NotFound"):
            raise StoreUnreachable(f"{url}: the bucket {remote.location.bucket} does not exist") from None
        raise StoreUnreachable(f"{url} cannot be read: {error}") from None
    except BotoCoreError as error:  # no credentials, no endpoint, connection refused
        raise StoreUnreachable(f"{url} cannot be read: {error}") from None


def _verify_s3_snapshot(
    remote: S3Destination, snapshot: str | None, deep: bool, workers: int
) -> VerifyReport:
    location = remote.location
    remote.check()
    if snapshot is None:
        pointer = remote.current()
        if pointer is None:
            raise NotAnExport(f"{location.url} is not an export: no {location.key(CURRENT_JSON)} there")
        snapshot = str(pointer.get("snapshot", ""))
    prefix = location.snapshot_prefix(snapshot)
    # Listed once, relpath -> size: since the object store only the snapshot's own files and its
    # html/ site (a snapshot published before the store lists one entry per file until adopted).
    sizes = {obj["Key"][len(prefix) :]: int(obj["Size"]) for obj in remote.objects(prefix)}
    if MANIFEST not in sizes and MANIFEST_DELTA not in sizes:
        raise NotAnExport(f"{location.url} has no snapshot {snapshot!r} (no {prefix}{MANIFEST})")
    report = VerifyReport(target=f"s3://{location.bucket}/{prefix}", kind="s3", from_store=0)
    with tempfile.TemporaryDirectory(prefix="notion-sync-verify-") as scratch:
        inputs = _RenderInputs(Path(scratch) / "snapshot")
        manifest = inputs.root / MANIFEST
        manifest.parent.mkdir()
        try:
            fetch_manifest(remote, snapshot, manifest)
        except ManifestUnreadable as error:
            report.errors.append(f"{MANIFEST} is unreadable: {str(error).splitlines()[0]}")
            return report
        with contextlib.closing(_ListedPaths(Path(scratch) / "listed.sqlite")) as listed:
            readable = _check_objects(
                remote, snapshot, manifest, sizes, listed, report, inputs if deep else None, workers
            )
        # Files finish hashing in any order: the report reads the same every time.
        report.missing.sort()
        report.extra.sort()
        report.corrupted.sort(key=lambda mismatch: mismatch.path)
        if deep and readable:
            compare_rendering(inputs.root, report)
    return report


def _object(remote: S3Destination, key: str) -> contextlib.closing[Any]:
    """An object's body: a stream, read in chunks and closed on leaving the `with`."""
    return contextlib.closing(remote.client.get_object(Bucket=remote.location.bucket, Key=key)["Body"])


class _ListedPaths:
    """The distinct paths a manifest lists, in a SQLite file: a 100,000-page manifest's set of paths
    is never held in memory (a file shown by several pages is listed once per page)."""

    def __init__(self, database: Path) -> None:
        self._db = sqlite3.connect(database)
        self._db.execute("CREATE TABLE listed (path TEXT PRIMARY KEY)")

    def add(self, path: str) -> bool:
        """Records `path`; False if it was listed before."""
        return self._db.execute("INSERT OR IGNORE INTO listed VALUES (?)", (path,)).rowcount == 1

    def __contains__(self, path: str) -> bool:
        return self._db.execute("SELECT 1 FROM listed WHERE path = ?", (path,)).fetchone() is not None

    def close(self) -> None:
        self._db.close()


# A listed file read and hashed: (its manifest entry, sha256, size, whether it came from the store).
_Digested = tuple[ManifestFile, str, int, bool]


def _check_objects(
    remote: S3Destination,
    snapshot: str,
    manifest: Path,
    sizes: dict[str, int],
    listed: _ListedPaths,
    report: VerifyReport,
    inputs: _RenderInputs | None,
    workers: int,
) -> bool:
    """Checks every file the manifest lists (streamed), then every object under the snapshot prefix;
    False if the manifest could not be read to its end.

    A listed file present at its path (`sizes`, the prefix's listing) is read there, any other from
    the object store; each is downloaded and hashed by a few threads (a bounded number in flight, so
    memory stays flat). A file at its path whose size differs from the manifest's is corrupt without
    a download; an object under the prefix that the manifest does not list is checked by name only.
    """

    from botocore.exceptions import ClientError

    def digest(file: ManifestFile, in_store: bool) -> _Digested | None:
        store_key, path_key = remote.file_keys(snapshot, file)
        copy_to = inputs.copy_of(file.path) if inputs is not None else None
        try:
            with _object(remote, store_key if in_store else path_key) as body:
                return (file, *_digest_and_copy(body, copy_to), in_store)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None  # in neither place (or deleted since the listing)
            raise

    def compare(file: ManifestFile, sha256: str, size: int) -> None:
        if size != file.size:
            report.corrupted.append(Mismatch(file.path, f"size {size}, expected {file.size}"))
        elif sha256 != file.sha256:
            report.corrupted.append(Mismatch(file.path, "sha256 differs from the manifest"))
        else:
            report.verified += 1

    def record(finished: Iterable[Future[tuple[ManifestFile, _Digested | None]]]) -> None:
        for future in finished:
            file, result = future.result()
            if result is None:
                report.missing.append(file.path)
                continue
            compare(file, result[1], result[2])
            if result[3] and report.from_store is not None:
                report.from_store += 1

    def task(file: ManifestFile, in_store: bool) -> tuple[ManifestFile, _Digested | None]:
        return file, digest(file, in_store)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        pending: set[Future[tuple[ManifestFile, _Digested | None]]] = set()
        readable = True
        try:
            with read_manifest(manifest) as (header, objects):
                count = 0
                for entry in objects:
                    count += 1
                    for file in entry.files:
                        if not safe_relpath(file.path):
                            report.errors.append(f"{MANIFEST} lists an unsafe path: {file.path!r}")
                            continue
                        if not listed.add(file.path):
                            continue
                        report.files += 1
                        at_path = sizes.get(file.path)
                        if at_path is not None and at_path != file.size:
                            compare(file, "", at_path)
                            continue
                        if inputs is not None:
                            inputs.mark_present(file.path)
                        pending.add(pool.submit(task, file, at_path is None))
                        if len(pending) >= 4 * workers:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            record(finished)
            if count != header.objects:
                report.errors.append(f"{MANIFEST} lists {count} objects, its header says {header.objects}")
        except ManifestUnreadable as error:
            report.errors.append(f"{MANIFEST} is unreadable: {str(error).splitlines()[0]}")
            readable = False
        record(wait(pending).done)
    for relpath in sorted(sizes):
        if not is_allowed_extra(relpath) and relpath not in listed:
            report.extra.append(relpath)
    return readable


def _verify_folder(root: Path, report: VerifyReport) -> None:
    """Checks every file the manifest lists (streamed; its distinct paths kept in a SQLite file), in
    the tree or, for a packed snapshot, where `snapshot_file` finds it; then reports every file under
    the folder that is neither listed nor the snapshot's own as extra."""
    packed = is_packed(root)
    if packed:
        report.from_store = 0
    with (
        tempfile.TemporaryDirectory(prefix="notion-sync-verify-") as scratch,
        contextlib.closing(_ListedPaths(Path(scratch) / "listed.sqlite")) as listed,
    ):
        try:
            with read_manifest(root / MANIFEST) as (header, objects):
                count = 0
                for entry in objects:
                    count += 1
                    for file in entry.files:
                        if not safe_relpath(file.path):
                            report.errors.append(f"{MANIFEST} lists an unsafe path: {file.path!r}")
                        elif listed.add(file.path):
                            report.files += 1
                            # A browsable tree must hold its files: one missing there is not excused
                            # by the store.
                            in_tree = root / file.path
                            source = snapshot_file(root, file) if packed else in_tree
                            _check_file(source, file, report)
                            if source != in_tree and report.from_store is not None:
                                report.from_store += 1
            if count != header.objects:
                report.errors.append(f"{MANIFEST} lists {count} objects, its header says {header.objects}")
        except ManifestUnreadable as error:
            report.errors.append(f"{MANIFEST} is unreadable: {str(error).splitlines()[0]}")
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                relpath = Path(dirpath, name).relative_to(root).as_posix()
                if (
                    relpath not in listed
                    and relpath not in (PACKED, MANIFEST_DELTA)
                    and not is_allowed_extra(relpath)
                ):
                    report.extra.append(relpath)
    report.missing.sort()
    report.extra.sort()
    report.corrupted.sort(key=lambda mismatch: mismatch.path)


def _check_file(source: Path, file: ManifestFile, report: VerifyReport) -> None:
    """Compares one listed file's bytes with the manifest's size and sha256."""
    if not source.is_file():
        report.missing.append(file.path)
    elif (size := source.stat().st_size) != file.size:
        report.corrupted.append(Mismatch(file.path, f"size {size}, expected {file.size}"))
    elif file_digest(source)[0] != file.sha256:
        report.corrupted.append(Mismatch(file.path, "sha256 differs from the manifest"))
    else:
        report.verified += 1


def archive_parts(path: Path) -> tuple[Path, str, str]:
    """(folder, base name, extension) of the archive `path` belongs to."""
    if path.name.endswith(".sha256"):
        base = path.name.removesuffix(".sha256")
        ext = next((e for e in ARCHIVE_SUFFIXES if any(path.parent.glob(f"{base}*{e}"))), ".zip")
        return path.parent, base, ext
    match = _PART.match(path.name)
    if match is None:
        raise NotAnExport(f"{path} is not an archive (expected .zip, .tar.gz or .sha256)")
    return path.parent, match["base"], match["ext"]


def _verify_archive(path: Path, report: VerifyReport, inputs: _RenderInputs | None) -> None:
    folder, base, ext = archive_parts(path)
    on_disk = sorted(
        p for p in folder.iterdir() if (m := _PART.match(p.name)) and m["base"] == base and m["ext"] == ext
    )
    sums = folder / f"{base}.sha256"
    if not sums.is_file():
        report.errors.append(f"checksum file {sums.name} is missing")
        parts = on_disk
    else:
        parts = []
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            part = folder / name.lstrip("*")
            if not part.is_file():
                report.errors.append(f"part {name} is missing")
                continue
            if file_digest(part)[0] != digest:
                report.errors.append(f"part {name} does not match its checksum in {sums.name}")
            parts.append(part)
        report.errors.extend(f"part {p.name} is not listed in {sums.name}" for p in on_disk if p not in parts)
    if not parts:
        report.errors.append(f"no part of {base}{ext} found")
        return
    expected = _Expected(report)
    prefix: str | None = None
    for part in parts:
        try:
            for name, stream in _entries(part):
                if prefix is None:
                    if not name.endswith(MANIFEST) or name.count("/") > 1:
                        report.errors.append(f"{part.name} does not begin with {MANIFEST}")
                        return
                    prefix = name.removesuffix(MANIFEST)
                    if inputs is not None:
                        _digest_and_copy(stream, inputs.root / MANIFEST)
                    if not expected.load(inputs.root / MANIFEST if inputs is not None else stream):
                        return
                    continue
                relpath = name.removeprefix(prefix) if name.startswith(prefix) else name
                copy_to = None
                if inputs is not None and relpath in expected.files:  # a listed path: a safe one
                    copy_to = inputs.copy_of(relpath)
                    inputs.mark_present(relpath)
                expected.check(relpath, *_digest_and_copy(stream, copy_to))
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as error:
            report.errors.append(f"part {part.name} is unreadable: {error}")
    expected.finish()
    if inputs is not None and prefix is not None:
        compare_rendering(inputs.root, report)


def _entries(part: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """The regular files of one archive part, in order, each as a stream read in place."""
    if part.name.endswith(".zip"):
        with zipfile.ZipFile(part) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    with archive.open(info) as entry:
                        yield info.filename, entry
        return
    with tarfile.open(part, "r|gz") as archive:
        for member in archive:
            stream: IO[bytes] | None = archive.extractfile(member) if member.isfile() else None
            if stream is not None:
                yield member.name, stream
            archive.members.clear()  # type: ignore[attr-defined]  # flat memory however many entries
