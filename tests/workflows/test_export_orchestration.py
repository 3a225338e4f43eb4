"""The export workflow's orchestration alone: the real `ExportWorkflow` on the session's dev server,
its activities replaced by stubs registered under the same names on the workspace's queue. Phase
order, pause bookkeeping and continue-as-new, in seconds and without Notion or a disk."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Worker

from activities.discovery import DiscoveryActivities
from activities.export import ExportActivities
from activities.staging import StagingActivities
from notion_sync.models import (
    BatchInput,
    BatchResult,
    CarryOverInput,
    CarryOverResult,
    Counters,
    DiscoverInput,
    DiscoverResult,
    ExportInput,
    ExportOptions,
    ExportProgress,
    ExportReport,
    ExportState,
    LayoutInput,
    LayoutResult,
    Phase,
    PrepareInput,
    PreviousSnapshot,
    PublishInput,
    PublishResult,
    ReportInput,
    ShrinkCheck,
    ShrinkInput,
    StagingRef,
    TablesInput,
    TablesResult,
    UsersResult,
    WorkspaceIdentity,
)
from notion_sync.workspaces import activity_queue
from workflows.export import ExportWorkflow

WORKSPACE = "default"
PAGES = 18  # what the stub listing finds, over two pages of search results; and two data sources
BATCH_SECONDS = 0.2  # long enough for batches to overlap, so a parallelism cap can show
TABLES_CURSOR = 51  # the first write_tables stub call stops here, the second finishes


class StubActivities:
    """The workflow's activities, recording what they were asked; a batch costs one request a page.

    `references` are the objects each `resolve_references` call finds (then none); the first `hold`
    batches wait, heartbeating, until they are cancelled (by a pause)."""

    def __init__(self, references: tuple[int, ...] = (), hold: int = 0) -> None:
        self.calls: list[str] = []
        self.arguments: dict[str, list[object]] = {}  # the cursor each listing call was given
        self.batches: list[tuple[int, int]] = []  # every batch started, in order
        self.finished: list[tuple[int, int]] = []
        self.cancelled: list[tuple[int, int]] = []
        self.most_at_once = 0
        self._running = 0
        self._references = list(references)
        self._hold = hold
        self._found = PAGES + 2

    def _called(self, name: str, argument: object = None) -> None:
        self.calls.append(name)
        self.arguments.setdefault(name, []).append(argument)

    @activity.defn(name="identify_workspace")
    async def identify_workspace(self, staging: StagingRef) -> WorkspaceIdentity:
        self._called("identify_workspace")
        return WorkspaceIdentity(bot_id="stub-bot", workspace_name="Stub")

    @activity.defn(name="prepare_staging")
    async def prepare_staging(self, request: PrepareInput) -> PreviousSnapshot | None:
        self._called("prepare_staging")
        return None  # nothing published yet: a first export

    @activity.defn(name="carry_over")
    async def carry_over(self, request: CarryOverInput) -> CarryOverResult:
        self._called("carry_over")
        raise AssertionError("a first export has nothing to carry over")

    @activity.defn(name="discover_pages")
    async def discover_pages(self, request: DiscoverInput) -> DiscoverResult:
        self._called("discover_pages", request.cursor)
        if request.cursor is None:
            return DiscoverResult(next_cursor="page-2", discovered=PAGES // 2, api_requests=1)
        return DiscoverResult(next_cursor=None, discovered=PAGES - PAGES // 2, api_requests=1)

    @activity.defn(name="discover_data_sources")
    async def discover_data_sources(self, request: DiscoverInput) -> DiscoverResult:
        self._called("discover_data_sources", request.cursor)
        return DiscoverResult(next_cursor=None, discovered=2, api_requests=3)

    @activity.defn(name="export_users")
    async def export_users(self, staging: StagingRef) -> UsersResult:
        self._called("export_users")
        return UsersResult(users=4, api_requests=1)

    @activity.defn(name="assign_paths")
    async def assign_paths(self, request: LayoutInput) -> LayoutResult:
        self._called("assign_paths")
        return LayoutResult(placed=self._found, max_seq=self._found)

    @activity.defn(name="export_batch")
    async def export_batch(self, request: BatchInput) -> BatchResult:
        self._called("export_batch")
        batch = (request.seq_from, request.seq_to)
        self.batches.append(batch)
        self._running += 1
        self.most_at_once = max(self.most_at_once, self._running)
        try:
            if len(self.batches) <= self._hold:
                while True:
                    activity.heartbeat()  # the way a cancellation reaches an activity
                    await asyncio.sleep(0.1)
            await asyncio.sleep(BATCH_SECONDS)
        except asyncio.CancelledError:
            self.cancelled.append(batch)
            raise
        finally:
            self._running -= 1
        self.finished.append(batch)
        pages = request.seq_to - request.seq_from + 1
        return BatchResult(counters=Counters(exported=pages, api_requests=pages))

    @activity.defn(name="resolve_references")
    async def resolve_references(self, request: DiscoverInput) -> DiscoverResult:
        self._called("resolve_references")
        found = self._references.pop(0) if self._references else 0
        self._found += found
        return DiscoverResult(next_cursor=None, discovered=found, api_requests=found)

    @activity.defn(name="write_tables")
    async def write_tables(self, request: TablesInput) -> TablesResult:
        self._called("write_tables", request.seq_from)
        return TablesResult(written=1, next_seq=None if request.seq_from >= TABLES_CURSOR else TABLES_CURSOR)

    @activity.defn(name="check_shrink")
    async def check_shrink(self, request: ShrinkInput) -> ShrinkCheck:
        self._called("check_shrink")
        return ShrinkCheck()

    @activity.defn(name="publish_snapshot")
    async def publish_snapshot(self, request: PublishInput) -> PublishResult:
        self._called("publish_snapshot")
        return PublishResult(snapshot_path=f"/stub/{request.snapshot}", objects=self._found, files=0)

    @activity.defn(name="discard_staging")
    async def discard_staging(self, staging: StagingRef) -> None:
        self._called("discard_staging")

    @activity.defn(name="record_report")
    async def record_report(self, request: ReportInput) -> None:
        self._called("record_report")

    def activities(self) -> list[Callable[..., object]]:
        return [getattr(self, name) for name in vars(StubActivities) if name in _registered(StubActivities)]


def _registered(*classes: type) -> set[str]:
    """The names the activity methods of these classes are registered under."""
    return {
        definition.name
        for cls in classes
        for method in vars(cls).values()
        if callable(method)
        and (definition := activity._Definition.from_callable(method)) is not None
        and definition.name is not None
    }


@contextlib.asynccontextmanager
async def _stub_export(
    client: Client, stubs: StubActivities, options: ExportOptions
) -> AsyncIterator[WorkflowHandle[ExportWorkflow, ExportReport]]:
    """The real workflow on a fresh task queue, the stubs on its workspace's activity queue."""
    task_queue = f"orchestration-{uuid.uuid4().hex[:8]}"
    # Cancellation reaches an activity with a heartbeat's answer: heartbeat often, as the workers do.
    throttle = timedelta(seconds=0.2)
    async with (
        Worker(client, task_queue=task_queue, workflows=[ExportWorkflow]),
        Worker(
            client,
            task_queue=activity_queue(task_queue, WORKSPACE),
            activities=stubs.activities(),
            max_heartbeat_throttle_interval=throttle,
            default_heartbeat_throttle_interval=throttle,
        ),
    ):
        yield await client.start_workflow(
            ExportWorkflow.run,
            ExportInput(destination="/stub/destination", workspace=WORKSPACE, options=options),
            id=task_queue,
            task_queue=task_queue,
        )


