"""Temporal itself fails mid-export: its server killed with SIGKILL and started again on the same
SQLite file, or that file's disk full. The export ends byte-identical to an undisturbed one (or, for
the full disk, failed cleanly with `current` untouched) and records how long it took to move again."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from notion_sync.control import query_progress, start_export
from notion_sync.devserver import DevServer, free_port, start_dev_server
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportProgress, ExportReport
from notion_sync.settings import Settings
from tests.chaos.harness import (
    assert_failed_cleanly,
    assert_same_snapshot,
    disk_for,
    export_undisturbed,
    progress_now,
    record_recovery,
    wait_for_progress,
)
from tests.export.harness import running_worker, wait_for, worker_process, worker_settings
from workflows.export import ExportWorkflow

OPTIONS = ExportOptions(batch_size=5, max_parallel_batches=2, worker_lost_after_seconds=5)
PAGES = 80
DOWN_S = 5.0
FULL_DISK_S = 15.0
TMPFS_MB = 64
_FILL_CHUNK = 1024 * 1024


class OwnServer:
    """A dev server of this test's own (never the session's), persisted in `state`, on one port."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.server = self.start()

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.server.process is not None
        return self.server.process

    def start(self) -> DevServer:
        self.server = start_dev_server(self.state, port=self.port, ui_port=None, persist=True)
        return self.server

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.server.stop()


@contextlib.asynccontextmanager
async def own_server(state: Path) -> AsyncIterator[tuple[OwnServer, Client]]:
    server = OwnServer(state)
    try:
        yield server, await Client.connect(server.address, data_converter=pydantic_data_converter)
    finally:
        server.stop()


async def _started(
    client: Client, settings: Settings, destination: Path
) -> tuple[WorkflowHandle[ExportWorkflow, ExportReport], ExportProgress]:
    """Starts the export and waits until it is well under way."""
    handle = await start_export(client, settings, ExportInput(destination=str(destination), options=OPTIONS))
    await wait_for(handle, lambda p: p.exported >= 10)
    return handle, await query_progress(handle)


async def _result(handle: WorkflowHandle[ExportWorkflow, ExportReport], timeout: float = 300) -> ExportReport:
    """The export's report, asked again while the server is still unavailable: the client's own
    retries give up sooner than a server that lost its disk comes back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.wait_for(handle.result(), timeout=deadline - time.monotonic())
        except RPCError as error:
            if error.status != RPCStatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


@pytest.mark.chaos
async def test_temporal_killed_and_restarted_mid_export_finishes_identical(tmp_path: Path) -> None:
    async with own_server(tmp_path / "temporal") as (server, client):
        with EmulatorProcess(pages=PAGES, seed=43, latency_ms=20) as emulator:
            settings = worker_settings(emulator, tmp_path / "state", page_concurrency=4)
            reference = tmp_path / "reference"
            await export_undisturbed(client, settings, reference, **OPTIONS.model_dump())
            disturbed = tmp_path / "disturbed"
            with worker_process(settings, server.address):
                handle, before = await _started(client, settings, disturbed)
                server.kill()
                killed = time.monotonic()
                await asyncio.sleep(DOWN_S)
                server.start()
                recovery = await wait_for_progress(client, handle.id, before, killed)
                record_recovery("temporal-killed", recovery)
                report = await _result(handle)

    assert report.status == "completed" and report.counters.failed == 0, report
    assert_same_snapshot(disturbed, reference)


def fill(folder: Path) -> Path:
    """Writes a file into `folder` until its file system is full; returns it (delete it to free)."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * _FILL_CHUNK)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


