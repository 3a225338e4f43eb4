"""A worker killed (SIGKILL) again and again during a restore: the restore finishes with exactly one
copy of every page and block, as many as an uninterrupted restore of the same snapshot creates."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

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
KILLS = 3
# Counted from the emulator's store; file uploads are left out (a lost upload is only an unattached
# upload, which Notion expires).
COUNTED = ("pages", "blocks", "databases", "data_sources", "comments", "blocks_by_type", "trashed")


def _counts(emulator: EmulatorProcess) -> dict[str, Any]:
    created = emulator.workspace_summary()["created"]
    return {key: created[key] for key in COUNTED}


async def test_worker_killed_repeatedly_mid_restore_creates_everything_once(
    temporal_client: Client, temporal_server: object, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    address = temporal_server.address  # type: ignore[attr-defined]
    async with emulator_and_worker(pages=250, seed=SEED) as (_source, settings):
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
        for delay in (2.5, 4.0, 3.0)[:KILLS]:
            with worker_process(settings, address) as worker:
                await asyncio.sleep(delay)
                if worker.poll() is None:
                    os.kill(worker.pid, signal.SIGKILL)
                    kills += 1
                worker.wait()
        with worker_process(settings, address):
            report = await asyncio.wait_for(handle.result(), timeout=180)
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
    assert expected["pages"] >= 200
    assert got == expected
