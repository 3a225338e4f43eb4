"""zip and tar.gz archives of a snapshot: streamed, split into standalone parts, deterministic.

An archive holds the snapshot's `manifest.jsonl` (always the first entry), `report.json`,
`problems.jsonl` and every file the manifest lists, under one top folder named after the snapshot.
Files are read one chunk at a time and checked against the manifest's sha256 and size as they go in
(an archive of a damaged snapshot fails). Memory stays flat however many files there are: the zip
central directory is spooled to a temporary file, not kept in memory. A packed folder snapshot (an
older one whose tree was removed) gives its listed files from the destination's object store
(`snapshot.snapshot_file`): its archive is the same, byte for byte, as the archive of its tree.

With a split size, the archive is cut into parts `<name>.part001.zip`, `<name>.part002.zip`, ...:
each part is a complete archive of a subset of the files and never exceeds the split size (except a
part holding one single file larger than it). Extracting every part into the same folder rebuilds
the snapshot. `<name>.sha256` lists every part in `sha256sum -c` format and is written last.

Same snapshot, same bytes: entries in manifest order, fixed timestamps (1980-01-01 in zip, 0 in
tar and gzip), mode 0644, no owner names, fixed compression level.

Parts are written to a `Sink`: `LocalSink` writes a folder; an object store sink (S3 multipart
upload) needs only `open_part` returning a stream with `write`, `close` (commit) and `abort`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from notion_sync.snapshot import (
    MANIFEST,
    META_FILES,
    READ_CHUNK,
    has_manifest,
    manifest_lines,
    read_manifest,
    snapshot_file,
)
from notion_sync.verify import resolve_snapshot, safe_relpath

Format = Literal["zip", "tar.gz"]
LEVEL = 6
_ZIP64_LIMIT = 0xFFFFFFFF
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00:00
_FLAGS = 0x08 | 0x800  # sizes in a data descriptor after the data; UTF-8 names
_DEFLATED = 8
_TAR_RECORD = 20 * 512


class ArchiveError(RuntimeError):
    """The snapshot cannot be archived as it is (missing or changed files, unsafe paths)."""


class PartWriter(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None:
        """Commit: the part appears whole at its name."""

    def abort(self) -> None:
        """Discard everything written; nothing appears."""


class Sink(Protocol):
    def open_part(self, name: str) -> PartWriter: ...

    def remove(self, name: str) -> None:
        """Remove a committed part (cleanup after a failed archive)."""


class _LocalPart:
    def __init__(self, target: Path) -> None:
        self._target = target
        self._tmp = target.with_name(f".{target.name}.tmp")
        self._file: BinaryIO = self._tmp.open("wb")

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()
        os.replace(self._tmp, self._target)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalSink:
    """Parts as files in a folder; each written under a temporary name and renamed when complete."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def open_part(self, name: str) -> _LocalPart:
        return _LocalPart(self.folder / name)

    def remove(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)


@dataclass
class ArchivePart:
    name: str
    size: int
    sha256: str
    files: int


@dataclass
class ArchiveResult:
    snapshot: Path
    checksums: str
    parts: list[ArchivePart] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(part.files for part in self.parts)


