"""Process gauges a worker refreshes every few seconds: its memory and limit, the request budget it
allows, and what Temporal says of the notion-sync schedules (interval, missed runs, last success).

Gauges, not counters: they describe state. Several workers report the same schedule facts; queries
aggregate them with `max by (...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from notion_sync.observability.exports import EXPORT_WORKFLOW, ExportTracker

log = logging.getLogger(__name__)
# cgroup v2, then v1; a container sees its own cgroup at the root of /sys/fs/cgroup.
CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
# cgroup v1 writes "no limit" as a huge number rather than "max".
_UNLIMITED_FROM = 1 << 60


@dataclass(frozen=True)
class ScheduleFacts:
    """What Temporal says of one schedule, for the gauges."""

    schedule_id: str
    destination: str
    interval_seconds: float | None
    missed_runs: int


def resident_memory_bytes() -> int | None:
    """The process's resident set size (Linux /proc), None where it cannot be read."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def memory_limit_bytes(cgroup_files: tuple[Path, ...] = CGROUP_LIMITS) -> int | None:
    """The tightest memory limit on the process (cgroup, or the address-space rlimit); None: unlimited."""
    limits: list[int] = []
    for path in cgroup_files:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text != "max" and int(text) < _UNLIMITED_FROM:
                limits.append(int(text))
            break
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    return min(limits) if limits else None


async def schedule_facts(client: Client, prefix: str) -> list[ScheduleFacts]:
    """Every schedule whose id starts with `prefix`: its destination (from the memo), its interval (the
    spec's, else the gap between its next two runs) and the runs it missed (catch-up window)."""
    found: list[ScheduleFacts] = []
    async for entry in await client.list_schedules():
        if not entry.id.startswith(prefix):
            continue
        with contextlib.suppress(RPCError):  # deleted since it was listed
            description = await client.get_schedule_handle(entry.id).describe()
            memo = await description.memo()
            intervals = description.schedule.spec.intervals
            next_runs = description.info.next_action_times
            interval: float | None = None
            if intervals:
                interval = intervals[0].every.total_seconds()
            elif len(next_runs) >= 2:
                interval = (next_runs[1] - next_runs[0]).total_seconds()
            found.append(
                ScheduleFacts(
                    schedule_id=entry.id,
                    destination=str(memo.get("destination", "")),
                    interval_seconds=interval,
                    missed_runs=description.info.num_actions_missed_catchup_window,
                )
            )
    return found


async def last_success(client: Client, destination: str) -> float | None:
    """Unix time of the newest completed export of `destination` in Temporal's visibility."""
    quoted = destination.replace("\\", "\\\\").replace("'", "\\'")
    query = (
        f"WorkflowType = '{EXPORT_WORKFLOW}' AND ExecutionStatus = 'Completed' "
        f"AND NotionDestination = '{quoted}'"
    )
    newest: float | None = None
    with contextlib.suppress(RPCError):  # a namespace without the search attribute
        async for execution in client.list_workflows(query, limit=20):
            if execution.close_time is not None:
                closed = execution.close_time.timestamp()
                newest = closed if newest is None else max(newest, closed)
    return newest


class WorkerGauges:
    """Refreshes the process gauges; `run` loops until cancelled."""

    def __init__(
        self,
        meter: MetricMeter,
        budgets: Mapping[str, float],
        exports: ExportTracker,
        client: Client | None = None,
        schedule_prefix: str = "",
    ) -> None:
        self._budgets = budgets
        self._exports = exports
        self._client = client
        self._schedule_prefix = schedule_prefix
        self._resident = meter.create_gauge(
            "notion_sync_worker_resident_memory_bytes", "Resident memory of the worker process", "By"
        )
        self._cpu = meter.create_gauge_float(
            "notion_sync_worker_cpu_seconds", "CPU time the worker process has used (user + system)", "s"
        )
        self._limit = meter.create_gauge(
            "notion_sync_worker_memory_limit_bytes", "Memory limit of the worker (absent: unlimited)", "By"
        )
        self._budget = meter.create_gauge_float(
            "notion_sync_request_budget_requests_per_second", "Notion requests per second this worker allows"
        )
        self._interval = meter.create_gauge_float(
            "notion_sync_schedule_interval_seconds", "Time between a scheduled destination's runs", "s"
        )
        self._missed = meter.create_gauge(
            "notion_sync_schedule_missed_runs_total", "Runs a schedule missed (catch-up window passed)"
        )

    async def run(self, every_seconds: float = 15.0) -> None:
        while True:
            await self.collect()
            await asyncio.sleep(every_seconds)

    async def collect(self) -> None:
        self.collect_process()
        if self._client is not None:
            try:
                await self.collect_schedules(self._client)
            except RPCError as error:
                # Temporal unreachable: the process gauges still go on; the next round tries again.
                log.warning("schedule metrics not refreshed: %s", error.message)

    def collect_process(self) -> None:
        # Cumulative, as a gauge (the runtime's counters take whole numbers): the dashboard rates it.
        used = os.times()
        self._cpu.set(used.user + used.system)
        resident = resident_memory_bytes()
        if resident is not None:
            self._resident.set(resident)
        limit = memory_limit_bytes()
        if limit is not None:
            self._limit.set(limit)
        for workspace, rate in self._budgets.items():
            if rate > 0:  # 0 means unlimited: no ratio to report against
                self._budget.set(rate, {"workspace": workspace})

    async def collect_schedules(self, client: Client) -> None:
        for facts in await schedule_facts(client, self._schedule_prefix):
            self._missed.set(facts.missed_runs, {"schedule": facts.schedule_id})
            if not facts.destination:
                continue
            if facts.interval_seconds is not None:
                self._interval.set(facts.interval_seconds, {"destination": facts.destination})
            succeeded = await last_success(client, facts.destination)
            if succeeded is not None:
                self._exports.succeeded(facts.destination, succeeded)


@contextlib.asynccontextmanager
async def refreshing_gauges(
    client: Client,
    exports: ExportTracker,
    budgets: Mapping[str, float],
    schedule_prefix: str,
    every_seconds: float = 15.0,
) -> AsyncIterator[WorkerGauges]:
    """The worker's process gauges, refreshed in the background while the block runs."""
    runtime = client.service_client.config.runtime or Runtime.default()
    gauges = WorkerGauges(runtime.metric_meter, budgets, exports, client, schedule_prefix)
    refreshing = asyncio.create_task(gauges.run(every_seconds))
    try:
        yield gauges
    finally:
        refreshing.cancel()
        await asyncio.gather(refreshing, return_exceptions=True)
