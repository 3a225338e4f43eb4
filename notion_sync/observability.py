"""Traces, metrics, structured logs and health endpoints of a worker.

- Traces: `TracingInterceptor` spans workflows and activities; `notion_request` adds one span per
  Notion request. The SDK provider is installed once per process, exporters are added to it.
- Metrics: ours go through the Temporal runtime's meter (`activity.metric_meter()`), so they are
  served by the same Prometheus endpoint as Temporal's own and carry the activity's labels.
- Logs: one JSON object per line with the Temporal ids of the current activity or workflow and the
  Notion object being requested; every registered secret is masked in every format.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from notion_sync.models import BatchResult, PublishResult
from notion_sync.settings import Settings

if TYPE_CHECKING:
    from notion_sync.workers import WorkerGroup

SERVICE_NAME = "notion-sync-worker"
log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- traces

_provider: TracerProvider | None = None
_tracer = trace.get_tracer("notion_sync")


def tracer_provider() -> TracerProvider:
    """The process's SDK provider, installed globally on first use (OTel allows one per process)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        trace.set_tracer_provider(_provider)
    return _provider


def add_span_exporter(exporter: SpanExporter) -> None:
    tracer_provider().add_span_processor(BatchSpanProcessor(exporter))


_tracing_configured = False


def configure_tracing(settings: Settings) -> None:
    """Exports spans per NOTION_SYNC_TRACES / OTEL_EXPORTER_OTLP_ENDPOINT; a no-op when neither is set."""
    global _tracing_configured
    kind = settings.traces or ("otlp" if settings.otlp_endpoint else "none")
    if _tracing_configured or kind == "none":
        return
    _tracing_configured = True
    if kind == "console":
        add_span_exporter(ConsoleSpanExporter())
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # pragma: no cover - the package is a dependency
        log.warning("opentelemetry-exporter-otlp-proto-http is not installed: traces go to the console")
        add_span_exporter(ConsoleSpanExporter())
        return
    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS etc.) itself, appending /v1/traces.
    add_span_exporter(OTLPSpanExporter())


def tracing_interceptor() -> TracingInterceptor:
    # Workflows started by clients without tracing (the temporal CLI, the Web UI) still get spans.
    return TracingInterceptor(always_create_workflow_spans=True)


# --------------------------------------------------------------------------------------------- metrics

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


_object_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("notion_object_id", default=None)


@contextlib.contextmanager
def notion_request(object_id: str) -> Iterator[NotionRequest]:
    """A span (child of the running activity's) and the page id for log lines, around one request."""
    token = _object_id.set(object_id)
    try:
        with _tracer.start_as_current_span(
            "NotionRequest", attributes={"notion.object_id": object_id}
        ) as span:
            request = NotionRequest(span)
            yield request
            span.set_attribute("notion.attempts", request.attempts)
    finally:
        _object_id.reset(token)


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
    for name in ("manifest.jsonl", "problems.jsonl", "report.json"):
        with contextlib.suppress(OSError):
            total += (snapshot / name).stat().st_size
    with contextlib.suppress(OSError), (snapshot / "manifest.jsonl").open("rb") as lines:
        for line in lines:
            total += sum(int(f.get("size", 0)) for f in json.loads(line).get("files", ()))
    return total


# ------------------------------------------------------------------------------------------------ logs

_secrets: set[str] = set()
# Notion tokens and bearer headers, even ones never registered (another worker's, a typo's).
_TOKEN_PATTERN = re.compile(r"\b(?:ntn|secret)_[A-Za-z0-9]{16,}|(?<=Bearer )[^\s'\"]+")
REDACTED = "[redacted]"


def register_secret(value: str | None) -> None:
    """Masks `value` wherever `redact` runs: as is, URL-encoded and JSON-escaped (a server or proxy
    that echoes a request may quote it either way)."""
    if value:
        _secrets.update(
            variant for variant in (value, quote(value, safe=""), json.dumps(value)[1:-1]) if variant
        )


def redact(text: str) -> str:
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in records of a logger whose handlers we do not format (a library's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and redact(str(error)) != str(error):
            # A traceback prints the exception's text: leave the traceback out.
            record.exc_info, record.exc_text = None, None
            record.msg = f"{record.msg} ({type(error).__name__}, text withheld: it held a secret)"
        return True


def log_context() -> dict[str, Any]:
    """Temporal ids of the current activity or workflow, the Notion object and the trace, if any."""
    fields: dict[str, Any] = {}
    if activity.in_activity():
        info = activity.info()
        fields.update(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_type=info.activity_type,
            activity_id=info.activity_id,
            attempt=info.attempt,
        )
    elif workflow.in_workflow():
        winfo = workflow.info()
        fields.update(workflow_id=winfo.workflow_id, run_id=winfo.run_id)
    object_id = _object_id.get()
    if object_id is not None:
        fields["page_id"] = object_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields.update(trace_id=f"{span.trace_id:032x}", span_id=f"{span.span_id:016x}")
    return fields


# Attributes every LogRecord has; anything else came from `extra=` and is worth keeping.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(log_context())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                # temporalio's loggers attach their ids as dicts (temporal_activity, temporal_workflow).
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(filename: Path | None = None) -> None:
    """INFO and up to stderr, or to a file when a terminal belongs to a progress bar.

    NOTION_SYNC_LOG_FORMAT=json gives one JSON object per line with the Temporal and Notion ids.
    """
    if filename is not None:
        filename.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(filename) if filename is not None else logging.StreamHandler()
    handler.setFormatter(log_formatter(Settings().log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per HTTP request would drown everything else at workspace scale.
    for noisy in ("httpx", "notion_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------- health


class Health:
    """/healthz: the process serves requests (liveness). /readyz: the worker polls and Temporal answers."""

    def __init__(self, client: Client, worker: WorkerGroup) -> None:
        self._client = client
        self._worker = worker

    async def live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, _request: web.Request) -> web.Response:
        problems: list[str] = []
        if not self._worker.is_running or self._worker.is_shutdown:
            problems.append("worker not running")
        else:
            try:
                await self._client.service_client.check_health(timeout=timedelta(seconds=2))
            except Exception as error:  # any failure means not ready
                problems.append(f"temporal unreachable: {type(error).__name__}")
        body = {"status": "unavailable" if problems else "ok", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)


@contextlib.asynccontextmanager
async def health_server(port: int | None, client: Client, worker: WorkerGroup) -> AsyncIterator[int | None]:
    """Serves the health endpoints on 0.0.0.0:port while the block runs; yields the bound port."""
    if port is None:
        yield None
        return
    health = Health(client, worker)
    app = web.Application()
    app.router.add_get("/healthz", health.live)
    app.router.add_get("/readyz", health.ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
