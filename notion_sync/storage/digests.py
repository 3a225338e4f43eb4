"""A set of sha256 digests kept in a SQLite file, so memory stays flat at any size.

A 100,000-page workspace is ~400,000 files: the digests a publish has uploaded (its upload journal,
which must outlive a killed worker), the digests every kept snapshot references (garbage
collection), the files an adoption has moved into the store. Each is one `DigestSet`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType


class DigestSet:
    """sha256 digests (64 hex characters) in a SQLite file, stored as their 32 bytes.

    With a `path`, the set is durable: each `add` or `add_many` is committed (WAL, synchronous
    NORMAL: a crash keeps every committed digest but at most the last transactions of a power loss,
    which only means uploading those again). Without one, it lives in a temporary file removed on
    `close`. A connection belongs to the thread that opened the set.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._temporary = path is None
        if path is None:
            handle, name = tempfile.mkstemp(prefix="notion-sync-digests-", suffix=".sqlite")
            os.close(handle)
            path = Path(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        if self._temporary:
            # Nothing to survive: no journal, and the OS may keep it in its cache.
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
        else:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS digests (sha256 BLOB PRIMARY KEY) WITHOUT ROWID")
        # When the set was first made (this machine's clock): how stale its oldest digest may be.
        self._db.execute("CREATE TABLE IF NOT EXISTS created (at REAL NOT NULL)")
        made = "INSERT INTO created SELECT ? WHERE NOT EXISTS (SELECT 1 FROM created)"
        self._db.execute(made, (time.time(),))

    def age_seconds(self) -> float:
        """How long ago the set was first made: no digest in it was added earlier."""
        row = self._db.execute("SELECT min(at) FROM created").fetchone()
        return max(0.0, time.time() - float(row[0]))

    def add(self, sha256: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO digests VALUES (?)", (_packed(sha256),))

    def add_many(self, digests: Iterable[str]) -> None:
        """Adds every digest in one transaction (streamed: `digests` is never held whole)."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO digests VALUES (?)", ((_packed(d),) for d in digests))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def discard_many(self, digests: Iterable[str]) -> None:
        """Removes every digest of `digests` the set holds, in one transaction (streamed)."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("DELETE FROM digests WHERE sha256 = ?", ((_packed(d),) for d in digests))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __contains__(self, sha256: object) -> bool:
        if not isinstance(sha256, str):
            return False
        try:
            packed = _packed(sha256)
        except ValueError:
            return False
        return self._db.execute("SELECT 1 FROM digests WHERE sha256 = ?", (packed,)).fetchone() is not None

    def count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM digests").fetchone()
        return int(row[0])

    def __iter__(self) -> Iterator[str]:
        """The digests in order, read from the file a page at a time."""
        for (packed,) in self._db.execute("SELECT sha256 FROM digests ORDER BY sha256"):
            yield bytes(packed).hex()

    def close(self) -> None:
        self._db.close()
        if self._temporary:
            self.path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Closes the set and deletes its file (and SQLite's journal files beside it)."""
        self._db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> DigestSet:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _packed(sha256: str) -> bytes:
    packed = bytes.fromhex(sha256) if len(sha256) == 64 else b""
    if len(packed) != 32:
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return packed


def path_digest(relpath: str) -> str:
    """A snapshot-relative path as a digest, so a set of paths fits a `DigestSet`."""
    return hashlib.sha256(relpath.encode()).hexdigest()


def sha256_and_md5(path: Path) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a file in one read: the md5 is what S3 answers as the ETag of an
    object uploaded in one part."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size
