"""The token stays secret; all workers on a host share one Notion request budget."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from temporalio.client import Client

from notion_sync.control import start_export
from notion_sync.devserver import DevServer, temporal_binary
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import worker_process, worker_settings

SECRET = "ntn_super_secret_token_value_4242"


async def test_token_never_reaches_history_or_logs(
    temporal_client: Client, temporal_server: DevServer, destination: Path, tmp_path: Path
) -> None:
    with EmulatorProcess(pages=30, seed=31, token=SECRET) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        log = tmp_path / "worker.log"
        with log.open("wb") as sink, worker_process(settings, temporal_server.address, output=sink):
            handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
            await handle.result()
    shown = subprocess.run(
        [
            temporal_binary(),
            "workflow",
            "show",
            "--workflow-id",
            handle.id,
            "--address",
            temporal_server.address,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert handle.id in shown and "publish_snapshot" in shown
    assert SECRET not in shown
    assert SECRET not in log.read_text()
    assert not any(SECRET.encode() in path.read_bytes() for path in destination.rglob("*") if path.is_file())


async def test_two_worker_processes_hold_one_budget(
    temporal_client: Client, temporal_server: DevServer, destination: Path, tmp_path: Path
) -> None:
    rate = 8.0
    # The emulator enforces the same rate: any overspend by the workers would show up as 429s.
    with EmulatorProcess(pages=40, seed=32, rate=rate, burst=10) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", requests_per_second=rate, burst=6)
        with (
            worker_process(settings, temporal_server.address),
            worker_process(settings, temporal_server.address),
        ):
            options = ExportOptions(batch_size=4, max_parallel_batches=4)
            handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(destination), options=options)
            )
            started = time.monotonic()
            report = await handle.result()
            elapsed = time.monotonic() - started
        stats = emulator.stats()
        history = await handle.fetch_history()
    identities = {
        event.activity_task_started_event_attributes.identity
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
    }
    assert len(identities) == 2, "both workers took part"
    assert report.counters.failed == 0
    # File downloads go to the storage host, outside the API's budget: count API calls only.
    api_calls = sum(count for endpoint, count in stats["by_endpoint"].items() if " /v1/" in endpoint)
    assert stats["rate_limited_total"] == 0
    assert api_calls <= rate * elapsed + 6 + rate
    assert api_calls >= 0.6 * rate * elapsed, "the budget is used, not wasted"
