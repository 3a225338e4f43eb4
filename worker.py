"""Runs a Notion Sync worker: `python worker.py` (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker

from activities.discovery import DiscoveryActivities
from activities.export import ExportActivities
from activities.scheduling import SchedulingActivities
from activities.staging import StagingActivities
from notion_sync import observability
from notion_sync.settings import Settings
from notion_sync.workers import WorkerGroup
from notion_sync.workspaces import (
    CredentialsError,
    WorkspaceCredential,
    activity_queue,
    load_credentials,
    settings_for,
)
from workflows.export import ExportWorkflow
from workflows.scheduled import ScheduledExportWorkflow


async def connect(settings: Settings, address: str | None = None, runtime: Runtime | None = None) -> Client:
    target = address or settings.temporal_address or "127.0.0.1:7233"
    return await Client.connect(
        target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        # Starting an export opens its trace; workers built on this client inherit the interceptor.
        interceptors=[observability.tracing_interceptor()],
        runtime=runtime,
    )


def build_worker(
    client: Client,
    settings: Settings,
    executor: ThreadPoolExecutor,
    credentials: dict[str, WorkspaceCredential] | None = None,
) -> WorkerGroup:
    """The workflows' worker, and one activity worker per workspace held (by default every workspace
    in the settings). Any number of processes may serve the same queues."""
    held = load_credentials(settings) if credentials is None else credentials
    interceptors: list[Interceptor] = [observability.MetricsInterceptor()]
    if not any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"]):
        interceptors.insert(0, observability.tracing_interceptor())
    common: dict[str, Any] = {
        "activity_executor": executor,
        "interceptors": interceptors,
        # Eager activities would all run on the worker that ran the workflow task, leaving the
        # others idle, and would bypass any task-queue rate limit.
        "disable_eager_activity_execution": True,
        # Heartbeats carry cancellation (pause, cancel): send them often enough to stop within seconds.
        "max_heartbeat_throttle_interval": timedelta(seconds=2),
        "default_heartbeat_throttle_interval": timedelta(seconds=2),
    }
    workers = [
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[ExportWorkflow, ScheduledExportWorkflow],
            activities=[SchedulingActivities(settings).start_or_attach_export],
            max_concurrent_activities=settings.activity_slots,
            **common,
        )
    ]
    for credential in held.values():
        observability.register_secret(credential.token.get_secret_value())
        scoped = settings_for(settings, credential)
        discovery = DiscoveryActivities(scoped)
        export = ExportActivities(scoped)
        staging = StagingActivities(scoped)
        workers.append(
            Worker(
                client,
                task_queue=activity_queue(settings.task_queue, credential.name),
                activities=[
                    discovery.identify_workspace,
                    discovery.carry_over,
                    discovery.discover_pages,
                    discovery.discover_data_sources,
                    discovery.resolve_references,
                    discovery.export_users,
                    export.assign_paths,
                    export.export_batch,
                    export.write_tables,
                    staging.prepare_staging,
                    staging.check_shrink,
                    staging.publish_snapshot,
                    staging.discard_staging,
                    staging.record_report,
                ],
                max_concurrent_activities=settings.activity_slots,
                **common,
            )
        )
    return WorkerGroup(workers)


async def run_worker(
    settings: Settings,
    client: Client | None = None,
    credentials: dict[str, WorkspaceCredential] | None = None,
) -> None:
    held = load_credentials(settings) if credentials is None else credentials
    if not held:
        raise CredentialsError(
            "no workspace credential: set NOTION_TOKEN, NOTION_SYNC_CREDENTIALS_FILE "
            "or NOTION_SYNC_CREDENTIALS_DIR"
        )
    observability.configure_tracing(settings)
    # The Prometheus runtime must exist before the client; a given client keeps its own runtime.
    client = client or await connect(settings, runtime=observability.metrics_runtime(settings))
    # Synchronous activities take a thread each while they run: one pool for every workspace's slots.
    with ThreadPoolExecutor(max_workers=settings.activity_slots * (len(held) + 1)) as executor:
        workers = build_worker(client, settings, executor, held)
        async with observability.health_server(settings.health_port, client, workers):
            await workers.run()


def configure_logging(filename: Path | None = None) -> None:
    """INFO and up to stderr, or to a file when a terminal belongs to a progress bar.

    NOTION_SYNC_LOG_FORMAT=json gives one JSON object per line with the Temporal and Notion ids.
    """
    if filename is not None:
        filename.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(filename) if filename is not None else logging.StreamHandler()
    handler.setFormatter(observability.log_formatter(Settings().log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per HTTP request would drown everything else at workspace scale.
    for noisy in ("httpx", "notion_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _main() -> None:
    """`python worker.py`: SIGTERM (Kubernetes, docker stop) cancels the run; in-flight activities resume
    elsewhere from their heartbeats, so no graceful drain is needed to lose nothing."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run_worker(Settings())
    except asyncio.CancelledError:
        logging.getLogger("worker").info("SIGTERM: worker stopped")


if __name__ == "__main__":
    configure_logging()
    asyncio.run(_main())
