"""Traces, metrics, structured logs and health endpoints of a worker.

- Traces (`tracing`): `TracingInterceptor` spans workflows and activities. The SDK provider is
  installed once per process, exporters are added to it.
- Metrics (`metrics`): ours go through the Temporal runtime's meter, so they are served by the same
  Prometheus endpoint as Temporal's own; `notion_request` adds one span and the status and wait
  metrics of each Notion request. `exports`: export workflows' metrics (started, finished, running
  by phase, last success) through the same interceptor; `collector`: process gauges (memory, request
  budget, schedules).
- Redaction (`redaction`): every registered secret is masked in every log format and error text.
- Logs (`logs`): one JSON object per line with the Temporal ids of the current activity or workflow
  and the Notion object being requested.
- Health (`health`): /healthz and /readyz for the probes.

Import from here: this module is the package's public face.
"""

from notion_sync.observability.collector import WorkerGauges, refreshing_gauges
from notion_sync.observability.exports import ExportTracker, export_tracker
from notion_sync.observability.health import health_server
from notion_sync.observability.logs import JsonFormatter, configure_logging, log_formatter
from notion_sync.observability.metrics import (
    MetricsInterceptor,
    NotionRequest,
    metrics_runtime,
    notion_request,
)
from notion_sync.observability.redaction import REDACTED, RedactingFilter, redact, register_secret
from notion_sync.observability.tracing import configure_tracing, tracer_provider, tracing_interceptor

__all__ = [
    "REDACTED",
    "ExportTracker",
    "JsonFormatter",
    "MetricsInterceptor",
    "NotionRequest",
    "RedactingFilter",
    "WorkerGauges",
    "configure_logging",
    "configure_tracing",
    "export_tracker",
    "health_server",
    "log_formatter",
    "metrics_runtime",
    "notion_request",
    "redact",
    "refreshing_gauges",
    "register_secret",
    "tracer_provider",
    "tracing_interceptor",
]
