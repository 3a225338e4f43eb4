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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

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
