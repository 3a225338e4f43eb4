"""Helpers for end-to-end export tests: real emulator, real Temporal, workers in or out of process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle

from notion_sync.control import query_progress, start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportProgress, ExportReport
from notion_sync.settings import Settings
from notion_sync.workers import build_worker
from notion_sync.workspaces import WorkspaceCredential
from workflows.export import ExportWorkflow

REPO = Path(__file__).resolve().parents[2]
# Signed file URLs and their expiry change on every read, as in Notion; everything else must not.
_SIGNED = re.compile(rb"(expires=\d+&(amp;)?sig=[0-9a-f]+|\"expiry_time\": \"[^\"]+\")")
# Checksums cover those URLs too; the files themselves are compared, masked, one by one.
_CHECKSUM = re.compile(rb"\"sha256\":\"[0-9a-f]+\",\"size\":\d+")
# `emulator_and_worker` bound to a client and a state folder, as the fixture of that name gives it.
EmulatorAndWorker = Callable[..., contextlib.AbstractAsyncContextManager[tuple[EmulatorProcess, Settings]]]


def worker_settings(emulator: EmulatorProcess, state_dir: Path, **changes: Any) -> Settings:
    fields: dict[str, Any] = {
        "notion_token": SecretStr(emulator.token),
        "notion_base_url": emulator.base_url,
        "state_dir": state_dir,
        "task_queue": f"test-{uuid.uuid4().hex[:8]}",
        "requests_per_second": 0.0,
    }
    fields.update(changes)
    return Settings.model_construct(**{**Settings().model_dump(), **fields})


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, credentials: dict[str, WorkspaceCredential] | None = None
) -> AsyncIterator[None]:
    """Workers in this process for the settings' workspaces (or only those `credentials` name)."""
    with ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(client, settings, executor, credentials):
            yield


@contextlib.asynccontextmanager
async def emulator_and_worker(
    client: Client, state_dir: Path, settings: dict[str, Any] | None = None, **emulator_options: Any
) -> AsyncIterator[tuple[EmulatorProcess, Settings]]:
    """An emulator (`EmulatorProcess(**emulator_options)`), worker settings for it (`settings`: changes
    to `worker_settings`'s) and workers in this process for them, running until the block ends."""
    with EmulatorProcess(**emulator_options) as emulator:
        worker = worker_settings(emulator, state_dir, **(settings or {}))
        async with running_worker(client, worker):
            yield emulator, worker


def worker_env(settings: Settings, temporal_address: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NOTION_TOKEN=settings.token(),
        NOTION_BASE_URL=settings.notion_base_url,
        TEMPORAL_ADDRESS=temporal_address,
        NOTION_SYNC_TASK_QUEUE=settings.task_queue,
        NOTION_SYNC_STATE_DIR=str(settings.state_dir),
        NOTION_SYNC_RATE=str(settings.requests_per_second),
        NOTION_SYNC_BURST=str(settings.burst),
        NOTION_SYNC_PAGE_CONCURRENCY=str(settings.page_concurrency),
    )
    return env


@contextlib.contextmanager
def worker_process(
    settings: Settings,
    temporal_address: str,
    output: IO[bytes] | None = None,
    module: str | None = None,
    root: Path = REPO,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker in its own process (`python worker.py` of the code under `root`, or `python -m
    MODULE`), with `extra_env` on top of the settings' environment, killed on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", module] if module else [sys.executable, str(root / "worker.py")],
        env=worker_env(settings, temporal_address) | (extra_env or {}),
        cwd=root,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def export_and_wait(
    client: Client, settings: Settings, destination: Path, workspace: str | None = None, **options: Any
) -> ExportReport:
    """Starts an export (or a sync, when the destination holds one) and returns its report."""
    request = ExportInput(
        destination=str(destination),
        workspace=workspace or settings.workspace,
        options=ExportOptions(**options),
    )
    return await (await start_export(client, settings, request)).result()


async def wait_for(
    handle: WorkflowHandle[ExportWorkflow, ExportReport],
    condition: Callable[[ExportProgress], bool],
    timeout: float = 120,
) -> ExportProgress:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress = await query_progress(handle)
        if condition(progress):
            return progress
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met; last progress {progress}")
        await asyncio.sleep(0.1)


def snapshot_files(snapshot: Path) -> dict[str, bytes]:
    """Every file of a snapshot but the run report, signed URLs masked."""
    files = {}
    for path in sorted(snapshot.rglob("*")):
        if path.is_file() and path.name != "report.json":
            data = _SIGNED.sub(b"<signed>", path.read_bytes())
            if path.name == "manifest.jsonl":
                data = _CHECKSUM.sub(b"<checksum>", data)
            files[str(path.relative_to(snapshot))] = data
    return files
