"""Hostile local conditions: a destination deleted mid-export, links planted inside it, a tree too
deep for the file system, a full disk. Nothing broken is ever published, nothing is written outside."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from notion_sync.control import start_export
from notion_sync.exporter.layout import MAX_PATH_BYTES
from notion_sync.models import ExportInput, ExportOptions, ManifestObject, Phase
from tests.export.harness import EmulatorAndWorker, export_and_wait, wait_for

pytestmark = pytest.mark.slow


def _manifest(snapshot: Path) -> list[ManifestObject]:
    lines = (snapshot / "manifest.jsonl").read_text().splitlines()[1:]
    return [ManifestObject.model_validate_json(line) for line in lines]


async def test_a_destination_deleted_mid_export_is_never_published(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=80, seed=61, latency_ms=30) as (_, settings):
        request = ExportInput(
            destination=str(destination), options=ExportOptions(batch_size=5, max_parallel_batches=1)
        )
        handle = await start_export(temporal_client, settings, request)
        await wait_for(handle, lambda p: p.phase == Phase.EXPORTING and p.exported >= 10)
        shutil.rmtree(destination)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert "nothing was published" in str(failed.value.cause)
    assert not (destination / "current").exists()
    assert not list(destination.glob("snapshots/*"))


@pytest.mark.parametrize("planted", ["snapshots", ".notion-sync"])
async def test_links_planted_in_the_destination_are_never_written_through(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    destination: Path,
    tmp_path: Path,
    planted: str,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination.mkdir()
    (destination / planted).symlink_to(outside, target_is_directory=True)
    async with emulator_and_worker(pages=15, seed=62) as (_, settings):
        with pytest.raises(WorkflowFailureError) as refused:
            await export_and_wait(temporal_client, settings, destination)
    assert "symbolic link" in str(refused.value.cause)
    assert not list(outside.iterdir()), "something was written through the link"


async def test_a_tree_too_deep_for_the_file_system_lands_whole(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=10, seed=63) as (emulator, settings):
        found = httpx.post(
            f"{emulator.base_url}/v1/search",
            headers=emulator.headers,
            json={"filter": {"property": "object", "value": "page"}},
        ).json()["results"]
        chain = [next(p["id"] for p in found if p["parent"]["type"] == "workspace")]
        for depth in range(60):
            title = f"{depth:02d} " + "a long title to fill the path " * 3
            chain.append(
                emulator.mutate({"op": "create_page", "parent_id": chain[-1], "title": title[:80]})["id"]
            )
        report = await export_and_wait(temporal_client, settings, destination)
    assert report.counters.failed == 0 and report.counters.skipped == 0
    snapshot = destination / "current"
    placed = {o.id: o for o in _manifest(snapshot)}
    for page_id in chain[1:]:
        entry = placed[page_id]
        assert entry.status == "exported" and entry.path is not None
        assert len(entry.path.encode()) <= MAX_PATH_BYTES
        assert (snapshot / entry.path).is_file()
    problems = (snapshot / "problems.jsonl").read_text()
    assert "placed at the top level" in problems


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB file system of its own (tmpfs; the suite runs as root here and in CI)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_stops_at_once_and_says_so(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, small_disk: Path
) -> None:
    destination = small_disk / "backup"
    async with emulator_and_worker(pages=60, seed=64) as (_, settings):
        started = asyncio.get_running_loop().time()
        with pytest.raises(WorkflowFailureError) as full:
            await export_and_wait(temporal_client, settings, destination)
        elapsed = asyncio.get_running_loop().time() - started
    message = str(full.value.cause)
    assert "no space left on device" in message and "MB free" in message
    assert elapsed < 60, "a full disk is not retried for minutes"
    assert not (destination / "current").exists()
    assert not list((destination / ".notion-sync" / "staging").glob("*")), "staging was not removed"
