"""Shared by the chaos scenarios: the undisturbed reference export, the two acceptable endings of a
disturbed one (same bytes, or a clean failure), the recovery times they record and a small disk to
fill.

Recovery time, as `record_recovery` stores it: seconds from the moment the fault is removed (for a
kill, the moment it is injected) until the export makes progress again, i.e. until the workflow's
`progress` query shows a count (discovered, exported, skipped, failed) above what it showed before
the fault, or another phase, or the run has closed. `wait_for_progress` measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from notion_sync.control import query_progress
from notion_sync.models import ExportProgress, ExportReport
from notion_sync.settings import Settings
from notion_sync.snapshot import INTERNAL, MANIFEST, REPORT, current_snapshot
from tests.export.harness import REPO, export_and_wait, running_worker
from workflows.export import ExportWorkflow

RESULTS_ENV = "NOTION_SYNC_CHAOS_RESULTS"
DEFAULT_RESULTS = Path(__file__).resolve().parent / ".results.jsonl"

# Signed file URLs and their expiry change on every read, as in Notion; nothing else may differ.
_SIGNED = re.compile(rb"(expires=\d+&(amp;)?sig=[0-9a-f]+|\"expiry_time\": \"[^\"]+\")")
# The run's own times and ids in report.json; `api_requests` too, as a retried request is one more,
# and `files_downloaded`: a retried batch skips the pages a lost attempt finished, and their files
# go uncounted (the files themselves are compared).
_REPORT_VOLATILE = ("started_at", "finished_at", "snapshot", "destination", "full_listing_at")
_COUNTERS_VOLATILE = ("api_requests", "files_downloaded")
_MANIFEST_HEADER_VOLATILE = ("created_at", "started_at", "finished_at", "run_id", "snapshot")
_SHOWN_DIFFERENCES = 10
_SHOWN_DIFF_LINES = 40


def _masked_report(data: bytes) -> bytes:
    report = json.loads(data)
    for key in _REPORT_VOLATILE:
        report.pop(key, None)
    for key in _COUNTERS_VOLATILE:
        report.get("counters", {}).pop(key, None)
    return json.dumps(report, sort_keys=True, indent=1).encode()


def _masked_manifest(data: bytes) -> bytes:
    """The header without the run's times and ids; a JSON file's checksum masked, as the file holds
    signed URLs (it is compared, masked, on its own); every other checksum kept."""
    lines = data.splitlines()
    out = []
    for number, line in enumerate(lines):
        entry = json.loads(line)
        if number == 0:
            for key in _MANIFEST_HEADER_VOLATILE:
                entry.pop(key, None)
        for file in entry.get("files", []):
            if file["path"].endswith(".json"):
                file["sha256"] = file["size"] = "<signed>"
        out.append(json.dumps(entry, sort_keys=True).encode())
    return b"\n".join(out)


def masked_bytes(snapshot: Path, relative: str) -> bytes:
    """A snapshot file's bytes as two exports of one workspace must share them."""
    data = (snapshot / relative).read_bytes()
    if relative == REPORT:
        return _masked_report(data)
    if relative == MANIFEST:
        return _masked_manifest(data)
    if relative.endswith((".json", ".jsonl")):
        return _SIGNED.sub(b"<signed>", data)
    return data


def _relative_files(snapshot: Path) -> list[str]:
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())


def assert_same_snapshot(a: Path, b: Path) -> None:
    """Two snapshots (or destinations: their `current`) hold the same files, byte for byte but for
    signed file URLs inside JSON and the run's own times and ids. Files are read one pair at a time."""
    a, b = _snapshot_of(a), _snapshot_of(b)
    files_a, files_b = _relative_files(a), _relative_files(b)
    only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
    assert not only_a and not only_b, (
        f"only in {a}: {only_a[:_SHOWN_DIFFERENCES]}; only in {b}: {only_b[:_SHOWN_DIFFERENCES]}"
    )
    differ = [rel for rel in files_a if masked_bytes(a, rel) != masked_bytes(b, rel)]
    assert not differ, (
        f"{len(differ)} files differ between {a} and {b}: {differ[:_SHOWN_DIFFERENCES]}; "
        f"the first:\n{_difference(masked_bytes(a, differ[0]), masked_bytes(b, differ[0]))}"
    )


def _difference(a: bytes, b: bytes) -> str:
    lines = difflib.unified_diff(
        a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines(), lineterm=""
    )
    return "\n".join(list(lines)[:_SHOWN_DIFF_LINES])


