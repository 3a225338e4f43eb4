"""Files land in the export: expired signed URLs are refreshed, a size cap is honoured and reported."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import unquote

from temporalio.client import Client

from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import EmulatorAndWorker, export_and_wait, wait_for
from workflows.export import ExportWorkflow

_LINK = re.compile(r"\]\(<?([^)>\s]+)>?\)")


def _local_links(markdown_file: Path) -> list[str]:
    return [
        m
        for m in _LINK.findall(markdown_file.read_text())
        if m.startswith(("files/", "../")) or "/files/" in m
    ]


async def test_files_are_downloaded_and_linked_locally(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    # Seed 54 gives the first database a Notion-hosted icon (the emulator's decoration rule).
    async with emulator_and_worker(pages=30, seed=54) as (_, settings):
        report = await export_and_wait(temporal_client, settings, destination)
    current = destination / "current"
    downloaded = list((current / "files").rglob("*"))
    assert report.counters.files_downloaded > 10 and report.counters.files_failed == 0
    assert len([f for f in downloaded if f.is_file()]) == report.counters.files_downloaded
    checked = 0
    for markdown in current.rglob("*.md"):
        assert "/_files/" not in markdown.read_text(), f"{markdown} still links a signed URL"
        for link in _local_links(markdown):
            assert (markdown.parent / unquote(link)).exists(), (markdown, link)
            checked += 1
    assert checked > 0
    for page in current.rglob("*.html"):
        assert "/_files/" not in page.read_text(), f"{page} still shows a signed URL"
    # Databases' own icons and covers are files too, and their URLs expire like any other.
    hosted = [
        (database["id"], slot)
        for database in map(json.loads, map(Path.read_text, (current / "json" / "databases").glob("*.json")))
        for slot in ("icon", "cover")
        if (database.get(slot) or {}).get("type") == "file"
    ]
    assert hosted
    for database_id, slot in hosted:
        assert list((current / "files" / database_id).glob(f"{slot}-*")), (database_id, slot)


async def test_expired_urls_are_refreshed_then_downloaded(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=52, file_expiry=3) as (emulator, settings):
        options = ExportOptions(batch_size=5, max_parallel_batches=1)
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=options)
        )
        # Page objects (icons, file properties) were read during discovery: let their URLs expire.
        await wait_for(handle, lambda p: p.phase.value == "exporting")
        await handle.signal(ExportWorkflow.pause)
        await wait_for(handle, lambda p: p.paused and p.in_flight == 0)
        await asyncio.sleep(4)
        await handle.signal(ExportWorkflow.resume)
        report = await handle.result()
        stats = emulator.stats()
    refused = sum(
        count.get("403", 0) for endpoint, count in stats["by_endpoint_status"].items() if "_files" in endpoint
    )
    assert refused > 0, "some URLs really had expired"
    assert report.counters.files_failed == 0
    assert report.counters.files_downloaded > 10


async def test_files_over_the_cap_keep_their_url_and_are_reported(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=53) as (_, settings):
        options = ExportOptions(max_file_mb=0.002, download_external_files=False)
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=options)
        )
        report = await handle.result()
    current = destination / "current"
    assert report.counters.files_failed > 0
    problems = [json.loads(line) for line in (current / "problems.jsonl").read_text().splitlines()]
    capped = [p for p in problems if p["kind"].startswith("file:") and "cap" in p["reason"]]
    assert len(capped) == report.counters.files_failed
    assert not any("_external" in str(f) for f in (current / "files").rglob("*"))
    assert any("/_files/" in md.read_text() for md in current.rglob("*.md")), "failed files keep their URL"
