"""The snapshot format: its file names, the manifest (reader and writer), digests and the pointer.

A snapshot is a folder (or an S3 prefix) holding:

    manifest.jsonl     a header line (`ManifestHeader`), then one `ManifestObject` a line, sorted by id
    problems.jsonl     one `Problem` a line: objects skipped or failed, and problems inside exported ones
    report.json        the run's `ExportReport`
    json/pages/<id>.json, json/databases/<id>.json, json/data_sources/<id>.json   lossless JSON
    ... and every other file the manifest lists (Markdown, HTML, CSV, downloads)

A folder destination keeps its snapshots under `snapshots/<name>/` and points `current` (a symlink)
at the newest; an S3 destination keeps them under `<prefix>/snapshots/<name>/` and points
`<prefix>/current.json` at the newest. Every module reads and writes snapshots through this one.

Each file's bytes are stored once per destination, under their sha256 (`object_path`): a folder
snapshot stays an ordinary tree whose files are hard links into `DEST/.notion-sync/objects/`; an S3
snapshot is its manifest, report and problems under `snapshots/<name>/`, its files being the objects
`<prefix>/objects/<sha[:2]>/<sha>` the manifest names. Snapshots written before the store hold their
files at their paths (`snapshots/<name>/<path>`); readers fall back to that. A folder destination keeps
only its newest snapshots as trees (`Settings.browsable_snapshots`); older ones are packed: manifest,
report and problems (and `PACKED`), their files read from the store (`snapshot_file`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic_core import from_json

from notion_sync.models import ExportReport, ManifestFile, ManifestHeader, ManifestObject

MANIFEST = "manifest.jsonl"
REPORT = "report.json"
PROBLEMS = "problems.jsonl"
# The snapshot's own files, which its manifest does not list (in the order archives hold them).
META_FILES = (MANIFEST, REPORT, PROBLEMS)
# The local pointer: a symlink `DEST/current -> snapshots/<name>`.
CURRENT = "current"
# The S3 pointer: `<prefix>/current.json`, {"snapshot": name, "manifest": key, ...}.
CURRENT_JSON = "current.json"
# The folder (or S3 prefix) under which every snapshot lives.
SNAPSHOTS = "snapshots"
# A folder destination's own folder (staging, state, reports, its object store).
INTERNAL = ".notion-sync"
# In a packed folder snapshot (one older than the destination's browsable ones): its tree was
# removed once every file it lists was in the object store; it keeps its manifest, report and problems.
PACKED = "packed.json"
# The content-addressed object store of a destination: each file's bytes once, under its sha256
# (`DEST/.notion-sync/objects/` for a folder, `<prefix>/objects/` for S3; see `object_path`).
OBJECTS = "objects"
# Written into a destination once every snapshot it holds is in its object store (adopted or new):
# `DEST/.notion-sync/store.json`, `<prefix>/store.json`.
STORE_MARKER = "store.json"
# Where each kind of object keeps its JSON (lossless) in a snapshot.
JSON_DIRS = {"page": "json/pages", "database": "json/databases", "data_source": "json/data_sources"}

_NAME_TIME = "%Y-%m-%dT%H-%M-%SZ"
_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)-")
# How much of a file is read at a time (digests, archives): memory stays flat at any file size.
READ_CHUNK = 256 * 1024


class ManifestUnreadable(ValueError):
    """A manifest that is missing, empty, or has a line that is not what the format says."""


def saved_json(kind: str, object_id: str) -> str:
    """The snapshot-relative path of an object's JSON."""
    return f"{JSON_DIRS[kind]}/{object_id}.json"


