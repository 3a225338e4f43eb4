"""Traces: the process's SDK tracer provider, its exporters, and Temporal's `TracingInterceptor`."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

from notion_sync.settings import Settings

SERVICE_NAME = "notion-sync-worker"
# The package's logger, named as before it was split in modules: operators filter on that name.
log = logging.getLogger(__package__)

# Our own spans (`notion_request`): a proxy that follows the provider once it is installed.
tracer = trace.get_tracer("notion_sync")
_provider: TracerProvider | None = None
_tracing_configured = False


def tracer_provider() -> TracerProvider:
    """The process's SDK provider, installed globally on first use (OTel allows one per process)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        trace.set_tracer_provider(_provider)
    return _provider


def add_span_exporter(exporter: SpanExporter) -> None:
    tracer_provider().add_span_processor(BatchSpanProcessor(exporter))


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
