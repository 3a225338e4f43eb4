"""One real export (emulator over HTTP, the session's Temporal server, `run_worker` in process) observed
the way an operator would: spans collected in memory, /metrics scraped, JSON logs parsed, probes hit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import resource
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from notion_sync import observability
from notion_sync.control import connect, start_export
from notion_sync.devserver import DevServer, free_port
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import (
    ExportInput,
    ExportOptions,
    ExportReport,
    PrepareInput,
    PreviousSnapshot,
    ShrinkCheck,
    ShrinkInput,
)
from notion_sync.observability import WorkerGauges
from notion_sync.observability.collector import memory_limit_bytes, resident_memory_bytes
from notion_sync.schedules import SCHEDULE_PREFIX, build_spec, create_schedule, delete_schedule, schedule_id
from notion_sync.settings import Settings
from notion_sync.workers import run_worker
from notion_sync.workspaces import activity_queue
from tests.export.harness import EmulatorAndWorker, export_and_wait, worker_settings
from tests.workflows.test_export_orchestration import WORKSPACE, StubActivities
from workflows.export import ExportWorkflow


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    observability.tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays on the global provider; a shut exporter drops spans


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Root logs as JSON into a buffer, noisy loggers at DEBUG to give a token every chance to leak."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(observability.JsonFormatter())
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


async def test_export_traces_metrics_logs_and_probes(
    temporal_server: DevServer,
    destination: Path,
    tmp_path: Path,
    spans: InMemorySpanExporter,
    json_logs: io.StringIO,
) -> None:
    token = f"tok-{secrets.token_hex(16)}"  # matches no token pattern: only registration masks it
    # A few 529s (Notion's "overloaded", handled as a rate limit with Retry-After) show in the metrics.
    with EmulatorProcess(pages=15, seed=3, token=token, fault_529=0.03, fault_seed=5) as emulator:
        settings = worker_settings(
            emulator,
            tmp_path / "state",
            metrics_port=free_port(),
            health_port=free_port(),
            requests_per_second=30.0,
            burst=2,
        )
        metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
        health_url = f"http://127.0.0.1:{settings.health_port}"
        runtime = observability.metrics_runtime(settings)
        assert isinstance(runtime, Runtime)
        client = await connect(settings, temporal_server.address, runtime=runtime)
        worker = asyncio.create_task(run_worker(settings, client))
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                ready = await _poll(http, f"{health_url}/readyz")
                assert ready.json() == {"status": "ok", "problems": []}
                assert (await http.get(f"{health_url}/healthz")).status_code == 200
                handle = await start_export(
                    client, settings, ExportInput(destination=str(destination), options=ExportOptions())
                )
                report = await handle.result()
                scrape = (await http.get(metrics_url)).text
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
    assert report.status == "completed"
    _check_trace(spans.get_finished_spans(), handle.id)
    _check_metrics(scrape, report.counters.exported)
    _check_export_metrics(scrape, report, str(destination))
    _check_logs(json_logs.getvalue(), token, handle.id)


async def _poll(http: httpx.AsyncClient, url: str) -> httpx.Response:
    for _ in range(100):
        try:
            response = await http.get(url)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


def _check_trace(finished: tuple[ReadableSpan, ...], workflow_id: str) -> None:
    by_id = {s.context.span_id: s for s in finished}
    start = [s for s in finished if s.name == "StartWorkflow:ExportWorkflow"]
    assert len(start) == 1, [s.name for s in finished]
    trace_id = start[0].context.trace_id
    assert start[0].attributes is not None and start[0].attributes["temporalWorkflowID"] == workflow_id
    ours = [s for s in finished if s.context.trace_id == trace_id]
    names = {s.name for s in ours}
    assert {"RunWorkflow:ExportWorkflow", "RunActivity:export_batch", "RunActivity:discover_pages"} <= names

    def parent(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, span.name
        return by_id[span.parent.span_id]

    # Temporal's interceptor hangs workflow and activity spans under the span that started the export:
    # StartWorkflow -> {RunWorkflow, StartActivity -> RunActivity -> NotionRequest}, in one trace.
    assert all(parent(s) is start[0] for s in ours if s.name == "RunWorkflow:ExportWorkflow")
    requests = [s for s in ours if s.name == "NotionRequest"]
    assert requests
    for request in requests:
        run_activity = parent(request)
        assert run_activity.name.startswith("RunActivity:")
        start_activity = parent(run_activity)
        assert start_activity.name == run_activity.name.replace("Run", "Start", 1)
        assert parent(start_activity) is start[0]
        assert request.attributes is not None and request.attributes["notion.object_id"]
    # Every export's spans are in its trace; nothing of it started a trace of its own.
    assert not [s for s in finished if s.name == "NotionRequest" and s.context.trace_id != trace_id]


def _samples(scrape: str, name: str) -> list[tuple[str, float]]:
    found = []
    for line in scrape.splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            labels, _, value = line.rpartition(" ")
            found.append((labels, float(value)))
    return found


def _check_metrics(scrape: str, exported: int) -> None:
    pages = _samples(scrape, "notion_sync_pages_exported_total")
    assert sum(v for _, v in pages) == exported > 0
    requests = _samples(scrape, "notion_sync_notion_requests_total")
    assert any('status="200"' in labels for labels, _ in requests), requests
    assert any('status="529"' in labels for labels, _ in requests), requests
    assert sum(v for _, v in _samples(scrape, "notion_sync_rate_limited_total")) >= 1
    assert sum(v for _, v in _samples(scrape, "notion_sync_published_bytes_total")) > 10_000
    waits = _samples(scrape, "notion_sync_rate_limit_wait_seconds_sum")
    assert {"budget", "retry_after"} <= {labels.split('reason="')[1].split('"')[0] for labels, _ in waits}
    # Temporal's own runtime metrics on the same endpoint.
    assert _samples(scrape, "temporal_activity_execution_latency_count")
    assert _samples(scrape, "temporal_workflow_completed")


def _total(scrape: str, name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(v for found, v in _samples(scrape, name) if all(w in found for w in wanted))


def _label_values(scrape: str, name: str, label: str) -> set[str]:
    return {labels.split(f'{label}="')[1].split('"')[0] for labels, _ in _samples(scrape, name)}


def _check_export_metrics(scrape: str, report: ExportReport, destination: str) -> None:
    """The operator's questions: what ran, how it ended, what it exported, and the worker's state."""
    assert _total(scrape, "notion_sync_exports_started_total", workspace="default") == 1
    assert _total(scrape, "notion_sync_exports_finished_total", workspace="default", outcome="completed") == 1
    # The other outcomes' series exist at 0 (alerts' increase() needs the step from 0).
    finished = _label_values(scrape, "notion_sync_exports_finished_total", "outcome")
    assert {"failed", "cancelled", "shrink_refused"} <= finished
    assert _total(scrape, "notion_sync_exports_finished_total", outcome="failed") == 0
    phases = _label_values(scrape, "notion_sync_exports_running", "phase")
    assert {"starting", "discovering", "exporting", "publishing"} <= phases
    assert _total(scrape, "notion_sync_exports_running") == 0  # over: every phase back to 0
    objects = "notion_sync_objects_exported_total"
    exported = sum(_total(scrape, objects, kind=kind) for kind in ("page", "database", "data_source"))
    assert exported == report.counters.exported
    assert _total(scrape, objects, kind="file") == report.counters.files_downloaded > 0
    assert _total(scrape, objects, kind="user") > 0
    # Every Notion request of this export is labelled with its workspace.
    assert _total(scrape, "notion_sync_notion_requests_total") == _total(
        scrape, "notion_sync_notion_requests_total", workspace="default"
    )
    assert _total(scrape, "notion_sync_export_progress_total", workspace="default") > report.counters.exported
    (success,) = _samples(scrape, "notion_sync_last_success_timestamp_seconds")
    assert f'destination="{destination}"' in success[0]
    assert report.finished_at is not None and abs(success[1] - report.finished_at.timestamp()) < 5
    assert _total(scrape, "notion_sync_request_budget_requests_per_second", workspace="default") == 30
    assert _total(scrape, "notion_sync_worker_resident_memory_bytes") > 10_000_000
    assert _total(scrape, "notion_sync_shrink_guard_trips_total") == 0


def _check_logs(text: str, token: str, workflow_id: str) -> None:
    assert token not in text
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "notion_sync.observability"]
    assert requests
    for line in requests:
        assert line["workflow_id"] == workflow_id
        assert line["run_id"] and line["page_id"] and line["activity_type"] and line["trace_id"]
    assert any("rate limited" in line["message"] for line in requests)


def test_token_is_masked_in_every_format(tmp_path: Path) -> None:
    token = f"tok-{secrets.token_hex(8)}"
    observability.register_secret(token)
    record = logging.makeLogRecord(
        {"msg": "calling with %s", "args": (token,), "levelno": logging.ERROR, "levelname": "ERROR"}
    )
    for kind in ("json", "text"):
        assert token not in observability.log_formatter(kind).format(record)
    # Tokens nobody registered are masked by shape, and so are bearer headers.
    leaky = "Authorization: Bearer abc.def ntn_0123456789abcdefghijKLMN"
    assert observability.redact(leaky) == "Authorization: Bearer [redacted] [redacted]"


def test_configure_logging_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTION_SYNC_LOG_FORMAT", "json")
    log_file = tmp_path / "worker.log"
    try:
        observability.configure_logging(log_file)
        logging.getLogger("notion_sync.test").info("hello", extra={"page_id": "p1"})
    finally:
        monkeypatch.delenv("NOTION_SYNC_LOG_FORMAT")
        observability.configure_logging()
    line = json.loads(log_file.read_text().splitlines()[-1])
    assert line["message"] == "hello" and line["page_id"] == "p1" and line["level"] == "INFO"


def test_token_from_mounted_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "notion-token"
    secret.write_text("ntn_from_file\n")
    monkeypatch.delenv("NOTION_TOKEN", raising=False)
    monkeypatch.setenv("NOTION_TOKEN_FILE", str(secret))
    assert Settings().token() == "ntn_from_file"
    # The environment wins when both are set.
    assert Settings(NOTION_TOKEN=SecretStr("ntn_env")).token() == "ntn_env"


def _scrape(runtime_port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{runtime_port}/metrics", timeout=5).text


def test_export_tracker_counts_running_exports_by_phase() -> None:
    port = free_port()
    runtime = observability.metrics_runtime(Settings.model_construct(metrics_port=port))
    assert runtime is not None
    tracker = observability.ExportTracker(runtime.metric_meter)
    tracker.enter("run-1", "acme", "discovering")
    tracker.enter("run-2", "acme", "discovering")
    tracker.move("run-2", "exporting")
    tracker.move("not-an-export", "exporting")  # a run never entered (another workflow type): ignored
    assert tracker.running() == {("acme", "discovering"): 1, ("acme", "exporting"): 1}
    assert _total(_scrape(port), "notion_sync_exports_running", workspace="acme", phase="exporting") == 1
    tracker.pause("run-2", True)
    assert tracker.running() == {("acme", "discovering"): 1, ("acme", "paused"): 1}
    tracker.move("run-2", "tables")  # a phase change while paused stays hidden until it resumes
    tracker.pause("run-2", False)
    assert tracker.running() == {("acme", "discovering"): 1, ("acme", "tables"): 1}
    tracker.leave("run-1")
    tracker.leave("run-2")
    scrape = _scrape(port)
    # Emptied phases read 0, not their last count.
    phases = {"discovering", "exporting", "paused", "tables"}
    assert _label_values(scrape, "notion_sync_exports_running", "phase") == phases
    assert _total(scrape, "notion_sync_exports_running") == 0
    tracker.succeeded("/data/acme", 2000.0)
    tracker.succeeded("/data/acme", 1000.0)  # older (visibility lagging behind): ignored
    assert (
        _total(_scrape(port), "notion_sync_last_success_timestamp_seconds", destination="/data/acme") == 2000
    )


def test_memory_limit_from_cgroup_files(tmp_path: Path) -> None:
    unlimited_rlimit = resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY
    limit = tmp_path / "memory.max"
    limit.write_text("1073741824\n")
    assert memory_limit_bytes((limit,)) == 1073741824 or not unlimited_rlimit
    limit.write_text("max\n")
    v1 = tmp_path / "memory.limit_in_bytes"
    v1.write_text(f"{2**63 - 4096}\n")  # cgroup v1's "no limit"
    for files in ((limit,), (v1,), (tmp_path / "missing",)):
        assert (memory_limit_bytes(files) is None) == unlimited_rlimit, files
    assert (resident_memory_bytes() or 0) > 1_000_000


async def test_worker_gauges_read_schedules_and_last_success_from_temporal(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, destination: Path
) -> None:
    async with emulator_and_worker(pages=4, seed=2) as (_emulator, settings):
        report = await export_and_wait(temporal_client, settings, destination)
    spec, text = build_spec("2h", None)
    await create_schedule(temporal_client, settings, destination, spec, text)
    port = free_port()
    try:
        runtime = observability.metrics_runtime(Settings.model_construct(metrics_port=port))
        assert runtime is not None
        # A fresh tracker, as after a worker restart: the last success comes from Temporal's visibility.
        tracker = observability.ExportTracker(runtime.metric_meter)
        budgets = {"default": 3.0, "unlimited": 0.0}
        gauges = WorkerGauges(runtime.metric_meter, budgets, tracker, temporal_client, SCHEDULE_PREFIX)
        for _ in range(50):
            await gauges.collect()
            scrape = await asyncio.to_thread(_scrape, port)
            if _samples(scrape, "notion_sync_last_success_timestamp_seconds"):
                break
            await asyncio.sleep(0.2)
    finally:
        await delete_schedule(temporal_client, destination)
    where = {"destination": str(destination)}
    assert _total(scrape, "notion_sync_schedule_interval_seconds", **where) == 7200
    assert _label_values(scrape, "notion_sync_schedule_missed_runs_total", "schedule") >= {
        schedule_id(destination)
    }
    assert _total(scrape, "notion_sync_schedule_missed_runs_total", schedule=schedule_id(destination)) == 0
    assert report.finished_at is not None
    success = _total(scrape, "notion_sync_last_success_timestamp_seconds", **where)
    assert abs(success - report.finished_at.timestamp()) < 5
    assert _total(scrape, "notion_sync_request_budget_requests_per_second", workspace="default") == 3
    assert _label_values(scrape, "notion_sync_request_budget_requests_per_second", "workspace") == {"default"}
    assert _total(scrape, "notion_sync_worker_resident_memory_bytes") > 1_000_000


class _ShrinkingStubs(StubActivities):
    """An export whose shrink guard trips: it ends refused, nothing published."""

    @activity.defn(name="check_shrink")
    async def check_shrink(self, request: ShrinkInput) -> ShrinkCheck:
        return ShrinkCheck(lost=9, base=20, limit=1, tripped=True)


class _ForeignStubs(StubActivities):
    """An export into a destination that holds another workspace's snapshots: refused at once."""

    @activity.defn(name="prepare_staging")
    async def prepare_staging(self, request: PrepareInput) -> PreviousSnapshot | None:
        raise ApplicationError(
            "another workspace's destination", type="WorkspaceMismatch", non_retryable=True
        )


