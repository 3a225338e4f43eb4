"""Nothing done to the machine loses or duplicates work: kill -9, server restart, continue-as-new."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from notion_sync.control import start_export
from notion_sync.devserver import free_port, start_dev_server
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import (
    EmulatorAndWorker,
    running_worker,
    snapshot_files,
    wait_for,
    worker_process,
    worker_settings,
)
from workflows.export import ExportWorkflow

PAGE_CONCURRENCY = 4
# A killed worker's activities move to the next worker after 10 s without a heartbeat, not 30.
OPTIONS = ExportOptions(batch_size=10, max_parallel_batches=2, worker_lost_after_seconds=10)


async def test_worker_killed_mid_export_resumes_byte_identical(
    temporal_client: Client, temporal_server: object, tmp_path: Path
) -> None:
    address = temporal_server.address  # type: ignore[attr-defined]
    with EmulatorProcess(pages=120, seed=21, latency_ms=10) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", page_concurrency=PAGE_CONCURRENCY)
        reference = tmp_path / "reference"
        async with running_worker(temporal_client, settings):
            handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(reference), options=OPTIONS)
            )
            await handle.result()
        baseline = emulator.stats()["fetches_by_id"]["block_children"]

        emulator.reset()
        killed = tmp_path / "killed"
        with worker_process(settings, address) as first:
            handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(killed), options=OPTIONS)
            )
            await wait_for(handle, lambda p: p.exported >= 20, timeout=120)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        with worker_process(settings, address):
            report = await handle.result()
        fetches = emulator.stats()["fetches_by_id"]["block_children"]

    assert report.status == "completed" and report.counters.failed == 0
    assert snapshot_files((killed / "current").resolve()) == snapshot_files((reference / "current").resolve())
    pages = _exported_pages(killed)
    assert all(fetches.get(page, 0) >= 1 for page in pages)
    # A page's children can take several requests (paging): compare with the uninterrupted run.
    twice = [page for page in pages if fetches.get(page, 0) > baseline.get(page, 0)]
    in_flight_bound = PAGE_CONCURRENCY * OPTIONS.max_parallel_batches
    assert len(twice) <= in_flight_bound, f"{len(twice)} pages read twice"


def _exported_pages(destination: Path) -> list[str]:
    lines = (destination / "current" / "manifest.jsonl").read_text().splitlines()[1:]
    entries = [json.loads(line) for line in lines]
    return [e["id"] for e in entries if e["type"] == "page" and e["status"] == "exported"]


async def test_dev_server_restarted_mid_export_finishes(tmp_path: Path) -> None:
    port = free_port()
    server = start_dev_server(tmp_path / "temporal", port=port, ui_port=None, persist=True)
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        with EmulatorProcess(pages=80, seed=22, latency_ms=20) as emulator:
            settings = worker_settings(emulator, tmp_path / "state")
            async with running_worker(client, settings):
                destination = tmp_path / "out"
                handle = await start_export(
                    client, settings, ExportInput(destination=str(destination), options=OPTIONS)
                )
                await wait_for(handle, lambda p: p.exported >= 10)
                server.stop()
                await asyncio.sleep(2)
                server = start_dev_server(tmp_path / "temporal", port=port, ui_port=None, persist=True)
                report = await asyncio.wait_for(handle.result(), timeout=180)
        assert report.status == "completed" and report.counters.failed == 0
        assert (destination / "current" / "manifest.jsonl").exists()
    finally:
        server.stop()


async def test_continue_as_new_keeps_going_and_replays(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=23) as (_, settings):
        plain = tmp_path / "plain"
        await (await start_export(temporal_client, settings, ExportInput(destination=str(plain)))).result()
        chained = tmp_path / "chained"
        options = ExportOptions(batch_size=5, max_parallel_batches=2, batches_per_run=2)
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(chained), options=options)
        )
        report = await handle.result()
        first_run = temporal_client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        first_status = (await first_run.describe()).status
        final = await handle.query(ExportWorkflow.progress)
        histories = [
            await first_run.fetch_history(),
            await temporal_client.get_workflow_handle(handle.id).fetch_history(),
        ]

    assert report.status == "completed"
    assert first_status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert final.runs > 3
    assert snapshot_files((chained / "current").resolve()) == snapshot_files((plain / "current").resolve())
    replayer = Replayer(workflows=[ExportWorkflow], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)
