"""The snapshot format: manifest round trip, streaming, unreadable manifests, names, digests, pointer."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notion_sync.models import Counters, ExportReport, ManifestFile, ManifestHeader, ManifestObject
from notion_sync.snapshot import (
    MANIFEST,
    REPORT,
    ManifestUnreadable,
    current_snapshot,
    file_digest,
    named_for,
    read_manifest,
    read_report,
    saved_json,
    snapshot_name,
    snapshot_time,
    write_manifest_line,
)


def _object(n: int) -> ManifestObject:
    return ManifestObject(
        id=f"{n:032x}",
        type="page",
        title=f"Page {n}",
        last_edited_time="2025-01-01T00:00:00.000Z",
        path=f"Page {n}.md",
        status="exported",
        files=[ManifestFile(path=saved_json("page", f"{n:032x}"), sha256="0" * 64, size=n)],
    )


def _write(path: Path, objects: list[ManifestObject]) -> None:
    with path.open("wb") as stream:
        write_manifest_line(stream, ManifestHeader(objects=len(objects)))
        for entry in objects:
            write_manifest_line(stream, entry)


def test_manifest_round_trip_from_the_file_or_its_snapshot_folder(tmp_path: Path) -> None:
    objects = [_object(n) for n in range(3)]
    _write(tmp_path / MANIFEST, objects)
    for source in (tmp_path, tmp_path / MANIFEST):
        with read_manifest(source) as (header, entries):
            assert header == ManifestHeader(objects=3)
            assert list(entries) == objects


def test_manifest_is_read_one_line_at_a_time(tmp_path: Path) -> None:
    """Objects are parsed as they are asked for: a bad line far down does not stop the first ones."""
    _write(tmp_path / MANIFEST, [_object(n) for n in range(1000)])
    with (tmp_path / MANIFEST).open("ab") as stream:
        stream.write(b"not json\n")
    with read_manifest(tmp_path) as (_header, entries):
        assert next(entries) == _object(0)
        with pytest.raises(ManifestUnreadable, match="line 1002"):
            for _ in entries:
                pass


def test_manifest_from_a_stream_is_left_open() -> None:
    data = io.BytesIO()
    write_manifest_line(data, ManifestHeader(objects=1))
    write_manifest_line(data, _object(1))
    data.seek(0)
    with read_manifest(data) as (header, entries):
        assert header.objects == 1
        assert [entry.id for entry in entries] == [_object(1).id]
    assert not data.closed


@pytest.mark.parametrize(
    "content",
    [None, b"", b"\n", b'{"format": "something-else", "objects": 0}\n', b'{"objects": 1}\n{"id": 1}\n'],
)
def test_unreadable_manifests_raise_one_error(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / MANIFEST).write_bytes(content)

    def read_all() -> Iterator[ManifestObject]:
        with read_manifest(tmp_path) as (_header, entries):
            yield from entries

    with pytest.raises(ManifestUnreadable):
        list(read_all())


def test_snapshot_time_reads_back_snapshot_name() -> None:
    started = datetime(2025, 3, 9, 14, 5, 59, tzinfo=UTC)
    name = snapshot_name(started, "0123456789abcdef")
    assert name == "2025-03-09T14-05-59Z-89abcdef"
    # Run ids are UUIDv7: two runs started in the same second differ only in their last digits.
    first, second = "01a23c10-6049-7d44-aa98-cf62ecd56af6", "01a23c10-6049-7d44-bb12-0a9e5d3c7781"
    assert snapshot_name(started, first) != snapshot_name(started, second)
    mine = snapshot_name(started, first)
    assert named_for(mine, first) and not named_for(mine, second)
    assert named_for("2025-03-09T14-05-59Z-01a23c10", first), "a name made before still belongs to its run"
    assert snapshot_time(name) == started
    assert snapshot_time("hand-made") is None
    assert snapshot_time("2025-13-40T99-99-99Z-01234567") is None


def test_file_digest_is_sha256_and_size(tmp_path: Path) -> None:
    data = os.urandom(700_000)  # several read chunks
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f") == (hashlib.sha256(data).hexdigest(), len(data))


def test_read_report(tmp_path: Path) -> None:
    assert read_report(None) is None
    assert read_report(tmp_path) is None
    (tmp_path / REPORT).write_bytes(b"{broken")
    assert read_report(tmp_path) is None
    report = ExportReport(
        status="completed", destination="/d", counters=Counters(), started_at=None, finished_at=None
    )
    (tmp_path / REPORT).write_text(report.model_dump_json())
    assert read_report(tmp_path) == report


def test_current_snapshot_follows_the_link(tmp_path: Path) -> None:
    assert current_snapshot(tmp_path) is None
    (tmp_path / "snapshots" / "a").mkdir(parents=True)
    (tmp_path / "current").symlink_to(Path("snapshots") / "a")
    assert current_snapshot(tmp_path) == (tmp_path / "snapshots" / "a").resolve()
    (tmp_path / "snapshots" / "a").rmdir()
    assert current_snapshot(tmp_path) is None
