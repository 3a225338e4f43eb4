"""A restore at Notion's rate limit: requests per page, share of the budget used, 429s, wall time.

Exports N generated pages from one emulator (no rate limit), then restores that snapshot into an
empty emulated workspace that enforces `--rate` requests/s (token bucket, `--burst`), with the
restore's own request budget at the same rate (the default, `NOTION_SYNC_RATE=3`) and the default
burst (`NOTION_SYNC_BURST`), one worker in this process. The target emulator counts every request
and every 429 it answered.

    .venv/bin/python bench/restore_bench.py --pages 1000 --rate 3 --burst 10
"""

from __future__ import annotations

import argparse
import asyncio
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
from notion_sync.models import ExportInput, RestoreInput
from notion_sync.settings import Settings
from notion_sync.workers import build_worker
from workflows.restore import RestoreWorkflow


def settings_for(emulator: EmulatorProcess, work: Path, name: str, rate: float) -> Settings:
    base = Settings().model_dump()
    base.update(
        notion_token=SecretStr(emulator.token),
        notion_base_url=emulator.base_url,
        state_dir=work / f"state-{name}",
        task_queue=f"bench-{name}-{uuid.uuid4().hex[:8]}",
        requests_per_second=rate,
    )
    return Settings.model_construct(**base)


async def run(args: argparse.Namespace, work: Path) -> None:
    server = start_dev_server(work / "temporal", port=free_port(), ui_port=None, persist=False)
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        with ThreadPoolExecutor(max_workers=16) as executor:
            with EmulatorProcess(pages=args.pages, seed=args.seed, track_ids=False) as source:
                settings = settings_for(source, work, "source", 0.0)
                async with build_worker(client, settings, executor):
                    request = ExportInput(destination=str(work / "backup"))
                    exported = await (await start_export(client, settings, request)).result()
            with EmulatorProcess(pages=0, seed=args.seed, rate=args.rate, burst=args.burst) as target:
                settings = settings_for(target, work, "target", args.rate)
                root = target.workspace_summary()["root_page_id"]
                target.reset()
                async with build_worker(client, settings, executor):
                    started = time.monotonic()
                    handle = await client.start_workflow(
                        RestoreWorkflow.run,
                        RestoreInput(source=str(work / "backup"), target=root, workspace=settings.workspace),
                        id=f"restore-{uuid.uuid4().hex[:8]}",
                        task_queue=settings.task_queue,
                    )
                    result = asyncio.ensure_future(handle.result())
                    while not result.done():
                        await asyncio.wait([result], timeout=60)
                        seen = target.stats()
                        elapsed = time.monotonic() - started
                        sent, refused = seen["requests_total"], seen["rate_limited_total"]
                        print(
                            f"  {elapsed:.0f} s: {sent} requests ({sent / elapsed:.2f} req/s), "
                            f"{refused} x 429"
                        )
                    report = result.result()
                    seconds = time.monotonic() - started
                stats: dict[str, Any] = target.stats()
                created = target.workspace_summary()["created"]
    finally:
        server.stop()
    requests = int(stats["requests_total"])
    pages = int(created["pages"])
    print(
        f"restore benchmark: {args.pages} generated pages exported ({exported.counters.exported} objects), "
        f"restored into an empty workspace; emulator at {args.rate} req/s (burst {args.burst}), the "
        f"restore's budget at {args.rate} req/s (default burst)"
    )
    print(f"  status {report.status}; created: {created}")
    print(f"  requests: {requests} ({requests / max(pages, 1):.2f} per page created)")
    achieved = requests / seconds
    print(
        f"  wall time: {seconds:.0f} s; achieved {achieved:.2f} req/s = "
        f"{achieved / args.rate:.0%} of the budget"
    )
    print(f"  429 answers: {stats['rate_limited_total']}; by status: {stats['by_status']}")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--burst", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
