"""Incremental sync against a full export, measured in one run.

Exports N generated pages, edits a share of them through the emulator's mutation API, syncs with a
changes-only listing (search newest first with an early stop, timestamp-filtered row queries), edits
another share, syncs with a full listing (the periodic one that also catches deletions), and prints
requests and wall time of each; with --verify, also exports the edited workspace afresh into a third
folder and checks that the syncs produced the same files.

    .venv/bin/python bench/sync_bench.py --pages 10000 --edit-percent 1 --latency-ms 20 --verify
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notion_sync.control import start_export
from notion_sync.devserver import free_port, start_dev_server
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportReport
from notion_sync.settings import Settings
from notion_sync.snapshot import read_manifest
from notion_sync.workers import build_worker
from tests.export.harness import snapshot_files


def api_requests(stats: dict[str, Any]) -> int:
    return sum(count for endpoint, count in stats["by_endpoint"].items() if " /v1/" in endpoint)


async def timed_export(
    client: Client, settings: Settings, destination: Path, **options: Any
) -> tuple[ExportReport, float]:
    started = time.monotonic()
    request = ExportInput(destination=str(destination), options=ExportOptions(**options))
    handle = await start_export(client, settings, request)
    report = await handle.result()
    return report, time.monotonic() - started


def edited_pages(destination: Path, share: float, seed: int) -> list[str]:
    with read_manifest(destination / "current") as (_header, entries):
        pages = sorted(e.id for e in entries if e.type == "page" and e.status == "exported")
    return random.Random(seed).sample(pages, max(1, round(len(pages) * share)))


async def same_as_fresh(client: Client, settings: Settings, fresh: Path, synced: Path) -> bool:
    await timed_export(client, settings, fresh)
    ours = snapshot_files((synced / "current").resolve())
    theirs = snapshot_files((fresh / "current").resolve())
    differing = sorted(p for p in ours.keys() | theirs.keys() if ours.get(p) != theirs.get(p))
    for path in differing[:5]:
        print(f"  differs from a fresh export: {path}")
    return not differing


async def run(args: argparse.Namespace, work: Path) -> None:
    server = start_dev_server(work / "temporal", port=free_port(), ui_port=None, persist=False)
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        with EmulatorProcess(
            pages=args.pages, seed=7, latency_ms=args.latency_ms, track_ids=False
        ) as emulator:
            base = Settings().model_dump()
            base.update(
                notion_token=SecretStr(emulator.token),
                notion_base_url=emulator.base_url,
                state_dir=work / "state",
                task_queue=f"bench-{uuid.uuid4().hex[:8]}",
                requests_per_second=0.0,
            )
            settings = Settings.model_construct(**base)
            with ThreadPoolExecutor(max_workers=16) as executor:
                async with build_worker(client, settings, executor):
                    synced = work / "synced"
                    full, full_s = await timed_export(client, settings, synced)
                    full_requests = api_requests(emulator.stats())

                    edits = edited_pages(synced, args.edit_percent / 100, seed=1)
                    for page_id in edits:
                        emulator.mutate({"op": "edit_page", "page_id": page_id})
                    emulator.reset()
                    sync, sync_s = await timed_export(client, settings, synced)
                    sync_requests = api_requests(emulator.stats())
                    verify = args.verify
                    same = await same_as_fresh(client, settings, work / "fresh", synced) if verify else None

                    for page_id in edited_pages(synced, args.edit_percent / 100, seed=2):
                        emulator.mutate({"op": "edit_page", "page_id": page_id})
                    emulator.reset()
                    listed, listed_s = await timed_export(client, settings, synced, full_listing_days=0)
                    listed_requests = api_requests(emulator.stats())
                    fresh = work / "fresh-2"
                    listed_same = await same_as_fresh(client, settings, fresh, synced) if verify else None
    finally:
        server.stop()

    pages = full.counters.exported
    print(
        f"sync benchmark: {args.pages} generated pages, {len(edits)} edited ({args.edit_percent}%), "
        f"emulator latency {args.latency_ms} ms, no rate limit, one in-process worker"
    )
    print(f"  full export: {pages} objects, {full_requests} API requests, {full_s:.1f} s")
    for name, report, requests, seconds, identical in (
        ("sync, changes listing", sync, sync_requests, sync_s, same),
        ("sync, full listing", listed, listed_requests, listed_s, listed_same),
    ):
        print(
            f"  {name}: {report.counters.exported} objects ({report.counters.reused} reused), "
            f"{requests} API requests, {seconds:.1f} s; listing {report.listing}"
        )
        print(f"    / full export: requests {requests / full_requests:.3f}, wall time {seconds / full_s:.3f}")
        if identical is not None:
            print(f"    output identical to a fresh export of the edited workspace: {identical}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--edit-percent", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
