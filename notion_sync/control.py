"""Starting, watching and steering exports through a Temporal client (used by the CLI and starter)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from notion_sync.models import ExportInput, ExportProgress, ExportReport
from notion_sync.settings import Settings
from notion_sync.storage.s3 import is_s3, parse_s3_url
from workflows.export import ExportWorkflow

WORKFLOW_TYPE = "ExportWorkflow"


class ExportAlreadyRunning(Exception):
    def __init__(self, workflow_id: str, destination: str) -> None:
        super().__init__(
            f"An export to {destination} is already running (workflow {workflow_id}). "
            f"Watch it with `notion-sync status --out {destination}`, or cancel it with "
            f"`notion-sync cancel --out {destination}`."
        )
        self.workflow_id = workflow_id


def normalise_destination(destination: str | Path) -> str:
    """An absolute folder path, or `s3://bucket/prefix` (ValueError if that URL is malformed)."""
    if is_s3(destination):
        return parse_s3_url(destination).url
    return str(Path(destination).expanduser().resolve())


def export_workflow_id(destination: str | Path) -> str:
    """One export per destination at a time: the id is derived from the destination's path."""
    digest = hashlib.sha256(normalise_destination(destination).encode()).hexdigest()[:16]
    return f"notion-export-{digest}"


async def start_export(
    client: Client, settings: Settings, request: ExportInput
) -> WorkflowHandle[ExportWorkflow, ExportReport]:
    destination = normalise_destination(request.destination)
    request = request.model_copy(update={"destination": destination})
    workflow_id = export_workflow_id(destination)
    try:
        return await client.start_workflow(
            ExportWorkflow.run,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Notion export to {destination}",
        )
    except WorkflowAlreadyStartedError:
        raise ExportAlreadyRunning(workflow_id, destination) from None


def export_handle(client: Client, destination: str | Path) -> WorkflowHandle[ExportWorkflow, ExportReport]:
    return client.get_workflow_handle_for(ExportWorkflow.run, export_workflow_id(destination))


async def is_running(handle: WorkflowHandle[ExportWorkflow, ExportReport]) -> bool:
    try:
        description = await handle.describe()
    except Exception:
        return False
    return description.status == WorkflowExecutionStatus.RUNNING


async def query_progress(handle: WorkflowHandle[ExportWorkflow, ExportReport]) -> ExportProgress:
    return await handle.query(ExportWorkflow.progress)
