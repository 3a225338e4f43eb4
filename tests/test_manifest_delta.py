"""Manifest deltas: an older snapshot's manifest kept as its differences from a newer sibling's."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from notion_sync import snapshot as snapshot_module
from notion_sync.models import ManifestFile, ManifestHeader, ManifestObject
from notion_sync.notion.signatures import without_signatures
from notion_sync.snapshot import (
    MANIFEST,
    MANIFEST_DELTA,
    ManifestUnreadable,
    delta_base,
    has_manifest,
    read_manifest,
    release_base,
    write_manifest_delta,
    write_whole_manifest,
)


def _entry(object_id: str, version: int) -> ManifestObject:
    sha = f"{version:064x}"
    file = ManifestFile(path=f"json/pages/{object_id}.json", sha256=sha, size=100 + version)
    return ManifestObject(
        id=object_id,
        type="page",
        title=f"Page {object_id} v{version}",
        last_edited_time=None,
        path=f"Page {object_id}",
        status="exported",
        files=[file],
    )


def _snapshot(root: Path, name: str, versions: dict[str, int]) -> Path:
    folder = root / "snapshots" / name
    folder.mkdir(parents=True)
    lines = [ManifestHeader(objects=len(versions)).model_dump_json()]
    lines += [_entry(key, versions[key]).model_dump_json() for key in sorted(versions)]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    return folder


def _objects(folder: Path) -> list[ManifestObject]:
    with read_manifest(folder) as (_header, entries):
        return list(entries)


@pytest.fixture
def three(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three days: b edits a page, adds one and removes one; c removes the first and edits another."""
    a = _snapshot(tmp_path, "2026-01-01T00-00-00Z-aaaa", {f"p{i:03}": 1 for i in range(50)})
    b_versions = {f"p{i:03}": 1 for i in range(50) if i != 7} | {"p010": 2, "p050": 1}
    b = _snapshot(tmp_path, "2026-01-02T00-00-00Z-bbbb", b_versions)
    c_versions = {key: version for key, version in b_versions.items() if key != "p000"} | {"p049": 3}
    c = _snapshot(tmp_path, "2026-01-03T00-00-00Z-cccc", c_versions)
    return a, b, c


def test_a_delta_chain_reads_back_every_manifest_byte_for_byte(three: tuple[Path, Path, Path]) -> None:
    a, b, c = three
    originals = {folder: (folder / MANIFEST).read_bytes() for folder in three}
    expected = {folder: _objects(folder) for folder in three}
    assert write_manifest_delta(b, c) and write_manifest_delta(a, b)
    assert not (a / MANIFEST).exists() and not (b / MANIFEST).exists() and has_manifest(a)
    assert delta_base(a) == b.name and delta_base(b) == c.name and delta_base(c) is None
    # Only the differences are kept: a few lines, not the 50 objects.
    assert len((b / MANIFEST_DELTA).read_text().splitlines()) == 2 + 2
    for folder in three:
        assert _objects(folder) == expected[folder]
    # Through a path to the (missing) manifest file too, as readers pass it.
    with read_manifest(a / MANIFEST) as (header, entries):
        assert header.objects == 50 and len(list(entries)) == 50
    write_whole_manifest(a)
    assert (a / MANIFEST).read_bytes() == originals[a] and not (a / MANIFEST_DELTA).exists()


def test_deleting_a_base_first_gives_its_dependents_their_whole_manifest(
    three: tuple[Path, Path, Path],
) -> None:
    a, b, c = three
    original = (a / MANIFEST).read_bytes()
    write_manifest_delta(b, c)
    write_manifest_delta(a, b)
    release_base(b)
    assert (a / MANIFEST).read_bytes() == original and delta_base(a) is None
    assert delta_base(b) == c.name  # b itself is untouched: it is the one being deleted


def test_a_damaged_delta_or_base_is_unreadable_never_silently_wrong(three: tuple[Path, Path, Path]) -> None:
    a, b, _c = three
    write_manifest_delta(a, b)
    # The base changed under the delta (a byte of an entry): the rebuilt manifest is not the one
    # the delta was written for.
    (b / MANIFEST).write_bytes((b / MANIFEST).read_bytes().replace(b"Page p020 v1", b"Page p020 v9"))
    with pytest.raises(ManifestUnreadable, match="do not make"), read_manifest(a) as (_header, entries):
        list(entries)
    # A base that is gone.
    shutil.rmtree(b)
    with pytest.raises(ManifestUnreadable), read_manifest(a) as (_header, entries):
        list(entries)


def test_a_delta_is_only_written_against_a_newer_sibling(three: tuple[Path, Path, Path]) -> None:
    a, b, _c = three
    assert not write_manifest_delta(b, a)
    assert (b / MANIFEST).is_file() and not (b / MANIFEST_DELTA).exists()
    # A forged delta naming an older base (a loop) is refused when read.
    write_manifest_delta(a, b)
    forged = (a / MANIFEST_DELTA).read_text().replace(b.name, a.name, 1)
    (b / MANIFEST_DELTA).write_text(forged)
    (b / MANIFEST).unlink()
    with pytest.raises(ManifestUnreadable, match="not a newer sibling"), read_manifest(b) as (_h, entries):
        list(entries)


def test_a_long_run_of_deltas_is_cut_by_a_whole_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each day's snapshot becomes a delta against the next; every `KEEP_WHOLE_EVERY`th stays whole,
    so no chain grows with the history (a year of daily snapshots stays readable)."""
    monkeypatch.setattr(snapshot_module, "KEEP_WHOLE_EVERY", 3)
    days = [
        _snapshot(tmp_path, f"2026-01-{day:02}T00-00-00Z-0000", {"p1": day, "p2": 1}) for day in range(1, 9)
    ]
    expected = {folder: _objects(folder) for folder in days}
    for older, newer in itertools.pairwise(days):  # as each publish packs the one before
        write_manifest_delta(older, newer)
    whole = [folder.name[8:10] for folder in days if (folder / MANIFEST).is_file()]
    assert whole == ["03", "06", "08"]  # two deltas, then a whole one; the newest is whole
    for folder in days:
        assert _objects(folder) == expected[folder]


def test_only_signed_file_urls_are_masked_a_links_query_is_content() -> None:
    signed = {"type": "file", "file": {"url": "https://files.example/a.png?sig=1", "expiry_time": "t1"}}
    resigned = {"type": "file", "file": {"url": "https://files.example/a.png?sig=2", "expiry_time": "t2"}}
    page = {"cover": signed, "files": {"https://files.example/a.png?sig=1": "files/a.png"}}
    again = {"cover": resigned, "files": {"https://files.example/a.png?sig=2": "files/a.png"}}
    assert without_signatures(page) == without_signatures(again)
    link = {"bookmark": {"url": "https://www.youtube.com/watch?v=OLD"}}
    edited = {"bookmark": {"url": "https://www.youtube.com/watch?v=NEW"}}
    assert without_signatures(link) != without_signatures(edited)
