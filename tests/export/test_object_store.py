"""The folder object store through the real stack: a sync links every unchanged file to the object
its previous snapshot uses, prune and gc leave exactly the kept snapshot's objects, and a destination
written before the store is adopted by `gc` without a Notion request."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.snapshot import (
    INTERNAL,
    MANIFEST_DELTA,
    PACKED,
    PROBLEMS,
    REPORT,
    SNAPSHOTS,
    STORE_MARKER,
    file_digest,
    is_packed,
    read_manifest,
    snapshot_file,
)
from notion_sync.storage.objects import ObjectStore
from notion_sync.verify import verify
from tests.export.harness import EmulatorAndWorker, export_and_wait

runner = CliRunner()


def _files(snapshot: Path) -> dict[str, str]:
    """Path → sha256 of every file the snapshot's manifest lists."""
    with read_manifest(snapshot) as (_header, entries):
        return {file.path: file.sha256 for entry in entries for file in entry.files}


def _page_paths(snapshot: Path, page_id: str) -> set[str]:
    with read_manifest(snapshot) as (_header, entries):
        return {file.path for entry in entries if entry.id == page_id for file in entry.files}


def _store(destination: Path) -> dict[str, int]:
    """Digest → link count of every object in the destination's store, each checked against its name."""
    objects = {}
    for path in (destination / INTERNAL / "objects").glob("*/*"):
        assert file_digest(path)[0] == path.name, f"{path} does not hold its digest"
        objects[path.name] = path.stat().st_nlink
    return objects


def _shares(one: Path, other: Path) -> bool:
    return os.path.samestat(one.stat(), other.stat())


async def test_a_sync_links_unchanged_files_and_prune_leaves_the_kept_snapshots_objects(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    # Both snapshots stay trees here (by default only the newest does: see the packing test below).
    trees = {"browsable_snapshots": 2}
    async with emulator_and_worker(pages=40, seed=73, settings=trees) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        old = (destination / "current").resolve()
        with read_manifest(old) as (_header, entries):
            edited = next(e.id for e in entries if e.type == "page" and e.status == "exported" and e.files)
        emulator.mutate({"op": "edit_page", "page_id": edited})
        await export_and_wait(temporal_client, settings, destination)
    new = (destination / "current").resolve()
    assert new != old

    store = ObjectStore(destination)
    old_files, new_files = _files(old), _files(new)
    old_by_digest = {digest: path for path, digest in old_files.items()}
    shared = 0
    for path, digest in new_files.items():
        assert _shares(new / path, store.object(digest)), f"{path} is not its store object"
        if digest in old_by_digest:
            shared += 1
            assert _shares(new / path, old / old_by_digest[digest])
    assert shared > len(new_files) / 2
    # The edited page's new content: new objects, linked by the new snapshot only.
    changed = [p for p in _page_paths(new, edited) if new_files[p] not in old_by_digest]
    assert any(p.startswith("json/pages/") for p in changed)
    for path in changed:
        assert not (old / path).exists() or not _shares(new / path, old / path)
        assert (new / path).stat().st_nlink == 1 + list(new_files.values()).count(new_files[path])
    assert verify(old).ok and verify(new).ok
    stored = _store(destination)
    assert set(stored) == set(old_files.values()) | set(new_files.values())
    assert (destination / INTERNAL / STORE_MARKER).is_file()

    result = runner.invoke(app, ["prune", str(destination), "--keep", "1"])
    assert result.exit_code == 0, result.output
    assert f"removed {destination / SNAPSHOTS / old.name}" in result.output
    unreferenced = len(stored) - len(set(new_files.values()))
    assert unreferenced > 0 and f"deleted {unreferenced} (" in result.output
    assert set(_store(destination)) == set(new_files.values())
    assert verify(new).ok


async def test_a_destination_written_before_the_store_is_adopted_by_gc_without_notion(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    trees = {"browsable_snapshots": 2}  # today's layout had every snapshot as a tree
    async with emulator_and_worker(pages=30, seed=74, settings=trees) as (_emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        await export_and_wait(temporal_client, settings, destination)
    # The emulator is gone: adoption cannot ask Notion anything.
    snapshots = sorted((destination / SNAPSHOTS).iterdir())
    assert len(snapshots) == 2
    # Today's layout before the store: no objects, no marker, every file its own copy.
    shutil.rmtree(destination / INTERNAL / "objects")
    (destination / INTERNAL / STORE_MARKER).unlink()
    for snapshot in snapshots:
        for path in _files(snapshot):
            copy = (snapshot / path).with_name("copy")
            shutil.copyfile(snapshot / path, copy)
            os.replace(copy, snapshot / path)
            assert (snapshot / path).stat().st_nlink == 1

    dry = runner.invoke(app, ["gc", str(destination), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "0 objects" in dry.output and not (destination / INTERNAL / STORE_MARKER).exists()
    result = runner.invoke(app, ["gc", str(destination)])
    assert result.exit_code == 0, result.output
    assert "files of older snapshots adopted into the store" in result.output

    assert (destination / INTERNAL / STORE_MARKER).is_file()
    digests = {digest for snapshot in snapshots for digest in _files(snapshot).values()}
    assert set(_store(destination)) == digests
    store = ObjectStore(destination)
    for path, digest in _files(snapshots[1]).items():
        assert _shares(snapshots[1] / path, store.object(digest))
    # gc also packed the older snapshot (only the newest stays a tree by default): from the store.
    assert is_packed(snapshots[0])
    with read_manifest(snapshots[0]) as (_header, entries):
        assert all(snapshot_file(snapshots[0], f) == store.object(f.sha256) for e in entries for f in e.files)
    for snapshot in snapshots:
        assert verify(snapshot).ok
    again = runner.invoke(app, ["gc", str(destination)])
    assert again.exit_code == 0 and "adopted" not in again.output and "deleted 0" in again.output


async def test_a_sync_packs_the_snapshot_before_it_to_its_manifest(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    async with emulator_and_worker(pages=20, seed=75) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        old = (destination / "current").resolve()
        with read_manifest(old) as (_header, entries):
            edited = next(e.id for e in entries if e.type == "page" and e.status == "exported")
        emulator.mutate({"op": "edit_page", "page_id": edited})
        await export_and_wait(temporal_client, settings, destination)
    new = (destination / "current").resolve()
    # The older snapshot is its manifest, report and problems (and the site's unlisted index); the
    # current one a tree whose files are the store's objects.
    assert is_packed(old) and not is_packed(new)
    assert {p.name for p in old.iterdir()} <= {MANIFEST_DELTA, REPORT, PROBLEMS, PACKED, "html"}
    store = ObjectStore(destination)
    with read_manifest(old) as (_header, entries):
        for entry in entries:
            for file in entry.files:
                assert snapshot_file(old, file) == store.object(file.sha256)
    for path, digest in _files(new).items():
        assert _shares(new / path, store.object(digest))
    assert verify(old).ok and verify(new).ok
