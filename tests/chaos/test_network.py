"""Network faults mid-export: the worker cut off from Temporal (a proxy between them), and Notion
stalling past the client timeout or resetting connections. Each export ends byte-identical to an
undisturbed one, and records how long it took to move again once the fault was gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.client import Client

from notion_sync.control import query_progress, start_export
from notion_sync.devserver import DevServer
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from tests.chaos.harness import (
    assert_same_snapshot,
    export_undisturbed,
    record_recovery,
    retried_activities,
    wait_for_progress,
)
from tests.chaos.proxy import Mode, TcpProxy
from tests.export.harness import running_worker, wait_for, worker_process, worker_settings

# Activities of a cut-off worker time out after 5 s without a heartbeat (the shortest allowed).
OPTIONS = ExportOptions(batch_size=5, max_parallel_batches=2, worker_lost_after_seconds=5)
PAGES = 80
# Longer than the heartbeat timeout above; the blackhole also outlasts a long poll (the server holds
# one up to 60 s, the client waits 70 s) and gRPC's keepalive, with connections held open meanwhile.
PARTITION_S = {"drop": 15.0, "blackhole": 75.0, "delay": 10.0}
DELAY_MS = 200.0


@pytest.mark.chaos
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["drop", "blackhole", "delay"])
async def test_worker_cut_off_from_temporal_finishes_identical(
    mode: Mode, temporal_client: Client, temporal_server: DevServer, tmp_path: Path
) -> None:
    with EmulatorProcess(pages=PAGES, seed=41, latency_ms=20) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", page_concurrency=4)
        reference = tmp_path / "reference"
        await export_undisturbed(temporal_client, settings, reference, **OPTIONS.model_dump())
        disturbed = tmp_path / "disturbed"
        with TcpProxy(temporal_server.address) as proxy, worker_process(settings, proxy.address):
            request = ExportInput(destination=str(disturbed), options=OPTIONS)
            handle = await start_export(temporal_client, settings, request)
            await wait_for(handle, lambda p: p.exported >= 10)
            before = await query_progress(handle)
            proxy.set_mode(mode, DELAY_MS)
            await asyncio.sleep(PARTITION_S[mode])
            proxy.set_mode("pass")
            healed = time.monotonic()
            accepted = proxy.connections_accepted
            recovery = await wait_for_progress(temporal_client, handle.id, before, healed)
            record_recovery(f"worker-temporal-{mode}", recovery)
            report = await asyncio.wait_for(handle.result(), timeout=300)
            reconnected = proxy.connections_accepted > accepted
        retried = await retried_activities(temporal_client, handle.id)

    assert report.status == "completed" and report.counters.failed == 0, report
    if mode != "delay":  # the worker's activities timed out (no heartbeat) and ran again
        assert retried > 0
    if mode == "drop":
        assert reconnected
    assert_same_snapshot(disturbed, reference)


STALL_S = 8.0
CLIENT_TIMEOUT_S = 2.0
# Attempts at a request that gets no answer (NOTION_SYNC_OBJECT_ATTEMPTS) that outlast the stall.
RIDES_OUT_STALL = 6
DEFAULT_ATTEMPTS = 3


@pytest.mark.chaos
@pytest.mark.parametrize(
    ("fault", "object_attempts"),
    [
        ("slow", RIDES_OUT_STALL),
        ("reset", DEFAULT_ATTEMPTS),
        ("slow", DEFAULT_ATTEMPTS),
    ],
)
async def test_notion_stalls_or_resets_mid_export_finishes_identical(
    fault: str, object_attempts: int, temporal_client: Client, tmp_path: Path
) -> None:
    """For a while every request stalls past the client's timeout (`slow`) or has its connection
    reset: requests are retried in the activity, steps fail as a whole when Notion answers nothing
    (no object is blamed) and Temporal retries them; once Notion is back the export goes on."""
    with EmulatorProcess(pages=PAGES, seed=42, latency_ms=20) as emulator:
        settings = worker_settings(
            emulator,
            tmp_path / "state",
            page_concurrency=4,
            request_timeout_s=CLIENT_TIMEOUT_S,
            object_attempts=object_attempts,
        )
        reference = tmp_path / "reference"
        await export_undisturbed(temporal_client, settings, reference, **OPTIONS.model_dump())
        disturbed = tmp_path / "disturbed"
        async with running_worker(temporal_client, settings):
            request = ExportInput(destination=str(disturbed), options=OPTIONS)
            handle = await start_export(temporal_client, settings, request)
            await wait_for(handle, lambda p: p.exported >= 10)
            emulator.configure(**{f"fault_{fault}": 1.0, "slow_seconds": 3 * CLIENT_TIMEOUT_S})
            stalled = await query_progress(handle)
            await asyncio.sleep(STALL_S)
            emulator.configure(**{f"fault_{fault}": 0.0})
            healed = time.monotonic()
            during = await query_progress(handle)
            recovery = await wait_for_progress(temporal_client, handle.id, during, healed)
            record_recovery(f"worker-notion-{fault}-{object_attempts}-attempts", recovery)
            report = await asyncio.wait_for(handle.result(), timeout=300)
        injected = emulator.stats()["faults_injected"]

    assert injected.get(fault, 0) > 0, injected
    # Only batches whose pages were all read before the fault finished meanwhile.
    assert during.exported <= stalled.exported + OPTIONS.batch_size * OPTIONS.max_parallel_batches
    assert report.status == "completed" and report.counters.failed == 0, report
    assert_same_snapshot(disturbed, reference)
