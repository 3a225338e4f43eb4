"""Zero-downtime upgrades with worker versioning (docs/operations.md, "Upgrading workers").

Two builds run as real worker processes of one worker deployment on the dev server: build A is this
repository, build B a copy of it with a genuine change to the export workflow. An export starts on A;
B starts (and makes itself current, as a pod of a rolling update does), A gets SIGTERM, and the export
finishes on B. The change behind `workflow.patched` is harmless; the same change without it breaks the
running export with a non-determinism error, which is what the patch rule prevents. And a pod of the
older build that restarts mid-rollout does not make its build current again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent, WorkflowTaskFailedEventAttributes
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from notion_sync.control import start_export
from notion_sync.devserver import DevServer
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportReport
from notion_sync.settings import Settings
from notion_sync.workers import promote_build
from tests.export.harness import (
    REPO,
    running_worker,
    snapshot_files,
    wait_for,
    worker_process,
    worker_settings,
)
from workflows.export import ExportWorkflow

# What a release ships: the copy of the repository that build B runs.
CODE = ("activities", "notion_sync", "workflows", "worker.py")
# Build B's change goes at the start of a run: the part of the workflow that the running export has
# already been through, which B replays when the export moves to it.
ANCHOR = "        staging = StagingRef(destination=request.destination, staging_id=self._state.staging_id)\n"
PATCHED_CHANGE = (
    '        if workflow.patched("upgrade-test"):\n'
    "            await workflow.sleep(timedelta(milliseconds=200))\n"
)
UNPATCHED_CHANGE = "        await workflow.sleep(timedelta(milliseconds=200))\n"
PAGES = 60
FAST_MS = 10
SLOW_MS = 2000
OPTIONS = ExportOptions(batch_size=10, max_parallel_batches=2, worker_lost_after_seconds=10)


def build_with_change(change: str, root: Path) -> Path:
    """A copy of the repository's code with `change` inserted into the export workflow."""
    for name in CODE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    workflow_file = root / "workflows" / "export.py"
    text = workflow_file.read_text()
    assert text.count(ANCHOR) == 1, "the export workflow changed: move ANCHOR"
    workflow_file.write_text(text.replace(ANCHOR, ANCHOR + change))
    return root


