"""Incremental sync: only edited and new pages are read again; the result equals a fresh export."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import Client

from notion_sync.emulator.testing import EmulatorProcess
from tests.export.harness import export_and_wait, running_worker, snapshot_files, worker_settings


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


def _parent(snapshot: Path, page_id: str) -> str:
    saved = json.loads((snapshot / "json" / "pages" / f"{page_id}.json").read_text())
    return str(saved["page"]["parent"]["page_id"])


async def test_sync_reads_only_what_changed_and_equals_a_fresh_export(
    temporal_client: Client, tmp_path: Path
) -> None:
    with EmulatorProcess(pages=150, seed=61) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        synced = tmp_path / "synced"
        async with running_worker(temporal_client, settings):
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
            sync = await export_and_wait(temporal_client, settings, synced)
            fetched = emulator.stats()["fetches_by_id"]["block_children"]
            sync_requests = emulator.stats()["requests_total"]

            emulator.reset()
            fresh = tmp_path / "fresh"
            await export_and_wait(temporal_client, settings, fresh)
            full_requests = emulator.stats()["requests_total"]

    assert sync.counters.reused > 0 and sync.counters.failed == 0
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
