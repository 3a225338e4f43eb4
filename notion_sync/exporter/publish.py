"""Publishing: manifest and report written into staging, then staging promoted whole."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from notion_sync.convert.html import SITE, html_path
from notion_sync.models import (
    ExportReport,
    ManifestFile,
    ManifestHeader,
    ManifestObject,
    PreviousSnapshot,
    Problem,
    WorkspaceIdentity,
)
from notion_sync.snapshot import (
    MANIFEST,
    PROBLEMS,
    REPORT,
    ManifestUnreadable,
    file_digest,
    read_manifest,
    read_report,
    write_manifest_line,
)
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


def write_manifest(
    index: ExportIndex,
    destination: LocalDestination,
    staging_id: str,
    heartbeat: Callable[[], None] = lambda: None,
) -> tuple[int, int, int]:
    """manifest.jsonl: a header line, then one line per object sorted by id, streamed.

    Problems (skipped or failed objects, with the reason, and what went wrong inside exported
    ones) go to problems.jsonl beside it. Returns (objects, files, problems).
    """
    objects = index.count()
    files = reported = 0
    with (
        destination.open_stream(staging_id, MANIFEST) as manifest,
        destination.open_stream(staging_id, PROBLEMS) as problems,
    ):
        write_manifest_line(manifest, ManifestHeader(objects=objects))
        for row in index.manifest_rows():
            object_id, kind, title, created, edited, parent, path, status, reason, encoded = row
            if status == "pending":
                status, reason = "failed", "not exported"
            entry = ManifestObject(
                id=object_id,
                type=kind,
                title=title,
                created_time=created,
                last_edited_time=edited,
                parent=parent,
                path=path,
                status=status,
                reason=reason,
                files=[ManifestFile(**f) for f in json.loads(encoded)],
            )
            files += len(entry.files)
            if files % 1000 == 0:
                heartbeat()
            write_manifest_line(manifest, entry)
            if status != "exported":
                problem = Problem(object_id=object_id, kind=kind, reason=reason or status)
                problems.write(problem.model_dump_json().encode() + b"\n")
                reported += 1
        for object_id, kind, reason in index.problems():
            problem = Problem(object_id=object_id, kind=kind, reason=reason)
            problems.write(problem.model_dump_json().encode() + b"\n")
            reported += 1
    return objects, files, reported


def list_site_files(staging: Path, heartbeat: Callable[[], None] = lambda: None) -> int:
    """Adds each object's HTML page (`html/<its path>.html`, rendered after the manifest was written:
    the renderer reads the manifest) to the object's files in the manifest, so the site is checked,
    verified and stored once like every other file. The site's index and stylesheet belong to no
    object and stay unlisted. Streamed into a new manifest that replaces the old one; safe to repeat.
    Returns how many files were added."""
    manifest = staging / MANIFEST
    rewritten = staging / f".{MANIFEST}.site"
    added = 0
    with read_manifest(manifest) as (header, entries), rewritten.open("wb") as out:
        write_manifest_line(out, header)
        for n, entry in enumerate(entries):
            if n % 1000 == 0:
                heartbeat()
            if entry.path is not None and entry.status == "exported":
                relpath = f"{SITE}/{html_path(entry.path)}"
                page = staging / relpath
                if page.is_file() and all(f.path != relpath for f in entry.files):
                    sha256, size = file_digest(page)
                    entry.files.append(ManifestFile(path=relpath, sha256=sha256, size=size))
                    added += 1
            write_manifest_line(out, entry)
    os.replace(rewritten, manifest)
    return added


def check_staged(staging: Path, heartbeat: Callable[[], None] = lambda: None, examples: int = 3) -> list[str]:
    """What the manifest just written promises and staging does not hold: every listed file must be
    there with its size (checksums were taken from the bytes as they were written). Streamed."""
    found: list[str] = []
    missing = 0
    with read_manifest(staging / MANIFEST) as (header, entries):
        count = 0
        for count, entry in enumerate(entries, start=1):
            if count % 1000 == 0:
                heartbeat()
            for file in entry.files:
                try:
                    size = (staging / file.path).stat().st_size
                except OSError:
                    size = -1
                if size != file.size:
                    missing += 1
                    if len(found) < examples:
                        found.append(
                            file.path if size < 0 else f"{file.path} ({size} bytes, not {file.size})"
                        )
    problems = [f"{missing} files missing or damaged, e.g. {', '.join(found)}"] if missing else []
    if count != header.objects:
        problems.append(f"the manifest lists {count} objects, its header {header.objects}")
    return problems


def load_previous(
    index: ExportIndex, snapshot: Path, heartbeat: Callable[[], None] = lambda: None
) -> PreviousSnapshot | None:
    """Reads a published snapshot's manifest into the index, streamed; None if it is unusable."""
    report = read_report(snapshot)
    if report is None:
        return None
    try:
        with read_manifest(snapshot / MANIFEST) as (header, entries):
            if header.version != ManifestHeader.model_fields["version"].default:
                return None
            index.load_previous(_exported(entries, heartbeat))
    except ManifestUnreadable:
        return None
    started = report.started_at
    if started is None:
        return None
    # Notion's edit times are rounded down to the minute: edits in that minute may not show.
    reuse_before = started.astimezone(UTC).replace(second=0, microsecond=0)
    return PreviousSnapshot(
        path=str(snapshot),
        reuse_before=reuse_before.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        full_listing_at=report.full_listing_at,
    )


def _exported(
    entries: Iterable[ManifestObject], heartbeat: Callable[[], None]
) -> Iterator[tuple[str, str | None]]:
    for n, entry in enumerate(entries):
        if n % 1000 == 0:
            heartbeat()
        if entry.status == "exported":
            yield entry.id, entry.last_edited_time


def write_report(destination: LocalDestination, staging_id: str, report: ExportReport, staged: bool) -> None:
    """The run report: inside the snapshot when it succeeded, and always under .notion-sync/reports."""
    data = report.model_dump_json(indent=2).encode()
    if staged:
        destination.write(staging_id, REPORT, data)
    reports = destination.reports()
    reports.mkdir(parents=True, exist_ok=True)
    stamp = (report.started_at or datetime.now()).strftime("%Y%m%dT%H%M%SZ")
    (reports / f"{stamp}-{report.status}.json").write_bytes(data)


def recorded_identity(report: ExportReport | None) -> WorkspaceIdentity | None:
    """The workspace a published snapshot came from, as its report records it (None for snapshots
    written before identities were recorded, or an unreadable report)."""
    return report.identity if report is not None else None
