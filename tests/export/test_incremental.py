"""Incremental sync: only edited and new pages are read again; the result equals a fresh export."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import Client

from notion_sync.verify import verify
from tests.export.harness import EmulatorAndWorker, export_and_wait, snapshot_files


def _manifest(destination: Path) -> dict[str, dict[str, object]]:
    lines = (destination / "current" / "manifest.jsonl").read_text().splitlines()[1:]
    return {entry["id"]: entry for entry in map(json.loads, lines)}


def _tree_pages(destination: Path, manifest: dict[str, dict[str, object]]) -> list[str]:
    """Exported pages below another page (not data source rows), in a stable order."""
    found = []
    for object_id, entry in sorted(manifest.items()):
        if entry["type"] != "page" or entry["status"] != "exported":
            continue
        saved = json.loads((destination / "current" / "json" / "pages" / f"{object_id}.json").read_text())
        if saved["page"]["parent"]["type"] == "page_id":
            found.append(object_id)
    return found


TREES = {"browsable_snapshots": 10}


def _parent(snapshot: Path, page_id: str) -> str:
    saved = json.loads((snapshot / "json" / "pages" / f"{page_id}.json").read_text())
    return str(saved["page"]["parent"]["page_id"])


async def test_full_listing_sync_reads_only_what_changed_and_equals_a_fresh_export(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    """A sync that lists everything (as every `full_listing_days` it does) also drops what was
    trashed or deleted, and reads again only the pages whose content changed."""
    synced = tmp_path / "synced"
    # Older snapshots stay trees: the test reads their files (by default they are packed).
    async with emulator_and_worker(pages=150, seed=61, settings=TREES) as (emulator, settings):
        await export_and_wait(temporal_client, settings, synced)
        before = _manifest(synced)
        synced_before = (synced / "current").resolve()
        pages = _tree_pages(synced, before)
        edited, renamed, trashed, deleted = pages[3], pages[5], pages[7], pages[9]
        moved, new_parent = pages[11], pages[13]
        emulator.mutate({"op": "edit_page", "page_id": edited})
        emulator.mutate({"op": "rename_page", "page_id": renamed, "title": "Renamed / for sync"})
        emulator.mutate({"op": "trash_page", "page_id": trashed})
        emulator.mutate({"op": "delete_page", "page_id": deleted})
        emulator.mutate({"op": "move_page", "page_id": moved, "new_parent_id": new_parent})
        created = emulator.mutate({"op": "create_page", "parent_id": pages[15], "title": "Brand new"})

        emulator.reset()
        sync = await export_and_wait(temporal_client, settings, synced, full_listing_days=0)
        fetched = emulator.stats()["fetches_by_id"]["block_children"]
        sync_requests = emulator.stats()["requests_total"]

        emulator.reset()
        fresh = tmp_path / "fresh"
        await export_and_wait(temporal_client, settings, fresh)
        full_requests = emulator.stats()["requests_total"]

    assert sync.listing == "full" and sync.counters.reused > 0 and sync.counters.failed == 0
    assert snapshot_files((synced / "current").resolve()) == snapshot_files((fresh / "current").resolve())
    after = _manifest(synced)
    assert trashed not in after or after[trashed]["status"] != "exported"
    assert deleted not in after
    assert after[renamed]["path"] != before[renamed]["path"]
    assert after[moved]["path"] != before[moved]["path"]
    new_id = str(created.get("page_id") or created.get("id"))
    assert after[new_id]["status"] == "exported"
    page_ids = {i for i, e in after.items() if e["type"] == "page"}
    refetched = {i for i in fetched if i in page_ids}
    assert edited in refetched and new_id in refetched
    # Pages whose child pages appeared or vanished are read again too: their blocks changed.
    parents = {_parent(synced_before, page) for page in (trashed, deleted, moved)} | {new_parent, pages[15]}
    changed = {edited, renamed, moved, new_id} | parents
    assert refetched <= changed, f"unchanged pages read again: {refetched - changed}"
    assert renamed not in parents and _parent(synced_before, renamed) not in refetched
    assert sync_requests < full_requests / 2


async def test_changes_listing_reads_only_edits_and_a_full_listing_later_drops_deletions(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    """Search newest first stops at the previous snapshot's start; rows come from timestamp-filtered
    queries; everything else is carried over. Trashed pages stay until the next full listing."""
    synced = tmp_path / "synced"
    async with emulator_and_worker(pages=150, seed=62, settings=TREES) as (emulator, settings):
        first = await export_and_wait(temporal_client, settings, synced)
        before = _manifest(synced)
        synced_before = (synced / "current").resolve()
        pages = _tree_pages(synced, before)
        rows = sorted(i for i, e in before.items() if e["type"] == "page" and i not in set(pages))
        edited, renamed, moved, new_parent, trashed = pages[2], pages[4], pages[6], pages[8], pages[10]
        edited_row = rows[5]
        emulator.mutate({"op": "edit_page", "page_id": edited})
        emulator.mutate({"op": "edit_page", "page_id": edited_row})
        emulator.mutate({"op": "rename_page", "page_id": renamed, "title": "Renamed in a changes sync"})
        emulator.mutate({"op": "move_page", "page_id": moved, "new_parent_id": new_parent})
        created = emulator.mutate({"op": "create_page", "parent_id": pages[12], "title": "New since"})
        new_id = str(created.get("page_id") or created.get("id"))

        emulator.reset()
        sync = await export_and_wait(temporal_client, settings, synced)
        stats = emulator.stats()
        page_ids = {i for i, e in _manifest(synced).items() if e["type"] == "page"}
        fetched = set(stats["fetches_by_id"]["block_children"]) & page_ids

        emulator.reset()
        fresh = tmp_path / "fresh"
        full = await export_and_wait(temporal_client, settings, fresh)
        full_stats = emulator.stats()

        emulator.mutate({"op": "trash_page", "page_id": trashed})
        kept = await export_and_wait(temporal_client, settings, synced)
        kept_manifest = _manifest(synced)
        swept = await export_and_wait(temporal_client, settings, synced, full_listing_days=0)
        fresh_after = tmp_path / "fresh-after"
        await export_and_wait(temporal_client, settings, fresh_after)

    assert first.listing == "full" and first.full_listing_at is not None
    assert sync.listing == "changes" and full.listing == "full"
    # The listing is what a changes sync saves: one page of search results for the few edited pages
    # (and one of data sources) instead of all of them.
    search = "POST /v1/search"
    assert stats["by_endpoint"][search] == 2 < full_stats["by_endpoint"][search]
    assert stats["requests_total"] < full_stats["requests_total"] / 4
    assert sync.full_listing_at == first.full_listing_at
    assert {edited, edited_row, new_id} <= fetched
    parents = {_parent(synced_before, moved), new_parent, pages[12]}
    changed = {edited, edited_row, renamed, moved, new_id} | parents
    assert fetched <= changed, f"unchanged pages read again: {fetched - changed}"
    assert snapshot_files(Path(str(sync.snapshot))) == snapshot_files((fresh / "current").resolve())
    assert kept.listing == "changes" and kept_manifest[trashed]["status"] == "exported"
    assert swept.listing == "full" and trashed not in _manifest(synced)
    swept_files = snapshot_files((synced / "current").resolve())
    assert swept_files == snapshot_files((fresh_after / "current").resolve())


async def test_a_page_read_again_unchanged_keeps_its_json_although_notion_signed_its_files_anew(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    """A page edited just before a run is read again by the next one (its edit lies in the hour a
    sync looks back); Notion signs its file URLs anew on that read. The snapshot keeps the page's
    JSON as it was (one stored object, not a new one a day), since nothing but signatures changed."""
    synced = tmp_path / "synced"
    async with emulator_and_worker(pages=60, seed=63, settings=TREES) as (emulator, settings):
        await export_and_wait(temporal_client, settings, synced)
        with_files = [
            object_id
            for object_id, entry in sorted(_manifest(synced).items())
            if entry["type"] == "page"
            and entry["status"] == "exported"
            and b"expiry_time" in (synced / "current" / "json" / "pages" / f"{object_id}.json").read_bytes()
        ]
        assert with_files, "the generated workspace has pages with Notion-hosted files"
        page = with_files[0]
        emulator.mutate({"op": "edit_page", "page_id": page})
        await export_and_wait(temporal_client, settings, synced)
        first = (synced / "current").resolve()
        emulator.reset()
        await export_and_wait(temporal_client, settings, synced)
        second = (synced / "current").resolve()
        fetched = emulator.stats()["fetches_by_id"]["block_children"]
        fresh = tmp_path / "fresh"
        await export_and_wait(temporal_client, settings, fresh)

    relpath = Path("json") / "pages" / f"{page}.json"
    assert page in fetched  # read again from Notion by the second sync...
    fresh_json = (fresh / "current" / relpath).read_bytes()
    assert fresh_json != (first / relpath).read_bytes()  # ...where every read signs anew
    assert (second / relpath).read_bytes() == (first / relpath).read_bytes()
    assert _manifest(synced)[page] == json.loads(
        next(line for line in (first / "manifest.jsonl").read_text().splitlines() if page in line)
    )
    # The kept JSON still renders to the Markdown this run wrote from what it read.
    deep = verify(second, deep=True)
    assert deep.ok, deep.summary()