@contextlib.contextmanager
def build_worker_process(
    settings: Settings, address: str, root: Path, deployment: str, build_id: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python worker.py` of the code under `root`, as build `build_id` of `deployment`."""
    build = {"NOTION_SYNC_DEPLOYMENT_NAME": deployment, "NOTION_SYNC_BUILD_ID": build_id}
    with (
        log.open("ab") as output,
        worker_process(settings, address, output, root=root, extra_env=build) as process,
    ):
        yield process


async def wait_until_current(client: Client, deployment: str, build_id: str, timeout: float = 30) -> None:
    request = DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    deadline = asyncio.get_running_loop().time() + timeout
    current = ""
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(RPCError):  # the deployment exists once a worker has polled
            described = await client.workflow_service.describe_worker_deployment(request)
            current = described.worker_deployment_info.routing_config.current_deployment_version.build_id
            if current == build_id:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"build {build_id!r} of {deployment} is not current (current: {current!r})")


async def stop_like_kubernetes(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0


async def events(handle: WorkflowHandle[ExportWorkflow, ExportReport]) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


def builds_that_completed_tasks(history: list[HistoryEvent]) -> set[str]:
    completed = [e for e in history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    return {e.workflow_task_completed_event_attributes.deployment_version.build_id for e in completed}


def patches(history: list[HistoryEvent]) -> set[str]:
    """The ids of the patches a run recorded (`workflow.patched` returning True)."""
    markers = [e.marker_recorded_event_attributes for e in history]
    patch_markers = [m for m in markers if m.marker_name == "core_patch"]
    return {json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in patch_markers}


def count(history: list[HistoryEvent], event_type: EventType.ValueType) -> int:
    return sum(1 for e in history if e.event_type == event_type)


async def start_mid_export_upgrade(
    client: Client,
    emulator: EmulatorProcess,
    settings: Settings,
    address: str,
    new_build: Path,
    destination: Path,
    logs: Path,
) -> tuple[WorkflowHandle[ExportWorkflow, ExportReport], contextlib.ExitStack]:
    """Build A serves an export until it is well under way; build B starts and becomes current; A gets
    SIGTERM and exits, with batches in flight. Returns the export and the stack holding B's process."""
    deployment = f"notion-sync-{uuid.uuid4().hex[:8]}"
    stack = contextlib.ExitStack()
    try:
        a_log = logs / "a.log"
        old = stack.enter_context(build_worker_process(settings, address, REPO, deployment, "a", a_log))
        await wait_until_current(client, deployment, "a")
        request = ExportInput(destination=str(destination), options=OPTIONS)
        handle = await start_export(client, settings, request)
        progress = await wait_for(handle, lambda p: p.exported >= 10)
        assert progress.exported < PAGES / 2, "the export was nearly over before the upgrade: slow it down"
        # Notion slows down while the pods change (a busy machine takes seconds to start a worker), so
        # that the export is still exporting, with batches in flight on A, when A stops.
        emulator.configure(latency_ms=SLOW_MS)
        b_log = logs / "b.log"
        stack.enter_context(build_worker_process(settings, address, new_build, deployment, "b", b_log))
        await wait_until_current(client, deployment, "b")
        await stop_like_kubernetes(old)
        emulator.configure(latency_ms=FAST_MS)
        return handle, stack
    except BaseException:
        stack.close()  # no worker process left behind
        raise


async def test_export_started_on_the_old_build_finishes_on_the_new_one(
    temporal_client: Client, temporal_server: DevServer, tmp_path: Path
) -> None:
    new_build = build_with_change(PATCHED_CHANGE, tmp_path / "build-b")
    with EmulatorProcess(pages=PAGES, seed=31, latency_ms=FAST_MS) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", page_concurrency=4)
        upgraded = tmp_path / "upgraded"
        handle, new_worker = await start_mid_export_upgrade(
            temporal_client, emulator, settings, temporal_server.address, new_build, upgraded, tmp_path
        )
        with new_worker:
            # A new export, all on build B, runs B's change and is the reference for the snapshot.
            fresh = tmp_path / "fresh"
            fresh_handle = await start_export(
                temporal_client, settings, ExportInput(destination=str(fresh), options=OPTIONS)
            )
            report, _ = await asyncio.wait_for(
                asyncio.gather(handle.result(), fresh_handle.result()), timeout=90
            )
            upgraded_history = await events(handle)
            fresh_history = await events(fresh_handle)

    assert report.status == "completed" and report.counters.failed == 0
    assert report.counters.exported >= PAGES
    assert snapshot_files((upgraded / "current").resolve()) == snapshot_files((fresh / "current").resolve())
    # The running export really moved from A to B, and no workflow task failed on the way.
    assert builds_that_completed_tasks(upgraded_history) == {"a", "b"}
    assert count(upgraded_history, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) == 0
    # It kept the old path (no timer); a new export takes the new one, behind its patch marker.
    assert count(upgraded_history, EventType.EVENT_TYPE_TIMER_STARTED) == 0
    assert "upgrade-test" not in patches(upgraded_history)
    assert count(fresh_history, EventType.EVENT_TYPE_TIMER_STARTED) == 1
    assert "upgrade-test" in patches(fresh_history)
    assert builds_that_completed_tasks(fresh_history) == {"b"}


async def test_a_change_not_behind_patched_breaks_the_running_export(
    temporal_client: Client, temporal_server: DevServer, tmp_path: Path
) -> None:
    new_build = build_with_change(UNPATCHED_CHANGE, tmp_path / "build-b")
    with EmulatorProcess(pages=PAGES, seed=32, latency_ms=FAST_MS) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", page_concurrency=4)
        address = temporal_server.address
        destination = tmp_path / "out"
        handle, new_worker = await start_mid_export_upgrade(
            temporal_client, emulator, settings, address, new_build, destination, tmp_path
        )
        with new_worker:
            try:
                failure = await wait_for_workflow_task_failure(handle, timeout=30)
            finally:
                await handle.terminate("negative control of the upgrade test")

    assert failure.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    assert "nondetermin" in failure.failure.message.lower()


async def wait_for_workflow_task_failure(
    handle: WorkflowHandle[ExportWorkflow, ExportReport], timeout: float
) -> WorkflowTaskFailedEventAttributes:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for event in await events(handle):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes
        await asyncio.sleep(0.5)
    raise TimeoutError("no workflow task failed: build B replayed the export's history without complaint")


async def test_a_restarting_pod_of_the_previous_build_does_not_take_the_deployment_back(
    temporal_client: Client, tmp_path: Path
) -> None:
    deployment = f"notion-sync-{uuid.uuid4().hex[:8]}"
    fields = {"notion_token": SecretStr("unused"), "task_queue": f"test-{uuid.uuid4().hex[:8]}"}
    fields |= {"state_dir": tmp_path, "deployment_name": deployment}
    old = Settings.model_construct(**{**Settings().model_dump(), **fields, "build_id": "a"})
    new = Settings.model_construct(**{**Settings().model_dump(), **fields, "build_id": "b"})
    async with running_worker(temporal_client, old):
        assert await promote_build(temporal_client, old, within_s=30)
        async with running_worker(temporal_client, new):
            assert await promote_build(temporal_client, new, within_s=30)
            # A first polled before b: it is the older release, and b stays current.
            assert not await promote_build(temporal_client, old, within_s=30)
            await wait_until_current(temporal_client, deployment, "b", timeout=1)