def _snapshot_of(path: Path) -> Path:
    snapshot = current_snapshot(path)
    return snapshot if snapshot is not None else path.resolve()


def assert_failed_cleanly(dest: Path, previous_current: Path | None) -> None:
    """The run failed (its report under `.notion-sync/reports` says so), `current` still points at
    `previous_current` (a resolved snapshot folder, or None: still no `current`), which passes
    `notion-sync verify`, and no staging folder or export index is left behind."""
    reports = sorted((dest / INTERNAL / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert reports, f"no run report under {dest / INTERNAL / 'reports'}"
    last = ExportReport.model_validate_json(reports[-1].read_bytes())
    assert last.status in ("failed", "cancelled"), f"the last run ended {last.status}"
    assert current_snapshot(dest) == previous_current, f"current moved: {current_snapshot(dest)}"
    if previous_current is not None:
        verify = subprocess.run(
            [sys.executable, "-m", "notion_sync", "verify", str(dest)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, f"verify failed: {verify.stdout}{verify.stderr}"
    staging = dest / INTERNAL / "staging"
    left = list(staging.iterdir()) if staging.is_dir() else []
    assert not left, f"staging left behind: {left}"
    indexes = list((dest / INTERNAL / "state").glob("*.sqlite*"))
    assert not indexes, f"export index left behind: {indexes}"


def record_recovery(scenario: str, seconds: float) -> dict[str, Any]:
    """Appends {"scenario", "recovery_s", "date"} to the JSON-lines file named by
    NOTION_SYNC_CHAOS_RESULTS (default tests/chaos/.results.jsonl) and prints it."""
    entry = {"scenario": scenario, "recovery_s": round(seconds, 2), "date": datetime.now(UTC).isoformat()}
    path = Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as results:
        results.write(json.dumps(entry) + "\n")
    print(f"chaos recovery: {json.dumps(entry)}")
    return entry


def _moved(before: ExportProgress, now: ExportProgress) -> bool:
    counts = ("discovered", "exported", "skipped", "failed")
    return now.phase != before.phase or any(getattr(now, c) > getattr(before, c) for c in counts)


async def progress_now(client: Client, workflow_id: str) -> ExportProgress | None:
    """The latest run's progress, or None while Temporal or the worker cannot answer."""
    handle = client.get_workflow_handle_for(ExportWorkflow.run, workflow_id)
    try:
        return await asyncio.wait_for(query_progress(handle), timeout=5)
    except (RPCError, TimeoutError):
        return None


async def wait_for_progress(
    client: Client, workflow_id: str, before: ExportProgress, since: float, timeout: float = 300
) -> float:
    """Seconds from `since` (a `time.monotonic()`) until the export moved past `before` or closed.
    Queries that fail meanwhile (Temporal down, worker unreachable) are asked again."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = since + timeout
    while time.monotonic() < deadline:
        now = await progress_now(client, workflow_id)
        if now is not None and _moved(before, now):
            return time.monotonic() - since
        try:
            status = (await handle.describe()).status
        except RPCError:
            status = None
        if status is not None and status != WorkflowExecutionStatus.RUNNING:
            return time.monotonic() - since
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no progress past {before} within {timeout:.0f} s")


async def retried_activities(client: Client, workflow_id: str) -> int:
    """Activities of the export's latest run that took more than one attempt (a timeout or a
    failure came first): the fault did reach the workflow."""
    retried = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_started_event_attributes"):
            retried += event.activity_task_started_event_attributes.attempt > 1
    return retried


async def export_undisturbed(
    client: Client, settings: Settings, destination: Path, **options: Any
) -> ExportReport:
    """The reference: the same workspace exported by workers in this process, nothing disturbed."""
    async with running_worker(client, settings):
        report = await export_and_wait(client, settings, destination, **options)
    assert report.status == "completed", report
    return report


@contextlib.contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` at `folder`; the test is skipped where mounting is not allowed (not
    root): each scenario's rlimit variant covers that case."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the rlimit variant runs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def disk_for(how: str, folder: Path, megabytes: int) -> contextlib.AbstractContextManager[Path]:
    """The folder a disk-full scenario fills: a `small_disk` for "tmpfs"; for "rlimit" (whose fault
    is a file-size limit) a plain folder."""
    return small_disk(folder, megabytes) if how == "tmpfs" else contextlib.nullcontext(folder)
