"""Starting, watching and steering exports through a Temporal client (used by the CLI and starter)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from notion_sync import attributes, observability
from notion_sync.models import ExportInput, ExportProgress, ExportReport
from notion_sync.observability import redact
from notion_sync.settings import Settings
from notion_sync.storage.s3 import is_s3, parse_s3_url
from workflows.export import ExportWorkflow

log = logging.getLogger(__name__)


class ExportAlreadyRunning(Exception):
    def __init__(self, workflow_id: str, destination: str, run_id: str | None = None) -> None:
        super().__init__(
            f"An export to {destination} is already running (workflow {workflow_id}). "
            f"Watch it with `notion-sync status --out {destination}`, or cancel it with "
            f"`notion-sync cancel --out {destination}`."
        )
        self.workflow_id = workflow_id
        self.run_id = run_id


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
    client: Client,
    settings: Settings,
    request: ExportInput,
    workflow_id: str | None = None,
    summary: str = "Notion export",
) -> WorkflowHandle[ExportWorkflow, ExportReport]:
    """Starts the export of a destination under its fixed id (the CLI, the starter, schedules).

    The run carries its workspace and destination as search attributes; on a cluster where they
    are not registered yet it starts without them, and says how to register them.
    """
    if workflow_id is None:
        request = request.model_copy(update={"destination": normalise_destination(request.destination)})
        workflow_id = export_workflow_id(request.destination)
    # A given id comes with a destination normalised where it was chosen (a schedule's creator).
    destination = request.destination
    searchable = TypedSearchAttributes(
        [
            SearchAttributePair(attributes.WORKSPACE, request.workspace),
            SearchAttributePair(attributes.DESTINATION, destination),
        ]
    )

    async def start(search: TypedSearchAttributes) -> WorkflowHandle[ExportWorkflow, ExportReport]:
        return await client.start_workflow(
            ExportWorkflow.run,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"{summary} of workspace {request.workspace} to {destination}",
            search_attributes=search,
        )

    try:
        try:
            return await start(searchable)
        except RPCError as error:
            if "search attribute" not in str(error).lower():
                raise
            log.warning(
                "Search attributes are not registered on this Temporal namespace; starting without them. "
                "Register them once: %s",
                "; ".join(attributes.registration_commands()),
            )
            return await start(TypedSearchAttributes.empty)
    except WorkflowAlreadyStartedError as error:
        raise ExportAlreadyRunning(workflow_id, destination, error.run_id) from None


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


# What each activity does, as `activity_status` names it.
_ACTIVITY_NAMES = {
    "identify_workspace": "asking Notion who the token is",
    "discover_pages": "listing pages",
    "discover_data_sources": "listing databases",
    "resolve_references": "fetching linked pages",
    "export_users": "reading users",
    "export_batch": "export batch",
}
_RATE_LIMIT = "rate limit"


async def activity_status(handle: WorkflowHandle[ExportWorkflow, ExportReport]) -> str | None:
    """A short line on what holds the export up right now, or None when nothing does.

    Read from the run's pending activities (`describe()`): an activity waiting for its next attempt
    ("retrying export batch (attempt 3, at 14:02:31): Notion answered 503 service_unavailable"), or
    one whose heartbeat says it waits on Notion's rate limit or retries a request inside the attempt
    ("waiting on Notion's rate limit until 14:02:31"). Texts are redacted again before display.
    """
    try:
        description = await handle.describe()
    except RPCError:
        return None
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    now = time.time()
    lines: list[tuple[int, float, str]] = []  # (rank, order within rank, line): the best one is shown
    for pending in description.raw_description.pending_activities:
        name = _ACTIVITY_NAMES.get(pending.activity_type.name, pending.activity_type.name.replace("_", " "))
        failure = redact(pending.last_failure.message) if pending.HasField("last_failure") else ""
        waiting_retry = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        if waiting_retry and pending.attempt > 1:
            at = _clock(pending.next_attempt_schedule_time.ToSeconds())
            if "rate limited" in failure:
                lines.append((0, -pending.next_attempt_schedule_time.ToSeconds(), _rate_limit_line(at, name)))
            else:
                line = f"retrying {name} (attempt {pending.attempt}, at {at}): {failure}"
                lines.append((1, pending.attempt, line))
            continue
        notice = await _notice(description, pending.heartbeat_details.payloads)
        if notice.get("waiting") == _RATE_LIMIT and float(notice.get("until", 0)) > now:
            lines.append((0, float(notice["until"]), _rate_limit_line(_clock(float(notice["until"])), name)))
        elif "retrying" in notice and float(notice.get("until", 0)) > now - 5:
            cause = redact(str(notice["retrying"]))
            lines.append(
                (
                    2,
                    int(notice.get("attempt", 0)),
                    f"{name}: retrying a request (attempt {notice.get('attempt')}): {cause}",
                )
            )
        elif pending.attempt > 1 and failure:
            lines.append((3, pending.attempt, f"{name}, attempt {pending.attempt} after: {failure}"))
    if not lines:
        return None
    return min(lines, key=lambda line: (line[0], -line[1]))[2]


def _rate_limit_line(at: str, name: str) -> str:
    return f"waiting on Notion's rate limit until {at} ({name})"


def _clock(unix: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(unix))


async def _notice(description: WorkflowExecutionDescription, payloads: Sequence[Payload]) -> dict[str, Any]:
    """The gateway's notice from an activity's last heartbeat (see NotionGateway.beat), or {}."""
    if not payloads:
        return {}
    try:
        details = await description.data_converter.decode(payloads)
    except Exception:  # another client's heartbeat details: not ours to read
        return {}
    first = details[0] if details else None
    return first if isinstance(first, dict) else {}
