"""The export index: one SQLite file per export run, beside its staging folder.

It holds what a run has discovered (ids, parents, titles, the object JSON as received), where each
object goes (layout) and whether it is done. Memory stays flat at any workspace size, and a retried
or resumed activity skips what is already done. Temporal keeps only cursors and counters.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from notion_sync.models import ManifestFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    parent_id TEXT,
    title TEXT NOT NULL DEFAULT '',
    created_time TEXT,
    last_edited_time TEXT,
    raw TEXT,
    complete TEXT,
    path TEXT,
    dir TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    files TEXT
);
CREATE INDEX IF NOT EXISTS objects_parent ON objects(parent_id);
CREATE INDEX IF NOT EXISTS objects_dir ON objects(dir);
CREATE TABLE IF NOT EXISTS names (dir TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (dir, name));
CREATE TABLE IF NOT EXISTS synced (original_id TEXT PRIMARY KEY, children TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (url TEXT PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS previous (id TEXT PRIMARY KEY, last_edited_time TEXT);
CREATE TABLE IF NOT EXISTS listed (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS downloads (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS problems (object_id TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (object_id, kind));
"""

_INSERT = (
    "INSERT INTO objects (id, kind, parent_id, title, created_time, last_edited_time, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
    "parent_id = excluded.parent_id, title = excluded.title, "
    "created_time = excluded.created_time, last_edited_time = excluded.last_edited_time, raw = excluded.raw"
)
# A discovered object is recorded once; a later sighting with content fills in a stub.
_ADD = _INSERT + " WHERE objects.raw IS NULL AND excluded.raw IS NOT NULL"
# What Notion shows now replaces what a previous snapshot said.
_REFRESH = _INSERT


