"""The export workflow: a saga that turns a Notion workspace into a published snapshot.

discover -> layout -> export batches (-> follow references, layout, export) -> tables -> publish.
On failure or cancellation it compensates: in-flight work is cancelled and awaited, staging is
removed, the previous snapshot stays as it was, and a report says what went wrong.

Its state is a handful of cursors and counters (`ExportState`); page lists live in the run's
index on disk. It continues as new when Temporal suggests it, after draining in-flight batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from notion_sync import attributes

with workflow.unsafe.imports_passed_through():
    from activities.discovery import DiscoveryActivities
    from activities.export import ExportActivities
    from activities.staging import StagingActivities
    from notion_sync.models import (
        BatchInput,
        CarryOverInput,
        Counters,
        DiscoverInput,
        DiscoverResult,
        ExportInput,
        ExportOptions,
        ExportProgress,
        ExportReport,
        ExportState,
        LayoutInput,
        Listing,
        Phase,
        PrepareInput,
        PreviousSnapshot,
        PublishInput,
        ReportInput,
        ReportStatus,
        ShrinkCheck,
        ShrinkInput,
        StagingRef,
        TablesInput,
        UsersResult,
    )
    from notion_sync.snapshot import snapshot_name
    from notion_sync.workspaces import activity_queue
    from workflows.retry_policies import DISK_RETRY, NOTION_RETRY

TABLES_PER_ACTIVITY = 50
# Runs started before workspaces ran their activities on the workflow's own queue, without identity,
# shrink guard or outcome attributes; they replay as they ran.
WORKSPACE_QUEUES = "workspace-queues"
# Runs that check for a cancel a paused activity's late completion hid (`_raise_if_cancelled`).
CANCEL_AFTER_PAUSE = "cancel-after-pause"


class _Refused(Exception):
    """The run must end without publishing, for the reason given (not an activity's failure)."""


@workflow.defn
class ExportWorkflow:
    def __init__(self) -> None:
        self._state = ExportState()
        self._options = ExportOptions()
        self._destination = ""
        self._paused = False
        self._in_flight: dict[Any, tuple[int, int]] = {}
        self._batches_this_run = 0
        self._workspace = "default"
        # Where this run's activities go: the workspace's own task queue (None: the workflow's queue).
        self._queue: str | None = None
        self._shrink: ShrinkCheck | None = None

    @workflow.signal
    def pause(self) -> None:
        """Stops all Notion traffic: in-flight activities are cancelled and run again on resume."""
        self._paused = True
        for handle in self._in_flight:
            handle.cancel()
        self._show()

    @workflow.signal
    def resume(self) -> None:
        self._paused = False
        self._show()

    @property
    def _heartbeat_timeout(self) -> timedelta:
        return timedelta(seconds=self._options.worker_lost_after_seconds)

    @workflow.query
    def progress(self) -> ExportProgress:
        state = self._state
        counters = state.counters
        elapsed = (workflow.now() - state.started_at).total_seconds() if state.started_at else 0.0
        rate = counters.api_requests / elapsed if elapsed > 0 else 0.0
        done = counters.exported + counters.skipped + counters.failed
        left = max(0, counters.discovered - done)
        eta = None
        if done and elapsed > 0 and state.phase == Phase.EXPORTING:
            eta = round(left / (done / elapsed), 1)
        return ExportProgress(
            phase=state.phase,
            discovered=counters.discovered,
            exported=counters.exported,
            skipped=counters.skipped,
            failed=counters.failed,
            api_requests=counters.api_requests,
            requests_per_second=round(rate, 2),
            eta_seconds=eta,
            paused=self._paused,
            in_flight=len(self._in_flight),
            runs=state.runs,
        )

    @workflow.run
    async def run(self, request: ExportInput) -> ExportReport:
        self._destination = request.destination
        self._options = request.options
        self._workspace = request.workspace
        info = workflow.info()
        if workflow.patched(WORKSPACE_QUEUES):
            self._queue = activity_queue(info.task_queue, request.workspace)
        self._state = request.state or ExportState(
            staging_id=info.first_execution_run_id, started_at=workflow.now()
        )
        staging = StagingRef(destination=request.destination, staging_id=self._state.staging_id)
        self._show()
        try:
            return await self._run_phases(staging)
        except asyncio.CancelledError:
            await self._compensate(staging, "cancelled", "the export was cancelled")
            raise
        except _Refused as refused:
            reason = str(refused)
            await self._compensate(staging, "failed", reason, outcome="shrink-refused")
            raise ApplicationError(
                f"Export refused: {reason}", type="ShrinkGuard", non_retryable=True
            ) from None
        except ActivityError as error:
            # An activity cancelled while not paused means the workflow itself is being cancelled.
            if isinstance(error.cause, CancelledError):
                await self._compensate(staging, "cancelled", "the export was cancelled")
                raise asyncio.CancelledError() from None
            reason = _describe(error)
            if _failure_type(error) == "WorkspaceMismatch":
                # Refused before anything was written: the destination is another workspace's.
                self._state.phase = Phase.FAILED
                self._record_outcome("workspace-refused")
                self._show()
                raise ApplicationError(reason, type="WorkspaceMismatch", non_retryable=True) from None
            await self._compensate(staging, "failed", reason)
            raise ApplicationError(
                f"Export failed: {reason}", type="ExportFailed", non_retryable=True
            ) from error

    async def _run_phases(self, staging: StagingRef) -> ExportReport:
        state = self._state
        if state.phase == Phase.STARTING:
            if self._queue is not None and state.identity is None:
                state.identity = await self._notion(DiscoveryActivities.identify_workspace, staging)
            state.previous = await workflow.execute_activity_method(
                StagingActivities.prepare_staging,
                PrepareInput(
                    staging=staging,
                    full_refresh=self._options.full_refresh,
                    identity=state.identity,
                    force_workspace=self._options.force_workspace,
                ),
                task_queue=self._queue,
                # A new machine first downloads the last snapshot of an S3 destination; it heartbeats.
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=self._heartbeat_timeout,
                retry_policy=DISK_RETRY,
            )
            state.listing = self._choose_listing(state.previous)
            state.full_listing_at = state.started_at
            if state.listing == "changes" and state.previous is not None:
                state.full_listing_at = state.previous.full_listing_at
            state.phase = Phase.DISCOVERING
        if state.phase == Phase.DISCOVERING:
            await self._discover(staging)
            state.phase = Phase.LAYOUT
        while state.phase in (Phase.LAYOUT, Phase.EXPORTING):
            if state.phase == Phase.LAYOUT:
                layout = await workflow.execute_activity_method(
                    ExportActivities.assign_paths,
                    LayoutInput(staging=staging, layout=self._options.layout),
                    task_queue=self._queue,
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=self._heartbeat_timeout,
                    retry_policy=DISK_RETRY,
                )
                state.max_seq = layout.max_seq
                state.phase = Phase.EXPORTING
            await self._export_batches(staging)
            state.phase = Phase.TABLES if not await self._follow_references(staging) else Phase.LAYOUT
        if state.phase == Phase.TABLES:
            await self._write_tables(staging)
            state.phase = Phase.PUBLISHING
        if self._queue is not None:
            self._shrink = await workflow.execute_activity_method(
                StagingActivities.check_shrink,
                ShrinkInput(staging=staging, previous=state.previous, options=self._options),
                task_queue=self._queue,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=self._heartbeat_timeout,
                retry_policy=DISK_RETRY,
            )
            if self._shrink.tripped and not self._shrink.allowed:
                raise _Refused(
                    f"{self._shrink.summary()}: more than the {self._shrink.limit} allowed, so nothing was "
                    "published and the last snapshot stays current (--allow-shrink publishes anyway)"
                )
        report = self._report("completed", None)
        published = await workflow.execute_activity_method(
            StagingActivities.publish_snapshot,
            PublishInput(
                staging=staging,
                snapshot=self._snapshot_name(),
                report=report,
                html=self._options.html,
                retention=self._options.retention_policy(),
            ),
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=DISK_RETRY,
            task_queue=self._queue,
            # Compensation must not start while an upload to S3 is still running.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        state.phase = Phase.DONE
        self._record_outcome("completed-shrunk" if self._shrink and self._shrink.tripped else "completed")
        self._show()
        return report.model_copy(
            update={
                "snapshot": published.snapshot_path,
                "problems": published.problems,
                "changes": published.changes,
            }
        )

    def _choose_listing(self, previous: PreviousSnapshot | None) -> Listing:
        """Changes only, unless there is nothing to start from or the last full listing is due again."""
        if previous is None or previous.full_listing_at is None or self._options.full_refresh:
            return "full"
        due = previous.full_listing_at + timedelta(days=self._options.full_listing_days)
        return "changes" if workflow.now() < due else "full"

    async def _carry_over(self, staging: StagingRef) -> None:
        state = self._state
        assert state.previous is not None
        result = await workflow.execute_activity_method(
            DiscoveryActivities.carry_over,
            CarryOverInput(staging=staging, previous=state.previous),
            task_queue=self._queue,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=DISK_RETRY,
        )
        if result.usable:
            state.counters.discovered += result.carried
        else:
            state.listing = "full"
            state.full_listing_at = state.started_at
        state.carried_over = True

    async def _discover(self, staging: StagingRef) -> None:
        state = self._state
        if state.listing == "changes" and not state.carried_over:
            await self._carry_over(staging)
        # None for a full listing; otherwise the minute from which edits may be missing from the snapshot.
        since = state.previous.reuse_before if state.listing == "changes" and state.previous else None
        if workflow.patched("concurrent-listing"):
            # Both listings are chains of requests waiting on latency; they share only the index.
            await asyncio.gather(self._list_pages(staging, since), self._list_data_sources(staging, since))
        else:
            await self._list_pages(staging, since)
            await self._list_data_sources(staging, since)
        await self._notion(DiscoveryActivities.export_users, staging)

    async def _list_pages(self, staging: StagingRef, since: str | None) -> None:
        state = self._state
        while not state.search_done:
            found = await self._notion(
                DiscoveryActivities.discover_pages,
                DiscoverInput(staging=staging, cursor=state.search_cursor, edited_since=since),
            )
            state.search_cursor = found.next_cursor
            state.search_done = found.next_cursor is None
            await self._continue_as_new_if_due()

    async def _list_data_sources(self, staging: StagingRef, since: str | None) -> None:
        state = self._state
        while not state.data_sources_done:
            found = await self._notion(
                DiscoveryActivities.discover_data_sources,
                DiscoverInput(staging=staging, cursor=state.data_source_cursor, edited_since=since),
            )
            state.data_source_cursor = found.next_cursor
            state.data_sources_done = found.next_cursor is None
            await self._continue_as_new_if_due()

    async def _follow_references(self, staging: StagingRef) -> bool:
        """Fetches child pages and databases that search missed; True if any were found."""
        found_any = False
        while True:
            found = await self._notion(DiscoveryActivities.resolve_references, DiscoverInput(staging=staging))
            found_any = found_any or found.discovered > 0
            if found.remaining == 0:
                return found_any

    async def _export_batches(self, staging: StagingRef) -> None:
        """Runs batches of `batch_size` objects, `max_parallel_batches` at a time."""
        state = self._state
        options = self._options
        while state.next_seq <= state.max_seq or state.retry_ranges or self._in_flight:
            while (
                not self._paused
                and not self._continue_as_new_due()
                and len(self._in_flight) < options.max_parallel_batches
                and (state.retry_ranges or state.next_seq <= state.max_seq)
            ):
                self._start_batch(staging)
            if not self._in_flight:
                if self._paused:
                    await self._resumed()
                    continue
                await self._continue_as_new_if_due()
                continue
            done, _ = await workflow.wait(list(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            for handle in done:
                batch = self._in_flight.pop(handle)
                try:
                    result = handle.result()
                except ActivityError as error:
                    if isinstance(error.cause, CancelledError) and self._paused:
                        state.retry_ranges.append(batch)
                        continue
                    raise
                state.counters.add(result.counters)
            self._show()

    def _start_batch(self, staging: StagingRef) -> None:
        state = self._state
        if state.retry_ranges:
            seq_from, seq_to = state.retry_ranges.pop()
        else:
            seq_from = state.next_seq
            seq_to = min(state.max_seq, seq_from + self._options.batch_size - 1)
            state.next_seq = seq_to + 1
        handle = workflow.start_activity_method(
            ExportActivities.export_batch,
            BatchInput(
                staging=staging,
                seq_from=seq_from,
                seq_to=seq_to,
                options=self._options,
                previous=None if self._options.full_refresh else state.previous,
            ),
            task_queue=self._queue,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=NOTION_RETRY,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"objects {seq_from}-{seq_to}",
        )
        self._in_flight[handle] = (seq_from, seq_to)
        self._batches_this_run += 1

    async def _write_tables(self, staging: StagingRef) -> None:
        state = self._state
        while state.tables_cursor is not None:
            result = await workflow.execute_activity_method(
                ExportActivities.write_tables,
                TablesInput(
                    staging=staging,
                    seq_from=state.tables_cursor,
                    limit=TABLES_PER_ACTIVITY,
                    layout=self._options.layout,
                    csv_bom=self._options.csv_bom,
                ),
                task_queue=self._queue,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=self._heartbeat_timeout,
                retry_policy=DISK_RETRY,
            )
            state.tables_cursor = result.next_seq
            await self._continue_as_new_if_due()

    async def _resumed(self) -> None:
        """Waits while paused; a cancel ends the wait (see `_raise_if_cancelled`)."""
        await workflow.wait_condition(lambda: not self._paused or workflow.cancellation_reason() is not None)
        self._raise_if_cancelled()

    def _raise_if_cancelled(self) -> None:
        """A cancel that arrived while awaiting an activity a pause had already cancelled is lost if that
        activity then finishes anyway (asyncio resumes the workflow with its result): the workflow would
        wait paused for ever. So it checks for the server's cancel request itself."""
        if workflow.cancellation_reason() is not None and workflow.patched(CANCEL_AFTER_PAUSE):
            raise asyncio.CancelledError()

    async def _notion(self, activity: Any, arg: Any) -> Any:
        """Runs one Notion activity to completion, holding it back (and redoing it) across pauses."""
        while True:
            await self._resumed()
            handle = workflow.start_activity_method(
                activity,
                arg,
                task_queue=self._queue,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=self._heartbeat_timeout,
                retry_policy=NOTION_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            self._in_flight[handle] = (0, 0)
            try:
                result = await handle
            except ActivityError as error:
                if isinstance(error.cause, CancelledError) and self._paused:
                    continue
                raise
            finally:
                self._in_flight.pop(handle, None)
            self._raise_if_cancelled()
            if isinstance(result, DiscoverResult):
                self._state.counters.discovered += result.discovered
                self._state.counters.api_requests += result.api_requests
            elif isinstance(result, UsersResult):
                self._state.counters.api_requests += result.api_requests
            self._show()
            return result

    def _continue_as_new_due(self) -> bool:
        limit = self._options.batches_per_run
        forced = limit is not None and self._batches_this_run >= limit
        return forced or workflow.info().is_continue_as_new_suggested()

    async def _continue_as_new_if_due(self) -> None:
        if not self._continue_as_new_due() or self._in_flight:
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.runs += 1
        workflow.continue_as_new(
            ExportInput(
                destination=self._destination,
                workspace=self._workspace,
                options=self._options,
                state=self._state,
            )
        )

    async def _compensate(
        self, staging: StagingRef, status: ReportStatus, reason: str, outcome: str | None = None
    ) -> None:
        self._state.phase = Phase.COMPENSATING
        self._show()
        for handle in list(self._in_flight):
            handle.cancel()
        for handle in list(self._in_flight):
            # Each in-flight activity just has to be over before staging is removed.
            with contextlib.suppress(BaseException):
                await handle
        self._in_flight.clear()
        await workflow.execute_activity_method(
            StagingActivities.discard_staging,
            staging,
            task_queue=self._queue,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=DISK_RETRY,
        )
        await workflow.execute_activity_method(
            StagingActivities.record_report,
            ReportInput(staging=staging, report=self._report(status, reason)),
            task_queue=self._queue,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=DISK_RETRY,
        )
        self._state.phase = Phase.CANCELLED if status == "cancelled" else Phase.FAILED
        self._record_outcome(outcome or status)
        self._show()

    def _record_outcome(self, outcome: str) -> None:
        """The outcome and page count as search attributes, where the namespace has them."""
        if self._queue is None or workflow.info().typed_search_attributes.get(attributes.WORKSPACE) is None:
            return
        workflow.upsert_search_attributes(
            [
                attributes.OUTCOME.value_set(outcome),
                attributes.PAGES_EXPORTED.value_set(self._state.counters.exported),
            ]
        )

    def _report(self, status: ReportStatus, error: str | None) -> ExportReport:
        return ExportReport(
            status=status,
            destination=self._destination,
            counters=Counters(**self._state.counters.model_dump()),
            started_at=self._state.started_at,
            finished_at=workflow.now(),
            error=error,
            listing=self._state.listing,
            full_listing_at=self._state.full_listing_at,
            workspace=self._workspace,
            identity=self._state.identity,
            shrink=self._shrink,
        )

    def _snapshot_name(self) -> str:
        return snapshot_name(self._state.started_at or workflow.now(), self._state.staging_id)

    def _show(self) -> None:
        """The readable summary in the Web UI's "current details"."""
        p = self.progress()
        paused = " (paused)" if p.paused else ""
        eta = f", ETA {p.eta_seconds:.0f}s" if p.eta_seconds is not None else ""
        workflow.set_current_details(
            f"**{p.phase.value}**{paused}\n\n"
            f"discovered {p.discovered}, exported {p.exported}, skipped {p.skipped}, failed {p.failed}\n\n"
            f"{p.api_requests} Notion requests, {p.requests_per_second}/s{eta}, run {p.runs}"
        )


def _failure_type(error: BaseException) -> str | None:
    """The type of the application error behind an activity failure."""
    cause = getattr(error, "cause", None)
    return cause.type if isinstance(cause, ApplicationError) else None


def _describe(error: BaseException) -> str:
    """The innermost message of an activity failure: what actually went wrong."""
    cause: BaseException | None = error
    message = str(error)
    while cause is not None:
        if str(cause):
            message = str(cause)
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return message
