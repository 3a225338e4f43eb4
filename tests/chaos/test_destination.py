"""The destination's disk fills up mid-export: the run fails at once with a message that names the
destination and the space, staging and the export index are removed, and the previous snapshot stays
`current` and verifies. Once there is room again, the next run completes identical to it."""

from __future__ import annotations

import asyncio
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from notion_sync.control import start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from notion_sync.snapshot import current_snapshot
from tests.chaos.harness import assert_failed_cleanly, assert_same_snapshot, disk_for, record_recovery
from tests.chaos.test_workers import reaped, spawn_worker, wait_for_poller
from tests.export.harness import export_and_wait, running_worker, worker_settings

pytestmark = pytest.mark.chaos

TMPFS_MB = 40
# Room left for the second run: less than the showcase page's 8 MiB file, which a full refresh
# downloads again, and the pages staged before it.
FREE_MB = 2
# Under the rlimit variant no file of the worker may grow past this (the 8 MiB file cannot).
FILE_LIMIT_MB = 4
OPTIONS = ExportOptions(batch_size=5, max_parallel_batches=2, full_refresh=True)
CLEAR_FAILURE_S = 60


def leave_free(folder: Path, megabytes: int) -> Path:
    """Fills `folder`'s file system with one file until `megabytes` are left; delete it to free."""
    filler = folder / "filler"
    size = shutil.disk_usage(folder).free - megabytes * 2**20
    with filler.open("wb") as out:
        out.truncate(0)
        chunk = b"\0" * 2**20
        for _ in range(size // len(chunk)):
            out.write(chunk)
    return filler


def file_size_limit() -> None:
    """Runs in the worker before exec. Python ignores SIGXFSZ, so a write past it fails with EFBIG."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_MB * 2**20, resource.RLIM_INFINITY))


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
async def test_destination_disk_full_mid_export_fails_cleanly_and_keeps_current(
    how: str, temporal_client: Client, temporal_server: object, tmp_path: Path
) -> None:
    address = temporal_server.address  # type: ignore[attr-defined]
    disk = disk_for(how, tmp_path / "disk", TMPFS_MB)
    with disk as folder, EmulatorProcess(pages=40, seed=173, latency_ms=5) as emulator:
        destination = folder / "backup"
        settings = worker_settings(emulator, tmp_path / "state")
        # The undisturbed twin: the same two runs (an export, then a sync) where nothing fails.
        reference = tmp_path / "reference"
        async with running_worker(temporal_client, settings):
            for _ in range(2):
                await export_and_wait(temporal_client, settings, reference)
            first = await export_and_wait(temporal_client, settings, destination)
        assert first.status == "completed", first
        previous = current_snapshot(destination)
        assert previous is not None

        filler = leave_free(folder, FREE_MB) if how == "tmpfs" else None
        limit: Callable[[], None] | None = file_size_limit if how == "rlimit" else None
        with reaped([spawn_worker(settings, address, limit)]):
            await wait_for_poller(temporal_client, settings.task_queue)
            started = time.monotonic()
            request = ExportInput(destination=str(destination), options=OPTIONS)
            handle = await start_export(temporal_client, settings, request)
            with pytest.raises(WorkflowFailureError) as failed:
                await asyncio.wait_for(handle.result(), timeout=300)
            elapsed = time.monotonic() - started

        message = str(failed.value.cause)
        assert str(destination) in message, message
        if how == "tmpfs":
            assert "no space left on device" in message and "MB free" in message, message
        else:
            assert "file size limit" in message and f"{FILE_LIMIT_MB} MB" in message, message
        assert elapsed < CLEAR_FAILURE_S, f"a full disk took {elapsed:.0f} s to fail: retried, not stopped"
        assert_failed_cleanly(destination, previous)

        # Room again: the next run (a sync) completes, identical to the twin's sync (not compared with
        # `previous` itself: a publish may repack the snapshot before it).
        if filler is not None:
            filler.unlink()
        lifted = time.monotonic()
        async with running_worker(temporal_client, settings):
            again = await export_and_wait(temporal_client, settings, destination)
        record_recovery(f"destination-disk-full-{how}", time.monotonic() - lifted)
        assert again.status == "completed" and again.counters.failed == 0, again
        assert current_snapshot(destination) != previous
        assert_same_snapshot(destination, reference)
