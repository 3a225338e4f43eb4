"""Metrics: the Temporal runtime that serves Prometheus, and ours reported through its meter.

Ours go through the running activity's meter (`activity.metric_meter()`), so they are served by the
same endpoint as Temporal's own and carry the activity's labels.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from notion_sync.models import BatchResult, PublishResult
from notion_sync.observability.logs import notion_object_id
from notion_sync.observability.tracing import tracer
from notion_sync.settings import Settings
from notion_sync.snapshot import META_FILES, ManifestUnreadable, read_manifest

# The package's logger, named as before it was split in modules: operators filter on that name.
log = logging.getLogger(__package__)
_runtime: Runtime | None = None


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving Prometheus on the metrics port; must exist before any client."""
    global _runtime
    if settings.metrics_port is None:
        return None
    if _runtime is None:
        metrics = PrometheusConfig(bind_address=f"0.0.0.0:{settings.metrics_port}", durations_as_seconds=True)
        _runtime = Runtime(telemetry=TelemetryConfig(metrics=metrics))
    return _runtime


def _meter() -> MetricMeter:
    # Outside an activity (benchmarks, scripts) there is no worker runtime to report to.
    return activity.metric_meter() if activity.in_activity() else MetricMeter.noop


def _count(name: str, value: int, description: str, **labels: str) -> None:
    if value > 0:
        _meter().create_counter(name, description).add(value, labels or None)


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
    """Counts pages exported and bytes published from the activities' results (no I/O code touched)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)


class _ActivityMetrics(ActivityInboundInterceptor):
    def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = self.next.execute_activity(input)
        if inspect.isawaitable(result):
            return self._after(result)
        _record_result(result)
        return result

    async def _after(self, pending: Awaitable[Any]) -> Any:
        result = await pending
        _record_result(result)
        return result


def _record_result(result: object) -> None:
    if isinstance(result, BatchResult):
        _count("notion_sync_pages_exported_total", result.counters.exported, "Pages exported")
    elif isinstance(result, PublishResult):
        _count(
            "notion_sync_bytes_written_total",
            snapshot_bytes(Path(result.local_path or result.snapshot_path)),
            "Bytes published",
        )


def snapshot_bytes(snapshot: Path) -> int:
    """Size of a published snapshot, from its manifest (no walk over 100k files)."""
    total = 0
    for name in META_FILES:
        with contextlib.suppress(OSError):
            total += (snapshot / name).stat().st_size
    with contextlib.suppress(ManifestUnreadable), read_manifest(snapshot) as (_header, entries):
        for entry in entries:
            total += sum(file.size for file in entry.files)
    return total
