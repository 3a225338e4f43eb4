"""`notion-sync restore`: a snapshot put back into Notion under a page (and `--undo` of one)."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from notion_sync.cli.session import console, fail, open_session, run
from notion_sync.models import RestoreInput, RestoreReport
from notion_sync.settings import Settings
from notion_sync.storage.s3 import S3UrlError, is_s3, parse_s3_url
from workflows.restore import RestoreWorkflow

_NOTION_ID = re.compile(r"([0-9a-f]{32})$")


def restore_command(
    source: Annotated[
        str, typer.Argument(help="An export destination (a folder, s3://bucket/prefix) or a snapshot folder.")
    ],
    to: Annotated[
        str,
        typer.Option("--to", help="The page (id or URL) to create everything under."),
    ],
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="The snapshot to restore (default: the current one).")
    ] = None,
    page: Annotated[
        list[str] | None,
        typer.Option("--page", help="Restore only this page (id or Markdown path) and what lies below it."),
    ] = None,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="The workspace to restore into, by name.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the restore (progress).")] = True,
    undo: Annotated[
        str | None,
        typer.Option("--undo", help="Move what restore RESTORE_ID created to the trash, instead."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=500, help="Objects per restore activity.")] = 20,
) -> None:
    """Recreate a snapshot's pages, databases, rows, files and comments in Notion, under --to.

    Durable (a crash never creates anything twice); the report and the old -> new id mapping are
    written under the state folder (restores/<id>/)."""
    target = notion_id(to)
    if target is None:
        fail(f"--to {to!r} is not a Notion page id or URL", code=2)
    problem = _source_problem(source)
    if problem:
        fail(problem, code=2)
    if not is_s3(source):
        source = str(Path(source).expanduser().resolve())
    request = RestoreInput(
        source=source,
        snapshot=snapshot,
        pages=list(page or []),
        target=target,
        batch_size=batch_size,
        undo=undo,
    )
    # Running the command again would start a second restore (creating everything twice).
    detached = (
        "Detached. The restore goes on where Temporal runs (its id was printed when it started; the Web "
        "UI shows it). Do not run the same command again: that starts a second restore."
    )
    sys.exit(run(_restore(request, workspace, wait), detached))


def notion_id(text: str) -> str | None:
    """A Notion id (dashed, lower case) from an id with or without dashes, or a page URL."""
    found = _NOTION_ID.search(text.split("?")[0].rstrip("/").replace("-", "").lower())
    if found is None:
        return None
    raw = found.group(1)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _source_problem(source: str) -> str | None:
    if is_s3(source):
        try:
            parse_s3_url(source)
        except S3UrlError as error:
            return str(error)
        return None
    if not Path(source).expanduser().is_dir():
        return f"{source} is not a folder (give an export destination or a snapshot folder)"
    return None


async def _restore(request: RestoreInput, workspace: str | None, wait: bool) -> int:
    settings = Settings()
    async with open_session(settings, embedded_worker=True, workspace=workspace) as session:
        update = {"workspace": session.workspace, "request_timeout_seconds": settings.request_timeout_s}
        request = request.model_copy(update=update)
        if request.undo:
            await _refuse_undo_while_running(session.client, request.undo)
            memo = None
        else:
            await _refuse_concurrent_restore(session.client, request.target)
            memo = {"target": request.target}
        restore_id = f"restore-{uuid.uuid4().hex[:12]}"
        handle = await session.client.start_workflow(
            RestoreWorkflow.run, request, id=restore_id, task_queue=session.settings.task_queue, memo=memo
        )
        what = f"undo of {request.undo}" if request.undo else f"restore {restore_id}"
        console.print(f"Started {what} into page {request.target}")
        if session.server is not None and session.server.ui_url:
            ui = f"{session.server.ui_url}/namespaces/default/workflows/{handle.id}"
            console.print(f"Temporal Web UI: {ui}")
        if not wait:
            return 0
        return await _watch(handle)


def _same_page(a: str, b: str) -> bool:
    return a.replace("-", "").lower() == b.replace("-", "").lower()


async def _refuse_concurrent_restore(client: Client, target: str) -> None:
    """Two restores into one page at once could adopt each other's pages: one at a time."""
    query = 'WorkflowType="RestoreWorkflow" AND ExecutionStatus="Running"'
    async for entry in client.list_workflows(query):
        try:
            running_target = await entry.memo_value("target", default=None)
        except Exception:  # nosec B112 # a memo this version cannot read: not one of ours to compare
            continue
        if isinstance(running_target, str) and _same_page(running_target, target):
            fail(
                f"a restore into page {target} is already running ({entry.id}); wait for it, or cancel "
                "it, before starting another"
            )


async def _refuse_undo_while_running(client: Client, restore_id: str) -> None:
    """Undoing a restore that still runs would miss what it creates after the undo looked."""
    try:
        description = await client.get_workflow_handle(restore_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return  # what happens today: the undo itself reports what it cannot find
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        fail(
            f"restore {restore_id} is still running: cancel it (temporal workflow cancel --workflow-id "
            f"{restore_id}) and wait for it to stop before undoing it"
        )


async def _watch(handle: WorkflowHandle[RestoreWorkflow, RestoreReport]) -> int:
    result: asyncio.Task[RestoreReport] = asyncio.create_task(handle.result())
    shown = ""
    while not result.done():
        try:
            progress = await handle.query(RestoreWorkflow.progress)
        except Exception:  # a query while the run moves on: try again next tick
            progress = None
        if progress is not None:
            line = f"{progress.phase}: {progress.restored}/{progress.planned} objects"
            if line != shown:
                console.print(line)
                shown = line
        await asyncio.wait([result], timeout=1.0)
    try:
        report = result.result()
    except WorkflowFailureError as error:
        cause = error.cause
        console.print(f"[red]Restore failed:[/red] {getattr(cause, 'message', None) or cause}")
        return 1
    if report.trashed is not None:
        console.print(f"[green]Undone:[/green] {report.trashed} objects moved to the trash.")
        return 0
    counts = report.counts
    console.print(
        f"[green]Restore {report.status}:[/green] {counts.pages} pages, {counts.databases} databases, "
        f"{counts.data_sources} data sources; {counts.losses} things could not be recreated "
        f"(listed beside the report); {counts.api_requests} Notion requests.\n"
        f"Report: {report.report_path}\nMapping (old id -> new id): {report.mapping_path}"
    )
    return 0 if report.status == "completed" else 1