@pytest.mark.parametrize(
    ("stubs", "outcome", "trips"),
    [(_ShrinkingStubs(), "shrink_refused", 1), (_ForeignStubs(), "workspace_refused", 0)],
)
async def test_refused_exports_are_counted_by_outcome(
    temporal_server: DevServer, stubs: StubActivities, outcome: str, trips: int
) -> None:
    port = free_port()
    runtime = observability.metrics_runtime(Settings.model_construct(metrics_port=port))
    assert runtime is not None
    client = await Client.connect(
        temporal_server.address, data_converter=pydantic_data_converter, runtime=runtime
    )
    tracker = observability.ExportTracker(runtime.metric_meter)
    task_queue = f"outcomes-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(
            client,
            task_queue=task_queue,
            workflows=[ExportWorkflow],
            interceptors=[observability.MetricsInterceptor(exports=tracker)],
        ),
        Worker(
            client,
            task_queue=activity_queue(task_queue, WORKSPACE),
            activities=stubs.activities(),
            interceptors=[observability.MetricsInterceptor(workspace=WORKSPACE)],
        ),
    ):
        handle = await client.start_workflow(
            ExportWorkflow.run,
            ExportInput(destination="/stub/destination", workspace=WORKSPACE),
            id=task_queue,
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        scrape = await asyncio.to_thread(_scrape, port)
    finished = "notion_sync_exports_finished_total"
    assert _total(scrape, finished, workspace=WORKSPACE, outcome=outcome) == 1
    assert _total(scrape, finished) == 1  # no other outcome counted for it
    assert _total(scrape, "notion_sync_shrink_guard_trips_total", workspace=WORKSPACE) == trips
    assert tracker.running() == {}
