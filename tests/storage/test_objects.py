"""The folder object store: snapshot files become hard links to one read-only object per digest, old
destinations are adopted, and garbage collection deletes exactly what no snapshot links."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.models import ManifestFile, ManifestHeader, ManifestObject
from notion_sync.snapshot import MANIFEST, SNAPSHOTS, read_manifest, write_manifest_line
from notion_sync.storage.local import LocalDestination
from notion_sync.storage.objects import ObjectStore, StoreBusy
from notion_sync.verify import verify

OLD, NEW = "2026-01-01T00-00-00Z-aaaaaaaa", "2026-01-02T00-00-00Z-bbbbbbbb"


def _snapshot(root: Path, name: str, files: Iterable[tuple[str, bytes]]) -> Path:
    """A published snapshot written with the format's own helpers: one page per file."""
    folder = root / SNAPSHOTS / name
    entries = []
    for number, (relpath, data) in enumerate(files):
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        (folder / relpath).write_bytes(data)
        digest = ManifestFile(path=relpath, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        entries.append(
            ManifestObject(
                id=f"{number:08d}-0000-0000-0000-000000000000",
                type="page",
                title=relpath,
                last_edited_time=None,
                path=relpath,
                status="exported",
                files=[digest],
            )
        )
    with (folder / MANIFEST).open("wb") as manifest:
        write_manifest_line(manifest, ManifestHeader(objects=len(entries)))
        for entry in entries:
            write_manifest_line(manifest, entry)
    return folder


def _digests(snapshot: Path) -> set[str]:
    with read_manifest(snapshot) as (_header, entries):
        return {file.sha256 for entry in entries for file in entry.files}


def _stored(store: ObjectStore) -> set[str]:
    return {path.name for path in store.objects.glob("*/*")}


SHARED = [("a.md", b"same in both"), ("empty.md", b""), ("json/pages/x.json", b'{"x": 1}')]


def test_intern_links_identical_files_of_two_snapshots_to_one_read_only_object(tmp_path: Path) -> None:
    old = _snapshot(tmp_path, OLD, [*SHARED, ("b.md", b"old text")])
    new = _snapshot(tmp_path, NEW, [*SHARED, ("b.md", b"new text"), ("c.md", b"same in both")])
    store = ObjectStore(tmp_path)

    assert store.intern_snapshot(old) == (0, 4, 0, 0)
    assert store.intern_snapshot(new) == (3 + 1, 1, 0, 0)  # c.md has a.md's bytes

    for relpath, data in SHARED:
        inode = (old / relpath).stat()
        assert os.path.samestat(inode, (new / relpath).stat())
        assert os.path.samestat(inode, store.object(hashlib.sha256(data).hexdigest()).stat())
        assert inode.st_nlink == (4 if relpath == "a.md" else 3)  # the store, two snapshots (and c.md)
    assert os.path.samestat((new / "c.md").stat(), (old / "a.md").stat())
    assert (old / "b.md").stat().st_ino != (new / "b.md").stat().st_ino
    assert _stored(store) == _digests(old) | _digests(new)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o444 for path in store.objects.glob("*/*"))
    assert verify(old).ok and verify(new).ok
    assert store.intern_snapshot(new) == (0, 0, 0, 0)


def test_a_file_that_cannot_be_linked_keeps_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _snapshot(tmp_path, OLD, SHARED)
    new = _snapshot(tmp_path, NEW, SHARED)
    store = ObjectStore(tmp_path)
    store.intern_snapshot(old)

    def too_many_links(source: Any, target: Any, **options: Any) -> None:
        raise OSError(errno.EMLINK, "Too many links")

    monkeypatch.setattr(os, "link", too_many_links)
    assert store.intern_snapshot(new) == (0, 0, len(SHARED), 0)
    monkeypatch.undo()

    for relpath, data in SHARED:
        assert (new / relpath).read_bytes() == data
        assert not os.path.samestat((new / relpath).stat(), (old / relpath).stat())
    assert verify(new).ok
    assert list(store.internal.joinpath("store-tmp").iterdir()) == []


