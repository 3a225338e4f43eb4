"""What a Temporal Schedule starts: one run of the export of a destination, started or attached to.

The Schedule names each run `<id>-<timestamp>`, so this workflow is not the export itself: its one
activity starts `ExportWorkflow` under the destination's fixed id, or attaches to the export already
running there, and waits for it (see `activities/scheduling.py`). Its result is a small summary.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.scheduling import SchedulingActivities
    from notion_sync.models import ScheduledExportInput, ScheduledRunResult

# The activity lives as long as the export it waits for; heartbeats, not this timeout, detect a lost worker.
WAIT_FOR_EXPORT = timedelta(days=7)
HEARTBEAT_TIMEOUT = timedelta(seconds=60)
WAIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5), maximum_attempts=20
)


@workflow.defn
class ScheduledExportWorkflow:
    @workflow.run
    async def run(self, request: ScheduledExportInput) -> ScheduledRunResult:
        workflow.set_current_details(f"export {request.export_workflow_id} to {request.export.destination}")
        result = await workflow.execute_activity_method(
            SchedulingActivities.start_or_attach_export,
            request,
            start_to_close_timeout=WAIT_FOR_EXPORT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=WAIT_RETRY,
        )
        verb = "attached to" if result.attached else "started"
        workflow.set_current_details(f"{verb} {result.workflow_id}: {result.status}")
        return result
