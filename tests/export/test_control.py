"""Steering a running export: pause and resume, cancel, a second start."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from notion_sync.control import ExportAlreadyRunning, export_workflow_id, start_export
from notion_sync.devserver import DevServer, temporal_binary
from notion_sync.models import ExportInput, ExportOptions, Phase
from tests.export.harness import (
    EmulatorAndWorker,
    export_and_wait,
    snapshot_files,
    wait_for,
)
from workflows.export import ExportWorkflow

SMALL_BATCHES = ExportOptions(batch_size=5, max_parallel_batches=2)


async def test_pause_stops_every_request_and_resume_finishes(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=80, seed=3, latency_ms=20) as (emulator, settings):
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=SMALL_BATCHES)
        )
        await wait_for(handle, lambda p: p.exported >= 5)
        await handle.signal(ExportWorkflow.pause)
        # Paused and drained: no activity in flight means no request can be on its way.
        await wait_for(handle, lambda p: p.paused and p.in_flight == 0, timeout=30)
        emulator.reset()
        await asyncio.sleep(3)
        assert emulator.stats()["requests_total"] == 0
        paused_at = await handle.query(ExportWorkflow.progress)
        assert paused_at.phase != Phase.DONE
        await handle.signal(ExportWorkflow.resume)
        report = await handle.result()
    assert report.status == "completed"
    assert report.counters.failed == 0
    assert (destination / "current" / "manifest.jsonl").exists()


async def test_cancel_compensates_and_keeps_the_previous_export(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    temporal_server: DevServer,
    destination: Path,
) -> None:
    async with emulator_and_worker(pages=60, seed=4) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        previous = (destination / "current").resolve()
        before = snapshot_files(previous)

        emulator.configure(latency_ms=50)
        second = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=SMALL_BATCHES)
        )
        await wait_for(second, lambda p: p.exported >= 3)
        subprocess.run(
            [
                temporal_binary(),
                "workflow",
                "cancel",
                "--workflow-id",
                second.id,
                "--address",
                temporal_server.address,
            ],
            check=True,
            capture_output=True,
        )
        with pytest.raises(WorkflowFailureError):
            await second.result()
    assert (destination / "current").resolve() == previous
    assert snapshot_files(previous) == before
    staging = destination / ".notion-sync" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    state = destination / ".notion-sync" / "state"
    assert not state.exists() or not any(state.iterdir())
    reports = sorted((destination / ".notion-sync" / "reports").glob("*-cancelled.json"))
    assert reports, "a cancelled run leaves a report saying so"


async def test_a_cancel_sent_while_paused_mid_activity_ends_the_export(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    """Pause asks the running activity to stop; a cancel of the export follows while that activity
    goes on (it has not looked for cancellation yet) and then completes. The export is cancelled all
    the same, not left paused for ever."""
    async with emulator_and_worker(pages=20, seed=5) as (emulator, settings):
        emulator.configure(latency_ms=4000)  # the first activity, one request, takes 4 s
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        await asyncio.sleep(1)
        await handle.signal(ExportWorkflow.pause)
        await asyncio.sleep(1)  # the pause is handled (the activity asked to stop) before the cancel
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=60)
    assert not (destination / "current").exists()


async def test_second_start_for_the_same_destination_is_refused(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=40, seed=5, latency_ms=30) as (_, settings):
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=SMALL_BATCHES)
        )
        with pytest.raises(ExportAlreadyRunning, match="already running") as refused:
            await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        assert "notion-sync status --out" in str(refused.value)
        assert refused.value.workflow_id == handle.id
        await handle.result()


async def test_start_from_the_temporal_cli_with_documented_json(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    temporal_server: DevServer,
    destination: Path,
) -> None:
    async with emulator_and_worker(pages=20, seed=8) as (_, settings):
        workflow_id = export_workflow_id(destination)
        document = json.dumps({"destination": str(destination), "options": {"batch_size": 50}})
        subprocess.run(
            [
                temporal_binary(),
                "workflow",
                "start",
                "--type",
                "ExportWorkflow",
                "--task-queue",
                settings.task_queue,
                "--workflow-id",
                workflow_id,
                "--input",
                document,
                "--address",
                temporal_server.address,
            ],
            check=True,
            capture_output=True,
        )
        report = await temporal_client.get_workflow_handle(workflow_id).result()
    assert report["status"] == "completed"
    assert (destination / "current" / "manifest.jsonl").is_file()
