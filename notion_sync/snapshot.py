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
import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from pydantic_core import from_json

from notion_sync.models import ExportReport, ManifestDeltaHeader, ManifestFile, ManifestHeader, ManifestObject

MANIFEST = "manifest.jsonl"
# An older snapshot's manifest kept as its differences from a newer sibling's (see `manifest_delta`).
MANIFEST_DELTA = "manifest.delta.jsonl"
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
    (an archive entry), which is left open. A snapshot whose manifest is kept as a delta
    (`MANIFEST_DELTA`) is read through it, the same objects in the same order.

    Raises ManifestUnreadable if the manifest cannot be opened or read, or a line does not parse.
    """
    if not isinstance(source, Path):
        yield _parsed(MANIFEST, source)
        return
    manifest = source / MANIFEST if source.is_dir() else source
    if manifest.name == MANIFEST and not manifest.exists() and (manifest.parent / MANIFEST_DELTA).exists():
        with manifest_lines(manifest.parent) as lines:
            yield _parsed(str(manifest.parent / MANIFEST_DELTA), _LineStream(lines))
        return
    try:
        stream = manifest.open("rb")
    except OSError as error:
        raise ManifestUnreadable(f"{manifest} cannot be read: {error}") from error
    with stream:
        yield _parsed(str(manifest), stream)


def has_manifest(snapshot: Path) -> bool:
    """Whether a snapshot folder holds its manifest, whole or as a delta."""
    return (snapshot / MANIFEST).is_file() or (snapshot / MANIFEST_DELTA).is_file()


class _LineStream:
    """Lines (each ending in a newline) seen as the binary stream `_parsed` reads."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines

    def readline(self) -> bytes:
        return next(self._lines, b"")

    def __iter__(self) -> Iterator[bytes]:
        return self._lines


class _Lines(Protocol):
    def readline(self) -> bytes: ...

    def __iter__(self) -> Iterator[bytes]: ...


def _parsed(name: str, lines: _Lines) -> tuple[ManifestHeader, Iterator[ManifestObject]]:
    try:
        first = lines.readline()
        header = ManifestHeader.model_validate_json(first) if first.strip() else None
    except (OSError, ValueError) as error:
        raise ManifestUnreadable(f"{name}, header: {error}") from error
    if header is None:
        raise ManifestUnreadable(f"{name} has no header")
    return header, _objects(name, lines)


def _objects(name: str, lines: _Lines) -> Iterator[ManifestObject]:
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


# Manifest deltas. A folder snapshot older than the browsable ones, or an S3 snapshot older than
# the current one, keeps its manifest as a *reverse* delta: the lines by which it differs from its
# next newer sibling's manifest (`base`). The newest manifest is always whole, a new snapshot never
# depends on an old one, and a month of daily snapshots costs one manifest plus what changed (a whole
# one is 13 MB at 10,000 pages). A delta records the digest of the manifest it stands for, checked
# when it is written and each time it is read whole. Before a snapshot is deleted, each delta based on
# it is made whole again (`release_base`).

# Deltas based on deltas: each level costs every line of a read one step. A snapshot stays whole
# when the snapshots just before it are this many deltas in a row, so no chain grows past it (every
# older snapshot's chain ends at the next whole one); a chain longer than `_MAX_CHAIN` is damage.
KEEP_WHOLE_EVERY = 50
_MAX_CHAIN = 100


@contextmanager
def manifest_lines(snapshot: Path) -> Iterator[Iterator[bytes]]:
    """A snapshot's manifest as its lines (the header line first), each ending in a newline, read
    through its delta chain if it has one; streamed, never held whole.

    Raises ManifestUnreadable (when opened or while iterated) if a manifest or a delta of the chain
    cannot be read, or the lines read do not make the manifest a delta's digest names."""
    with ExitStack() as stack:
        yield _chain_lines(snapshot, stack, depth=0)


def _chain_lines(snapshot: Path, stack: ExitStack, depth: int) -> Iterator[bytes]:
    whole = snapshot / MANIFEST
    if whole.is_file():
        return _plain_lines(whole, _open(whole, stack))
    delta_file = snapshot / MANIFEST_DELTA
    delta = _open(delta_file, stack)
    header = _delta_header(delta_file, delta)
    # A base is always newer (names sort by time): no chain can loop.
    if depth >= _MAX_CHAIN or "/" in header.base or header.base <= snapshot.name:
        raise ManifestUnreadable(f"{delta_file}: base {header.base!r} is not a newer sibling snapshot")
    base = _chain_lines(snapshot.parent / header.base, stack, depth + 1)
    return _checked(str(delta_file), header, _applied(str(delta_file), base, _plain_lines(delta_file, delta)))


def _open(path: Path, stack: ExitStack) -> IO[bytes]:
    try:
        return stack.enter_context(path.open("rb"))
    except OSError as error:
        raise ManifestUnreadable(f"{path} cannot be read: {error}") from error


