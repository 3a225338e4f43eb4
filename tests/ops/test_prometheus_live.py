"""A real Prometheus scraping a live worker (`run_worker`, in process, on the session's Temporal server)
with the alert rules loaded: one export succeeds, one fails (its workspace's token is refused: 401), one
is cancelled, and Prometheus shows ExportFailed and NotionTokenRevoked firing (for the failed one only)
and the successful export's counts as its report.json has them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from notion_sync import observability
from notion_sync.control import connect, start_export
from notion_sync.devserver import DevServer, free_port
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportReport
from notion_sync.settings import Settings
from notion_sync.snapshot import CURRENT, read_report
from notion_sync.workers import run_worker
from tests.export.harness import worker_settings
from tests.ops.prometheus import PrometheusProcess, accepted_and_revoked
from tests.ops.test_alert_rules import RULES
from workflows.export import ExportWorkflow

WITHIN_S = 30.0
T = TypeVar("T")


def _eventually(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + WITHIN_S
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {WITHIN_S:.0f} s")
        time.sleep(0.25)


def _settles(prometheus: PrometheusProcess, expression: str, expected: float) -> None:
    _eventually(lambda: prometheus.value(expression), lambda value: value == expected, expression)


async def test_prometheus_scrapes_a_worker_and_export_failed_fires(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    with EmulatorProcess(pages=12, seed=11) as emulator:
        settings = worker_settings(
            emulator, tmp_path / "state", metrics_port=free_port(), requests_per_second=50.0, burst=10
        )
        client = await connect(
            settings, temporal_server.address, runtime=observability.metrics_runtime(settings)
        )
        worker = asyncio.create_task(run_worker(settings, client, accepted_and_revoked(emulator)))
        target = f"127.0.0.1:{settings.metrics_port}"
        try:
            with PrometheusProcess([target], [RULES], tmp_path / "prometheus") as prometheus:
                _eventually(prometheus.targets_up, bool, "the worker's metrics endpoint scraped")
                good = tmp_path / "good"
                report = await _export(client, settings, good, "acme")
                with pytest.raises(WorkflowFailureError):
                    await _export(client, settings, tmp_path / "refused", "revoked")
                # Slow answers, so the cancellation lands while the export runs.
                emulator.configure(latency_ms=3000)
                cancelled = await _start(client, settings, tmp_path / "cancelled", "acme")
                # Paused first: it shows as phase "paused" (which the "stuck" alert leaves out).
                await cancelled.signal(ExportWorkflow.pause)
                paused = 'sum(notion_sync_exports_running{workspace="acme",phase="paused"})'
                await asyncio.to_thread(_settles, prometheus, paused, 1)
                await cancelled.cancel()
                with pytest.raises(WorkflowFailureError):
                    await cancelled.result()
                await asyncio.to_thread(_check_prometheus, prometheus, good, report)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def _start(
    client: Client, settings: Settings, destination: Path, workspace: str
) -> WorkflowHandle[ExportWorkflow, ExportReport]:
    request = ExportInput(destination=str(destination), workspace=workspace, options=ExportOptions())
    return await start_export(client, settings, request)


async def _export(client: Client, settings: Settings, destination: Path, workspace: str) -> ExportReport:
    return await (await _start(client, settings, destination, workspace)).result()


def _check_prometheus(prometheus: PrometheusProcess, destination: Path, report: ExportReport) -> None:
    def firing() -> dict[str, dict[str, str]]:
        return {a["labels"]["alertname"]: a["labels"] for a in prometheus.alerts() if a["state"] == "firing"}

    alerts = _eventually(firing, lambda found: {"ExportFailed", "NotionTokenRevoked"} <= set(found), "alerts")
    assert alerts["ExportFailed"]["workspace"] == "revoked"
    assert alerts["ExportFailed"]["outcome"] == "failed"
    assert alerts["NotionTokenRevoked"]["workspace"] == "revoked"
    # Neither the successful export nor the cancelled one is a failure.
    assert not [a for a in prometheus.alerts() if a["labels"].get("workspace") == "acme"]

    # What Prometheus stored equals what the published report.json says.
    published = read_report(destination / CURRENT)
    assert published is not None and published.counters == report.counters
    counters = published.counters

    finished = 'sum by (outcome) (notion_sync_exports_finished_total{workspace="%s",outcome="%s"})'
    # The cancelled export ended last: once a scrape holds its end, it holds everything before it.
    _settles(prometheus, finished % ("acme", "cancelled"), 1)
    value = prometheus.value
    assert value('sum(notion_sync_pages_exported_total{workspace="acme"})') == counters.exported > 0
    kinds = 'kind=~"page|database|data_source"'
    assert value(f'sum(notion_sync_objects_exported_total{{workspace="acme",{kinds}}})') == counters.exported
    files = value('sum(notion_sync_objects_exported_total{workspace="acme",kind="file"})')
    assert files == counters.files_downloaded > 0
    assert value(finished % ("acme", "completed")) == 1
    assert value(finished % ("revoked", "failed")) == 1
    assert value('sum(notion_sync_exports_started_total{workspace=~"acme|revoked"})') == 3
    last_success = value(f'max(notion_sync_last_success_timestamp_seconds{{destination="{destination}"}})')
    assert published.finished_at is not None and last_success is not None
    assert abs(last_success - published.finished_at.timestamp()) < 5
    assert value('sum(notion_sync_exports_running{workspace="acme"})') == 0
    ratio = value('notion_sync:request_budget_utilisation:ratio{workspace="acme"}')
    assert ratio is not None and 0 < ratio < 1
