"""The restore workflow: a snapshot put back into Notion under a page, durably.

planning -> creating (every object's shell, in plan order) -> filling (content and comments) ->
linking (relations, rollups) -> done. Each phase hands out ranges of the plan by cursor; the plan,
the ids and the intents live in the restore's index on the worker's disk (`notion_sync/restore/`),
so a retried or resumed range creates nothing twice. The state is a phase, a cursor and counters
(`RestoreState`); it continues as new when Temporal suggests it. Pause cancels the range in flight
and holds the next; cancel stops after the range in flight and writes the report. `undo` moves
what a restore created to the trash.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.restore import RestoreActivities
    from notion_sync.models import (
        ReportStatus,
        RestoreCounts,
        RestoreInput,
        RestoreProgress,
        RestoreReport,
        RestoreState,
        RestoreStep,
        RestoreStepResult,
    )
    from notion_sync.workspaces import activity_queue
    from workflows.retry_policies import disk_retry, notion_retry

NOTION_RETRY = notion_retry("RestoreRefused")
DISK_RETRY = disk_retry("RestoreRefused")
# The passes over the plan, in order: (phase, activity, the phase after it).
_PASSES: tuple[tuple[str, Any, str], ...] = (
    ("creating", RestoreActivities.create_shells, "filling"),
    ("filling", RestoreActivities.fill_content, "linking"),
    ("linking", RestoreActivities.link_objects, "done"),
)


@workflow.defn
class RestoreWorkflow:
    def __init__(self) -> None:
        self._state = RestoreState()
        self._request: RestoreInput | None = None
        self._paused = False
        self._in_flight: Any = None
        # The range cancelled by a pause: its cancellation is a pause even after a quick resume.
        self._cancelled_for_pause: Any = None
        self._queue: str | None = None
        self._ranges_this_run = 0

    @workflow.signal
    def pause(self) -> None:
        """Stops all Notion traffic: the range in flight is cancelled and run again on resume."""
        self._paused = True
        if self._in_flight is not None:
            self._cancelled_for_pause = self._in_flight
            self._in_flight.cancel()
        self._show()

    @workflow.signal
    def resume(self) -> None:
        self._paused = False
        self._show()

    @workflow.query
    def progress(self) -> RestoreProgress:
        counts = self._state.counts
        return RestoreProgress(
            phase=self._state.phase,
            planned=counts.planned,
            restored=counts.restored,
            linked=counts.linked,
            api_requests=counts.api_requests,
            paused=self._paused,
            runs=self._state.runs,
        )

    @workflow.run
    async def run(self, request: RestoreInput) -> RestoreReport:
        self._request = request
        info = workflow.info()
        self._queue = activity_queue(info.task_queue, request.workspace)
        self._state = request.state or RestoreState(restore_id=info.workflow_id, started_at=workflow.now())
        self._paused = self._paused or self._state.paused
        if request.undo:
            trashed = await self._notion(RestoreActivities.undo_restore, self._step(restore_id=request.undo))
            return RestoreReport(
                restore_id=request.undo,
                status="completed",
                target=request.target,
                counts=RestoreCounts(),
                trashed=int(trashed),
            )
        self._show()
        try:
            return await self._run_passes()
        except asyncio.CancelledError:
            await self._finish("cancelled", "the restore was cancelled")
            raise
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                await self._finish("cancelled", "the restore was cancelled")
                raise asyncio.CancelledError() from None
            reason = _describe(error)
            await self._finish("failed", reason)
            failed = ApplicationError(f"Restore failed: {reason}", type="RestoreFailed", non_retryable=True)
            raise failed from None

    async def _run_passes(self) -> RestoreReport:
        state = self._state
        assert self._request is not None
        if state.phase == "planning":
            planned: RestoreStepResult = await workflow.execute_activity_method(
                RestoreActivities.prepare_restore,
                self._step(),
                task_queue=self._queue,
                # An S3 snapshot is downloaded first; it may take a while.
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=timedelta(seconds=self._request.worker_lost_after_seconds),
                retry_policy=DISK_RETRY,
            )
            state.counts = planned.counts
            state.phase = "creating"
            state.cursor = 0
        for phase, activity, following in _PASSES:
            if state.phase != phase:
                continue
            while True:
                result = await self._notion(activity, self._step(cursor=state.cursor))
                state.cursor = result.next_cursor
                requests = state.counts.api_requests + result.counts.api_requests
                state.counts = result.counts.model_copy(update={"api_requests": requests})
                self._show()
                if result.done:
                    break
                await self._continue_as_new_if_due()
            state.phase = following  # type: ignore[assignment]
            state.cursor = 0
        return await self._finish("completed", None)

    def _step(self, cursor: int = 0, restore_id: str | None = None) -> RestoreStep:
        assert self._request is not None
        request = self._request
        return RestoreStep(
            restore_id=restore_id or self._state.restore_id,
            source=request.source,
            snapshot=request.snapshot,
            pages=request.pages,
            target=request.target,
            cursor=cursor,
            limit=request.batch_size,
        )

    async def _notion(self, activity: Any, step: RestoreStep) -> Any:
        """Runs one Notion activity to completion, holding it back (and redoing it) across pauses."""
        assert self._request is not None
        while True:
            await workflow.wait_condition(lambda: not self._paused)
            handle = workflow.start_activity_method(
                activity,
                step,
                task_queue=self._queue,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=self._range_heartbeat_timeout(),
                retry_policy=NOTION_RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"{self._state.phase} after {step.cursor}",
            )
            self._in_flight = handle
            self._ranges_this_run += 1
            try:
                # Not `await handle`: a cancelled workflow must stop waiting even if the range ends
                # normally (a cancel reaches an activity with its next heartbeat).
                await workflow.wait([handle])
            except asyncio.CancelledError:
                # Stop the range, and wait until it has stopped: nothing may still be creating
                # while the report is written (or while a resumed range would run).
                handle.cancel()
                with contextlib.suppress(BaseException):
                    await handle
                raise
            finally:
                self._in_flight = None
            try:
                return handle.result()
            except ActivityError as error:
                if isinstance(error.cause, CancelledError) and self._cancelled_for_pause is handle:
                    continue
                raise
            finally:
                self._cancelled_for_pause = None

    def _range_heartbeat_timeout(self) -> timedelta:
        """The worker's lost after `worker_lost_after_seconds`, but never while one request may still
        be waiting on its answer (twice the request timeout)."""
        assert self._request is not None
        request = self._request
        return timedelta(seconds=max(request.worker_lost_after_seconds, 2 * request.request_timeout_seconds))

    async def _continue_as_new_if_due(self) -> None:
        assert self._request is not None
        limit = self._request.batches_per_run
        forced = limit is not None and self._ranges_this_run >= limit
        if not forced and not workflow.info().is_continue_as_new_suggested():
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.runs += 1
        self._state.paused = self._paused
        workflow.continue_as_new(self._request.model_copy(update={"state": self._state}))

    async def _finish(self, status: ReportStatus, error: str | None) -> RestoreReport:
        """Writes the report and the mapping (whatever the outcome) and returns the report."""
        assert self._request is not None
        report = RestoreReport(
            restore_id=self._state.restore_id,
            status=status,
            target=self._request.target,
            counts=self._state.counts,
            error=error,
        )
        written: RestoreReport = await workflow.execute_activity_method(
            RestoreActivities.write_restore_report,
            args=[self._step(), report],
            task_queue=self._queue,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=DISK_RETRY,
        )
        self._state.phase = "done" if status == "completed" else status
        self._state.counts = written.counts
        self._show()
        return written

    def _show(self) -> None:
        """The readable summary in the Web UI's "current details"."""
        p = self.progress()
        paused = " (paused)" if p.paused else ""
        workflow.set_current_details(
            f"**{p.phase}**{paused}\n\nplanned {p.planned}, restored {p.restored}, linked {p.linked}\n\n"
            f"{p.api_requests} Notion requests, run {p.runs}"
        )


def _describe(error: BaseException) -> str:
    """The innermost message of an activity failure: what actually went wrong."""
    cause: BaseException | None = error
    message = str(error)
    while cause is not None:
        if str(cause):
            message = str(cause)
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return message
