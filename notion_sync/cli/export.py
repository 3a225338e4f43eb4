"""`notion-sync export` and the commands that follow an export: status, pause, resume, cancel, and
`worker`, which serves exports started elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from notion_sync.cli.options import (
    KeepDailyOption,
    KeepMonthlyOption,
    KeepOption,
    KeepWeeklyOption,
    export_options,
    retention_policy,
)
from notion_sync.cli.session import Session, console, fail, open_session, run
from notion_sync.control import (
    ExportAlreadyRunning,
    activity_status,
    export_handle,
    is_running,
    normalise_destination,
    query_progress,
    start_export,
)
from notion_sync.models import ExportInput, ExportOptions, ExportProgress, ExportReport
from notion_sync.settings import Settings
from notion_sync.snapshot import CURRENT, CURRENT_JSON
from notion_sync.storage.local import check_destination
from notion_sync.storage.s3 import S3UrlError, is_s3, parse_s3_url
from notion_sync.workers import run_worker
from workflows.export import ExportWorkflow


class LayoutChoice(enum.StrEnum):
    tree = "tree"
    notion = "notion"


OutOption = Annotated[Path, typer.Option("--out", "-o", help="Destination folder, or s3://bucket/prefix.")]


def export(
    out: OutOption,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the export, with progress.")
    ] = True,
    batch_size: Annotated[int, typer.Option(help="Pages per export activity.")] = 100,
    parallel: Annotated[int, typer.Option(help="Export activities run at once.")] = 4,
    comments: Annotated[bool, typer.Option("--comments/--no-comments", help="Export comments.")] = True,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh", help="Read every page again, even those unchanged since the last export."
        ),
    ] = False,
    full_listing_days: Annotated[
        float,
        typer.Option(
            min=0,
            help="A sync lists only what changed unless the last full listing (which also drops "
            "trashed and deleted pages) is this many days old; 0 lists everything every time.",
        ),
    ] = 7,
    files: Annotated[
        bool, typer.Option("--files/--no-files", help="Download images and attachments into the export.")
    ] = True,
    external_files: Annotated[
        bool,
        typer.Option(
            "--external-files/--no-external-files", help="Also download files hosted outside Notion."
        ),
    ] = True,
    max_file_mb: Annotated[float, typer.Option(help="Larger files keep their URL and are reported.")] = 100,
    layout: Annotated[
        LayoutChoice, typer.Option(help="tree: readable names; notion: Notion's own `Title <id>` naming.")
    ] = LayoutChoice.tree,
    html: Annotated[
        bool, typer.Option("--html/--no-html", help="Render a static HTML site into each snapshot.")
    ] = True,
    csv_bom: Annotated[
        bool, typer.Option("--csv-bom", help="Start CSV files with a BOM (for Excel).")
    ] = False,
    keep: KeepOption = None,
    keep_daily: KeepDailyOption = None,
    keep_weekly: KeepWeeklyOption = None,
    keep_monthly: KeepMonthlyOption = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            help="The workspace to export, by name (credentials file or folder, see README). Default: "
            "the one of NOTION_TOKEN, named after Notion's answer for it when this command runs the worker.",
        ),
    ] = None,
    allow_shrink: Annotated[
        bool,
        typer.Option(
            "--allow-shrink",
            help="Publish even if more than 5 %% (at most 50) of the pages were lost or removed since the "
            "last snapshot; the report says so.",
        ),
    ] = False,
    force_workspace: Annotated[
        bool,
        typer.Option(
            "--force-workspace", help="Export into a destination whose snapshots came from another workspace."
        ),
    ] = False,
) -> None:
    """Export a workspace to OUT, or sync the export already there. With no NOTION_TOKEN, exports the
    bundled demo workspace.

    After publishing, the --keep* flags delete the snapshots none of them keeps (folder or S3)."""
    problem = _destination_problem(out)
    if problem:
        fail(problem, code=2)
    options = export_options(
        batch_size=batch_size,
        max_parallel_batches=parallel,
        include_comments=comments,
        full_refresh=full_refresh,
        full_listing_days=full_listing_days,
        download_files=files,
        download_external_files=external_files,
        max_file_mb=max_file_mb,
        layout=layout.value,
        csv_bom=csv_bom,
        html=html,
        retention=retention_policy(keep, keep_daily, keep_weekly, keep_monthly),
        allow_shrink=allow_shrink,
        force_workspace=force_workspace,
    )
    sys.exit(run(_export(out, options, wait, workspace)))


def status(out: OutOption) -> None:
    """Show the live progress of the export to OUT."""
    sys.exit(run(_status(out)))


def pause(out: OutOption) -> None:
    """Pause the export to OUT: no Notion request is made until `resume`."""
    sys.exit(run(_signal(out, "pause")))


def resume(out: OutOption) -> None:
    """Resume a paused export to OUT."""
    sys.exit(run(_signal(out, "resume")))


def cancel(out: OutOption) -> None:
    """Cancel the export to OUT: staging is removed, the last complete export stays."""
    sys.exit(run(_cancel(out)))


def worker() -> None:
    """Run a worker against TEMPORAL_ADDRESS (settings from the environment)."""
    sys.exit(run(run_worker(Settings())))


def _destination_problem(out: Path) -> str | None:
    """Why OUT cannot hold an export: a folder is checked on disk, an s3:// URL only for its shape
    (the bucket itself is checked by the workers, which hold the credentials)."""
    if is_s3(out):
        try:
            parse_s3_url(out)
        except S3UrlError as error:
            return str(error)
        return None
    return check_destination(out.expanduser().resolve())


async def _export(out: Path, options: ExportOptions, wait: bool, workspace: str | None) -> int:
    settings = Settings()
    async with open_session(settings, embedded_worker=True, workspace=workspace) as session:
        handle = export_handle(session.client, out)
        if await is_running(handle):
            if session.worker is None and not wait:
                raise ExportAlreadyRunning(handle.id, normalise_destination(out))
            console.print(f"An export to {normalise_destination(out)} is already running; attaching to it.")
        else:
            request = ExportInput(destination=str(out), workspace=session.workspace, options=options)
            handle = await start_export(session.client, session.settings, request)
            console.print(f"Started export [bold]{handle.id}[/bold] to {normalise_destination(out)}")
        if session.server is not None and session.server.ui_url:
            console.print(
                f"Temporal Web UI: {session.server.ui_url}/namespaces/default/workflows/{handle.id}"
            )
        if not wait:
            return 0
        return await _watch(session, handle)


async def _status(out: Path) -> int:
    async with open_session(Settings(), embedded_worker=False) as session:
        handle = await _running_export(session, out)
        return 1 if handle is None else await _watch(session, handle)


async def _signal(out: Path, signal: Literal["pause", "resume"]) -> int:
    async with open_session(Settings(), embedded_worker=False) as session:
        handle = await _running_export(session, out)
        if handle is None:
            return 1
        await handle.signal(signal)
        console.print(f"{signal} sent to {handle.id}")
        return 0


async def _cancel(out: Path) -> int:
    """Cancellation is Temporal's own request, not a signal: the workflow compensates on it."""
    async with open_session(Settings(), embedded_worker=False) as session:
        handle = await _running_export(session, out)
        if handle is None:
            return 1
        await handle.cancel()
        console.print(f"cancel sent to {handle.id}")
        return 0


