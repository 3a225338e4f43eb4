"""Scheduled exports on Temporal Schedules: the schedule's life, a triggered run, and attaching."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from notion_sync.control import export_workflow_id, start_export
from notion_sync.devserver import DevServer
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ScheduledRunResult
from notion_sync.schedules import (
    BadSpec,
    ScheduleError,
    ScheduleView,
    build_spec,
    create_schedule,
    delete_schedule,
    describe_schedule,
    list_schedules,
    parse_every,
    pause_schedule,
    schedule_id,
    trigger_schedule,
    unpause_schedule,
)
from tests.export.harness import EmulatorAndWorker, running_worker, wait_for, worker_settings
from workflows.scheduled import ScheduledExportWorkflow

CLI = [sys.executable, "-m", "notion_sync"]
SMALL_BATCHES = ExportOptions(batch_size=5, max_parallel_batches=2)


async def _listed(client: Client, destination: Path, timeout: float = 15) -> ScheduleView:
    """`list` reads visibility, which lags a create by a moment."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        views = [v for v in await list_schedules(client) if v.destination == str(destination.resolve())]
        if views:
            return views[0]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the schedule of {destination} never showed in the list")
        await asyncio.sleep(0.2)


async def _scheduled_run(client: Client, destination: Path, timeout: float = 15) -> ScheduledRunResult:
    """Waits for the schedule's first action to start, then for the scheduled workflow's result."""
    handle = client.get_schedule_handle(schedule_id(destination))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        info = (await handle.describe()).info
        actions = [a.action for a in info.recent_actions] + list(info.running_actions)
        if actions:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the trigger started nothing")
        await asyncio.sleep(0.2)
    action = actions[0]
    assert isinstance(action, ScheduleActionExecutionStartWorkflow)
    run = client.get_workflow_handle_for(ScheduledExportWorkflow.run, action.workflow_id)
    return await asyncio.wait_for(run.result(), timeout=60)


async def _export_runs(client: Client, destination: Path) -> int:
    query = f'WorkflowId="{export_workflow_id(destination)}"'
    return len([w async for w in client.list_workflows(query)])


def test_every_and_cron_parse_or_say_why() -> None:
    assert parse_every("30m") == timedelta(minutes=30)
    assert parse_every("1h") == timedelta(hours=1)
    assert parse_every("1d") == timedelta(days=1)
    assert parse_every("1h30m") == timedelta(minutes=90)
    for bad in ("garbage", "", "1", "h", "1x", "-1h", "0m", "1.5h"):
        with pytest.raises(BadSpec):
            parse_every(bad)
    spec, text = build_spec(None, "0 3 * * *")
    assert list(spec.cron_expressions) == ["0 3 * * *"] and text == "cron 0 3 * * *"
    with pytest.raises(BadSpec, match="exactly one"):
        build_spec("1h", "0 3 * * *")
    with pytest.raises(BadSpec, match="cron"):
        build_spec(None, "every night")


async def test_schedule_lifecycle_and_a_triggered_export(
    temporal_client: Client, temporal_server: DevServer, destination: Path, tmp_path: Path
) -> None:
    with EmulatorProcess(pages=30, seed=11) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        spec, text = build_spec("1h", None)
        await create_schedule(temporal_client, settings, destination, spec, text, SMALL_BATCHES)
        with pytest.raises(ScheduleError, match="already has a schedule"):
            await create_schedule(temporal_client, settings, destination, spec, text)

        listed = await _listed(temporal_client, destination)
        assert listed.id == schedule_id(destination)
        assert listed.id.endswith(export_workflow_id(destination).rsplit("-", 1)[-1])
        assert listed.spec == "every 1h"
        assert not listed.paused and listed.next_runs
        described = await temporal_client.get_schedule_handle(listed.id).describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]

        # The CLI shows the same, from the same server.
        env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server.address}
        command = [*CLI, "schedule", "list"]
        shown = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert f"{destination.resolve()}\tevery 1h\tactive" in shown.stdout

        async with running_worker(temporal_client, settings):
            await trigger_schedule(temporal_client, destination)
            result = await _scheduled_run(temporal_client, destination)
        assert result.status == "completed", result
        assert result.attached is False
        assert result.workflow_id == export_workflow_id(destination)
        assert result.snapshot and (destination / "snapshots" / result.snapshot).is_dir()
        assert (destination / "current" / "manifest.jsonl").is_file()
        assert await _export_runs(temporal_client, destination) == 1

        await pause_schedule(temporal_client, destination)
        assert (await describe_schedule(temporal_client, destination)).paused
        await unpause_schedule(temporal_client, destination)
        assert not (await describe_schedule(temporal_client, destination)).paused

        await delete_schedule(temporal_client, destination)
        with pytest.raises(ScheduleError, match="no schedule"):
            await describe_schedule(temporal_client, destination)
        with pytest.raises(ScheduleError, match="no schedule"):
            await trigger_schedule(temporal_client, destination)


async def test_a_scheduled_run_attaches_to_the_running_export(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=60, seed=12, latency_ms=40) as (_, settings):
        manual = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=SMALL_BATCHES)
        )
        await wait_for(manual, lambda p: p.exported >= 3)
        spec, text = build_spec(None, "0 3 * * *")
        await create_schedule(temporal_client, settings, destination, spec, text)
        await trigger_schedule(temporal_client, destination)
        result = await _scheduled_run(temporal_client, destination)
        report = await manual.result()
        await delete_schedule(temporal_client, destination)
    assert result.attached is True, result
    assert result.status == "completed"
    assert result.run_id == manual.result_run_id
    assert result.snapshot == report.snapshot
    assert await _export_runs(temporal_client, destination) == 1


def test_cli_rejects_a_bad_interval_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    env["NOTION_SYNC_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run(
        [*CLI, "schedule", "create", "--out", str(tmp_path / "backup"), "--every", "garbage"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--every 'garbage' is not an interval" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "state").exists()  # rejected before any server was started


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--keep", "0", "--keep"), ("--full-listing-days", "-1", "--full-listing-days")],
)
def test_cli_rejects_bad_export_options_without_a_traceback(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    env["NOTION_SYNC_STATE_DIR"] = str(tmp_path / "state")
    command = [*CLI, "schedule", "create", "--out", str(tmp_path / "backup"), "--every", "1h", flag, value]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "state").exists()
