"""What a restore creates, and in which order: read from a snapshot's manifest into the restore index.

Every exported page, database and data source of the snapshot (or of one page's subtree) is planned,
parents before children: a page's child pages and databases are created at their place among its
blocks, so they must come after it; a data source's rows after the data source, oldest first, so
they keep their order. Objects the snapshot holds no content for (skipped or failed when exported)
are reported, not planned. Streamed through SQLite: memory stays flat at any size.
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from notion_sync.restore.blocks import Loss
from notion_sync.restore.index import RestoreIndex
from notion_sync.snapshot import ManifestUnreadable, read_manifest

# Deeper than any real workspace; a parent loop in a damaged manifest stops here.
MAX_DEPTH = 10_000
_T = TypeVar("_T")


class PlanError(ValueError):
    """The snapshot cannot be planned: an unreadable manifest, or no such page in it."""


@dataclass(frozen=True)
class PlanCounts:
    pages: int
    databases: int
    data_sources: int
    unrestorable: int


# An object below two chosen roots (a page and its parent) takes its deepest place: after its parent.
_ORDER = """
WITH RECURSIVE tree(id, depth) AS (
    SELECT id, 0 FROM manifest WHERE {roots}
    UNION
    SELECT m.id, t.depth + 1 FROM manifest m JOIN tree t ON m.parent = t.id WHERE t.depth < ?
)
SELECT m.id, m.kind, m.parent, m.title, m.path, m.status, m.reason, MAX(t.depth) AS depth
FROM tree t JOIN manifest m ON m.id = t.id
GROUP BY m.id
ORDER BY depth, COALESCE(m.created_time, ''), COALESCE(m.path, ''), m.id
"""


def plan_restore(manifest: Path, pages: Sequence[str], index: RestoreIndex) -> PlanCounts:
    """Plans the restore of the snapshot whose manifest is `manifest`: everything (no `pages`), or
    each of `pages` (an id, with or without dashes, or a Markdown path) and what lies below it, in one
    order, so a page given before its parent still comes after it."""
    counts = {"page": 0, "database": 0, "data_source": 0}
    unrestorable = 0
    with tempfile.TemporaryDirectory(prefix="notion-sync-plan-") as scratch:
        db = sqlite3.connect(Path(scratch) / "manifest.sqlite", isolation_level=None)
        try:
            _load(db, manifest)
            if not pages:
                roots, args = "parent IS NULL OR parent NOT IN (SELECT id FROM manifest)", tuple[str, ...]()
            else:
                chosen = tuple(dict.fromkeys(_find(db, page) for page in pages))
                roots, args = f"id IN ({','.join('?' * len(chosen))})", chosen
            rows = db.execute(_ORDER.format(roots=roots), (*args, MAX_DEPTH))
            # After what is planned already (a plan made again keeps its objects and their progress).
            first = index.max_seq() + 1
            for chunk in _chunks(enumerate(rows, first)):
                planned, lost = [], []
                for seq, (object_id, kind, parent, title, path, status, reason, _depth) in chunk:
                    if status != "exported":
                        what = f"not in the snapshot ({reason or status} when exported)"
                        lost.append(Loss(object_id, kind, what))
                        continue
                    planned.append((seq, object_id, kind, parent, title, path))
                    counts[kind] = counts.get(kind, 0) + 1
                index.add_objects(planned)
                index.add_losses(lost)
                unrestorable += len(lost)
        finally:
            db.close()
    return PlanCounts(
        pages=counts["page"],
        databases=counts["database"],
        data_sources=counts["data_source"],
        unrestorable=unrestorable,
    )


def _chunks(rows: Iterator[_T]) -> Iterator[list[_T]]:
    """`rows` a thousand at a time (memory flat at any plan size)."""
    while chunk := list(itertools.islice(rows, 1000)):
        yield chunk


def _load(db: sqlite3.Connection, manifest: Path) -> None:
    db.execute(
        "CREATE TABLE manifest (id TEXT PRIMARY KEY, kind TEXT, parent TEXT, title TEXT, path TEXT, "
        "created_time TEXT, status TEXT, reason TEXT)"
    )
    db.execute("CREATE INDEX manifest_parent ON manifest(parent)")
    try:
        with read_manifest(manifest) as (_header, entries), db:
            db.executemany(
                "INSERT OR IGNORE INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (e.id, e.type, e.parent, e.title, e.path, e.created_time, e.status, e.reason)
                    for e in entries
                    if e.type != "users"
                ),
            )
    except ManifestUnreadable as error:
        raise PlanError(f"the snapshot's manifest is unreadable: {error}") from None


def _find(db: sqlite3.Connection, page: str) -> str:
    key = page.replace("-", "").lower()
    row = db.execute(
        "SELECT id FROM manifest WHERE REPLACE(LOWER(id), '-', '') = ? OR path = ? LIMIT 1", (key, page)
    ).fetchone()
    if row is None:
        raise PlanError(f"no page {page!r} in the snapshot (give its id or its Markdown path)")
    return str(row[0])