async def _running_export(session: Session, out: Path) -> WorkflowHandle[ExportWorkflow, ExportReport] | None:
    """The export to OUT if one is running; if not, None, and the user is told."""
    handle = export_handle(session.client, out)
    if await is_running(handle):
        return handle
    console.print(f"No export to {normalise_destination(out)} is running.")
    return None


async def _watch(session: Session, handle: WorkflowHandle[ExportWorkflow, ExportReport]) -> int:
    """A live progress bar until the export ends; 0 if it completed. If the embedded server goes
    away meanwhile, it is started again (same database) and the watch goes on: the export is durable."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} objects, {task.fields[rate]} req/s"),
        TimeElapsedColumn(),
        # What holds the export up right now: a rate-limit wait and until when, a retry and its cause.
        TextColumn("[yellow]{task.fields[holdup]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting", total=None, rate=0.0, holdup="")
        lost = 0
        polls = 0
        while True:
            result: asyncio.Task[ExportReport] = asyncio.create_task(handle.result())
            while not result.done():
                with contextlib.suppress(RPCError):
                    _show(bar, task, await query_progress(handle))
                    if polls % 4 == 0:
                        bar.update(task, holdup=await activity_status(handle) or "")
                polls += 1
                await asyncio.wait([result], timeout=0.5)
            if not isinstance(result.exception(), RPCError) or lost >= 5:
                break
            lost += 1
            if session.server is None:
                # A Temporal cluster that stopped answering (a restart, a full disk) still runs the
                # export: wait for it to answer again instead of reporting a failure that is not one.
                console.print("Temporal is not answering: waiting for it (the export goes on there).")
                await asyncio.sleep(min(2.0**lost, 30.0))
            elif await asyncio.to_thread(session.server.ensure_running):
                console.print(
                    "The embedded Temporal server had stopped: started it again, the export goes on."
                )
            else:
                await asyncio.sleep(2.0)
        _show_ended(bar, task, result)
    try:
        report = result.result()
    except WorkflowFailureError as error:
        cause = error.cause
        console.print(f"[red]Export failed:[/red] {getattr(cause, 'message', None) or cause}")
        return 1
    counters = report.counters
    shrink = report.shrink
    if shrink is not None and shrink.allowed:
        console.print(f"[yellow]Published with --allow-shrink:[/yellow] {shrink.summary()}.")
    elif shrink is not None and (shrink.lost or shrink.removed):
        console.print(f"Changes since the last snapshot: {shrink.summary()}.")
    listed = " (in problems.jsonl)" if report.problems else ""
    console.print(
        f"[green]Export complete:[/green] {counters.exported} exported, {counters.skipped} skipped, "
        f"{counters.failed} failed, {report.problems} problems{listed}, "
        f"{counters.api_requests} Notion requests.\n"
        f"Open {_current_of(report.destination)} (snapshot {report.snapshot})"
    )
    return 0 if counters.failed == 0 else 1


def _current_of(destination: str) -> str:
    return f"{destination}/{CURRENT_JSON}" if is_s3(destination) else str(Path(destination) / CURRENT)


def _show_ended(bar: Progress, task: TaskID, result: asyncio.Task[ExportReport]) -> None:
    """The bar's last state, from the result: a query to an ended run would make a worker replay
    its whole history (memory in proportion to its length) just to answer it."""
    if result.exception() is None:
        report = result.result()
        counters = report.counters
        done = counters.exported + counters.skipped + counters.failed
        bar.update(
            task, description=report.status, total=counters.discovered or None, completed=done, holdup=""
        )


def _show(bar: Progress, task: TaskID, progress: ExportProgress) -> None:
    done = progress.exported + progress.skipped + progress.failed
    label = f"{progress.phase.value}{' (paused)' if progress.paused else ''}"
    bar.update(
        task,
        description=label,
        total=progress.discovered or None,
        completed=done,
        rate=progress.requests_per_second,
    )
