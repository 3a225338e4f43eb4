"""Log lines: JSON or text, with the Temporal ids of the current activity or workflow and the Notion
object being requested; every registered secret is masked in every format."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity, workflow

from notion_sync.observability.redaction import redact
from notion_sync.settings import Settings

# The Notion object being requested (set by `notion_request`), named in every line logged meanwhile.
notion_object_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "notion_object_id", default=None
)


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
    object_id = notion_object_id.get()
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