class DiskFull:
    """Makes the server's writes fail, then lets them succeed again: a full tmpfs (`tmpfs`) or, where
    no file system can be mounted, a file-size limit (RLIMIT_FSIZE) on the running server (`rlimit`).
    The limit is 0: a limit at the files' current sizes did not always bite, as SQLite rewrites its
    WAL in place, so with the limit every write fails (EFBIG), a harsher disk than a full one. Either
    is lifted without a restart."""

    def __init__(self, how: str, server: OwnServer) -> None:
        self.how = how
        self.server = server
        self.filler: Path | None = None

    def inject(self) -> None:
        if self.how == "tmpfs":
            self.filler = fill(self.server.state)
            return
        _, hard = resource.prlimit(self.server.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.server.process.pid, resource.RLIMIT_FSIZE, (0, hard))

    def lift(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
        elif self.server.process.poll() is None:
            _, hard = resource.prlimit(self.server.process.pid, resource.RLIMIT_FSIZE)
            resource.prlimit(self.server.process.pid, resource.RLIMIT_FSIZE, (hard, hard))


@pytest.mark.chaos
@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
async def test_temporal_database_disk_full_mid_export(how: str, tmp_path: Path) -> None:
    """The server's SQLite file cannot grow for a while. Whatever the server does meanwhile (fail its
    requests, or exit: then it is started again on the same file once the disk has room), the
    export ends complete and identical, or failed cleanly; `current` never names a broken snapshot."""
    disk = disk_for(how, tmp_path / "disk", TMPFS_MB)
    with disk as state:
        async with own_server(state / "temporal") as (server, client):
            with EmulatorProcess(pages=PAGES, seed=44, latency_ms=20) as emulator:
                settings = worker_settings(emulator, tmp_path / "state", page_concurrency=4)
                reference = tmp_path / "reference"
                await export_undisturbed(client, settings, reference, **OPTIONS.model_dump())
                disturbed = tmp_path / "disturbed"
                full = DiskFull(how, server)
                with worker_process(settings, server.address):
                    handle, before = await _started(client, settings, disturbed)
                    full.inject()
                    await asyncio.sleep(FULL_DISK_S)
                    exited = server.process.poll() is not None
                    stuck = await progress_now(client, handle.id)
                    full.lift()
                    if exited:
                        server.start()
                    lifted = time.monotonic()
                    recovery = await wait_for_progress(client, handle.id, before, lifted)
                    record_recovery(f"temporal-disk-full-{how}", recovery)
                    report = await _result(handle)

    print(f"disk full ({how}): server exited={exited}, progress while full={stuck}, before={before}")
    in_flight = OPTIONS.batch_size * OPTIONS.max_parallel_batches
    bit = exited or stuck is None or stuck.exported <= before.exported + in_flight
    assert bit, f"the full disk did not stop the export: {before} -> {stuck}"
    if report.status == "completed":
        assert report.counters.failed == 0, report
        assert_same_snapshot(disturbed, reference)
    else:
        assert_failed_cleanly(disturbed, None)


async def test_the_harness_tells_a_clean_failure_and_a_different_snapshot(
    temporal_client: Client, tmp_path: Path
) -> None:
    """The two endings the scenarios accept, checked against runs that do and do not end so: a
    cancelled sync fails cleanly, until staging is left behind; a copy of a snapshot is the same,
    until one file differs."""
    destination = tmp_path / "backup"
    with EmulatorProcess(pages=30, seed=45, latency_ms=30) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        await export_undisturbed(temporal_client, settings, destination, batch_size=5)
        previous = (destination / "current").resolve()
        async with running_worker(temporal_client, settings):
            handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(destination), options=OPTIONS)
            )
            await wait_for(handle, lambda p: p.exported >= 3)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()

    assert_failed_cleanly(destination, previous)
    (destination / ".notion-sync" / "staging" / "left-over").mkdir(parents=True)
    with pytest.raises(AssertionError, match="staging left behind"):
        assert_failed_cleanly(destination, previous)

    copy = tmp_path / "copy"
    shutil.copytree(previous, copy)
    assert_same_snapshot(copy, previous)
    page = next((copy / "json" / "pages").iterdir())
    changed = page.read_bytes().replace(b'"archived": false', b'"archived": true', 1)
    page.unlink()
    page.write_bytes(changed)
    with pytest.raises(AssertionError, match="1 files differ"):
        assert_same_snapshot(copy, previous)
