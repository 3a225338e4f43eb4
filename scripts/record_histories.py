"""Records the export histories that tests/export/test_replay.py replays against today's workflow.

Re-record only after a deliberate, versioned change to the workflow (one behind `workflow.patched`),
never to make a replay failure go away: that failure is the nondeterminism the histories are there
to catch.

    .venv/bin/python scripts/record_histories.py [--out tests/export/histories]

It starts its own Temporal dev server and emulator, runs a chained export (`batches_per_run`, so the
first and the last run of a continue-as-new chain) and a changes-only sync, and writes
`first_run.json`, `last_run.json` and `sync_changes.json` into the folder.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

from notion_sync.control import start_export  # noqa: E402
from notion_sync.devserver import free_port, start_dev_server  # noqa: E402
from notion_sync.emulator.process import EmulatorProcess  # noqa: E402
from notion_sync.models import ExportInput, ExportOptions  # noqa: E402
from notion_sync.snapshot import read_manifest  # noqa: E402
from tests.export.harness import running_worker, worker_settings  # noqa: E402

HISTORIES = REPO / "tests" / "export" / "histories"


async def record_chained_export(client: Client, work: Path, out: Path) -> None:
    """An export continued as new every three batches: the chain's first and last run."""
    with EmulatorProcess(pages=30, seed=41) as emulator:
        settings = worker_settings(emulator, work / "state")
        async with running_worker(client, settings):
            options = ExportOptions(batch_size=5, max_parallel_batches=2, batches_per_run=3)
            request = ExportInput(destination=str(work / "chained"), options=options)
            handle = await start_export(client, settings, request)
            await handle.result()
            first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
            last = client.get_workflow_handle(handle.id)
            (out / "first_run.json").write_text((await first.fetch_history()).to_json())
            (out / "last_run.json").write_text((await last.fetch_history()).to_json())


async def record_changes_sync(client: Client, work: Path, out: Path) -> None:
    """A sync with a changes-only listing: carry-over, newest-first search, filtered queries."""
    with EmulatorProcess(pages=30, seed=42) as emulator:
        settings = worker_settings(emulator, work / "state")
        async with running_worker(client, settings):
            options = ExportOptions(batch_size=5, max_parallel_batches=2)
            request = ExportInput(destination=str(work / "synced"), options=options)
            await (await start_export(client, settings, request)).result()
            with read_manifest(work / "synced" / "current") as (_header, entries):
                page = next(e.id for e in entries if e.type == "page")
            emulator.mutate({"op": "edit_page", "page_id": page})
            handle = await start_export(client, settings, request)
            report = await handle.result()
            if report.listing != "changes":
                raise SystemExit(f"the sync listed {report.listing!r}, not only the changes")
            (out / "sync_changes.json").write_text((await handle.fetch_history()).to_json())


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="record-histories-") as folder:
        work = Path(folder)
        server = start_dev_server(work / "temporal", port=free_port(), ui_port=None, persist=False)
        try:
            client = await Client.connect(server.address, data_converter=pydantic_data_converter)
            await record_chained_export(client, work, out)
            await record_changes_sync(client, work, out)
        finally:
            server.stop()
    print(f"recorded {', '.join(sorted(p.name for p in out.glob('*.json')))} in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HISTORIES, help="folder for the histories")
    asyncio.run(main(parser.parse_args().out))