def _plain_lines(name: Path, stream: IO[bytes]) -> Iterator[bytes]:
    """A file's non-blank lines, each ending in a newline."""
    try:
        for line in stream:
            if line.strip():
                yield line if line.endswith(b"\n") else line + b"\n"
    except OSError as error:
        raise ManifestUnreadable(f"{name}: {error}") from error


def _delta_header(name: Path, stream: IO[bytes]) -> ManifestDeltaHeader:
    try:
        return ManifestDeltaHeader.model_validate_json(stream.readline())
    except (OSError, ValueError) as error:
        raise ManifestUnreadable(f"{name}, delta header: {error}") from error


def _line_id(name: str, line: bytes) -> str:
    return _line_key(name, line)[0]


def _line_key(name: str, line: bytes) -> tuple[str, bool]:
    """A manifest or delta line's object id, and whether the line removes that object."""
    try:
        found = from_json(line, cache_strings=False)
    except ValueError as error:
        raise ManifestUnreadable(f"{name}: a line does not parse: {error}") from error
    removed = isinstance(found, dict) and "removed" in found
    key = found.get("removed" if removed else "id") if isinstance(found, dict) else None
    if not isinstance(key, str):
        raise ManifestUnreadable(f"{name}: a line has no id")
    return key, removed


def _applied(name: str, base: Iterator[bytes], delta: Iterator[bytes]) -> Iterator[bytes]:
    """The base's lines with the delta's applied: the delta's header line replaces the base's, then
    both are merged by id (both are sorted by it); a delta line replaces or adds its object, a
    `{"removed": id}` line drops the base's."""
    next(base, None)  # the base's own header line
    header = next(delta, None)
    if header is None:
        raise ManifestUnreadable(f"{name} has no manifest header")
    yield header
    old, new = next(base, None), next(delta, None)
    old_id = _line_id(name, old) if old is not None else None
    while new is not None:
        new_id, removes = _line_key(name, new)
        while old is not None and old_id is not None and old_id < new_id:
            yield old
            old = next(base, None)
            old_id = _line_id(name, old) if old is not None else None
        if removes and old_id != new_id:
            raise ManifestUnreadable(f"{name} removes {new_id}, which its base does not hold")
        if not removes:
            yield new
        if old_id == new_id:
            old = next(base, None)
            old_id = _line_id(name, old) if old is not None else None
        new = next(delta, None)
    while old is not None:
        yield old
        old = next(base, None)


def _checked(name: str, header: ManifestDeltaHeader, lines: Iterator[bytes]) -> Iterator[bytes]:
    digest, size = hashlib.sha256(), 0
    for line in lines:
        digest.update(line)
        size += len(line)
        yield line
    if (digest.hexdigest(), size) != (header.manifest_sha256, header.manifest_size):
        raise ManifestUnreadable(f"{name} and its base do not make the manifest it was written for")


def write_manifest_delta(snapshot: Path, base: Path) -> bool:
    """Keeps `snapshot`'s whole manifest as a delta against the newer sibling `base`'s manifest
    (whole or itself a delta): the delta is written and checked (`build_manifest_delta`), and only
    then does the whole manifest go. False (nothing changed) if no delta can be built.

    Raises ManifestUnreadable if either manifest cannot be read."""
    tmp = snapshot / f".{MANIFEST_DELTA}.tmp"
    if not build_manifest_delta(snapshot, base, tmp):
        return False
    os.replace(tmp, snapshot / MANIFEST_DELTA)
    (snapshot / MANIFEST).unlink()
    return True


def build_manifest_delta(snapshot: Path, base: Path, out: Path) -> bool:
    """Writes to `out` the delta of `snapshot`'s whole manifest against the newer sibling `base`'s,
    then reads it back through its base and checks it against the whole manifest's digest. False
    (nothing written) if `snapshot` has no whole manifest, `base` is not a newer sibling, or the
    base's chain is already as long as a chain may be.

    Raises ManifestUnreadable if either manifest cannot be read, or the delta does not rebuild it."""
    whole = snapshot / MANIFEST
    if not whole.is_file() or base.parent != snapshot.parent or base.name <= snapshot.name:
        return False
    if deltas_before(snapshot) >= KEEP_WHOLE_EVERY - 1:
        return False  # it ends the chain of the deltas before it
    expected = file_digest(whole)
    header = ManifestDeltaHeader(base=base.name, manifest_sha256=expected[0], manifest_size=expected[1])
    with ExitStack() as stack, out.open("wb") as delta:
        delta.write(header.model_dump_json().encode() + b"\n")
        ours = _plain_lines(whole, _open(whole, stack))
        theirs = stack.enter_context(manifest_lines(base))
        next(theirs, None)
        for line in _differences(str(whole), ours, theirs):
            delta.write(line)
        delta.flush()
        os.fsync(delta.fileno())
    with ExitStack() as stack:
        digest, size = hashlib.sha256(), 0
        for line in _chain_lines_from(out, snapshot, stack):
            digest.update(line)
            size += len(line)
    if (digest.hexdigest(), size) != expected:
        out.unlink(missing_ok=True)
        raise ManifestUnreadable(f"{whole}: its delta against {base.name} does not rebuild it")
    return True


