"""Scheduled exports on Temporal Schedules: create, list, pause, unpause, trigger, delete.

One schedule per destination, id `notion-sync-schedule-<hash>` (the hash of the export's own id).
Each action starts `ScheduledExportWorkflow`, which starts the destination's export under its fixed
id or attaches to the one already running, so a schedule never runs a second export of a destination.

Overlap policy SKIP: a scheduled run lasts as long as its export, so a tick that comes while one is
still going is dropped, and the next tick after it ends runs. BUFFER_ONE would start another full
export the moment a long one ends, back to back, forever, whenever an export outlasts the interval:
Notion's rate limit would be spent on a backup that is minutes old.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from notion_sync.control import export_workflow_id, normalise_destination
from notion_sync.models import ExportInput, ExportOptions, ScheduledExportInput
from notion_sync.settings import Settings
from workflows.scheduled import ScheduledExportWorkflow

SCHEDULE_PREFIX = "notion-sync-schedule-"
SCHEDULED_RUN_PREFIX = "notion-sync-scheduled-"
OVERLAP = ScheduleOverlapPolicy.SKIP
MIN_INTERVAL = timedelta(minutes=1)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EVERY = re.compile(r"(\d+)([mhdw])")


class ScheduleError(RuntimeError):
    """A schedule request that cannot be done, with a message for the user."""


class BadSpec(ValueError):
    """An --every or --cron value that makes no sense; the message says what would."""


@dataclass
class ScheduleView:
    """What `schedule list` shows about one schedule."""

    id: str
    destination: str
    spec: str
    paused: bool
    note: str | None
    next_runs: list[datetime]
    last_run: datetime | None
    running: int


def destination_hash(destination: str | Path) -> str:
    return export_workflow_id(destination).rsplit("-", 1)[-1]


def schedule_id(destination: str | Path) -> str:
    return SCHEDULE_PREFIX + destination_hash(destination)


def parse_every(text: str) -> timedelta:
    """`30m`, `1h`, `1d`, `2w`, or sums like `1h30m`; at least a minute."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _EVERY.sub("", compact):
        raise BadSpec(
            f"--every {text!r} is not an interval: use a number and a unit m, h, d or w (30m, 1h, 1d)"
        )
    every = timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _EVERY.findall(compact)))
    if every < MIN_INTERVAL:
        raise BadSpec(f"--every {text!r} is too short: at least 1m")
    return every


def format_every(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    parts = []
    for unit in ("d", "h", "m"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    if seconds:
        parts.append(f"{seconds}s")
    return "".join(parts) or "0s"


def check_cron(expression: str) -> str:
    """A light check (five fields, or `@daily`-style); the server validates the rest."""
    text = " ".join(expression.split())
    fields = text.split(" ")
    if fields and fields[0].startswith("CRON_TZ="):
        fields = fields[1:]
    if not (len(fields) == 5 or (len(fields) >= 1 and fields[0].startswith("@"))):
        raise BadSpec(
            f"--cron {expression!r} is not a cron expression: five fields, minute hour day month weekday "
            '(e.g. "0 3 * * *"), or @hourly, @daily, @weekly'
        )
    return text


def build_spec(every: str | None, cron: str | None, time_zone: str | None = None) -> tuple[ScheduleSpec, str]:
    """The schedule spec and its text for `list`, from exactly one of --every and --cron."""
    if (every is None) == (cron is None):
        raise BadSpec('give exactly one of --every (e.g. 1h) and --cron (e.g. "0 3 * * *")')
    if every is not None:
        interval = parse_every(every)
        return ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=interval)]
        ), f"every {format_every(interval)}"
    assert cron is not None
    expression = check_cron(cron)
    text = f"cron {expression}" + (f" ({time_zone})" if time_zone else "")
    return ScheduleSpec(cron_expressions=[expression], time_zone_name=time_zone), text


async def create_schedule(
    client: Client,
    settings: Settings,
    destination: str | Path,
    spec: ScheduleSpec,
    spec_text: str,
    options: ExportOptions | None = None,
    workspace: str | None = None,
) -> ScheduleHandle:
    destination = normalise_destination(destination)
    request = ScheduledExportInput(
        export=ExportInput(
            destination=destination,
            workspace=workspace or settings.workspace,
            options=options or ExportOptions(),
        ),
        export_workflow_id=export_workflow_id(destination),
    )
    action = ScheduleActionStartWorkflow(
        ScheduledExportWorkflow.run,
        request,
        # The schedule appends the time of each action to this id.
        id=SCHEDULED_RUN_PREFIX + destination_hash(destination),
        task_queue=settings.task_queue,
        static_summary=f"Scheduled Notion export to {destination}",
    )
    schedule = Schedule(
        action=action,
        spec=spec,
        policy=SchedulePolicy(overlap=OVERLAP),
        state=ScheduleState(note=f"notion-sync export to {destination}, {spec_text}"),
    )
    try:
        return await client.create_schedule(
            schedule_id(destination), schedule, memo={"destination": destination, "spec": spec_text}
        )
    except ScheduleAlreadyRunningError:
        raise ScheduleError(
            f"{destination} already has a schedule ({schedule_id(destination)}); "
            f"`notion-sync schedule delete --out {destination}` first to replace it"
        ) from None