async def _progress_until(
    handle: WorkflowHandle[ExportWorkflow, ExportReport],
    condition: Callable[[ExportProgress], bool],
    timeout: float = 20,
) -> ExportProgress:
    async with asyncio.timeout(timeout):
        while not condition(progress := await handle.query(ExportWorkflow.progress)):
            await asyncio.sleep(0.05)
    return progress


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def test_the_stubs_stand_in_for_every_registered_activity() -> None:
    real = _registered(DiscoveryActivities, ExportActivities, StagingActivities)
    assert real == _registered(StubActivities)


async def test_phases_run_in_order_and_references_go_round_again(temporal_client: Client) -> None:
    stubs = StubActivities(references=(3,))
    options = ExportOptions(batch_size=5, max_parallel_batches=2)
    async with _stub_export(temporal_client, stubs, options) as handle:
        report = await handle.result()

    assert stubs.calls[:2] == ["identify_workspace", "prepare_staging"]
    # The two listings run side by side; each follows its own cursor.
    assert sorted(stubs.calls[2:5]) == ["discover_data_sources", "discover_pages", "discover_pages"]
    assert stubs.arguments["discover_pages"] == [None, "page-2"]
    phases = [name for name, _ in itertools.groupby(stubs.calls[5:])]
    assert phases == [
        "export_users",
        "assign_paths",
        "export_batch",
        "resolve_references",  # found 3 objects search missed: lay out and export again
        "assign_paths",
        "export_batch",
        "resolve_references",
        "write_tables",
        "check_shrink",
        "publish_snapshot",
    ]
    assert stubs.arguments["write_tables"] == [0, TABLES_CURSOR]
    assert sorted(stubs.batches) == [(1, 5), (6, 10), (11, 15), (16, 20), (21, 23)]
    assert stubs.batches[-1] == (21, 23), "the references' batch comes after the first layout's"
    assert stubs.most_at_once <= options.max_parallel_batches
    assert report.status == "completed" and report.snapshot is not None
    assert report.snapshot.startswith("/stub/")
    found = PAGES + 2 + 3
    assert report.counters.discovered == report.counters.exported == found
    # Listings 2 + 3, users 1, references 3, one per page exported.
    assert report.counters.api_requests == 2 + 3 + 1 + 3 + found
    assert report.identity is not None and report.identity.bot_id == "stub-bot"


