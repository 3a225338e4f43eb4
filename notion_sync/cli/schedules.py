"""`notion-sync schedule`: create, list, pause, unpause, trigger and delete scheduled exports."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from temporalio.client import Client, ScheduleSpec
from temporalio.service import RPCError, RPCStatusCode

from notion_sync.cli.options import (
    KeepDailyOption,
    KeepMonthlyOption,
    KeepOption,
    KeepWeeklyOption,
    export_options,
    retention_policy,
)
from notion_sync.cli.session import console, fail, open_session, run
from notion_sync.control import normalise_destination
from notion_sync.models import ExportOptions
from notion_sync.schedules import (
    BadSpec,
    build_spec,
    create_schedule,
    delete_schedule,
    describe_schedule,
    list_schedules,
    pause_schedule,
    trigger_schedule,
    unpause_schedule,
)
from notion_sync.settings import Settings
from notion_sync.storage.local import check_destination

schedule_app = typer.Typer(
    help="Scheduled exports on Temporal Schedules (one schedule per destination).",
    no_args_is_help=True,
)
_Action = Callable[[Client, str | Path], Awaitable[None]]
# A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
OutOption = Annotated[str, typer.Option("--out", "-o", help="Destination of the export.")]


@schedule_app.command("create")
def create_command(
    out: OutOption,
    every: Annotated[str | None, typer.Option(help="Interval: 30m, 1h, 1d, 1w, 1h30m.")] = None,
    cron: Annotated[str | None, typer.Option(help='Cron expression, e.g. "0 3 * * *".')] = None,
    time_zone: Annotated[
        str | None, typer.Option("--time-zone", help="IANA zone for --cron (default UTC).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Pages per export activity.")] = 100,
    parallel: Annotated[int, typer.Option(help="Export activities run at once.")] = 4,
    comments: Annotated[bool, typer.Option("--comments/--no-comments", help="Export comments.")] = True,
    keep: KeepOption = None,
    keep_daily: KeepDailyOption = None,
    keep_weekly: KeepWeeklyOption = None,
    keep_monthly: KeepMonthlyOption = None,
    full_listing_days: Annotated[
        float,
        typer.Option(
            help="List the whole workspace (dropping trashed pages) when the last full listing "
            "is this many days old; other runs list only what changed. 0: always."
        ),
    ] = 7,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", help="The workspace to export, by name (default: NOTION_SYNC_WORKSPACE)."
        ),
    ] = None,
    allow_shrink: Annotated[
        bool,
        typer.Option("--allow-shrink", help="Publish every run even when the shrink guard would refuse it."),
    ] = False,
) -> None:
    """Export to OUT on a schedule; a run attaches to an export of OUT already running. After each
    publish, the --keep* flags delete the snapshots none of them keeps."""
    try:
        spec, text = build_spec(every, cron, time_zone)
    except BadSpec as error:
        fail(str(error), code=2)
    options = export_options(
        batch_size=batch_size,
        max_parallel_batches=parallel,
        include_comments=comments,
        retention=retention_policy(keep, keep_daily, keep_weekly, keep_monthly),
        full_listing_days=full_listing_days,
        allow_shrink=allow_shrink,
    )
    problem = None if "://" in out else check_destination(Path(out).expanduser().resolve())
    if problem:
        fail(problem, code=2)
    sys.exit(_run(_create(out, spec, text, options, workspace)))


@schedule_app.command("list")
def list_command() -> None:
    """List the notion-sync schedules: destination, spec, state, next run."""
    sys.exit(_run(_list()))


@schedule_app.command("pause")
def pause_command(out: OutOption) -> None:
    """Pause the schedule of OUT (a running export goes on)."""
    sys.exit(_run(_act(out, pause_schedule, "paused")))


@schedule_app.command("unpause")
def unpause_command(out: OutOption) -> None:
    """Unpause the schedule of OUT."""
    sys.exit(_run(_act(out, unpause_schedule, "unpaused")))


@schedule_app.command("trigger")
def trigger_command(out: OutOption) -> None:
    """Run the scheduled export of OUT now (attaching to a running export of OUT)."""
    sys.exit(_run(_act(out, trigger_schedule, "triggered")))


@schedule_app.command("delete")
def delete_command(out: OutOption) -> None:
    """Delete the schedule of OUT (a running export goes on)."""
    sys.exit(_run(_act(out, delete_schedule, "deleted")))


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    try:
        return run(coro)
    except ValueError as error:  # a malformed destination, e.g. an s3:// URL without a bucket
        fail(str(error), code=2)


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[Client]:
    async with open_session(Settings(), embedded_worker=False) as session:
        yield session.client


async def _create(
    out: str, spec: ScheduleSpec, text: str, options: ExportOptions, workspace: str | None
) -> int:
    settings = Settings()
    async with _client() as client:
        try:
            handle = await create_schedule(client, settings, out, spec, text, options, workspace)
        except RPCError as error:
            if error.status != RPCStatusCode.INVALID_ARGUMENT:
                raise
            console.print(f"[red]error:[/red] {error.message}")  # e.g. a cron field out of range
            return 2
        view = await describe_schedule(client, out)
    next_run = f", next run {view.next_runs[0]:%Y-%m-%d %H:%M} UTC" if view.next_runs else ""
    console.print(
        f"Created schedule [bold]{handle.id}[/bold]: export to {view.destination}, {text}{next_run}"
    )
    if settings.temporal_address is None:
        console.print(
            f"TEMPORAL_ADDRESS is not set: the schedule is kept by the embedded server "
            f"({settings.state_dir / 'temporal.db'}) and runs only while that server and a worker run. "
            "For unattended backups, point TEMPORAL_ADDRESS at a Temporal cluster with workers."
        )
    return 0


async def _list() -> int:
    async with _client() as client:
        views = await list_schedules(client)
    if not views:
        console.print("No schedules.")
        return 0
    for view in views:
        state = "paused" if view.paused else ("running" if view.running else "active")
        next_run = f"{view.next_runs[0]:%Y-%m-%d %H:%M} UTC" if view.next_runs and not view.paused else "-"
        last_run = f"{view.last_run:%Y-%m-%d %H:%M} UTC" if view.last_run else "never"
        print(f"{view.destination}\t{view.spec}\t{state}\tnext {next_run}\tlast {last_run}\t{view.id}")
    return 0


async def _act(out: str, action: _Action, done: str) -> int:
    async with _client() as client:
        await action(client, out)
    console.print(f"Schedule of {normalise_destination(out)} {done}.")
    return 0
