"""Runs a Notion Sync worker: `python worker.py` (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities import staging
from activities.discovery import DiscoveryActivities
from activities.export import ExportActivities
from notion_sync.settings import Settings
from workflows.export import ExportWorkflow


async def connect(settings: Settings, address: str | None = None) -> Client:
    target = address or settings.temporal_address or "127.0.0.1:7233"
    return await Client.connect(
        target, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    """One worker serves the workflow and every activity; any number of them may share a queue."""
    discovery = DiscoveryActivities(settings)
    export = ExportActivities(settings)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ExportWorkflow],
        activities=[
            discovery.discover_pages,
            discovery.discover_data_sources,
            discovery.resolve_references,
            discovery.export_users,
            export.assign_paths,
            export.export_batch,
            export.write_tables,
            staging.prepare_staging,
            staging.publish_snapshot,
            staging.discard_staging,
            staging.record_report,
        ],
        activity_executor=executor,
        max_concurrent_activities=16,
        # Heartbeats carry cancellation (pause, cancel): send them often enough to stop within seconds.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        default_heartbeat_throttle_interval=timedelta(seconds=2),
    )


async def run_worker(settings: Settings, client: Client | None = None) -> None:
    settings.token()
    client = client or await connect(settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        await build_worker(client, settings, executor).run()


def configure_logging(filename: Path | None = None) -> None:
    """INFO and up to stderr, or to a file when a terminal belongs to a progress bar."""
    if filename is not None:
        filename.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=filename,
        force=True,
    )
    # One line per HTTP request would drown everything else at workspace scale.
    for noisy in ("httpx", "notion_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    configure_logging()
    asyncio.run(run_worker(Settings()))