def test_an_interrupted_intern_run_again_finishes_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _snapshot(tmp_path, OLD, SHARED)
    new = _snapshot(tmp_path, NEW, [*SHARED, ("d.md", b"only new")])
    store = ObjectStore(tmp_path)
    store.intern_snapshot(old)
    replace, calls = os.replace, 0

    def crash_on_the_third(source: Any, target: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt("killed")
        replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        store.intern_snapshot(new)
    monkeypatch.undo()
    assert verify(new).ok  # whatever was done, the snapshot is whole

    linked, added, unlinked, _damaged = store.intern_snapshot(new)
    assert (linked, added, unlinked) == (1, 1, 0)
    for relpath, _data in [*SHARED, ("d.md", b"")]:
        assert (new / relpath).stat().st_nlink >= 2
    assert _stored(store) == _digests(old) | _digests(new)
    assert verify(new).ok and verify(old).ok


def test_an_old_destination_is_adopted_and_a_damaged_file_is_left_out(tmp_path: Path) -> None:
    old = _snapshot(tmp_path, OLD, [*SHARED, ("b.md", b"old text")])
    new = _snapshot(tmp_path, NEW, [*SHARED, ("b.md", b"damaged later")])
    (new / "b.md").write_bytes(b"damaged LATER")  # same size, other bytes
    store = ObjectStore(tmp_path)

    assert store.adopt_existing() == 4 + 3
    assert store.damaged == 1
    assert store.marker.is_file()
    for relpath, _data in SHARED:
        assert os.path.samestat((old / relpath).stat(), (new / relpath).stat())
    assert (new / "b.md").stat().st_nlink == 1
    assert _stored(store) == _digests(old) | _digests(new) - {hashlib.sha256(b"damaged later").hexdigest()}
    assert verify(old).ok
    assert [c.path for c in verify(new).corrupted] == ["b.md"]
    assert store.adopt_existing() == 0  # the marker says it is done


def test_gc_deletes_exactly_the_objects_no_kept_snapshot_links(tmp_path: Path) -> None:
    old = _snapshot(tmp_path, OLD, [*SHARED, ("b.md", b"old text"), ("gone.md", b"only old")])
    new = _snapshot(tmp_path, NEW, [*SHARED, ("b.md", b"new text")])
    store = ObjectStore(tmp_path)
    for snapshot in (old, new):
        store.intern_snapshot(snapshot)
    kept = _digests(new)
    assert len(_stored(store)) == len(kept) + 2

    shutil.rmtree(old)
    dry = store.collect_garbage(dry_run=True)
    assert (dry.objects, dry.referenced, dry.deleted, dry.dry_run) == (len(kept) + 2, len(kept), 2, True)
    assert len(_stored(store)) == len(kept) + 2
    report = store.collect_garbage()
    assert (report.objects, report.referenced, report.deleted) == (len(kept) + 2, len(kept), 2)
    assert report.freed_bytes == len(b"old text") + len(b"only old")
    assert _stored(store) == kept
    assert verify(new).ok


def test_a_gc_killed_halfway_leaves_every_kept_snapshot_verifiable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned = _snapshot(tmp_path, OLD, [(f"old/{n}.md", f"old {n}".encode()) for n in range(6)])
    kept = _snapshot(tmp_path, NEW, [*SHARED, ("old/0.md", b"old 0")])
    store = ObjectStore(tmp_path)
    for snapshot in (pruned, kept):
        store.intern_snapshot(snapshot)
    shutil.rmtree(pruned)
    unlink, deleted = os.unlink, 0

    def killed_after_two(path: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal deleted
        if deleted == 2:
            raise KeyboardInterrupt("killed")
        deleted += 1
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        store.collect_garbage()
    monkeypatch.undo()
    assert verify(kept).ok
    assert len(_stored(store)) == len(_digests(kept)) + 5 - 2

    assert store.collect_garbage().deleted == 3
    assert _stored(store) == _digests(kept)
    assert verify(kept).ok


def test_gc_removes_the_leftover_links_of_an_interrupted_intern(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, OLD, SHARED)
    store = ObjectStore(tmp_path)
    store.intern_snapshot(snapshot)
    leftover = store.internal / "store-tmp" / "1234-interrupted"
    os.link(snapshot / "a.md", leftover)
    shutil.rmtree(snapshot)

    assert store.collect_garbage().deleted == len(SHARED)
    assert not leftover.exists() and _stored(store) == set()


def test_the_lock_is_exclusive_and_try_lock_says_who_holds_it(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with (
        store.lock(),
        pytest.raises(StoreBusy, match="a run is publishing"),
        ObjectStore(tmp_path).try_lock(),
    ):
        pass
    with ObjectStore(tmp_path).try_lock():
        pass


def test_gc_on_the_command_line_refuses_a_busy_store_and_a_folder_that_is_no_destination(
    tmp_path: Path,
) -> None:
    _snapshot(tmp_path / "backup", OLD, SHARED)
    store = ObjectStore(tmp_path / "backup")
    with store.lock():
        busy = CliRunner().invoke(app, ["gc", str(tmp_path / "backup")])
    assert busy.exit_code == 1 and "a run is publishing" in busy.output and "Traceback" not in busy.output
    assert not store.marker.exists()

    done = CliRunner().invoke(app, ["gc", str(tmp_path / "backup")])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"object store: {len(SHARED)} objects, {len(SHARED)} referenced, deleted 0")

    (tmp_path / "elsewhere").mkdir()
    stray = CliRunner().invoke(app, ["gc", str(tmp_path / "elsewhere")])
    assert stray.exit_code == 1 and "is not a notion-sync destination" in stray.output
    assert not (tmp_path / "elsewhere" / ".notion-sync").exists()


def test_discard_removes_every_state_file_of_the_run_and_no_other(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    destination.prepare("run-1")
    state = destination.index_path("run-1").parent
    mine = ["run-1.sqlite", "run-1.sqlite-wal", "run-1.sqlite-shm", "run-1.uploads.sqlite"]
    for name in [*mine, "run-10.sqlite", "run-2.uploads.sqlite"]:
        (state / name).write_bytes(b"")
    destination.discard("run-1")
    assert sorted(p.name for p in state.iterdir()) == ["run-10.sqlite", "run-2.uploads.sqlite"]
    assert not destination.staging("run-1").exists()


def test_adoption_never_reaches_a_file_outside_the_snapshot(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"secret")
    snapshot = _snapshot(tmp_path / "backup", OLD, [("planted.md", b"secret"), ("a.md", b"fine")])
    (snapshot / "planted.md").unlink()
    (snapshot / "planted.md").symlink_to(outside)
    escape = "../../../outside.md"
    forged = ManifestObject(
        id="escape", type="page", title="x", last_edited_time=None, path=escape, status="exported"
    )
    forged.files = [ManifestFile(path=escape, sha256=hashlib.sha256(b"secret").hexdigest(), size=6)]
    with (snapshot / MANIFEST).open("ab") as manifest:
        write_manifest_line(manifest, forged)
    store = ObjectStore(tmp_path / "backup")

    assert store.adopt_existing() == 1
    assert outside.stat().st_nlink == 1 and stat.S_IMODE(outside.stat().st_mode) != 0o444
    assert (snapshot / "planted.md").is_symlink()
    assert _stored(store) == {hashlib.sha256(b"fine").hexdigest()}