class _Counter:
    """The stream a part is written to: counts and hashes the bytes on their way to the sink."""

    def __init__(self, writer: PartWriter) -> None:
        self.writer = writer
        self.count = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.writer.write(data)
        self.digest.update(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _deflate_bound(size: int) -> int:
    """At most this many bytes of deflate output for `size` input bytes (zlib's deflateBound, rounded up)."""
    return size + (size >> 11) + 64


def _copy(source: str, size: int, relpath: str) -> Iterator[bytes]:
    """The file's bytes, exactly `size` of them, chunk by chunk."""
    with open(source, "rb") as stream:
        remaining = size
        while remaining:
            chunk = stream.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise ArchiveError(f"{relpath} is shorter than its {size} bytes")
            remaining -= len(chunk)
            yield chunk
        if stream.read(1):
            raise ArchiveError(f"{relpath} is longer than its {size} bytes")


class _Part:
    """One archive part being written; `bound` is the most it can grow by adding a file and finishing."""

    out: _Counter
    entries: int

    def bound(self, name: str, size: int) -> int:
        raise NotImplementedError

    def add(self, name: str, chunks: Iterator[bytes], size: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        """Make `out.count` exact (everything given so far written out)."""

    def fits(self, name: str, size: int, limit: int) -> bool:
        """Whether the file can go in without the finished part exceeding `limit` (an empty part: always)."""
        if not self.entries or self.out.count + self.bound(name, size) <= limit:
            return True
        self.sync()
        return self.out.count + self.bound(name, size) <= limit


class _ZipPart(_Part):
    """A zip written front to back (no seeking): data descriptors, ZIP64 where needed."""

    def __init__(self, out: _Counter) -> None:
        self.out = out
        self.entries = 0
        self._central = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self._central_size = 0

    def bound(self, name: str, size: int) -> int:
        names = len(name.encode())
        entry = 30 + names + 20 + _deflate_bound(size) + 24
        return entry + self._central_size + 46 + names + 28 + 56 + 20 + 22

    def add(self, name: str, chunks: Iterator[bytes], size: int) -> None:
        encoded, offset = name.encode(), self.out.count
        zip64 = size + size // 20 >= _ZIP64_LIMIT
        version = 45 if zip64 else 20
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
        local_size = _ZIP64_LIMIT if zip64 else 0
        header = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            version,
            _FLAGS,
            _DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            0,
            local_size,
            local_size,
            len(encoded),
            len(extra),
        )
        self.out.write(header + encoded + extra)
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        crc, compressed = 0, 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            compressed += self.out.write(compressor.compress(chunk))
        compressed += self.out.write(compressor.flush())
        layout = "<IIQQ" if zip64 else "<IIII"
        self.out.write(struct.pack(layout, 0x08074B50, crc, compressed, size))
        big = [size, compressed] if zip64 or max(size, compressed) >= _ZIP64_LIMIT else []
        sizes = (_ZIP64_LIMIT, _ZIP64_LIMIT) if big else (compressed, size)
        if offset >= _ZIP64_LIMIT:
            big.append(offset)
        extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
        version = 45 if big else version
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | version,
            version,
            _FLAGS,
            _DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            *sizes,
            len(encoded),
            len(extra),
            0,
            0,
            0,
            0o100644 << 16,
            min(offset, _ZIP64_LIMIT),
        )
        self._central.write(record + encoded + extra)
        self._central_size += len(record) + len(encoded) + len(extra)
        self.entries += 1

    def finish(self) -> None:
        start, count, size = self.out.count, self.entries, self._central_size
        self._central.seek(0)
        while chunk := self._central.read(READ_CHUNK):
            self.out.write(chunk)
        self._central.close()
        if count >= 0xFFFF or start >= _ZIP64_LIMIT or size >= _ZIP64_LIMIT:
            end64 = self.out.count
            record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start)
            self.out.write(record)
            self.out.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        limited = (min(count, 0xFFFF), min(size, _ZIP64_LIMIT), min(start, _ZIP64_LIMIT))
        self.out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, limited[0], limited[0], *limited[1:], 0))