async def describe_schedule(client: Client, destination: str | Path) -> ScheduleView:
    with _not_found(destination):
        description = await client.get_schedule_handle(schedule_id(destination)).describe()
    return await _view(description)


async def list_schedules(client: Client) -> list[ScheduleView]:
    """Every notion-sync schedule, read from its description (the list itself may lag)."""
    views = []
    async for entry in await client.list_schedules():
        if not entry.id.startswith(SCHEDULE_PREFIX):
            continue
        with contextlib.suppress(RPCError):  # deleted since it was listed
            views.append(await _view(await client.get_schedule_handle(entry.id).describe()))
    return sorted(views, key=lambda view: view.destination)


async def pause_schedule(client: Client, destination: str | Path) -> None:
    with _not_found(destination):
        await client.get_schedule_handle(schedule_id(destination)).pause(note="paused with notion-sync")


async def unpause_schedule(client: Client, destination: str | Path) -> None:
    with _not_found(destination):
        await client.get_schedule_handle(schedule_id(destination)).unpause(note="unpaused with notion-sync")


async def trigger_schedule(client: Client, destination: str | Path) -> None:
    """Runs the scheduled export now (dropped if a scheduled run is still going: overlap SKIP)."""
    with _not_found(destination):
        await client.get_schedule_handle(schedule_id(destination)).trigger()


async def delete_schedule(client: Client, destination: str | Path) -> None:
    """Removes the schedule; an export it started goes on to its end."""
    with _not_found(destination):
        await client.get_schedule_handle(schedule_id(destination)).delete()


@contextlib.contextmanager
def _not_found(destination: str | Path) -> Iterator[None]:
    try:
        yield
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleError(f"no schedule for {normalise_destination(destination)}") from None
        raise


async def _view(description: ScheduleDescription) -> ScheduleView:
    memo = await description.memo()
    schedule = description.schedule
    info = description.info
    return ScheduleView(
        id=description.id,
        destination=str(memo.get("destination", "?")),
        spec=str(memo.get("spec") or _spec_text(schedule.spec)),
        paused=schedule.state.paused,
        note=schedule.state.note,
        next_runs=list(info.next_action_times),
        last_run=info.recent_actions[-1].started_at if info.recent_actions else None,
        running=len(info.running_actions),
    )


def _spec_text(spec: ScheduleSpec) -> str:
    """For a schedule edited outside notion-sync (its memo no longer says)."""
    parts = [f"every {format_every(interval.every)}" for interval in spec.intervals]
    parts += [f"cron {expression}" for expression in spec.cron_expressions]
    if spec.calendars:
        parts.append(f"{len(spec.calendars)} calendar rule(s)")
    return ", ".join(parts) or "no times"


# --- the `notion-sync schedule` commands ---------------------------------------------------------

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
    keep: Annotated[
        int | None,
        typer.Option("--keep", help="After each publish, delete all but the KEEP newest snapshots."),
    ] = None,
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
    """Export to OUT on a schedule; a run attaches to an export of OUT already running."""
    from notion_sync.storage.local import check_destination

    try:
        spec, text = build_spec(every, cron, time_zone)
    except BadSpec as error:
        _fail(str(error), code=2)
    try:
        options = ExportOptions(
            batch_size=batch_size,
            max_parallel_batches=parallel,
            include_comments=comments,
            keep_snapshots=keep,
            full_listing_days=full_listing_days,
            allow_shrink=allow_shrink,
        )
    except ValidationError as error:
        first = error.errors()[0]
        flags = {"max_parallel_batches": "parallel", "keep_snapshots": "keep"}
        flag = flags.get(str(first["loc"][0]), str(first["loc"][0]))
        _fail(f"--{flag.replace('_', '-')}: {first['msg']}", code=2)
    problem = None if "://" in out else check_destination(Path(out).expanduser().resolve())
    if problem:
        _fail(problem, code=2)
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


# The CLI's connection and error handling are reused as they are (imported late: cli imports this module).
def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    from notion_sync import cli

    try:
        return cli._run(coro)
    except ValueError as error:  # a malformed destination, e.g. an s3:// URL without a bucket
        _fail(str(error), code=2)


def _fail(message: str, code: int = 1) -> NoReturn:
    from notion_sync.cli import console

    console.print(f"[red]error:[/red] {message}")
    raise SystemExit(code)


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[Client]:
    from notion_sync import cli

    settings = Settings()
    async with cli._session(settings, embedded_worker=False) as session:
        yield session.client


async def _create(
    out: str, spec: ScheduleSpec, text: str, options: ExportOptions, workspace: str | None
) -> int:
    from notion_sync.cli import console

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
    from notion_sync.cli import console

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
    from notion_sync.cli import console

    async with _client() as client:
        await action(client, out)
    console.print(f"Schedule of {normalise_destination(out)} {done}.")
    return 0
