"""Traces, metrics, structured logs and health endpoints of a worker.

- Traces (`tracing`): `TracingInterceptor` spans workflows and activities. The SDK provider is
  installed once per process, exporters are added to it.
- Metrics (`metrics`): ours go through the Temporal runtime's meter, so they are served by the same
  Prometheus endpoint as Temporal's own; `notion_request` adds one span and the status and wait
  metrics of each Notion request.
- Redaction (`redaction`): every registered secret is masked in every log format and error text.
- Logs (`logs`): one JSON object per line with the Temporal ids of the current activity or workflow
  and the Notion object being requested.
- Health (`health`): /healthz and /readyz for the probes.

Import from here: this module is the package's public face.
"""

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
    "JsonFormatter",
    "MetricsInterceptor",
    "NotionRequest",
    "RedactingFilter",
    "configure_logging",
    "configure_tracing",
    "health_server",
    "log_formatter",
    "metrics_runtime",
    "notion_request",
    "redact",
    "register_secret",
    "tracer_provider",
    "tracing_interceptor",
]