def object_path(sha256: str) -> str:
    """Where a file's bytes live in a destination's object store, relative to the store's parent:
    `objects/<first two hex digits>/<sha256>` (256 folders, so none grows past what file systems and
    S3 listings handle well)."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return f"{OBJECTS}/{sha256[:2]}/{sha256}"


def snapshot_file(snapshot: Path, file: ManifestFile) -> Path:
    """Where a listed file of a folder snapshot is read: at its path in the tree, or, for a packed
    snapshot (or a file missing from the tree), the destination's store object of its digest
    (`DEST/snapshots/<name>` -> `DEST/.notion-sync/objects/...`). The caller checks the bytes."""
    in_tree = snapshot / file.path
    if os.path.lexists(in_tree) or len(file.sha256) != 64:
        return in_tree
    stored = snapshot.parent.parent / INTERNAL / object_path(file.sha256)
    return stored if stored.is_file() else in_tree


def is_packed(snapshot: Path) -> bool:
    return (snapshot / PACKED).is_file()


def snapshot_name(started_at: datetime, run_id: str) -> str:
    """Start time first, so names sort by age; the run id keeps two runs in a second apart: its last
    digits, as run ids are UUIDv7, whose first digits are the time again (two runs a second apart
    shared them, and the second replaced the first's snapshot)."""
    return f"{started_at.strftime(_NAME_TIME)}-{run_id.replace('-', '')[-8:]}"


def named_for(name: str, run_id: str) -> bool:
    """Whether snapshot `name` was named for run `run_id`: by its last digits, or by its first ones as
    names were made before (a run started then may still be compensated now)."""
    return name.endswith((f"-{run_id.replace('-', '')[-8:]}", f"-{run_id[:8]}"))


def snapshot_time(name: str) -> datetime | None:
    """When the run that made snapshot `name` started (UTC), or None for a name not made by
    `snapshot_name`."""
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


@contextmanager
def read_manifest(source: Path | IO[bytes]) -> Iterator[tuple[ManifestHeader, Iterator[ManifestObject]]]:
    """A manifest's header, and its objects parsed one line at a time as they are iterated (never
    held whole). `source` is the manifest file, the snapshot folder holding it, or an open stream
    (an archive entry), which is left open.

    Raises ManifestUnreadable if the manifest cannot be opened or read, or a line does not parse.
    """
    if not isinstance(source, Path):
        yield _parsed(MANIFEST, source)
        return
    manifest = source / MANIFEST if source.is_dir() else source
    try:
        lines = manifest.open("rb")
    except OSError as error:
        raise ManifestUnreadable(f"{manifest} cannot be read: {error}") from error
    with lines:
        yield _parsed(str(manifest), lines)


def _parsed(name: str, lines: IO[bytes]) -> tuple[ManifestHeader, Iterator[ManifestObject]]:
    try:
        first = lines.readline()
        header = ManifestHeader.model_validate_json(first) if first.strip() else None
    except (OSError, ValueError) as error:
        raise ManifestUnreadable(f"{name}, header: {error}") from error
    if header is None:
        raise ManifestUnreadable(f"{name} has no header")
    return header, _objects(name, lines)


def _objects(name: str, lines: IO[bytes]) -> Iterator[ManifestObject]:
    number = 1  # the header's
    try:
        for line in lines:
            number += 1
            if line.strip():
                # No string cache: it would grow with the manifest (up to its cap); memory stays flat.
                yield ManifestObject.model_validate(from_json(line, cache_strings=False))
    except (OSError, ValueError) as error:
        raise ManifestUnreadable(f"{name}, line {number}: {error}") from error


def write_manifest_line(stream: IO[bytes], entry: ManifestHeader | ManifestObject) -> None:
    """One line of a manifest: the header first, then each object."""
    stream.write(entry.model_dump_json().encode() + b"\n")


def parse_report(data: bytes | None) -> ExportReport | None:
    """A report.json's content parsed, or None if there is none or it does not parse."""
    if data is None:
        return None
    try:
        return ExportReport.model_validate_json(data)
    except ValueError:
        return None


def read_report(snapshot: Path | None) -> ExportReport | None:
    """A published snapshot's report, or None if there is none to read."""
    if snapshot is None:
        return None
    try:
        data = (snapshot / REPORT).read_bytes()
    except OSError:
        return None
    return parse_report(data)


def stream_digest(stream: IO[bytes]) -> tuple[str, int]:
    """(sha256 hex, size) of what `stream` holds, read one chunk at a time."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_digest(path: Path | str) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read one chunk at a time."""
    with open(path, "rb") as stream:
        return stream_digest(stream)


def current_snapshot(root: Path) -> Path | None:
    """The snapshot folder `root/current` points at, or None if there is none."""
    link = root / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None
