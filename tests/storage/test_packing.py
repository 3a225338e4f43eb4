"""Packed folder snapshots: older snapshots keep their manifest, their files read from the store,
and garbage collection keeps what a packed snapshot lists."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from notion_sync import retention
from notion_sync.models import ManifestFile, RetentionPolicy
from notion_sync.snapshot import (
    CURRENT,
    MANIFEST,
    MANIFEST_DELTA,
    PACKED,
    SNAPSHOTS,
    delta_base,
    is_packed,
    read_manifest,
    snapshot_file,
)
from notion_sync.storage.objects import ObjectStore
from tests.storage.test_objects import SHARED, _digests, _snapshot, _stored

NAMES = [f"2026-01-0{day}T00-00-00Z-0000000{day}" for day in (1, 2, 3)]


def _destination(root: Path) -> list[Path]:
    """Three interned snapshots, each with one file of its own; `current` at the newest."""
    store = ObjectStore(root)
    folders = []
    for day, name in enumerate(NAMES):
        folder = _snapshot(root, name, [*SHARED, (f"day/{day}.md", f"day {day}".encode())])
        store.intern_snapshot(folder)
        folders.append(folder)
    (root / CURRENT).symlink_to(Path(SNAPSHOTS) / NAMES[-1])
    return folders


def _contents(snapshot: Path) -> dict[str, bytes]:
    with read_manifest(snapshot) as (_header, entries):
        return {f.path: snapshot_file(snapshot, f).read_bytes() for e in entries for f in e.files}


def test_old_snapshots_are_packed_to_their_manifest_and_read_from_the_store(tmp_path: Path) -> None:
    first, second, third = _destination(tmp_path)
    before = [_contents(folder) for folder in (first, second, third)]
    store = ObjectStore(tmp_path)

    assert store.pack_old_snapshots(browsable=1) == 2
    assert is_packed(first) and is_packed(second) and not is_packed(third)
    for folder in (first, second):
        # No tree, no empty folder; the manifest kept as its differences from the next snapshot's.
        assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_DELTA, PACKED]
    assert [_contents(folder) for folder in (first, second, third)] == before
    assert store.pack_old_snapshots(browsable=1) == 0  # done once

    # Nothing links the first snapshot's own object any more, but its manifest lists it: kept.
    own = hashlib.sha256(b"day 0").hexdigest()
    assert store.object(own).stat().st_nlink == 1
    report = store.collect_garbage()
    assert report.deleted == 0 and own in _stored(store)
    # Once the packed snapshot is gone, exactly its own object goes.
    for path in first.iterdir():
        path.unlink()
    first.rmdir()
    assert store.collect_garbage().deleted == 1
    assert _stored(store) == _digests(second) | _digests(third)


def test_a_packed_delta_keeps_what_its_base_tree_holds_as_a_copy(tmp_path: Path) -> None:
    """A packed snapshot's delta lists only what differs from its base; a file the base tree holds
    as its own copy (no link could be made) must still keep its object for the packed one."""
    _first, second, third = _destination(tmp_path)
    store = ObjectStore(tmp_path)
    store.pack_old_snapshots(browsable=1)
    shared_path, shared_bytes = SHARED[0]
    copy = third / shared_path
    copy.unlink()
    copy.write_bytes(shared_bytes)  # the current tree's own copy: the object loses that link
    assert store.collect_garbage().deleted == 0
    assert _contents(second)[shared_path] == shared_bytes


def test_pruning_a_base_first_makes_its_dependent_manifest_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, _third = _destination(tmp_path)
    store = ObjectStore(tmp_path)
    store.pack_old_snapshots(browsable=1)
    before = _contents(first)
    assert delta_base(first) == second.name
    # Retention keeps the oldest and the newest (as a monthly and a daily rule can) and drops the
    # one in between, which the oldest's delta is based on.
    monkeypatch.setattr(
        retention, "plan_retention", lambda *_args: retention.RetentionPlan({}, [second.name])
    )
    retention.prune_snapshots(tmp_path, RetentionPolicy(keep_last=1))
    assert not second.exists()
    assert (first / MANIFEST).is_file() and delta_base(first) is None
    assert store.collect_garbage().deleted == 1  # the second snapshot's own file, and only it
    assert _contents(first) == before


def test_the_current_and_browsable_snapshots_stay_trees(tmp_path: Path) -> None:
    first, second, third = _destination(tmp_path)
    (tmp_path / CURRENT).unlink()
    (tmp_path / CURRENT).symlink_to(Path(SNAPSHOTS) / NAMES[0])  # current is the oldest (a rollback)
    assert ObjectStore(tmp_path).pack_old_snapshots(browsable=2) == 0
    assert ObjectStore(tmp_path).pack_old_snapshots(browsable=1) == 1
    assert not is_packed(first) and is_packed(second) and not is_packed(third)


def test_a_snapshot_whose_files_are_not_all_in_the_store_stays_a_tree(tmp_path: Path) -> None:
    first, _second, _third = _destination(tmp_path)
    store = ObjectStore(tmp_path)
    lone = store.object(hashlib.sha256(b"day 0").hexdigest())
    os.chmod(lone, 0o644)
    lone.unlink()
    assert store.pack_snapshot(first) is False
    assert not is_packed(first) and (first / "day/0.md").read_bytes() == b"day 0"


def test_an_interrupted_pack_is_finished_by_the_next_and_reads_stay_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _second, _third = _destination(tmp_path)
    before = _contents(first)
    unlink = os.unlink
    calls = {"n": 0}

    def dying_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", dying_unlink)
    with pytest.raises(KeyboardInterrupt):
        ObjectStore(tmp_path).pack_snapshot(first)
    monkeypatch.setattr(os, "unlink", unlink)
    assert is_packed(first) and _contents(first) == before  # half a tree, half the store: all there
    assert ObjectStore(tmp_path).pack_snapshot(first)
    assert sorted(p.name for p in first.iterdir()) == [MANIFEST, PACKED]
    assert _contents(first) == before


def test_snapshot_file_prefers_the_tree_and_names_the_tree_when_the_store_lacks_it(tmp_path: Path) -> None:
    first, _second, _third = _destination(tmp_path)
    listed = ManifestFile(path="a.md", sha256=hashlib.sha256(b"same in both").hexdigest(), size=12)
    assert snapshot_file(first, listed) == first / "a.md"
    (first / "a.md").unlink()
    assert snapshot_file(first, listed) == ObjectStore(tmp_path).object(listed.sha256)
    absent = ManifestFile(path="gone.md", sha256="0" * 64, size=1)
    assert snapshot_file(first, absent) == first / "gone.md"


def test_packing_never_follows_a_link_planted_in_the_tree(tmp_path: Path) -> None:
    first, _second, _third = _destination(tmp_path / "dest")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "0.md").write_bytes(b"the user's own file")
    for path in (first / "day").iterdir():
        path.unlink()
    (first / "day").rmdir()
    (first / "day").symlink_to(outside, target_is_directory=True)
    assert ObjectStore(tmp_path / "dest").pack_snapshot(first) is False
    assert (outside / "0.md").read_bytes() == b"the user's own file" and not is_packed(first)


def test_an_interrupted_pack_is_finished_by_the_next_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _second, _third = _destination(tmp_path)
    unlink = os.unlink

    def dying_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "unlink", dying_unlink)
    with pytest.raises(KeyboardInterrupt):
        ObjectStore(tmp_path).pack_old_snapshots(browsable=1)
    monkeypatch.setattr(os, "unlink", unlink)
    assert is_packed(first) and (first / "a.md").is_file()  # marked, nothing removed yet
    assert ObjectStore(tmp_path).pack_old_snapshots(browsable=1) == 2
    assert sorted(p.name for p in first.iterdir()) == [MANIFEST_DELTA, PACKED]


def test_a_staged_file_that_does_not_match_its_manifest_never_becomes_an_object(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, NAMES[0], [("a.md", b"written"), ("b.md", b"fine")])
    os.chmod(snapshot / "a.md", 0o644)
    (snapshot / "a.md").write_bytes(b"WRITTEN")  # same size, other bytes
    store = ObjectStore(tmp_path)
    assert store.intern_snapshot(snapshot) == (0, 1, 0, 1)
    assert not store.object(hashlib.sha256(b"written").hexdigest()).exists()
