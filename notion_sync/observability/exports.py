"""Export metrics seen from the workflow side, through a worker interceptor (no workflow code changed).

Counters (started, finished by outcome) go through `workflow.metric_meter()`, which drops them while
a history replays, so a worker restart never counts a run twice. What describes the present (which
exports run, in which phase; when each destination last succeeded) is process state kept by
`ExportTracker` and served as gauges through the runtime's meter: it is rebuilt as workflows replay
into this worker's cache, and forgotten when one leaves it (finished, continued as new, evicted).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.runtime import Runtime
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from notion_sync import attributes
from notion_sync.models import ExportInput, Phase

EXPORT_WORKFLOW = "ExportWorkflow"
# The `phase` label of a paused export, whatever phase it was paused in.
PAUSED = "paused"
# The export's signals that pause and resume it (`ExportWorkflow.pause` / `resume`).
PAUSE_SIGNALS: Mapping[str, bool] = {"pause": True, "resume": False}

# The phase of the export each activity belongs to, named as the workflow names its phases.
ACTIVITY_PHASES: Mapping[str, Phase] = {
    "identify_workspace": Phase.STARTING,
    "prepare_staging": Phase.STARTING,
    "carry_over": Phase.DISCOVERING,
    "discover_pages": Phase.DISCOVERING,
    "discover_data_sources": Phase.DISCOVERING,
    "export_users": Phase.DISCOVERING,
    "assign_paths": Phase.LAYOUT,
    "export_batch": Phase.EXPORTING,
    "resolve_references": Phase.EXPORTING,
    "write_tables": Phase.TABLES,
    "check_shrink": Phase.PUBLISHING,
    "publish_snapshot": Phase.PUBLISHING,
    "discard_staging": Phase.COMPENSATING,
    "record_report": Phase.COMPENSATING,
}

OUTCOMES = ("completed", "failed", "cancelled", "shrink_refused", "workspace_refused")
# How a failed run's error type reads as an outcome label; any other failure is "failed".
FAILURE_OUTCOMES: Mapping[str, str] = {
    "ShrinkGuard": "shrink_refused",
    "WorkspaceMismatch": "workspace_refused",
    "ExportFailed": "failed",
}


@dataclass
class _Run:
    workspace: str
    phase: str
    paused: bool = False

    @property
    def labels(self) -> tuple[str, str]:
        # A paused export shows as phase "paused": it makes no progress on purpose (no "stuck" alert).
        return (self.workspace, PAUSED if self.paused else self.phase)


class ExportTracker:
    """The exports held by this worker's workflow cache, by workspace and phase, and the last success
    of each destination, as gauges. Workflow threads call it concurrently, hence the lock."""

    def __init__(self, meter: MetricMeter) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Run] = {}  # by run id
        self._last_success: dict[str, float] = {}  # destination -> unix time
        # Every (workspace, phase) ever shown, so a phase that empties drops to 0 instead of staying.
        self._shown: set[tuple[str, str]] = set()
        self._running_gauge = meter.create_gauge(
            "notion_sync_exports_running", "Exports running on this worker, by workspace and phase"
        )
        self._success_gauge = meter.create_gauge_float(
            "notion_sync_last_success_timestamp_seconds",
            "Unix time of the last successful publish to each destination",
            "s",
        )

    def enter(self, run_id: str, workspace: str, phase: str) -> None:
        with self._lock:
            self._running[run_id] = _Run(workspace, phase)
            self._publish()

    def move(self, run_id: str, phase: str) -> None:
        """A running export enters another phase (ignored for runs never entered: not exports)."""
        with self._lock:
            run = self._running.get(run_id)
            if run is not None and run.phase != phase:
                run.phase = phase
                self._publish()

    def pause(self, run_id: str, paused: bool) -> None:
        with self._lock:
            run = self._running.get(run_id)
            if run is not None and run.paused != paused:
                run.paused = paused
                self._publish()

    def leave(self, run_id: str) -> None:
        with self._lock:
            if self._running.pop(run_id, None) is not None:
                self._publish()

    def running(self) -> dict[tuple[str, str], int]:
        """Running exports by (workspace, phase)."""
        with self._lock:
            return dict(Counter(run.labels for run in self._running.values()))

    def succeeded(self, destination: str, timestamp: float) -> None:
        """A publish to `destination` at `timestamp`; an older one (from visibility, seen late) is ignored."""
        with self._lock:
            if timestamp <= self._last_success.get(destination, 0.0):
                return
            self._last_success[destination] = timestamp
            self._success_gauge.set(timestamp, {"destination": destination})

    def _publish(self) -> None:
        counts = Counter(run.labels for run in self._running.values())
        self._shown |= set(counts)
        for workspace, phase in self._shown:
            labels = {"workspace": workspace, "phase": phase}
            self._running_gauge.set(counts.get((workspace, phase), 0), labels)


_trackers: dict[int, ExportTracker] = {}
_trackers_lock = threading.Lock()


def export_tracker(runtime: Runtime) -> ExportTracker:
    """The one tracker of a runtime's meter: every worker and the gauge refresher of a process share it."""
    with _trackers_lock:
        key = id(runtime)
        if key not in _trackers:
            _trackers[key] = ExportTracker(runtime.metric_meter)
        return _trackers[key]