async def test_a_pause_starts_no_batch_and_resume_reruns_the_paused_ranges(temporal_client: Client) -> None:
    stubs = StubActivities(hold=2)
    options = ExportOptions(batch_size=5, max_parallel_batches=2)
    async with _stub_export(temporal_client, stubs, options) as handle:
        await _until(lambda: len(stubs.batches) == 2)
        await handle.signal(ExportWorkflow.pause)
        paused = await _progress_until(handle, lambda p: p.paused and p.in_flight == 0)
        assert sorted(stubs.cancelled) == [(1, 5), (6, 10)]
        await asyncio.sleep(1.5)
        assert len(stubs.batches) == 2, "a batch started while paused"
        assert paused.phase == Phase.EXPORTING and paused.exported == 0

        await handle.signal(ExportWorkflow.resume)
        report = await handle.result()

    assert sorted(stubs.batches[2:4]) == [(1, 5), (6, 10)], "the paused ranges go first"
    assert sorted(stubs.finished) == [(1, 5), (6, 10), (11, 15), (16, 20)]
    assert report.status == "completed" and report.counters.exported == PAGES + 2
    assert "discard_staging" not in stubs.calls


async def test_continue_as_new_carries_cursors_and_counters(temporal_client: Client) -> None:
    stubs = StubActivities()
    options = ExportOptions(batch_size=5, max_parallel_batches=2, batches_per_run=2)
    async with _stub_export(temporal_client, stubs, options) as handle:
        report = await handle.result()
        final = await handle.query(ExportWorkflow.progress)
        first = temporal_client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        first_status = (await first.describe()).status
        carried = await _continued_states(temporal_client, handle.id, handle.first_execution_run_id)

    assert first_status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert final.runs == 3 and len(carried) == 2
    second, third = carried
    # Run 2 picks up the batches where run 1 stopped, with what was found and done so far.
    assert (second.phase, second.next_seq, second.max_seq) == (Phase.EXPORTING, 11, PAGES + 2)
    assert second.search_done and second.data_sources_done and second.identity is not None
    assert (second.counters.discovered, second.counters.exported) == (PAGES + 2, 10)
    # Run 3 goes on writing tables from the cursor run 2 got back.
    assert (third.phase, third.tables_cursor, third.counters.exported) == (Phase.TABLES, TABLES_CURSOR, 20)
    assert second.staging_id == third.staging_id == handle.first_execution_run_id
    # Nothing was done twice: one discovery, each range once, the tables cursor followed.
    for once in ("identify_workspace", "prepare_staging", "export_users", "publish_snapshot"):
        assert stubs.calls.count(once) == 1, once
    assert stubs.batches and sorted(stubs.batches) == [(1, 5), (6, 10), (11, 15), (16, 20)]
    assert stubs.arguments["write_tables"] == [0, TABLES_CURSOR]
    assert report.counters.exported == PAGES + 2
    assert report.counters.api_requests == 2 + 3 + 1 + PAGES + 2


async def _continued_states(client: Client, workflow_id: str, run_id: str | None) -> list[ExportState]:
    """The state each run of the chain handed to the next, read from the continue-as-new events."""
    states: list[ExportState] = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return states
        attributes = last.workflow_execution_continued_as_new_event_attributes
        (request,) = await client.data_converter.decode(attributes.input.payloads, [ExportInput])
        assert isinstance(request, ExportInput) and request.state is not None
        states.append(request.state)
        run_id = attributes.new_execution_run_id
    return states
