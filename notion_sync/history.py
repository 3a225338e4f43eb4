"""History of a destination (a folder or `s3://bucket/prefix`): its snapshots listed, and what
changed between two of them.

A change is read from the manifests alone, walked side by side (both are sorted by id), so memory
grows with the changes, never with the workspace. Only pages count (a row is a page whose parent is
a data source); an object is in a snapshot when its manifest entry says it was exported.

- **added** / **removed**: in one snapshot only;
- **moved**: its parent changed; **renamed**: its title changed;
- **edited**: its `last_edited_time` or its JSON changed (file URLs, signed anew on every read, left
  out of the comparison), and it was neither moved nor renamed
  (Notion stamps a rename or a move as an edit too, so the manifest cannot tell them apart).
  A page whose child page appeared, vanished or was renamed is edited: its child_page blocks changed.

Edited pages carry a unified diff of their Markdown in both snapshots.

A folder snapshot's JSON and Markdown are read where `snapshot.snapshot_file` finds them: in its tree,
or, for a packed snapshot (an older one whose tree was removed), in the destination's object store.

An S3 destination is read into a temporary folder, one subfolder per snapshot named as it: its
manifest, streamed to a file (a 100,000-page one is ~50 MB, never held in memory), and then only the
files the comparison reads, fetched through the object store (or from their paths, for a snapshot
published before it): the JSON of pages whose digest changed but not their `last_edited_time`, and
the Markdown of edited pages. The folder code then runs on those folders unchanged.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from notion_sync.convert.html import compiled_template
from notion_sync.models import ChangeCounts, ExportReport, ManifestFile, ManifestObject, ReportStatus
from notion_sync.notion.signatures import without_signatures
from notion_sync.settings import Settings
from notion_sync.snapshot import (
    MANIFEST,
    READ_CHUNK,
    REPORT,
    SNAPSHOTS,
    ManifestUnreadable,
    current_snapshot,
    has_manifest,
    parse_report,
    read_manifest,
    read_report,
    saved_json,
    snapshot_file,
    snapshot_time,
)
from notion_sync.storage.s3 import S3Destination, S3UrlError, SnapshotUnusable, is_s3, parse_s3_url
from notion_sync.storage.s3_manifests import fetch_manifest
from notion_sync.verify import safe_relpath

PageKind = Literal["page", "row"]
ChangeKind = Literal["added", "removed", "moved", "renamed", "edited"]
# Whether a page's JSON differs between two snapshots, beyond its digest (old entry, new entry).
JsonCheck = Callable[[ManifestObject, ManifestObject], bool]
# Puts a listed file of a snapshot into its folder before it is read (an S3 snapshot's folder holds
# only its manifest until then); a file that cannot be had is left absent.
Fetch = Callable[[Path, ManifestFile], None]
# A Markdown diff longer than this is cut: the report names the page, the snapshot holds the rest.
MAX_DIFF_LINES = 400
# Titles and Markdown are the workspace's: control characters are shown, never sent to a terminal.
_VISIBLE = str.maketrans({code: f"\\x{code:02x}" for code in [*range(32), 127] if code != 9})


class HistoryError(ValueError):
    """The destination or a snapshot asked for cannot be compared (the message says why)."""


class PageRef(BaseModel):
    """A page or row as one snapshot holds it."""

    id: str
    kind: PageKind
    title: str
    path: str | None


class PageMove(PageRef):
    old_parent: str | None
    new_parent: str | None
    old_path: str | None


class PageRename(PageRef):
    old_title: str
    old_path: str | None


class PageEdit(PageRef):
    # Differs from `path` when an ancestor was renamed or moved.
    old_path: str | None
    old_last_edited_time: str | None
    last_edited_time: str | None
    # Unified diff of the page's Markdown (None: a side has no readable Markdown, or it is the same).
    markdown_diff: str | None = None


class SnapshotDiff(BaseModel):
    old: str
    new: str
    old_pages: int = 0
    old_rows: int = 0
    new_pages: int = 0
    new_rows: int = 0
    added: list[PageRef] = []
    removed: list[PageRef] = []
    moved: list[PageMove] = []
    renamed: list[PageRename] = []
    edited: list[PageEdit] = []

    def counts(self) -> ChangeCounts:
        return ChangeCounts(
            added=len(self.added),
            removed=len(self.removed),
            moved=len(self.moved),
            renamed=len(self.renamed),
            edited=len(self.edited),
        )


class SnapshotSummary(BaseModel):
    name: str
    # When its run started (from report.json, else from its name; None if neither says).
    time: datetime | None
    status: ReportStatus | None
    pages: int
    rows: int
    # Versus the snapshot before it (None for the oldest, or next to an unreadable one).
    changes: ChangeCounts | None
    current: bool
    # Why its manifest could not be read (its pages and rows then count 0).
    unreadable: str | None = None


# --- reading a folder destination -------------------------------------------------------------


def snapshot_names(destination: str | Path) -> list[str]:
    """The destination's snapshots, oldest first (their names start with the run's UTC time)."""
    root = _folder(destination)
    folder = root / SNAPSHOTS
    names = sorted(p.name for p in folder.iterdir() if has_manifest(p)) if folder.is_dir() else []
    if not names:
        raise HistoryError(f"{root} is not an export: no snapshot with a {MANIFEST} under {folder}")
    return names


def snapshot_log(destination: str | Path) -> list[SnapshotSummary]:
    """Every snapshot, oldest first: its time, outcome, pages, rows and changes versus the one before."""
    if is_s3(destination):
        with _s3_history(destination) as remote:
            return _log(remote.names(), remote.folder, remote.report, remote.current(), remote.fetch)
    root = _folder(destination)
    current = current_snapshot(root)

    def folder(name: str) -> Path:
        return root / SNAPSHOTS / name

    return _log(
        snapshot_names(root),
        folder,
        lambda name: read_report(folder(name)),
        current.name if current is not None else None,
        None,
    )


def _log(
    names: list[str],
    folder_of: Callable[[str], Path],
    report_of: Callable[[str], ExportReport | None],
    current: str | None,
    fetch: Fetch | None,
) -> list[SnapshotSummary]:
    """The log of snapshots `names`, each compared with the one before; `folder_of` gives a snapshot's
    folder (an S3 one's a temporary copy, removed once the next is compared), `fetch` its files."""
    summaries: list[SnapshotSummary] = []
    previous: Path | None = None
    for name in names:
        pages = rows = 0
        changes: ChangeCounts | None = None
        unreadable: str | None = None
        snapshot: Path | None = None
        try:
            snapshot = folder_of(name)
            if previous is None:
                pages, rows = count_pages(_read_objects(snapshot), _data_sources(snapshot))
            else:
                diff = diff_snapshots(previous, snapshot, markdown=False, fetch=fetch)
                pages, rows, changes = diff.new_pages, diff.new_rows, diff.counts()
        except HistoryError as error:
            # One damaged snapshot is a line of the log, not the end of it.
            unreadable = str(error)
        report = report_of(name)
        summaries.append(
            SnapshotSummary(
                name=name,
                time=report.started_at if report and report.started_at else snapshot_time(name),
                status=report.status if report else None,
                pages=pages,
                rows=rows,
                changes=changes,
                current=current == name,
                unreadable=unreadable,
            )
        )
        if fetch is not None and previous is not None:
            shutil.rmtree(previous, ignore_errors=True)  # a temporary copy: two at a time on disk
        previous = None if unreadable else snapshot
    return summaries


def diff_destination(destination: str | Path, old: str | None, new: str | None) -> SnapshotDiff:
    """What changed between two snapshots of a folder or S3 destination (the names given, else the two
    newest), with edited pages' Markdown diffs."""
    if is_s3(destination):
        with _s3_history(destination) as remote:
            old, new = _pair(remote.names(), old, new, remote.url)
            return diff_snapshots(remote.folder(old), remote.folder(new), fetch=remote.fetch)
    return diff_snapshots(*resolve_pair(destination, old, new))


def resolve_pair(destination: str | Path, old: str | None, new: str | None) -> tuple[Path, Path]:
    """The two snapshot folders of a folder destination to compare: the names given, else the two
    newest."""
    root = _folder(destination)
    old, new = _pair(snapshot_names(root), old, new, str(root))
    return root / SNAPSHOTS / old, root / SNAPSHOTS / new


def _pair(names: list[str], old: str | None, new: str | None, where: str) -> tuple[str, str]:
    for name in (old, new):
        if name is not None and name not in names:
            raise HistoryError(
                f"no snapshot named {name!r} in {where} (`notion-sync log {where}` lists them)"
            )
    new = new or names[-1]
    if old is None:
        position = names.index(new)
        if position == 0:
            raise HistoryError(f"{where} holds no snapshot older than {new}: nothing to compare it with")
        old = names[position - 1]
    return old, new


def diff_snapshots(
    old: Path, new: Path, *, markdown: bool = True, fetch: Fetch | None = None
) -> SnapshotDiff:
    """What changed from snapshot folder `old` to `new`; with `markdown`, edited pages' Markdown diffs.
    `fetch` first puts each file read into its folder (S3 snapshots' temporary folders)."""
    data_sources = _data_sources(old) | _data_sources(new)

    def read(snapshot: Path, file: ManifestFile | None, path: str | None) -> Path | None:
        """Where a listed file (`file`) is read: its tree, a packed snapshot's store, or fetched from
        S3; a `path` the manifest does not list (a hand-made snapshot), in a folder's tree only."""
        if file is None:
            return snapshot / path if fetch is None and path is not None and safe_relpath(path) else None
        if not safe_relpath(file.path):
            return None
        if fetch is None:
            return snapshot_file(snapshot, file)
        fetch(snapshot, file)
        return snapshot / file.path

    def json_changed(before: ManifestObject, after: ManifestObject) -> bool:
        path = saved_json("page", after.id)
        was, now = read(old, _file(before, path), path), read(new, _file(after, path), path)
        return _stable_json(was) != _stable_json(now)

    diff = diff_manifests(
        _read_objects(old), _read_objects(new), data_sources, old.name, new.name, json_changed
    )
    if markdown and diff.edited:
        before = _listed_files(old, {edit.id: edit.old_path for edit in diff.edited})
        after = _listed_files(new, {edit.id: edit.path for edit in diff.edited})
        for edit in diff.edited:
            was, now = read(old, before.get(edit.id), edit.old_path), read(new, after.get(edit.id), edit.path)
            edit.markdown_diff = markdown_diff(old, new, edit, was, now)
    return diff


def _listed_files(snapshot: Path, paths: dict[str, str | None]) -> dict[str, ManifestFile]:
    """The manifest's entries for the files `paths` names (object id -> path), found by one pass over
    the manifest (`paths` holds the changes, not the workspace)."""
    found: dict[str, ManifestFile] = {}
    for entry in _read_objects(snapshot):
        path = paths.get(entry.id)
        file = _file(entry, path) if path is not None else None
        if file is not None:
            found[entry.id] = file
    return found


def markdown_diff(
    old: Path, new: Path, edit: PageEdit, before: Path | None, after: Path | None, limit: int = MAX_DIFF_LINES
) -> str | None:
    """The unified diff of an edited page's Markdown, read from `before` and `after` (named by the
    snapshots and the manifests' paths), cut at `limit` lines."""
    was, now = _read_text(before), _read_text(after)
    if was is None or now is None:
        return None
    lines = difflib.unified_diff(
        was.splitlines(keepends=True),
        now.splitlines(keepends=True),
        fromfile=f"{old.name}/{edit.old_path}",
        tofile=f"{new.name}/{edit.path}",
    )
    kept: list[str] = []
    cut = 0
    for line in lines:
        if len(kept) < limit:
            kept.append(line if line.endswith("\n") else line + "\n")
        else:
            cut += 1
    if cut:
        kept.append(f"... {cut} more lines\n")
    return "".join(kept) or None


def _folder(destination: str | Path) -> Path:
    root = Path(destination).expanduser()
    if not root.is_dir():
        raise HistoryError(f"{root} is not an export: no such folder")
    return root


def _read_objects(snapshot: Path) -> Iterator[ManifestObject]:
    """The snapshot's manifest entries one by one, in id order."""
    try:
        with read_manifest(snapshot) as (_, objects):
            yield from objects
    except ManifestUnreadable as error:
        raise HistoryError(str(error).splitlines()[0]) from None


def _stable_json(path: Path | None) -> object:
    """A page's saved JSON without what changes on every read: file URLs are signed anew (query
    string, `expiry_time`), while Notion stamps every real edit in `last_edited_time` anyway."""
    if path is None:
        return None
    try:
        return without_signatures(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return None


def _data_sources(snapshot: Path) -> frozenset[str]:
    """The ids of the snapshot's data sources: a page under one of them is a row."""
    return frozenset(entry.id for entry in _read_objects(snapshot) if entry.type == "data_source")


def _read_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# --- reading an S3 destination -----------------------------------------------------------------


class _S3Snapshots:
    """An S3 destination's snapshots as temporary folders under `scratch`, each named as its snapshot
    and holding its manifest once asked for (`folder`), and the other files the diff reads (`fetch`)."""

    def __init__(self, remote: S3Destination, scratch: Path) -> None:
        self.remote = remote
        self.scratch = scratch
        self.url = remote.location.url

    def names(self) -> list[str]:
        names = self.remote.snapshots()
        if not names:
            where = self.remote.location.key(SNAPSHOTS)
            raise HistoryError(f"{self.url} is not an export: no snapshot under {where}/")
        return names

    def current(self) -> str | None:
        name = (self.remote.current() or {}).get("snapshot")
        return name if isinstance(name, str) else None

    def report(self, name: str) -> ExportReport | None:
        return parse_report(self.remote.read(name, REPORT))

    def folder(self, name: str) -> Path:
        """The snapshot's folder with its manifest, downloaded streaming to a file."""

        if "/" in name or name in (".", ".."):
            raise HistoryError(f"{name!r} is not a snapshot name")
        folder = self.scratch / name
        if (folder / MANIFEST).is_file():
            return folder
        folder.mkdir(exist_ok=True)
        try:
            found = fetch_manifest(self.remote, name, folder / MANIFEST)
        except ManifestUnreadable as error:
            raise HistoryError(f"snapshot {name} in {self.url}: {str(error).splitlines()[0]}") from None
        if not found:
            raise HistoryError(f"snapshot {name} in {self.url} has no {MANIFEST}")
        return folder

    def fetch(self, folder: Path, file: ManifestFile) -> None:
        """One listed file of the snapshot into its folder, from the object store or its path; one
        missing, or whose bytes do not match the manifest, is left absent (read as no content)."""
        target = folder / file.path
        if not safe_relpath(file.path) or target.is_file():
            return
        try:
            answer = self.remote.open_file(folder.name, file)
        except SnapshotUnusable:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        if _stream_to(answer["Body"], temporary) == (file.sha256, file.size):
            os.replace(temporary, target)
        else:
            temporary.unlink()


def _stream_to(body: Any, target: Path) -> tuple[str, int]:
    """Writes an S3 body to `target` a chunk at a time; returns the (sha256, size) written."""
    digest, size = hashlib.sha256(), 0
    with contextlib.closing(body) as stream, target.open("wb") as out:
        for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _s3_history(destination: str | Path) -> Iterator[_S3Snapshots]:
    """The S3 destination's snapshots, read into a temporary folder removed on leaving; S3's errors
    (no bucket, no credentials, no endpoint) become HistoryError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        remote = S3Destination(parse_s3_url(destination), Settings())
    except S3UrlError as error:
        raise HistoryError(str(error)) from None
    url = remote.location.url
    with tempfile.TemporaryDirectory(prefix="notion-sync-history-") as scratch:
        try:
            yield _S3Snapshots(remote, Path(scratch))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchBucket",):
                raise HistoryError(f"{url}: the bucket {remote.location.bucket} does not exist") from None
            raise HistoryError(f"{url} cannot be read: {error}") from None
        except BotoCoreError as error:
            raise HistoryError(f"{url} cannot be read: {error}") from None


# --- the merge walk (pure) ----------------------------------------------------------------------


def count_pages(objects: Iterable[ManifestObject], data_sources: frozenset[str]) -> tuple[int, int]:
    """(pages, rows) exported in one manifest."""
    pages = rows = 0
    for entry in _exported_pages(objects):
        if entry.parent in data_sources:
            rows += 1
        else:
            pages += 1
    return pages, rows


def diff_manifests(
    old: Iterable[ManifestObject],
    new: Iterable[ManifestObject],
    data_sources: frozenset[str],
    old_name: str = "old",
    new_name: str = "new",
    json_changed: JsonCheck = lambda before, after: True,
) -> SnapshotDiff:
    """The changes between two manifests, both sorted by id, walked once side by side.

    `json_changed` tells whether a page whose JSON digest changed but not its `last_edited_time`
    was edited (by default, it was)."""
    diff = SnapshotDiff(old=old_name, new=new_name)
    for before, after in _pair_by_id(_exported_pages(old), _exported_pages(new)):
        if before is not None:
            diff.old_rows += before.parent in data_sources
            diff.old_pages += before.parent not in data_sources
        if after is not None:
            diff.new_rows += after.parent in data_sources
            diff.new_pages += after.parent not in data_sources
        if before is None and after is not None:
            diff.added.append(_ref(after, data_sources))
        elif after is None and before is not None:
            diff.removed.append(_ref(before, data_sources))
        elif before is not None and after is not None:
            _compare(before, after, data_sources, json_changed, diff)
    return diff


def _compare(
    before: ManifestObject,
    after: ManifestObject,
    data_sources: frozenset[str],
    json_changed: JsonCheck,
    diff: SnapshotDiff,
) -> None:
    kind: PageKind = "row" if after.parent in data_sources else "page"
    moved, renamed = before.parent != after.parent, before.title != after.title
    if moved:
        diff.moved.append(
            PageMove(
                id=after.id,
                kind=kind,
                title=after.title,
                path=after.path,
                old_parent=before.parent,
                new_parent=after.parent,
                old_path=before.path,
            )
        )
    if renamed:
        diff.renamed.append(
            PageRename(
                id=after.id,
                kind=kind,
                title=after.title,
                path=after.path,
                old_title=before.title,
                old_path=before.path,
            )
        )
    json_path = saved_json("page", after.id)
    content_changed = before.last_edited_time != after.last_edited_time or (
        _digest(before, json_path) != _digest(after, json_path) and json_changed(before, after)
    )
    if content_changed and not (moved or renamed):
        diff.edited.append(
            PageEdit(
                id=after.id,
                kind=kind,
                title=after.title,
                path=after.path,
                old_path=before.path,
                old_last_edited_time=before.last_edited_time,
                last_edited_time=after.last_edited_time,
            )
        )


def _exported_pages(objects: Iterable[ManifestObject]) -> Iterator[ManifestObject]:
    return (entry for entry in objects if entry.type == "page" and entry.status == "exported")


def _pair_by_id(
    old: Iterator[ManifestObject], new: Iterator[ManifestObject]
) -> Iterator[tuple[ManifestObject | None, ManifestObject | None]]:
    """Entries of two id-sorted streams matched by id: (old, new), None on the side that lacks it."""
    old, new = _ascending(old), _ascending(new)
    before, after = next(old, None), next(new, None)
    while before is not None or after is not None:
        if after is None or (before is not None and before.id < after.id):
            yield before, None
            before = next(old, None)
        elif before is None or after.id < before.id:
            yield None, after
            after = next(new, None)
        else:
            yield before, after
            before, after = next(old, None), next(new, None)


def _ascending(entries: Iterator[ManifestObject]) -> Iterator[ManifestObject]:
    """The entries, refusing a manifest not sorted by id: the merge walk would pair it wrongly."""
    last = ""
    for entry in entries:
        if entry.id < last:
            raise HistoryError(f"the manifest is not sorted by id ({entry.id} after {last})")
        last = entry.id
        yield entry


def _ref(entry: ManifestObject, data_sources: frozenset[str]) -> PageRef:
    kind: PageKind = "row" if entry.parent in data_sources else "page"
    return PageRef(id=entry.id, kind=kind, title=entry.title, path=entry.path)


def _file(entry: ManifestObject, relpath: str | None) -> ManifestFile | None:
    """One of the entry's files, as the manifest lists it."""
    return next((file for file in entry.files if file.path == relpath), None)


def _digest(entry: ManifestObject, relpath: str | None) -> str | None:
    """The sha256 the manifest records for one of the entry's files."""
    return file.sha256 if (file := _file(entry, relpath)) is not None else None


# --- renderings ---------------------------------------------------------------------------------


def render_log_text(summaries: list[SnapshotSummary]) -> str:
    """One line per snapshot, newest first; `*` marks the current one."""
    header = f"  {'SNAPSHOT':<40} {'STARTED':<20} {'STATUS':<10} {'PAGES':>7} {'ROWS':>7}  CHANGES"
    lines = [header]
    for summary in reversed(summaries):
        started = summary.time.strftime("%Y-%m-%d %H:%M:%S") if summary.time else "-"
        lines.append(
            f"{'*' if summary.current else ' '} {summary.name:<40} {started:<20} {summary.status or '-':<10} "
            f"{summary.pages:>7} {summary.rows:>7}  "
            + (
                f"unreadable: {summary.unreadable}"
                if summary.unreadable
                else _describe_counts(summary.changes)
            )
        )
    return "\n".join(lines)


def render_log_json(summaries: list[SnapshotSummary]) -> str:
    return TypeAdapter(list[SnapshotSummary]).dump_json(summaries, indent=2).decode()


def render_diff_text(diff: SnapshotDiff) -> str:
    lines = [
        f"{diff.old} -> {diff.new}",
        f"pages {diff.old_pages} -> {diff.new_pages}, rows {diff.old_rows} -> {diff.new_rows}; "
        f"{_describe_counts(diff.counts())}",
    ]
    for section, entries in _sections(diff):
        if entries:
            lines.append(f"\n{section} ({len(entries)})")
        for entry in entries:
            lines.append(f"  {entry.kind:<4}  {_describe_entry(entry).translate(_VISIBLE)}  [{entry.id}]")
            if isinstance(entry, PageEdit) and entry.markdown_diff:
                diff_lines = entry.markdown_diff.rstrip("\n").split("\n")
                lines.extend(f"      {line.translate(_VISIBLE)}" for line in diff_lines)
    return "\n".join(lines)


def render_diff_json(diff: SnapshotDiff) -> str:
    return diff.model_dump_json(indent=2)


def render_diff_html(diff: SnapshotDiff) -> str:
    """A standalone HTML change report (every value escaped by the template's autoescape)."""
    report = compiled_template("change_report.html")
    return report.render(diff=diff, counts=diff.counts(), sections=_sections(diff))


def _sections(diff: SnapshotDiff) -> list[tuple[ChangeKind, list[PageRef]]]:
    return [
        ("added", list(diff.added)),
        ("removed", list(diff.removed)),
        ("moved", list(diff.moved)),
        ("renamed", list(diff.renamed)),
        ("edited", list(diff.edited)),
    ]


def _describe_entry(entry: PageRef) -> str:
    if isinstance(entry, PageMove):
        return f"{entry.title}: {entry.old_path} -> {entry.path}"
    if isinstance(entry, PageRename):
        return f"{entry.old_title} -> {entry.title} ({entry.path})"
    return f"{entry.title} ({entry.path})"


def _describe_counts(counts: ChangeCounts | None) -> str:
    if counts is None:
        return "-"
    if not counts.total:
        return "no changes"
    named = [(count, name) for name, count in counts.model_dump().items() if count]
    return ", ".join(f"{count} {name}" for count, name in named)