def workflow_metrics_class(tracker: ExportTracker) -> type[WorkflowInboundInterceptor]:
    """The inbound interceptor class for export workflows, bound to the process's tracker."""

    class _Bound(_ExportWorkflowMetrics):
        _tracker = tracker

    return _Bound


class _ExportWorkflowMetrics(WorkflowInboundInterceptor):
    _tracker: ExportTracker
    # A signal sent with the start is handled before the run is entered: remembered for it.
    _paused = False

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_PhaseFromActivities(outbound, self._tracker))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        request = input.args[0] if input.args else None
        if info.workflow_type != EXPORT_WORKFLOW or not isinstance(request, ExportInput):
            return await super().execute_workflow(input)
        workspace = request.workspace
        meter = workflow.metric_meter()
        if info.continued_run_id is None:
            meter.create_counter("notion_sync_exports_started_total", "Exports started").add(
                1, {"workspace": workspace}
            )
        for outcome in OUTCOMES:
            # Every outcome's series exists at 0 before the first one ends, so `increase()` sees the 0 -> 1
            # step of the first failure (a series that starts at 1 shows no increase).
            _finished(meter, workspace, outcome, 0)
        phase = request.state.phase if request.state is not None else Phase.STARTING
        self._tracker.enter(info.run_id, workspace, phase.value)
        self._tracker.pause(info.run_id, self._paused)
        try:
            result = await super().execute_workflow(input)
        except asyncio.CancelledError:
            _finished(meter, workspace, "cancelled")
            raise
        except ApplicationError as error:
            _finished(meter, workspace, FAILURE_OUTCOMES.get(error.type or "", "failed"))
            raise
        except FailureError:
            _finished(meter, workspace, "failed")
            raise
        finally:
            # Also on continue-as-new and eviction: the next run, or the next worker, enters again.
            self._tracker.leave(info.run_id)
        _finished(meter, workspace, "completed")
        if not workflow.unsafe.is_replaying():
            destination = info.typed_search_attributes.get(attributes.DESTINATION) or request.destination
            self._tracker.succeeded(destination, workflow.now().timestamp())
        return result

    async def handle_signal(self, input: HandleSignalInput) -> None:
        paused = PAUSE_SIGNALS.get(input.signal)
        if paused is not None:
            self._paused = paused
            self._tracker.pause(workflow.info().run_id, paused)
        await super().handle_signal(input)


def _finished(meter: MetricMeter, workspace: str, outcome: str, count: int = 1) -> None:
    meter.create_counter("notion_sync_exports_finished_total", "Exports finished, by outcome").add(
        count, {"workspace": workspace, "outcome": outcome}
    )


class _PhaseFromActivities(WorkflowOutboundInterceptor):
    """Each activity the export starts says which phase it is in."""

    def __init__(self, next: WorkflowOutboundInterceptor, tracker: ExportTracker) -> None:
        super().__init__(next)
        self._tracker = tracker

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        phase = ACTIVITY_PHASES.get(input.activity)
        if phase is not None:
            self._tracker.move(workflow.info().run_id, phase.value)
        return super().start_activity(input)
