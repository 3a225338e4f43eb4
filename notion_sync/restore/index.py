"""The restore index: one SQLite file per restore, under the worker's state folder.

It holds what the restore will create, in the order it must (a parent before its children, a data
source's rows in their original order), each object's progress, the intent recorded before every
create request (so a retry after a lost answer finds what that request made instead of making it
twice), the map from old ids to new ones, and what could not be restored. Memory stays flat at any
size; the workflow keeps only a cursor and counters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from notion_sync.restore.blocks import Loss

_COLUMNS = "seq, id, kind, parent_id, title, path, state"
_INTENT_COLUMNS = "key, parent, after, count, sent_at, lookup"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    parent_id TEXT,
    title TEXT NOT NULL DEFAULT '',
    path TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS ids (old TEXT PRIMARY KEY, new TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (key TEXT PRIMARY KEY, parent TEXT NOT NULL, after TEXT,
    count INTEGER NOT NULL, sent_at TEXT NOT NULL, lookup TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS losses (object_id TEXT NOT NULL, kind TEXT NOT NULL, what TEXT NOT NULL,
    PRIMARY KEY (object_id, kind, what));
"""

# An object's progress: `pending`, then `created` (its shell exists: the new id is in `ids`), then
# `done` (content, properties and comments too).
STATES = ("pending", "created", "done")


@dataclass(frozen=True)
class PlannedObject:
    seq: int
    id: str
    kind: str
    parent_id: str | None
    title: str
    path: str | None
    state: str


@dataclass(frozen=True)
class Intent:
    """A create request sent and not yet known to have landed: under `parent`, after block `after`
    (None: at the end when it was sent), `count` blocks or one page; `lookup` says how to find what
    it made (`recover.Lookup`, as text; empty in an index written before lookups were recorded)."""

    key: str
    parent: str
    after: str | None
    count: int
    sent_at: str
    lookup: str = ""


class RestoreIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(intents)")}
        if "lookup" not in columns:
            # An index written before lookups were recorded (a restore started by an older worker).
            self._db.execute("ALTER TABLE intents ADD COLUMN lookup TEXT NOT NULL DEFAULT ''")

    def __enter__(self) -> RestoreIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self._db.close()

    # ------------------------------------------------------------------------------------ the plan

    def add_objects(self, rows: Iterable[tuple[int, str, str, str | None, str, str | None]]) -> int:
        """Adds (seq, id, kind, parent_id, title, path) rows; an id already planned is kept as is."""
        with self._db:
            before = self.count()
            self._db.executemany(
                "INSERT OR IGNORE INTO objects (seq, id, kind, parent_id, title, path) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self.count() - before

    def max_seq(self) -> int:
        (n,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM objects").fetchone()
        return int(n)

    def count(self, state: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM objects", tuple[str, ...]()
        if state is not None:
            query, args = query + " WHERE state = ?", (state,)
        (n,) = self._db.execute(query, args).fetchone()
        return int(n)

    def after(self, cursor: int, limit: int) -> list[PlannedObject]:
        """The next `limit` objects in creation order after position `cursor`."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM objects WHERE seq > ? ORDER BY seq LIMIT ?",  # nosec B608 # constant SQL text and ? placeholders; every value is bound
            (cursor, limit),
        )
        return [PlannedObject(*row) for row in rows]

    def objects(self) -> Iterator[PlannedObject]:
        rows = self._db.execute(
            "SELECT seq, id, kind, parent_id, title, path, state FROM objects ORDER BY seq"
        )
        yield from (PlannedObject(*row) for row in rows)

    def kind_counts(self) -> dict[str, int]:
        """How many objects of each kind have a copy (blocks too)."""
        rows = self._db.execute("SELECT kind, COUNT(*) FROM ids GROUP BY kind")
        return {str(kind): int(n) for kind, n in rows}

    def count_steps(self, suffix: str) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM steps WHERE key LIKE ?", (f"%{suffix}",)).fetchone()
        return int(n)

    def count_losses(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM losses").fetchone()
        return int(n)

    def kind_of(self, object_id: str) -> str | None:
        """The kind of a planned object (None: not in the plan)."""
        row = self._db.execute("SELECT kind FROM objects WHERE id = ?", (object_id,)).fetchone()
        return str(row[0]) if row else None

    def set_state(self, object_id: str, state: str) -> None:
        assert state in STATES
        self._db.execute("UPDATE objects SET state = ? WHERE id = ?", (state, object_id))

    # ------------------------------------------------------------------------------------ ids

    def map_id(self, old: str, new: str, kind: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO ids (old, new, kind) VALUES (?, ?, ?)", (old, new, kind))

    def map_ids(self, pairs: Iterable[tuple[str, str, str]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO ids (old, new, kind) VALUES (?, ?, ?)", pairs)

    def new_id(self, old: str) -> str | None:
        row = self._db.execute("SELECT new FROM ids WHERE old = ?", (old,)).fetchone()
        return str(row[0]) if row else None

    def is_adopted(self, new: str) -> bool:
        """Whether `new` is already the copy of some object (a lost create is never adopted twice)."""
        return self._db.execute("SELECT 1 FROM ids WHERE new = ?", (new,)).fetchone() is not None

    def id_map(self, kinds: tuple[str, ...] = ("page", "database", "data_source")) -> dict[str, str]:
        """Old -> new ids of the objects (not blocks) restored so far: small enough for one page's
        conversion (one entry per object, as the export index holds)."""
        marks = ",".join("?" * len(kinds))
        rows = self._db.execute(f"SELECT old, new FROM ids WHERE kind IN ({marks})", kinds)  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        return {str(old): str(new) for old, new in rows}

    def ids_view(self) -> Mapping[str, str]:
        """Old -> new ids of everything restored so far, read from the file as asked (memory flat)."""
        return _IdsView(self._db)

    def mapping(self) -> Iterator[tuple[str, str, str]]:
        yield from (
            (str(o), str(n), str(k))
            for o, n, k in self._db.execute("SELECT old, new, kind FROM ids ORDER BY kind, old")
        )

    # ------------------------------------------------------------------------------------ intents

    def record_intent(self, intent: Intent) -> None:
        """Records a create about to be sent; one sent again keeps its first `sent_at` (what any of its
        sends made is looked for from then on)."""
        self._db.execute(
            "INSERT INTO intents (key, parent, after, count, sent_at, lookup) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET parent = excluded.parent, after = excluded.after, "
            "count = excluded.count, lookup = excluded.lookup",
            (intent.key, intent.parent, intent.after, intent.count, intent.sent_at, intent.lookup),
        )

    def intent(self, key: str) -> Intent | None:
        row = self._db.execute(f"SELECT {_INTENT_COLUMNS} FROM intents WHERE key = ?", (key,)).fetchone()  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        return Intent(*row) if row else None

    def open_intents(self) -> list[Intent]:
        """Every create sent whose outcome is not known yet (a handful: one per range in flight)."""
        rows = self._db.execute(f"SELECT {_INTENT_COLUMNS} FROM intents ORDER BY key")  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        return [Intent(*row) for row in rows]

    def clear_intent(self, key: str) -> None:
        self._db.execute("DELETE FROM intents WHERE key = ?", (key,))

    # ------------------------------------------------------------------------------------ steps

    def step(self, key: str) -> list[str] | None:
        """The new ids a finished step made (None: not finished), so a replay skips it."""
        row = self._db.execute("SELECT result FROM steps WHERE key = ?", (key,)).fetchone()
        return [part for part in str(row[0]).split(",") if part] if row else None

    def finish_step(self, key: str, made: list[str], ids: Iterable[tuple[str, str, str]] = ()) -> None:
        """Records what step `key` made, maps the ids and clears its intent, in one transaction."""
        # Autocommit connection: the transaction is explicit.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            made_ids = ",".join(made)
            self._db.execute("INSERT OR REPLACE INTO steps (key, result) VALUES (?, ?)", (key, made_ids))
            self._db.executemany("INSERT OR REPLACE INTO ids (old, new, kind) VALUES (?, ?, ?)", ids)
            self._db.execute("DELETE FROM intents WHERE key = ?", (key,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------------------------ users

    def set_users(self, ids: Iterable[str]) -> None:
        """The target workspace's users, listed once per restore (`users` then answers without asking)."""
        with self._db:
            self._db.execute("DELETE FROM users")
            self._db.executemany("INSERT OR IGNORE INTO users (id) VALUES (?)", ((i,) for i in ids))
            self._db.execute("INSERT OR REPLACE INTO steps (key, result) VALUES ('users', '')")

    def users(self) -> frozenset[str] | None:
        """The target workspace's users (None: not listed yet): one id per member, small."""
        if self.step("users") is None:
            return None
        return frozenset(str(i) for (i,) in self._db.execute("SELECT id FROM users"))

    # ------------------------------------------------------------------------------------ losses

    def add_losses(self, losses: Iterable[Loss]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO losses (object_id, kind, what) VALUES (?, ?, ?)",
                ((loss.block_id, loss.kind, loss.what) for loss in losses),
            )

    def losses(self) -> Iterator[Loss]:
        rows = self._db.execute("SELECT object_id, kind, what FROM losses ORDER BY object_id, kind")
        yield from (Loss(*row) for row in rows)


class _IdsView(Mapping[str, str]):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __getitem__(self, old: str) -> str:
        row = self._db.execute("SELECT new FROM ids WHERE old = ?", (old,)).fetchone()
        if row is None:
            raise KeyError(old)
        return str(row[0])

    def __iter__(self) -> Iterator[str]:
        return (str(old) for (old,) in self._db.execute("SELECT old FROM ids"))

    def __len__(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM ids").fetchone()
        return int(n)
