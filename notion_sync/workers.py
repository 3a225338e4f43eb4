"""The Temporal workers of one process, run and stopped together.

One polls the workflows' task queue; one more per workspace the process holds polls that
workspace's activity queue, with that workspace's credential and its own activity slots, so a large
export of one workspace never takes the slots of another.

With NOTION_SYNC_DEPLOYMENT_NAME and NOTION_SYNC_BUILD_ID set, every worker of the process belongs to
that build of a Temporal worker deployment: workflows auto-upgrade to the deployment's current build,
and a new build makes itself current once it polls (docs/operations.md, "Upgrading workers").
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Any

from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.worker import Interceptor, Worker, WorkerDeploymentConfig

from activities.discovery import DiscoveryActivities
from activities.export import ExportActivities
from activities.restore import RestoreActivities
from activities.scheduling import SchedulingActivities
from activities.staging import StagingActivities
from notion_sync import observability
from notion_sync.control import connect
from notion_sync.schedules import SCHEDULE_PREFIX
from notion_sync.settings import Settings
from notion_sync.workspaces import (
    CredentialsError,
    WorkspaceCredential,
    activity_queue,
    load_credentials,
    settings_for,
)
from workflows.export import ExportWorkflow
from workflows.restore import RestoreWorkflow
from workflows.scheduled import ScheduledExportWorkflow

log = logging.getLogger(__name__)
# How long a new build waits for the server to list its version (registered by its first poll).
PROMOTE_WITHIN_S = 60.0


class WorkerGroup:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._stack: AsyncExitStack | None = None

    @property
    def is_running(self) -> bool:
        return all(worker.is_running for worker in self.workers)

    @property
    def is_shutdown(self) -> bool:
        return any(worker.is_shutdown for worker in self.workers)

    async def run(self) -> None:
        """Runs every worker until one fails or the caller is cancelled, then stops them all."""
        async with asyncio.TaskGroup() as group:
            for worker in self.workers:
                group.create_task(worker.run())

    async def __aenter__(self) -> WorkerGroup:
        async with AsyncExitStack() as stack:
            for worker in self.workers:
                await stack.enter_async_context(worker)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            await self._stack.__aexit__(exc_type, exc, tb)
            self._stack = None


def build_worker(
    client: Client,
    settings: Settings,
    executor: ThreadPoolExecutor,
    credentials: dict[str, WorkspaceCredential] | None = None,
) -> WorkerGroup:
    """The workflows' worker, and one activity worker per workspace held (by default every workspace
    in the settings). Any number of processes may serve the same queues."""
    held = load_credentials(settings) if credentials is None else credentials
    tracing: list[Interceptor] = []
    if not any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"]):
        tracing.append(observability.tracing_interceptor())
    common: dict[str, Any] = {
        "activity_executor": executor,
        # Eager activities would all run on the worker that ran the workflow task, leaving the
        # others idle, and would bypass any task-queue rate limit.
        "disable_eager_activity_execution": True,
        # Heartbeats carry cancellation (pause, cancel): send them often enough to stop within seconds.
        "max_heartbeat_throttle_interval": timedelta(seconds=2),
        "default_heartbeat_throttle_interval": timedelta(seconds=2),
        "deployment_config": deployment_config(settings),
    }
    workers = [
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[ExportWorkflow, ScheduledExportWorkflow, RestoreWorkflow],
            activities=[SchedulingActivities(settings).start_or_attach_export],
            max_concurrent_activities=settings.activity_slots,
            interceptors=[*tracing, observability.MetricsInterceptor(exports=export_tracker(client))],
            **common,
        )
    ]
    for credential in held.values():
        observability.register_secret(credential.token.get_secret_value())
        scoped = settings_for(settings, credential)
        discovery = DiscoveryActivities(scoped)
        export = ExportActivities(scoped)
        staging = StagingActivities(scoped)
        restore = RestoreActivities(scoped)
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
                    restore.prepare_restore,
                    restore.create_shells,
                    restore.fill_content,
                    restore.link_objects,
                    restore.write_restore_report,
                    restore.undo_restore,
                ],
                max_concurrent_activities=settings.activity_slots,
                interceptors=[*tracing, observability.MetricsInterceptor(workspace=credential.name)],
                **common,
            )
        )
    return WorkerGroup(workers)


def export_tracker(client: Client) -> observability.ExportTracker:
    """The export gauges of the client's runtime: the one its Prometheus endpoint (if any) serves."""
    return observability.export_tracker(client.service_client.config.runtime or Runtime.default())


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker deployment version of this process, or None when versioning is off."""
    if settings.deployment_name is None or settings.build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=settings.deployment_name, build_id=settings.build_id),
        use_worker_versioning=True,
        # A running export moves to the current build at its next workflow task, so old pods need not
        # outlive their exports; every workflow change is behind workflow.patched (tests/ops/test_upgrade.py).
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


async def promote_build(client: Client, settings: Settings, within_s: float = PROMOTE_WITHIN_S) -> bool:
    """Makes this process's build the deployment's current version, unless the current one is newer
    (first polled after ours: a pod of the previous release restarting mid-rollout must not take the
    deployment back). True once ours is current; problems are logged, the workers serve regardless."""
    assert settings.deployment_name is not None and settings.build_id is not None
    deadline = asyncio.get_running_loop().time() + within_s
    describe = DescribeWorkerDeploymentRequest(
        namespace=client.namespace, deployment_name=settings.deployment_name
    )
    while asyncio.get_running_loop().time() < deadline:
        try:
            described = await client.workflow_service.describe_worker_deployment(describe)
        except RPCError:
            # Not found until the first worker of the deployment has polled.
            await asyncio.sleep(0.5)
            continue
        info = described.worker_deployment_info
        # When the server first saw each build poll: the later one is the newer release.
        created = {
            v.deployment_version.build_id: v.create_time.ToNanoseconds() for v in info.version_summaries
        }
        current = info.routing_config.current_deployment_version.build_id
        if current == settings.build_id:
            return True
        if settings.build_id not in created:
            await asyncio.sleep(0.5)
            continue
        if current in created and created[current] > created[settings.build_id]:
            log.warning(
                "build %s stays non-current: build %s, first seen after it, is current",
                settings.build_id,
                current,
            )
            return False
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=settings.deployment_name,
                    build_id=settings.build_id,
                    conflict_token=described.conflict_token,
                    identity=client.identity,
                )
            )
        except RPCError as error:
            # Another pod changed the deployment meanwhile, or not every queue is polled yet: look again.
            log.info("making build %s current: %s; retrying", settings.build_id, error.message)
            await asyncio.sleep(0.5)
            continue
        log.info("build %s of %s is now current", settings.build_id, settings.deployment_name)
        return True
    log.error(
        "build %s did not become current within %.0f s: set it with "
        "`temporal worker deployment set-current-version`",
        settings.build_id,
        within_s,
    )
    return False


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
        budgets = {name: settings_for(settings, held[name]).requests_per_second for name in held}
        async with (
            observability.health_server(settings.health_port, client, workers),
            observability.refreshing_gauges(client, export_tracker(client), budgets, SCHEDULE_PREFIX),
        ):
            if settings.deployment_name is None:
                await workers.run()
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(workers.run())
                group.create_task(promote_build(client, settings))