def _chain_lines_from(delta_file: Path, snapshot: Path, stack: ExitStack) -> Iterator[bytes]:
    """The lines a delta file (not yet in place) rebuilds, without its digest check."""
    delta = _open(delta_file, stack)
    header = _delta_header(delta_file, delta)
    base = _chain_lines(snapshot.parent / header.base, stack, depth=1)
    return _applied(str(delta_file), base, _plain_lines(delta_file, delta))


def _differences(name: str, ours: Iterator[bytes], theirs: Iterator[bytes]) -> Iterator[bytes]:
    """Our header line, then the lines by which our manifest differs from theirs, by id."""
    header = next(ours, None)
    if header is None:
        raise ManifestUnreadable(f"{name} has no header")
    yield header
    mine, other = next(ours, None), next(theirs, None)
    while mine is not None or other is not None:
        mine_id = _line_id(name, mine) if mine is not None else None
        other_id = _line_id(name, other) if other is not None else None
        if other is None or (mine_id is not None and other_id is not None and mine_id < other_id):
            assert mine is not None
            yield mine
            mine = next(ours, None)
        elif mine is None or (mine_id is not None and other_id is not None and other_id < mine_id):
            yield json.dumps({"removed": other_id}).encode() + b"\n"
            other = next(theirs, None)
        else:
            if mine != other:
                yield mine
            mine, other = next(ours, None), next(theirs, None)


def deltas_before(snapshot: Path) -> int:
    """How many of the snapshots just before `snapshot` (older siblings, newest first) keep a delta,
    up to the first whole one: the chain that reads through `snapshot`."""
    older = sorted((p.name for p in snapshot.parent.iterdir() if p.name < snapshot.name), reverse=True)
    count = 0
    for name in older:
        folder = snapshot.parent / name
        if (folder / MANIFEST).is_file() or not (folder / MANIFEST_DELTA).is_file():
            break
        count += 1
    return count


def delta_base(snapshot: Path) -> str | None:
    """The sibling a snapshot's manifest delta is based on, or None (a whole manifest, or none)."""
    try:
        with (snapshot / MANIFEST_DELTA).open("rb") as stream:
            return _delta_header(snapshot / MANIFEST_DELTA, stream).base
    except (OSError, ManifestUnreadable):
        return None


def write_whole_manifest(snapshot: Path) -> None:
    """Makes a snapshot's delta manifest whole again (checked against the delta's digest), then
    drops the delta. Raises ManifestUnreadable if the chain cannot be read."""
    whole = snapshot / MANIFEST
    if whole.is_file():
        (snapshot / MANIFEST_DELTA).unlink(missing_ok=True)
        return
    tmp = snapshot / f".{MANIFEST}.tmp"
    with manifest_lines(snapshot) as lines, tmp.open("wb") as out:
        for line in lines:
            out.write(line)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, whole)
    (snapshot / MANIFEST_DELTA).unlink()


def release_base(snapshot: Path) -> None:
    """Before `snapshot` is deleted: every sibling whose manifest delta is based on it gets its
    whole manifest back. Raises ManifestUnreadable if one cannot be rebuilt (then `snapshot` must
    stay: deleting it would lose that sibling's manifest)."""
    if not snapshot.parent.is_dir():
        return
    for sibling in sorted(snapshot.parent.iterdir()):
        if sibling != snapshot and delta_base(sibling) == snapshot.name:
            write_whole_manifest(sibling)


@contextmanager
def stored_manifest(snapshot: Path) -> Iterator[Iterator[ManifestObject]]:
    """The objects a snapshot's manifest file holds as stored: all of them for a whole manifest, only
    those that differ from its base for a delta (garbage collection reads each snapshot once this
    way, instead of rebuilding every delta through its chain). Raises ManifestUnreadable."""
    if (snapshot / MANIFEST).is_file():
        with read_manifest(snapshot) as (_header, entries):
            yield entries
        return
    delta_file = snapshot / MANIFEST_DELTA
    with ExitStack() as stack:
        yield stored_delta_objects(str(delta_file), _open(delta_file, stack))


def stored_delta_objects(name: str, delta: IO[bytes]) -> Iterator[ManifestObject]:
    """The objects a manifest delta (an open stream) lists, its removals left out."""
    _delta_header(Path(name), delta)
    lines = _plain_lines(Path(name), delta)
    next(lines, None)  # the manifest's header
    for line in lines:
        if not _line_key(name, line)[1]:
            try:
                yield ManifestObject.model_validate_json(line)
            except ValueError as error:
                raise ManifestUnreadable(f"{name}: {error}") from error
