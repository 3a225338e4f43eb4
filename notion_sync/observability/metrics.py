"""Metrics: the Temporal runtime that serves Prometheus, and ours reported through its meter.

Activities' go through the running activity's meter (`activity.metric_meter()`), so they are served
by the same endpoint as Temporal's own and carry the activity's labels, plus `workspace` (set by the
interceptor of that workspace's activity worker). Workflow-side metrics are in `exports`, process
gauges in `collector`. Labels stay low-cardinality: never a page, object or run id.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from notion_sync.models import BatchResult, PublishResult, ShrinkCheck, UsersResult
from notion_sync.observability.exports import ExportTracker, workflow_metrics_class
from notion_sync.observability.logs import notion_object_id
from notion_sync.observability.tracing import tracer
from notion_sync.settings import Settings
from notion_sync.snapshot import META_FILES, ManifestUnreadable, read_manifest

# The package's logger, named as before it was split in modules: operators filter on that name.
log = logging.getLogger(__package__)
# One runtime per metrics port: a process (a test session) may serve several.
_runtimes: dict[int, Runtime] = {}
# The workspace whose activity worker runs the current activity (None outside one).
_workspace: ContextVar[str | None] = ContextVar("notion_sync_metrics_workspace", default=None)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving Prometheus on the metrics port; must exist before any client."""
    port = settings.metrics_port
    if port is None:
        return None
    if port not in _runtimes:
        metrics = PrometheusConfig(bind_address=f"0.0.0.0:{port}", durations_as_seconds=True)
        _runtimes[port] = Runtime(telemetry=TelemetryConfig(metrics=metrics))
    return _runtimes[port]


def _meter() -> MetricMeter:
    # Outside an activity (benchmarks, scripts) there is no worker runtime to report to.
    if not activity.in_activity():
        return MetricMeter.noop
    workspace = _workspace.get()
    meter = activity.metric_meter()
    return meter if workspace is None else meter.with_additional_attributes({"workspace": workspace})


def _count(name: str, value: int, description: str, **labels: str) -> None:
    if value > 0:
        _meter().create_counter(name, description).add(value, labels or None)


def _progress() -> None:
    """One unit of progress: a Notion answer or a finished activity (the "export stuck" alert)."""
    _count("notion_sync_export_progress_total", 1, "Units of export progress (answers, activities)")


def _wait(seconds: float, reason: str) -> None:
    if seconds > 0:
        _meter().create_histogram_float(
            "notion_sync_rate_limit_wait_seconds", "Time spent waiting for the request budget or Retry-After"
        ).record(seconds, {"reason": reason})


class NotionRequest:
    """What `NotionGateway.call` reports about one logical request (all its attempts)."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self.attempts = 0

    def budget_waited(self, seconds: float) -> None:
        _wait(seconds, "budget")

    def answered(self, status: int | str) -> None:
        self.attempts += 1
        self._span.set_attribute("http.response.status_code", str(status))
        _count("notion_sync_notion_requests_total", 1, "Notion API requests by status", status=str(status))
        log.debug("Notion answered %s", status)
        if isinstance(status, int) and 200 <= status < 300:
            _progress()
        if status in (429, 529):
            _count("notion_sync_rate_limited_total", 1, "Notion answers 429/529 (rate limited)")

    def retry_after(self, seconds: float) -> None:
        log.info("Notion rate limited: every sharer of the budget waits %.1f s (Retry-After)", seconds)
        _wait(seconds, "retry_after")


@contextlib.contextmanager
def notion_request(object_id: str) -> Iterator[NotionRequest]:
    """A span (child of the running activity's) and the page id for log lines, around one request."""
    token = notion_object_id.set(object_id)
    try:
        with tracer.start_as_current_span(
            "NotionRequest", attributes={"notion.object_id": object_id}
        ) as span:
            request = NotionRequest(span)
            yield request
            span.set_attribute("notion.attempts", request.attempts)
    finally:
        notion_object_id.reset(token)


class MetricsInterceptor(Interceptor):
    """Counts what activities report in their results (pages, objects, bytes, shrink-guard trips) and,
    given a tracker, what export workflows do (started, finished, running by phase, last success).

    One per worker: an activity worker's names its `workspace`, the workflows' worker holds `exports`.
    """

    def __init__(self, workspace: str | None = None, exports: ExportTracker | None = None) -> None:
        self._workspace = workspace
        self._exports = exports

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next, self._workspace)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return None if self._exports is None else workflow_metrics_class(self._exports)


class _ActivityMetrics(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, workspace: str | None) -> None:
        super().__init__(next)
        self._workspace = workspace

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # The activity's own task: the workspace label reaches every metric it reports, threads included.
        _workspace.set(self._workspace)
        result = await self.next.execute_activity(input)
        _record_result(result)
        _progress()
        return result


def _record_result(result: object) -> None:
    if isinstance(result, BatchResult):
        _count("notion_sync_pages_exported_total", result.counters.exported, "Pages exported")
        _objects("file", result.counters.files_downloaded)
    elif isinstance(result, UsersResult):
        _objects("user", result.users)
    elif isinstance(result, ShrinkCheck) and result.tripped:
        _count("notion_sync_shrink_guard_trips_total", 1, "Runs losing more than the shrink guard allows")
    elif isinstance(result, PublishResult):
        size, kinds = snapshot_summary(Path(result.local_path or result.snapshot_path))
        _count("notion_sync_published_bytes_total", size, "Bytes of the snapshots published")
        for kind, count in kinds.items():
            _objects(kind, count)


def _objects(kind: str, count: int) -> None:
    _count("notion_sync_objects_exported_total", count, "Objects exported, by kind", kind=kind)


# A snapshot's manifest object types as `kind` labels (users, one entry, are counted by export_users).
_MANIFEST_KINDS = {"page": "page", "database": "database", "data_source": "data_source"}


def snapshot_summary(snapshot: Path) -> tuple[int, Counter[str]]:
    """Size of a published snapshot and its exported objects by kind, from its manifest (streamed: no
    walk over 100k files, nothing held but the counts)."""
    total = 0
    kinds: Counter[str] = Counter()
    for name in META_FILES:
        with contextlib.suppress(OSError):
            total += (snapshot / name).stat().st_size
    with contextlib.suppress(ManifestUnreadable), read_manifest(snapshot) as (_header, entries):
        for entry in entries:
            total += sum(file.size for file in entry.files)
            kind = _MANIFEST_KINDS.get(entry.type)
            if kind is not None and entry.status == "exported":
                kinds[kind] += 1
    return total, kinds
