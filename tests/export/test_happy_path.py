"""A whole workspace exported through real Temporal and the emulator over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import Client

from notion_sync.control import start_export
from notion_sync.emulator.testing import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import running_worker, worker_settings


async def test_every_object_is_exported(temporal_client: Client, destination: Path, tmp_path: Path) -> None:
    with EmulatorProcess(pages=60, seed=11) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        async with running_worker(temporal_client, settings):
            handle = await start_export(
                temporal_client,
                settings,
                ExportInput(destination=str(destination), options=ExportOptions(batch_size=10)),
            )
            report = await handle.result()
            description = await handle.describe()
            metadata = await handle.query("__temporal_workflow_metadata")
        summary = emulator.workspace_summary()
    # What the Web UI shows: a static summary naming the destination, and readable current details.
    assert str(destination) in (await description.static_summary() or "")
    assert "**done**" in metadata.current_details
    assert "exported" in metadata.current_details
    assert report.status == "completed"
    current = destination / "current"
    assert current.is_symlink()
    lines = (current / "manifest.jsonl").read_text().splitlines()
    objects = [json.loads(line) for line in lines[1:]]
    pages = [o for o in objects if o["type"] == "page" and o["status"] == "exported"]
    data_sources = [o for o in objects if o["type"] == "data_source" and o["status"] == "exported"]
    assert len(pages) == summary["pages"] - summary["private_pages"]
    assert len(data_sources) == summary["data_sources"]
    for entry in objects:
        for file in entry["files"]:
            assert (current / file["path"]).is_file(), file
    assert not (destination / ".notion-sync" / "staging").exists() or not any(
        (destination / ".notion-sync" / "staging").iterdir()
    )
