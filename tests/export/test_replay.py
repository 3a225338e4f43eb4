"""Recorded export histories replay against today's workflow code: nondeterminism fails here first.

Re-record after a deliberate, versioned change to the workflow with
`RECORD_HISTORIES=1 ./run-tests tests/export/test_replay.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from notion_sync.control import start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import running_worker, worker_settings
from workflows.export import ExportWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.skipif(not os.environ.get("RECORD_HISTORIES"), reason="records only when asked")
async def test_record_histories(temporal_client: Client, tmp_path: Path) -> None:
    with EmulatorProcess(pages=30, seed=41) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        async with running_worker(temporal_client, settings):
            options = ExportOptions(batch_size=5, max_parallel_batches=2, batches_per_run=3)
            handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(tmp_path / "out"), options=options)
            )
            await handle.result()
            first = temporal_client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
            last = temporal_client.get_workflow_handle(handle.id)
            HISTORIES.mkdir(exist_ok=True)
            (HISTORIES / "first_run.json").write_text((await first.fetch_history()).to_json())
            (HISTORIES / "last_run.json").write_text((await last.fetch_history()).to_json())


@pytest.mark.skipif(not os.environ.get("RECORD_HISTORIES"), reason="records only when asked")
async def test_record_sync_history(temporal_client: Client, tmp_path: Path) -> None:
    """A sync with a changes-only listing: carry-over, newest-first search, filtered queries."""
    with EmulatorProcess(pages=30, seed=42) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        async with running_worker(temporal_client, settings):
            options = ExportOptions(batch_size=5, max_parallel_batches=2)
            request = ExportInput(destination=str(tmp_path / "out"), options=options)
            await (await start_export(temporal_client, settings, request)).result()
            lines = (tmp_path / "out" / "current" / "manifest.jsonl").read_text().splitlines()[1:]
            page = next(e["id"] for e in map(json.loads, lines) if e["type"] == "page")
            emulator.mutate({"op": "edit_page", "page_id": page})
            handle = await start_export(temporal_client, settings, request)
            report = await handle.result()
            assert report.listing == "changes"
            (HISTORIES / "sync_changes.json").write_text((await handle.fetch_history()).to_json())


@pytest.mark.parametrize("name", ["first_run.json", "last_run.json", "sync_changes.json"])
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json("recorded-export", (HISTORIES / name).read_text())
    replayer = Replayer(workflows=[ExportWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
