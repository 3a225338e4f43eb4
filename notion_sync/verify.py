"""`notion-sync verify`: check an export folder or an archive against its manifest.

Every file listed in `manifest.jsonl` must be present with the listed size and sha256. Files present
but not listed are reported as extra, except the snapshot's own `manifest.jsonl`, `problems.jsonl`,
`report.json` and an `html/` folder. Hashes are computed streaming, chunk by chunk.

An archive (see `notion_sync/archive.py`) is checked part by part against its `<name>.sha256` file
first, then entry by entry against the manifest it carries as its first entry.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from notion_sync.models import ManifestFile
from notion_sync.snapshot import (
    CURRENT,
    MANIFEST,
    META_FILES,
    ManifestUnreadable,
    file_digest,
    read_manifest,
    stream_digest,
)

ALLOWED_FOLDERS = ("html/",)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz")
_PART = re.compile(r"^(?P<base>.+?)(?:\.part(?P<number>\d{3,}))?(?P<ext>\.zip|\.tar\.gz)$")


class NotAnExport(ValueError):
    """The path is neither a snapshot, a destination with a `current` snapshot, nor an archive."""


@dataclass
class Mismatch:
    path: str
    reason: str


@dataclass
class VerifyReport:
    target: str
    kind: Literal["folder", "archive"]
    files: int = 0
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    corrupted: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.corrupted or self.errors)

    def summary(self, limit: int = 50) -> str:
        if self.ok:
            return f"OK: {self.verified} files verified ({self.kind} {self.target})"
        counts = (
            f"{len(self.missing)} missing, {len(self.extra)} extra, {len(self.corrupted)} corrupted, "
            f"{len(self.errors)} other problems"
        )
        verified = f"{self.verified}/{self.files} files verified"
        lines = [f"FAILED: {self.target} ({self.kind}): {counts}; {verified}"]
        listed: list[tuple[str, str]] = [
            *(("error", e) for e in self.errors),
            *(("missing", p) for p in self.missing),
            *(("corrupted", f"{c.path}: {c.reason}") for c in self.corrupted),
            *(("extra", p) for p in self.extra),
        ]
        lines += [f"  {label:<9}  {text}" for label, text in listed[:limit]]
        if len(listed) > limit:
            lines.append(f"  ... and {len(listed) - limit} more")
        return "\n".join(lines)


def resolve_snapshot(path: Path) -> Path:
    """A snapshot folder itself, or the snapshot a destination's `current` points to."""
    if (path / MANIFEST).is_file():
        return path
    if (path / CURRENT / MANIFEST).is_file():
        return (path / CURRENT).resolve()
    raise NotAnExport(f"{path} is not an export: no {MANIFEST} there nor in {path / CURRENT}")


def safe_relpath(path: str) -> bool:
    """A manifest path that stays inside the snapshot (checked on the string: pathlib interns parts)."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "\\" not in path


def is_allowed_extra(relpath: str) -> bool:
    return relpath in META_FILES or relpath.startswith(ALLOWED_FOLDERS)


def verify(path: str | Path) -> VerifyReport:
    """Verifies an export folder (snapshot or destination) or an archive (any of its parts)."""
    path = Path(path).expanduser()
    if path.is_file() and (path.name.endswith(".sha256") or _PART.match(path.name)):
        report = VerifyReport(target=str(path), kind="archive")
        _verify_archive(path, report)
        return report
    snapshot = resolve_snapshot(path)
    report = VerifyReport(target=str(snapshot), kind="folder")
    _verify_folder(snapshot, report)
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


def _verify_folder(root: Path, report: VerifyReport) -> None:
    expected = _Expected(report)
    if not expected.load(root / MANIFEST):
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath, name)
            relpath = full.relative_to(root).as_posix()
            if relpath not in expected.files:
                expected.check(relpath, "", 0)
            elif full.stat().st_size != expected.files[relpath].size:
                expected.check(relpath, "", full.stat().st_size)
            else:
                expected.check(relpath, *file_digest(full))
    expected.finish()


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


def _verify_archive(path: Path, report: VerifyReport) -> None:
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
                    if not expected.load(stream):
                        return
                    continue
                relpath = name.removeprefix(prefix) if name.startswith(prefix) else name
                expected.check(relpath, *stream_digest(stream))
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as error:
            report.errors.append(f"part {part.name} is unreadable: {error}")
    expected.finish()


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