# Ids name files and folders (`json/pages/<id>.json`, Notion's `Title <id>` layout): only Notion's own
# UUIDs are recorded, anything else a server sends is a problem, never a path.
_NOTION_ID = re.compile(r"^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_PSEUDO_OBJECTS = {"users"}


@dataclass(frozen=True)
class IndexedObject:
    seq: int
    id: str
    kind: str
    parent_id: str | None
    title: str
    last_edited_time: str | None
    raw: dict[str, Any] | None
    path: str | None
    dir: str | None
    status: str


class ExportIndex:
    """A thin typed layer over the SQLite file; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ExportIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements inside commit together, or not at all. Never hold one across an await:
        another activity's connection in the same thread would wait on it forever."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(
        self,
        object_id: str,
        kind: str,
        parent_id: str | None,
        title: str,
        raw: dict[str, Any] | None,
    ) -> bool:
        """Records a discovered object once; a later sighting with content fills in a stub."""
        if not self._acceptable(object_id, kind):
            return False
        cur = self._db.execute(_ADD, _object_row(object_id, kind, parent_id, title, raw))
        return cur.rowcount > 0

    def add_all(self, entries: list[tuple[str, str, str | None, str, dict[str, Any]]], replace: bool) -> int:
        """Records listed objects in one commit, as `add` does, or as `refresh` does with `replace`.

        Returns how many were new (`add`: new or a stub filled in; `refresh`: new to this run).
        """
        entries = [entry for entry in entries if self._acceptable(entry[0], entry[1])]
        if not entries:
            return 0
        rows = [_object_row(*entry) for entry in entries]
        with self.transaction():
            # What a listing returned is what the shrink guard expects to see exported.
            self._db.executemany("INSERT OR IGNORE INTO listed (id) VALUES (?)", [(e[0],) for e in entries])
            if not replace:
                return self._db.executemany(_ADD, rows).rowcount
            ids = list({entry[0] for entry in entries})
            known = self._db.execute(
                f"SELECT COUNT(*) FROM objects WHERE id IN ({','.join('?' * len(ids))})",  # nosec B608 # constant SQL text and ? placeholders; every value is bound
                ids,
            ).fetchone()[0]
            self._db.executemany(_REFRESH, rows)
            return len(ids) - int(known)

    def contains(self, object_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM objects WHERE id = ?", (object_id,)).fetchone()
        return row is not None

    def get(self, object_id: str) -> IndexedObject | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM objects WHERE id = ?", (object_id,)).fetchone()  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        return _to_object(row) if row else None

    def stubs(self, limit: int) -> list[tuple[str, str, str | None]]:
        """Objects known only by reference (a child_page block, say) and not yet fetched."""
        rows = self._db.execute(
            "SELECT id, kind, parent_id FROM objects WHERE raw IS NULL AND status = 'pending' "
            "ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def batch(self, seq_from: int, seq_to: int) -> list[IndexedObject]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM objects WHERE seq >= ? AND seq <= ? AND status = 'pending' "  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            "AND path IS NOT NULL ORDER BY seq",
            (seq_from, seq_to),
        ).fetchall()
        return [_to_object(r) for r in rows]

    def outcomes_between(self, seq_from: int, seq_to: int) -> dict[str, int]:
        """How many placed objects of `[seq_from, seq_to]` were exported, skipped or failed, by whichever
        attempt settled them. Only export settles a placed object: discovery skips before layout."""
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM objects WHERE seq >= ? AND seq <= ? AND path IS NOT NULL "  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            f"AND status != 'pending' AND kind NOT IN ({','.join('?' * len(_PSEUDO_OBJECTS))}) "
            "GROUP BY status",
            (seq_from, seq_to, *_PSEUDO_OBJECTS),
        ).fetchall()
        return {str(status): int(count) for status, count in rows}

    def by_kind(self, kind: str, seq_from: int, limit: int) -> list[IndexedObject]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM objects WHERE kind = ? AND seq >= ? ORDER BY seq LIMIT ?",  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            (kind, seq_from, limit),
        ).fetchall()
        return [_to_object(r) for r in rows]

    def children(self, parent_id: str, kind: str | None = None) -> Iterator[IndexedObject]:
        query = f"SELECT {_COLUMNS} FROM objects WHERE parent_id = ?"  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        args: tuple[str, ...] = (parent_id,)
        if kind:
            query += " AND kind = ?"
            args = (parent_id, kind)
        for row in self._db.execute(query + " ORDER BY created_time, id", args):
            yield _to_object(row)

    def max_seq(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM objects").fetchone()
        return int(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM objects").fetchone()[0])

    def unplaced(self, limit: int) -> list[tuple[int, str, str, str, str | None, str | None]]:
        """Objects ready for layout: content known, parent placed, skipped or outside the export."""
        rows = self._db.execute(
            "SELECT c.seq, c.id, c.kind, c.title, p.dir, p.status FROM objects c "
            "LEFT JOIN objects p ON p.id = c.parent_id "
            "WHERE c.path IS NULL AND c.raw IS NOT NULL AND c.status = 'pending' "
            "AND (p.id IS NULL OR p.dir IS NOT NULL OR p.status != 'pending') "
            "ORDER BY c.created_time, c.id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def stuck(self, limit: int) -> list[tuple[str, str]]:
        """Objects that layout cannot place because their parent is unplaced and pending too:
        (id, parent id). Waiting on a parent not fetched yet is normal; a chain back to itself is a cycle."""
        rows = self._db.execute(
            "SELECT c.id, c.parent_id FROM objects c JOIN objects p ON p.id = c.parent_id "
            "WHERE c.path IS NULL AND c.raw IS NOT NULL AND c.status = 'pending' "
            "AND p.dir IS NULL AND p.status = 'pending' LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def name_free(self, directory: str, name: str) -> bool:
        row = self._db.execute("SELECT 1 FROM names WHERE dir = ? AND name = ?", (directory, name)).fetchone()
        return row is None

    def claim_name(self, directory: str, name: str) -> bool:
        cur = self._db.execute("INSERT OR IGNORE INTO names (dir, name) VALUES (?, ?)", (directory, name))
        return cur.rowcount > 0

    def place(self, object_id: str, path: str, directory: str) -> None:
        self._db.execute("UPDATE objects SET path = ?, dir = ? WHERE id = ?", (path, directory, object_id))

    def finish(
        self,
        object_id: str,
        files: list[ManifestFile],
        downloads: Iterable[tuple[ManifestFile, Iterable[str]]] = (),
    ) -> None:
        """Marks an object exported with its files; `downloads` (a file and the URLs it was had
        from, for `file_path`) are recorded in the same commit."""
        with self.transaction():
            for file, urls in downloads:
                self._db.execute(
                    "INSERT OR REPLACE INTO downloads (path, sha256, size) VALUES (?, ?, ?)",
                    (file.path, file.sha256, file.size),
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO files (url, path) VALUES (?, ?)",
                    ((url, file.path) for url in urls),
                )
            self._db.execute(
                "UPDATE objects SET status = 'exported', files = ? WHERE id = ?",
                (_dump([f.model_dump() for f in files]), object_id),
            )

    def add_file(self, object_id: str, file: ManifestFile) -> None:
        """Adds a file to an exported object's list, replacing an earlier one at the same path."""
        row = self._db.execute(
            "SELECT COALESCE(files, '[]') FROM objects WHERE id = ?", (object_id,)
        ).fetchone()
        files = [f for f in orjson.loads(row[0]) if f["path"] != file.path] + [file.model_dump()]
        self._db.execute("UPDATE objects SET files = ? WHERE id = ?", (_dump(files), object_id))

    def skip(self, object_id: str, reason: str, status: str = "skipped") -> None:
        self._db.execute(
            "UPDATE objects SET status = ?, reason = ? WHERE id = ?", (status, reason, object_id)
        )

    def synced_children(self, original_id: str) -> list[dict[str, Any]] | None:
        row = self._db.execute("SELECT children FROM synced WHERE original_id = ?", (original_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def remember_synced(self, original_id: str, children: list[dict[str, Any]]) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO synced (original_id, children) VALUES (?, ?)",
            (original_id, _dump(children)),
        )

    def add_complete(self, object_id: str, complete: dict[str, Any]) -> None:
        """Keeps a page with its capped properties filled in, for the tables written later."""
        self._db.execute(
            "UPDATE objects SET complete = ? WHERE id = ?",
            (_dump(complete), object_id),
        )

    def rows(self, data_source_id: str) -> Iterator[dict[str, Any]]:
        """The complete row pages of a data source, in a stable order, streamed."""
        for (encoded,) in self._db.execute(
            "SELECT COALESCE(complete, raw) FROM objects WHERE parent_id = ? AND kind = 'page' "
            "AND raw IS NOT NULL AND status != 'skipped' ORDER BY created_time, id",
            (data_source_id,),
        ):
            yield orjson.loads(encoded)

    def load_previous(self, entries: Iterable[tuple[str, str | None]]) -> None:
        """The ids and edit times of the snapshot a sync builds on."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO previous (id, last_edited_time) VALUES (?, ?)", entries
            )

    def previous_edit(self, object_id: str) -> str | None:
        row = self._db.execute("SELECT last_edited_time FROM previous WHERE id = ?", (object_id,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def lost(self, examples: int) -> tuple[int, list[str]]:
        """Objects listed by this run or held by the previous snapshot that were not exported
        (403/404, failed, never reached), trashed ones aside; and the first few titles."""
        where = (
            "FROM objects WHERE status != 'exported' AND COALESCE(reason, '') != 'in trash' "
            "AND (id IN (SELECT id FROM listed) OR id IN (SELECT id FROM previous))"
        )
        count = int(self._db.execute(f"SELECT COUNT(*) {where}").fetchone()[0])
        titles = self._db.execute(f"SELECT title, id {where} ORDER BY seq LIMIT ?", (examples,)).fetchall()
        return count, [title or object_id for title, object_id in titles]

    def removed(self) -> int:
        """Objects of the previous snapshot that this run did not find, or found in the trash."""
        gone = "SELECT COUNT(*) FROM previous p WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = p.id)"
        trashed = "SELECT COUNT(*) FROM objects WHERE reason = 'in trash'"
        return int(self._db.execute(gone).fetchone()[0]) + int(self._db.execute(trashed).fetchone()[0])

    def measured(self) -> int:
        """What the guard measures losses against: the larger of the previous snapshot and the listing."""
        previous = int(self._db.execute("SELECT COUNT(*) FROM previous").fetchone()[0])
        listed = int(self._db.execute("SELECT COUNT(*) FROM listed").fetchone()[0])
        return max(previous, listed)

    def downloads(self, paths: list[str]) -> dict[str, ManifestFile]:
        """The files among `paths` already downloaded into staging (by this page or another)."""
        if not paths:
            return {}
        marks = ",".join("?" * len(paths))
        rows = self._db.execute(
            f"SELECT path, sha256, size FROM downloads WHERE path IN ({marks})",  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            paths,
        ).fetchall()
        return {r[0]: ManifestFile(path=r[0], sha256=r[1], size=r[2]) for r in rows}

    def file_path(self, url: str) -> str | None:
        row = self._db.execute("SELECT path FROM files WHERE url = ?", (url,)).fetchone()
        return str(row[0]) if row else None

    def add_problem(self, object_id: str, kind: str, reason: str) -> None:
        """A problem that is not an object's own status, such as a file that could not be downloaded."""
        self._db.execute(
            "INSERT OR REPLACE INTO problems (object_id, kind, reason) VALUES (?, ?, ?)",
            (object_id, kind, reason),
        )

    def problems(self) -> Iterator[tuple[str, str, str]]:
        yield from self._db.execute("SELECT object_id, kind, reason FROM problems ORDER BY object_id, kind")

    def paths(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT id, path FROM objects WHERE id IN ({marks}) AND path IS NOT NULL "  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            "AND status IN ('pending', 'exported')",
            ids,
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def titles(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id, title FROM objects WHERE id IN ({marks})", ids).fetchall()  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        return {r[0]: r[1] for r in rows}

    def at_folder(self, directory: str) -> tuple[str, str] | None:
        """(title, path) of the object whose children live in `directory`, unless it is skipped."""
        row = self._db.execute(
            "SELECT title, path FROM objects WHERE dir = ? AND status IN ('pending', 'exported')",
            (directory,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def manifest_rows(
        self,
    ) -> Iterator[tuple[str, str, str, str | None, str | None, str | None, str | None, str, str | None, str]]:
        yield from self._db.execute(
            "SELECT id, kind, title, created_time, last_edited_time, parent_id, path, status, reason, "
            "COALESCE(files, '[]') FROM objects ORDER BY id"
        )

    def refresh(
        self, object_id: str, kind: str, parent_id: str | None, title: str, raw: dict[str, Any]
    ) -> bool:
        """Records an object as Notion shows it now, replacing what a previous snapshot said of it.

        Returns whether it is new to this run.
        """
        if not self._acceptable(object_id, kind):
            return False
        known = self.contains(object_id)
        self._db.execute(_REFRESH, _object_row(object_id, kind, parent_id, title, raw))
        return not known

    def _acceptable(self, object_id: str, kind: str) -> bool:
        """A Notion id, or a problem recorded instead of the object."""
        if _NOTION_ID.match(object_id) or (kind in _PSEUDO_OBJECTS and object_id == kind):
            return True
        self.add_problem(object_id[:100], kind, "not a Notion id: the object was left out")
        return False

    def seed(self, objects: Iterable[tuple[str, str, str | None, str, dict[str, Any]]]) -> int:
        """Carries objects over from a previous snapshot, all or none; returns how many were new."""
        rows = (_object_row(*entry) for entry in objects)
        with self.transaction():
            return self._db.executemany(
                "INSERT OR IGNORE INTO objects (id, kind, parent_id, title, created_time, "
                "last_edited_time, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            ).rowcount


def _object_row(
    object_id: str, kind: str, parent_id: str | None, title: str, raw: dict[str, Any] | None
) -> tuple[str, str, str | None, str, Any, Any, str | None]:
    """The values of an `objects` row as discovery inserts it (a stub has no JSON yet)."""
    if raw is None:
        return object_id, kind, parent_id, title, None, None, None
    encoded = _dump(raw)
    return object_id, kind, parent_id, title, raw.get("created_time"), raw.get("last_edited_time"), encoded


def _dump(value: object) -> str:
    """JSON text for the index (orjson: the index encodes and decodes every object several times)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_COLUMNS = "seq, id, kind, parent_id, title, last_edited_time, raw, path, dir, status"


def _to_object(row: tuple[Any, ...]) -> IndexedObject:
    return IndexedObject(
        seq=row[0],
        id=row[1],
        kind=row[2],
        parent_id=row[3],
        title=row[4],
        last_edited_time=row[5],
        raw=orjson.loads(row[6]) if row[6] else None,
        path=row[7],
        dir=row[8],
        status=row[9],
    )
