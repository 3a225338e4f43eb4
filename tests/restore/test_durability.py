"""A worker killed (SIGKILL) again and again during a restore: the restore finishes with exactly one
copy of every page and block, as many as an uninterrupted restore of the same snapshot creates."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import RestoreInput
from tests.export.harness import (
    EmulatorAndWorker,
    export_and_wait,
    running_worker,
    worker_process,
    worker_settings,
)
from workflows.restore import RestoreWorkflow

SEED = 13
KILLS = 4
# Counted from the emulator's store; file uploads are left out (a lost upload is only an unattached
# upload, which Notion expires).
COUNTED = ("pages", "blocks", "databases", "data_sources", "comments", "blocks_by_type", "trashed")


def _counts(emulator: EmulatorProcess) -> dict[str, Any]:
    created = emulator.workspace_summary()["created"]
    return {key: created[key] for key in COUNTED}


async def _creating(target: EmulatorProcess, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Waits until the target workspace holds more than it did when `worker` started."""

    def made() -> int:
        created = target.workspace_summary()["created"]
        return int(created["pages"]) + int(created["blocks"])

    before = made()
    deadline = time.monotonic() + timeout
    while made() == before and worker.poll() is None:
        assert time.monotonic() < deadline, "the worker created nothing"
        await asyncio.sleep(0.1)


@pytest.mark.chaos  # about five minutes: in the chaos pass (`.ci/run`), beside the other kill scenarios
@pytest.mark.timeout(900)
async def test_worker_killed_repeatedly_mid_restore_creates_everything_once(
    temporal_client: Client, temporal_server: object, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    address = temporal_server.address  # type: ignore[attr-defined]
    async with emulator_and_worker(pages=500, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")

    with EmulatorProcess(pages=0, seed=SEED) as reference:
        settings = worker_settings(reference, tmp_path / "state-reference")
        async with running_worker(temporal_client, settings):
            request = RestoreInput(
                source=str(tmp_path / "a"), target=reference.workspace_summary()["root_page_id"]
            )
            handle = await temporal_client.start_workflow(
                RestoreWorkflow.run,
                request,
                id=f"restore-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
            )
            await handle.result()
        expected = _counts(reference)

    with EmulatorProcess(pages=0, seed=SEED, latency_ms=5) as target:
        settings = worker_settings(target, tmp_path / "state")
        request = RestoreInput(
            source=str(tmp_path / "a"),
            target=target.workspace_summary()["root_page_id"],
            batch_size=10,
            worker_lost_after_seconds=5,
        )
        handle = await temporal_client.start_workflow(
            RestoreWorkflow.run, request, id=f"restore-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
        )
        kills = 0
        for delay in (0.5, 1.5, 1.0, 2.0)[:KILLS]:
            with worker_process(settings, address) as worker:
                # Killed only once this worker is creating (a slow start would otherwise be killed
                # before it took any work), a moment into it: mid-range, between sends and records.
                await _creating(target, worker)
                await asyncio.sleep(delay)
                if worker.poll() is None:
                    os.kill(worker.pid, signal.SIGKILL)
                    kills += 1
                worker.wait()
        with worker_process(settings, address):
            report = await asyncio.wait_for(handle.result(), timeout=300)
        got = _counts(target)
        history = await handle.fetch_history()
    # Killed in flight: some ranges ran again (and found what their lost attempt had created).
    retried = [
        e
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt > 1
    ]
    assert retried

    assert kills == KILLS and report.status == "completed"
    assert expected["pages"] >= 450
    assert got == expected


async def test_cancelled_restore_reports_and_its_undo_trashes_what_it_made(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=60, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    async with emulator_and_worker(pages=0, seed=SEED, latency_ms=20, state_dir=tmp_path / "state-b") as (
        target,
        settings,
    ):
        root = target.workspace_summary()["root_page_id"]
        request = RestoreInput(source=str(tmp_path / "a"), target=root, batch_size=5)
        restore_id = f"restore-{uuid.uuid4().hex[:8]}"
        handle = await temporal_client.start_workflow(
            RestoreWorkflow.run, request, id=restore_id, task_queue=settings.task_queue
        )
        while target.workspace_summary()["created"]["pages"] < 5:
            await asyncio.sleep(0.1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        made = target.workspace_summary()["created"]
        report = json.loads((settings.state_dir / "restores" / restore_id / "report.json").read_text())

        undo = RestoreInput(source=str(tmp_path / "a"), target=root, undo=restore_id)
        undone = await temporal_client.execute_workflow(
            RestoreWorkflow.run, undo, id=f"undo-{restore_id}", task_queue=settings.task_queue
        )
        after = target.workspace_summary()["created"]
    assert report["status"] == "cancelled" and 0 < report["counts"]["pages"] < 60
    assert 0 < made["pages"] < 60 and made["trashed"] == 0
    assert undone.trashed and undone.trashed > 0
    # Everything the restore made is in the trash (a trashed page takes its content with it).
    assert after["live_pages"] == 1 and after["pages"] == made["pages"]


async def test_paused_restore_makes_no_request_and_resumes_across_continue_as_new(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=60, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    async with emulator_and_worker(pages=0, seed=SEED, latency_ms=20, state_dir=tmp_path / "state-b") as (
        target,
        settings,
    ):
        root = target.workspace_summary()["root_page_id"]
        request = RestoreInput(source=str(tmp_path / "a"), target=root, batch_size=5, batches_per_run=4)
        handle = await temporal_client.start_workflow(
            RestoreWorkflow.run, request, id=f"restore-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
        )
        while target.workspace_summary()["created"]["pages"] < 10:
            await asyncio.sleep(0.1)
        await handle.signal(RestoreWorkflow.pause)
        # The range in flight stops at its next heartbeat (at most ~2 s), then nothing is sent.
        await asyncio.sleep(3.0)
        paused_at = target.stats()["requests_total"]
        await asyncio.sleep(2.0)
        still = target.stats()["requests_total"]
        await handle.signal(RestoreWorkflow.resume)
        report = await handle.result()
        made = target.workspace_summary()["created"]
        progress = await handle.query(RestoreWorkflow.progress)
    assert still == paused_at
    assert report.status == "completed" and progress.runs > 1
    assert made["pages"] == report.counts.pages and made["live_blocks"] == made["blocks"]


async def test_a_pause_and_a_quick_resume_do_not_end_the_restore(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=8, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    async with emulator_and_worker(pages=0, seed=SEED, latency_ms=200, state_dir=tmp_path / "state-b") as (
        target,
        settings,
    ):
        root = target.workspace_summary()["root_page_id"]
        request = RestoreInput(source=str(tmp_path / "a"), target=root, batch_size=20)
        handle = await temporal_client.start_workflow(
            RestoreWorkflow.run, request, id=f"restore-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
        )
        while target.workspace_summary()["created"]["pages"] < 2:
            await asyncio.sleep(0.05)
        # Resumed before the cancelled range has stopped (slow answers: it stops at its next
        # heartbeat): that range is run again, nothing ends.
        await handle.signal(RestoreWorkflow.pause)
        await handle.signal(RestoreWorkflow.resume)
        report = await handle.result()
        made = target.workspace_summary()["created"]
    assert report.status == "completed" and made["pages"] == report.counts.pages
