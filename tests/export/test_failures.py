"""What goes wrong on Notion's side: a wrong token, a 429 storm, flaky 5xx, an object deleted mid-way."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError

from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import EmulatorAndWorker, export_and_wait, wait_for


def _manifest(destination: Path) -> list[dict[str, object]]:
    lines = (destination / "current" / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


async def test_wrong_token_fails_fast_with_a_clear_message(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    wrong_token = {"notion_token": SecretStr("not-the-token")}
    async with emulator_and_worker(pages=20, seed=1, settings=wrong_token) as (emulator, settings):
        started = time.monotonic()
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        elapsed = time.monotonic() - started
        unauthorized = emulator.stats()["by_status"].get("401", 0)
    assert elapsed < 15
    assert "token" in str(failure.value.cause).lower()
    # The page search and the data-source listing run side by side: one 401 each, never retried.
    assert unauthorized <= 2, "a 401 is never retried"
    assert not (destination / "current").exists()
    reports = list((destination / ".notion-sync" / "reports").glob("*-failed.json"))
    assert reports and "token" in reports[0].read_text().lower()


async def test_429_storm_and_flaky_5xx_still_export_everything(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    # The worker asks without a limit of its own: at 40/s the emulator answers 429s all along.
    storm = {"rate": 40, "burst": 5, "fault_503": 0.05, "fault_500": 0.03}
    async with emulator_and_worker(pages=20, seed=2, **storm) as (emulator, settings):
        report = await export_and_wait(temporal_client, settings, destination)
        stats = emulator.stats()
    assert stats["rate_limited_total"] > 0, "the storm happened"
    assert report.counters.failed == 0 and report.counters.skipped == 0
    assert all(entry["status"] == "exported" for entry in _manifest(destination))


async def test_page_deleted_mid_export_is_skipped_with_its_reason(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=50, seed=6, latency_ms=15) as (emulator, settings):
        options = ExportOptions(batch_size=5, max_parallel_batches=1)
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=options)
        )
        await wait_for(handle, lambda p: p.phase.value == "exporting")
        index_files = list((destination / ".notion-sync" / "state").glob("*.sqlite"))
        assert index_files
        victim = _last_pending_page(index_files[0])
        emulator.mutate({"op": "delete_page", "page_id": victim})
        report = await handle.result()
    assert report.status == "completed"
    entries = {entry["id"]: entry for entry in _manifest(destination)}
    assert entries[victim]["status"] == "skipped"
    assert "404" in str(entries[victim]["reason"])
    problems = (destination / "current" / "problems.jsonl").read_text()
    assert victim in problems


def _last_pending_page(index_file: Path) -> str:
    import sqlite3

    with sqlite3.connect(index_file) as db:
        row = db.execute(
            "SELECT id FROM objects WHERE kind = 'page' AND status = 'pending' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    return str(row[0])
