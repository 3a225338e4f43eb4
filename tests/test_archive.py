"""Archives: zip and tar.gz round trips, standalone split parts, byte-identical repeats, flat memory."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from notion_sync.archive import ArchiveError, Format, write_archive
from notion_sync.models import RetentionPolicy
from notion_sync.retention import prune_snapshots
from notion_sync.snapshot import MANIFEST
from notion_sync.verify import verify
from tests.test_verify import cli, make_destination, sample_files

FORMATS: list[Format] = ["zip", "tar.gz"]


def extract(part: Path, into: Path) -> list[str]:
    """Extracts one part with the standard library's readers; returns its member names."""
    if part.name.endswith(".zip"):
        with zipfile.ZipFile(part) as archive:
            assert archive.testzip() is None
            archive.extractall(into)
            return archive.namelist()
    with tarfile.open(part, "r:gz") as archive:
        archive.extractall(into, filter="data")
        return archive.getnames()


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path: Path, fmt: Format) -> None:
    root = make_destination(tmp_path / "backup", [*sample_files(40), ("empty.md", b"")])
    snapshot = (root / "current").resolve()
    result = write_archive(root, tmp_path / "out", fmt)
    assert [p.name for p in result.parts] == [f"notion-sync-{snapshot.name}.{fmt}"]
    assert result.files == 41 + 3
    names = extract(tmp_path / "out" / result.parts[0].name, tmp_path / "x")
    assert names[0] == f"{snapshot.name}/{MANIFEST}"
    extracted = tmp_path / "x" / snapshot.name
    assert verify(extracted).ok
    for path, data in sample_files(40):
        assert (extracted / path).read_bytes() == data
    checksums = (tmp_path / "out" / result.checksums).read_text()
    assert checksums == f"{result.parts[0].sha256}  {result.parts[0].name}\n"
    sha256sum = shutil.which("sha256sum")
    if sha256sum:
        subprocess.run([sha256sum, "-c", "--quiet", result.checksums], cwd=tmp_path / "out", check=True)
    unzip = shutil.which("unzip")
    if fmt == "zip" and unzip:
        subprocess.run([unzip, "-tq", result.parts[0].name], cwd=tmp_path / "out", check=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_split_parts_are_standalone_and_within_size(tmp_path: Path, fmt: Format) -> None:
    big = ("big.bin", os.urandom(50_000))  # larger than a part: a part of its own
    root = make_destination(tmp_path / "backup", [*sample_files(120, size=3000), big])
    split = 40_000
    result = write_archive(root, tmp_path / "out", fmt, split_bytes=split)
    assert len(result.parts) >= 5
    names: list[str] = []
    for number, part in enumerate(result.parts, start=1):
        path = tmp_path / "out" / part.name
        assert part.name.endswith(f".part{number:03d}.{fmt}")
        assert path.stat().st_size == part.size
        members = extract(path, tmp_path / "x")  # each part alone is a complete archive
        assert len(members) == part.files
        assert part.size <= split or members == [f"{root.joinpath('current').resolve().name}/big.bin"]
        names += members
    assert len(names) == len(set(names)) == 121 + 3
    assert verify(tmp_path / "x" / (root / "current").resolve().name).ok
    assert verify(tmp_path / "out" / result.parts[-1].name).ok


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_snapshot_same_bytes(tmp_path: Path, fmt: Format) -> None:
    root = make_destination(tmp_path / "backup", sample_files(50))
    first = write_archive(root, tmp_path / "a", fmt, split_bytes=30_000)
    for path in (root / "current").resolve().rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))  # file times must not leak into the archive
    second = write_archive(root, tmp_path / "b", fmt, split_bytes=30_000)
    assert first.parts == second.parts
    for name in [*(p.name for p in first.parts), first.checksums]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


class MemorySink:
    """The Sink protocol in memory: what an object-store sink plugs into."""

    def __init__(self) -> None:
        self.parts: dict[str, bytes] = {}

    def open_part(self, name: str) -> MemoryPart:
        return MemoryPart(self, name)

    def remove(self, name: str) -> None:
        self.parts.pop(name, None)


class MemoryPart(io.BytesIO):
    def __init__(self, sink: MemorySink, name: str) -> None:
        super().__init__()
        self.sink, self.name = sink, name

    def close(self) -> None:
        self.sink.parts[self.name] = self.getvalue()
        super().close()

    def abort(self) -> None:
        super().close()


def test_any_sink_gets_the_same_bytes(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(20))
    sink = MemorySink()
    result = write_archive(root, sink, "tar.gz", split_bytes=20_000)
    write_archive(root, tmp_path / "out", "tar.gz", split_bytes=20_000)
    assert set(sink.parts) == {*(p.name for p in result.parts), result.checksums}
    for name, data in sink.parts.items():
        assert (tmp_path / "out" / name).read_bytes() == data


def test_a_damaged_snapshot_is_not_archived(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(30))
    target = (root / "current").resolve() / "Space 4/Ünïcode page 29.md"
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"page 29\.md differs"):
        write_archive(root, tmp_path / "out", "zip", split_bytes=10_000)
    assert list((tmp_path / "out").iterdir()) == []  # no part, no checksum file, no temporary left
    code, output = cli("archive", root, "--out", tmp_path / "out")
    assert code == 1 and "differs from manifest.jsonl" in output


def _peak(tmp_path: Path, count: int, fmt: Format) -> int:
    # One file past the read chunk in both exports, so the only difference is the number of files.
    attachment = ("attachment.bin", os.urandom(300_000))
    root = make_destination(tmp_path / f"backup-{count}", [attachment, *sample_files(count, size=600)])
    tracemalloc.start()
    try:
        write_archive(root, tmp_path / f"out-{count}-{fmt}", fmt, split_bytes=200_000)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_memory_stays_flat_as_the_export_grows(tmp_path: Path, fmt: Format) -> None:
    small, large = _peak(tmp_path, 200, fmt), _peak(tmp_path, 2000, fmt)
    assert small < 2 * 1024 * 1024, small  # a read chunk, its compressed form and one compressor
    assert large < small * 1.1, (small, large)


def test_cli_archive_then_verify(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(10))
    code, output = cli("archive", root, "--format", "tar.gz", "--split-mb", "1", "--out", tmp_path / "out")
    assert code == 0, output
    parts = sorted((tmp_path / "out").glob("*.part*.tar.gz"))
    assert len(parts) == 1 and str(parts[0]) in output
    code, output = cli("verify", parts[0])
    assert code == 0 and "OK: 10 files verified" in output


def test_prune_keeps_the_newest_and_current(tmp_path: Path) -> None:
    root = tmp_path / "backup"
    for day in range(1, 6):
        make_destination(root, sample_files(2), snapshot=f"2026-01-0{day}T00-00-00Z")
    (root / "current").unlink()
    (root / "current").symlink_to("snapshots/2026-01-02T00-00-00Z")  # an older one is current
    removed = prune_snapshots(root, RetentionPolicy(keep_last=2)).removed
    assert removed == ["2026-01-01T00-00-00Z", "2026-01-03T00-00-00Z"]
    left = sorted(p.name for p in (root / "snapshots").iterdir())
    assert left == ["2026-01-02T00-00-00Z", "2026-01-04T00-00-00Z", "2026-01-05T00-00-00Z"]
    assert verify(root).ok
    code, output = cli("prune", root, "--keep", "1")
    assert code == 0 and "2026-01-04T00-00-00Z" in output
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == left[::2]
