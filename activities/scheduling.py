"""The activity behind scheduled exports: start the export of a destination, or attach to the running one.

A Schedule gives each workflow it starts an id carrying a timestamp, so a scheduled run cannot itself
be the export: it starts `ExportWorkflow` under the destination's fixed id, and if an export of that
destination is already running (started by hand, or by an earlier scheduled run) it waits for that one
instead. The server decides atomically: one start request with the `FAIL` conflict policy either
starts a run or answers with the id of the run in progress, so two exports of one destination never
run at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError, TerminatedError, TimeoutError

from notion_sync.control import ExportAlreadyRunning, start_export
from notion_sync.models import ExportReport, ScheduledExportInput, ScheduledRunResult
from notion_sync.settings import Settings
from workflows.export import ExportWorkflow

HEARTBEAT_EVERY = timedelta(seconds=10)
MAX_ERROR_CHARS = 500


class SchedulingActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn
    async def start_or_attach_export(self, request: ScheduledExportInput) -> ScheduledRunResult:
        """Starts the export (or finds the running one), then waits for it, heartbeating."""
        client = activity.client()
        handle, run_id, attached = await self._start_or_attach(client, request)
        # A retry of this activity (worker lost) waits for the same run, and still knows who started it.
        progress = {"run_id": run_id, "attached": attached}
        activity.heartbeat(progress)
        result: asyncio.Task[ExportReport] = asyncio.create_task(handle.result())
        try:
            while not result.done():
                await asyncio.wait([result], timeout=HEARTBEAT_EVERY.total_seconds())
                activity.heartbeat(progress)
        except asyncio.CancelledError:
            # The scheduled run was cancelled: stop waiting, but leave the export alone (it may be
            # someone else's, and it has its own `notion-sync cancel`).
            result.cancel()
            raise
        summary = ScheduledRunResult(
            workflow_id=request.export_workflow_id, run_id=run_id, attached=attached, status="completed"
        )
        try:
            report = result.result()
        except WorkflowFailureError as error:
            cause = error.cause
            status = (
                "cancelled"
                if isinstance(cause, CancelledError)
                else "terminated"
                if isinstance(cause, TerminatedError)
                else "timed_out"
                if isinstance(cause, TimeoutError)
                else "failed"
            )
            message = str(getattr(cause, "message", None) or cause or error)
            return summary.model_copy(update={"status": status, "error": message[:MAX_ERROR_CHARS]})
        return summary.model_copy(
            update={"status": report.status, "snapshot": report.snapshot, "error": report.error}
        )

    async def _start_or_attach(
        self, client: Client, request: ScheduledExportInput
    ) -> tuple[WorkflowHandle[ExportWorkflow, ExportReport], str, bool]:
        details: list[Any] = list(activity.info().heartbeat_details)
        if details and isinstance(details[0], dict) and details[0].get("run_id"):
            run_id = str(details[0]["run_id"])
            attached = bool(details[0].get("attached"))
            activity.logger.info("Retry: waiting again for export run %s", run_id)
            return self._handle(client, request, run_id), run_id, attached
        destination = request.export.destination
        try:
            handle = await start_export(
                client,
                self._settings,
                request.export,
                workflow_id=request.export_workflow_id,
                summary="Scheduled Notion export",
            )
        except ExportAlreadyRunning as error:
            if not error.run_id:
                raise
            activity.logger.info(
                "An export to %s is running (%s); attaching to it", destination, request.export_workflow_id
            )
            return self._handle(client, request, error.run_id), error.run_id, True
        assert handle.result_run_id is not None
        activity.logger.info("Started export %s to %s", request.export_workflow_id, destination)
        return handle, handle.result_run_id, False

    @staticmethod
    def _handle(
        client: Client, request: ScheduledExportInput, run_id: str
    ) -> WorkflowHandle[ExportWorkflow, ExportReport]:
        # Bound to the run, so waiting follows its continue-as-new chain and never a later export.
        return client.get_workflow_handle_for(ExportWorkflow.run, request.export_workflow_id, run_id=run_id)