class _TarGzPart(_Part):
    """A PAX tar through gzip, written front to back."""

    def __init__(self, out: _Counter) -> None:
        self.out = out
        self.entries = 0
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=LEVEL, mtime=0)
        self._offset = 0  # bytes of tar stream given to gzip
        self._synced = 0  # of which certainly compressed and written out

    def _write(self, data: bytes) -> None:
        self._gzip.write(data)
        self._offset += len(data)

    def bound(self, name: str, size: int) -> int:
        entry = 3 * 512 + 2 * len(name.encode()) + size + 511
        pending = self._offset - self._synced
        return _deflate_bound(pending + entry + 2 * 512 + _TAR_RECORD) + 5 + 8

    def sync(self) -> None:
        """Push everything given to gzip out (a sync flush: a few bytes, only near the split size)."""
        self._gzip.flush(zlib.Z_SYNC_FLUSH)
        self._synced = self._offset

    def add(self, name: str, chunks: Iterator[bytes], size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uname, info.gname = size, 0, 0o644, "", ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        for chunk in chunks:
            self._write(chunk)
        self._write(b"\0" * (-size % 512))
        self.entries += 1

    def finish(self) -> None:
        self._write(b"\0" * 1024)
        self._write(b"\0" * (-self._offset % _TAR_RECORD))
        self._gzip.close()


def _entries(snapshot: Path) -> Iterator[tuple[str, str, int | None, str | None]]:
    """(path in the snapshot, file, size, sha256): meta files first, then the manifest's, in its order.

    Plain strings, not `Path`s: pathlib interns every path part, a cost that grows with the export.
    """
    root = str(snapshot)
    with tempfile.TemporaryDirectory(prefix="notion-sync-archive-") as scratch:
        for name in META_FILES:
            source = os.path.join(root, name)
            if name == MANIFEST and not os.path.isfile(source) and has_manifest(snapshot):
                source = os.path.join(scratch, MANIFEST)  # kept as a delta: archived whole
                with manifest_lines(snapshot) as lines, open(source, "wb") as whole:
                    whole.writelines(lines)
            yield name, source, None, None
        with read_manifest(snapshot / MANIFEST) as (_header, objects):
            for entry in objects:
                for file in entry.files:
                    if not safe_relpath(file.path):
                        raise ArchiveError(f"{MANIFEST} lists an unsafe path: {file.path!r}")
                    source = os.path.join(root, file.path)
                    if not os.path.lexists(source):  # packed: from the store (a Path only then)
                        source = str(snapshot_file(snapshot, file))
                    yield file.path, source, file.size, file.sha256


def _part_name(name: str, fmt: Format, number: int | None) -> str:
    return f"{name}.part{number:03d}.{fmt}" if number is not None else f"{name}.{fmt}"


def write_archive(
    snapshot_dir: str | Path,
    target: str | Path | Sink,
    fmt: Format = "zip",
    split_bytes: int | None = None,
    name: str | None = None,
) -> ArchiveResult:
    """Archives a snapshot (or a destination's current snapshot) to `target` (a folder or a Sink)."""
    if fmt not in ("zip", "tar.gz"):
        raise ValueError(f"unknown archive format {fmt!r}")
    if split_bytes is not None and split_bytes <= 0:
        raise ValueError("split_bytes must be positive")
    snapshot = resolve_snapshot(Path(snapshot_dir).expanduser()).resolve()
    sink: Sink = LocalSink(target) if isinstance(target, str | Path) else target
    name = name or f"notion-sync-{snapshot.name}"
    result = ArchiveResult(snapshot=snapshot, checksums=f"{name}.sha256")
    part: _Part | None = None
    writer: PartWriter | None = None

    def close_part() -> None:
        nonlocal part, writer
        assert part is not None and writer is not None
        part.finish()
        writer.close()
        number = len(result.parts) + 1 if split_bytes is not None else None
        digest = part.out.digest.hexdigest()
        result.parts.append(ArchivePart(_part_name(name, fmt, number), part.out.count, digest, part.entries))
        part = writer = None

    try:
        for relpath, source, listed_size, sha256 in _entries(snapshot):
            if not os.path.isfile(source):
                if listed_size is None:
                    continue  # no report.json or problems.jsonl
                raise ArchiveError(f"{relpath} is missing: run `notion-sync verify`")
            size = os.stat(source).st_size
            if listed_size is not None and size != listed_size:
                raise ArchiveError(f"{relpath} is {size} bytes, not {listed_size}: run `notion-sync verify`")
            member = f"{snapshot.name}/{relpath}"
            if part is not None and split_bytes is not None and not part.fits(member, size, split_bytes):
                close_part()
            if part is None:
                number = len(result.parts) + 1 if split_bytes is not None else None
                writer = sink.open_part(_part_name(name, fmt, number))
                part = _ZipPart(_Counter(writer)) if fmt == "zip" else _TarGzPart(_Counter(writer))
            digest = hashlib.sha256()
            part.add(member, _hashed(_copy(source, size, relpath), digest), size)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise ArchiveError(f"{relpath} differs from {MANIFEST}: run `notion-sync verify`")
        close_part()
        writer = sink.open_part(result.checksums)
        writer.write("".join(f"{p.sha256}  {p.name}\n" for p in result.parts).encode())
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        for done in result.parts:
            sink.remove(done.name)
        raise
    return result


def _hashed(chunks: Iterator[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
