"""Workers die mid-export: SIGKILLed every few seconds through a 5,000-page export, or OOM-killed
under a hard memory limit. Another worker takes over each time; the export ends byte-identical to an
undisturbed one and records how long it took to move again after a death."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from notion_sync.control import query_progress, start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportProgress, ExportReport
from notion_sync.processes import die_with_parent
from notion_sync.settings import Settings
from tests.chaos.harness import (
    assert_same_snapshot,
    export_undisturbed,
    progress_now,
    record_recovery,
    wait_for_progress,
)
from tests.export.harness import REPO, worker_env, worker_settings

pytestmark = pytest.mark.chaos

BIG_PAGES = 5_000
# Two workers, one of them SIGKILLed every KILL_EVERY_S (round robin), so each lives twice that:
# long enough for a batch of BIG_OPTIONS.batch_size pages or the publish to finish once it is retried.
KILL_EVERY_S = 8.0
MAX_KILLS = 12
# No HTML twin: the JSON and Markdown of 5,000 pages show loss or duplication as well, at half the CPU.
BIG_OPTIONS = ExportOptions(batch_size=50, max_parallel_batches=4, worker_lost_after_seconds=5, html=False)
SMALL_OPTIONS = ExportOptions(batch_size=5, max_parallel_batches=2, worker_lost_after_seconds=5)
# The limited worker may grow this much past its size after a first export.
HEADROOM_MB = 20
# A page this big takes ~60 MB more to export (its block tree is held while its files are written).
BIG_PAGE_BLOCKS = 10_000
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")


def spawn_worker(
    settings: Settings, address: str, before_exec: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """`python worker.py` for the settings, dying with this process; `before_exec` runs in the child."""

    def prepare() -> None:
        die_with_parent()
        if before_exec is not None:
            before_exec()

    return subprocess.Popen(
        [sys.executable, str(REPO / "worker.py")],
        env=worker_env(settings, address),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=prepare,
    )


@contextlib.contextmanager
def reaped(processes: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Kills whatever process of the (growing) list still runs when the block ends."""
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


async def wait_for_poller(client: Client, queue: str, timeout: float = 60) -> None:
    """Until some worker polls the workflow task queue (a worker process has started)."""
    request = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue))
    deadline = time.monotonic() + timeout
    while not (await client.workflow_service.describe_task_queue(request)).pollers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker polls {queue} after {timeout:.0f} s")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def big_emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(pages=BIG_PAGES, seed=171, latency_ms=5, track_ids=False) as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def big_reference(
    big_emulator: EmulatorProcess, temporal_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The 5,000-page workspace exported once per session, nothing disturbed."""
    folder = tmp_path_factory.mktemp("big-reference")
    settings = worker_settings(big_emulator, folder / "state")
    await export_undisturbed(temporal_client, settings, folder / "out", **BIG_OPTIONS.model_dump())
    return folder / "out"


@pytest.mark.timeout(900)
async def test_worker_killed_every_few_seconds_through_5000_pages_ends_identical(
    big_emulator: EmulatorProcess,
    big_reference: Path,
    temporal_client: Client,
    temporal_server: object,
    tmp_path: Path,
) -> None:
    address = temporal_server.address  # type: ignore[attr-defined]
    settings = worker_settings(big_emulator, tmp_path / "state")
    destination = tmp_path / "disturbed"
    recoveries: list[asyncio.Task[float]] = []
    with reaped([spawn_worker(settings, address) for _ in range(2)]) as workers:
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=str(destination), options=BIG_OPTIONS)
        )
        result: asyncio.Future[ExportReport] = asyncio.ensure_future(handle.result())
        kills = 0
        while kills < MAX_KILLS:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(result), timeout=KILL_EVERY_S)
            if result.done():
                break
            before = await query_progress(handle)
            victim = workers[kills % 2]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed = time.monotonic()
            workers[kills % 2] = spawn_worker(settings, address)
            workers.append(victim)  # reaped again at the end: harmless, it is gone
            kills += 1
            recoveries.append(
                asyncio.create_task(
                    wait_for_progress(temporal_client, handle.id, before, killed, timeout=240)
                )
            )
        report = await asyncio.wait_for(result, timeout=600)
        seconds = await asyncio.gather(*recoveries)

    assert kills >= 3, f"the export ended after {kills} kills: too few to show anything"
    assert report.status == "completed" and report.counters.failed == 0, report
    record_recovery(f"worker-sigkill-every-{KILL_EVERY_S:g}s-max-of-{kills}", max(seconds))
    assert_same_snapshot(destination, big_reference)


class MemoryCage:
    """A hard memory limit for one worker process, the strongest this machine allows: a cgroup v2
    (`memory.max`), else a cgroup v1 memory controller (`memory.limit_in_bytes`), as root; else the
    address-space limit RLIMIT_AS (no root needed; Python then fails allocations with MemoryError,
    native code aborts). The limit is set once the worker polls, from what it holds then."""

    def __init__(self, folder: Path | None, version: int) -> None:
        self.folder = folder
        self.version = version
        self.pid = 0

    @classmethod
    def create(cls) -> MemoryCage:
        name = f"notion-sync-chaos-{uuid.uuid4().hex[:8]}"
        # A sibling of our own v2 cgroup (a cgroup holding processes cannot delegate controllers).
        own_v2 = _own_cgroup("")
        base = (CGROUP_V2 / own_v2).parent if own_v2 else CGROUP_V2
        if "memory" in _read(base / "cgroup.subtree_control").split():
            with contextlib.suppress(OSError):
                (base / name).mkdir()
                return cls(base / name, 2)
        own_v1 = CGROUP_V1_MEMORY / _own_cgroup("memory")
        if (own_v1 / "memory.limit_in_bytes").exists():
            with contextlib.suppress(OSError):
                (own_v1 / name).mkdir()
                return cls(own_v1 / name, 1)
        return cls(None, 0)

    def enter(self) -> None:
        """Runs in the worker before exec: it joins the cgroup (with no limit yet)."""
        if self.folder is not None:
            (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def limit(self, pid: int, headroom_mb: int) -> int:
        """Caps the worker at what it uses now plus `headroom_mb`; returns the limit in bytes."""
        self.pid = pid
        if self.folder is None:
            cap = int(psutil.Process(pid).memory_info().vms) + headroom_mb * 2**20
            resource.prlimit(pid, resource.RLIMIT_AS, (cap, cap))
            return cap
        usage = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        cap = int(_read(self.folder / usage)) + headroom_mb * 2**20
        (self.folder / ("memory.max" if self.version == 2 else "memory.limit_in_bytes")).write_text(str(cap))
        return cap

    def oom_kills(self) -> int | None:
        """OOM kills the cgroup counted (None under the rlimit)."""
        if self.folder is None:
            return None
        events = _read(self.folder / ("memory.events" if self.version == 2 else "memory.oom_control"))
        counts = dict(line.split() for line in events.splitlines() if line.strip())
        return int(counts.get("oom_kill", 0))

    def remove(self) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def describe(self) -> str:
        return f"cgroup v{self.version} {self.folder}" if self.folder else "RLIMIT_AS"


def _own_cgroup(controller: str) -> str:
    """This process's cgroup path for `controller` ("" for the v2 hierarchy), without the slash."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == controller or controller in controllers.split(","):
            return path.lstrip("/")
    return ""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


async def _progress_until_dead(
    client: Client, workflow_id: str, worker: subprocess.Popen[bytes], timeout: float = 180
) -> ExportProgress:
    """The export's last progress seen while `worker` (its only worker) lived, once it has died."""
    deadline = time.monotonic() + timeout
    last: ExportProgress | None = None
    while worker.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the limited worker still runs after {timeout:.0f} s; last progress {last}")
        last = await progress_now(client, workflow_id) or last
        await asyncio.sleep(0.2)
    assert last is not None, "the worker died before the export answered a progress query"
    return last


@contextlib.asynccontextmanager
async def memory_cage() -> AsyncIterator[MemoryCage]:
    cage = MemoryCage.create()
    try:
        yield cage
    finally:
        cage.remove()


@pytest.mark.timeout(600)
async def test_worker_over_its_memory_limit_dies_and_another_finishes_identical(
    temporal_client: Client, temporal_server: object, tmp_path: Path
) -> None:
    """The limited worker first exports the workspace once (its imports and workflow sandbox loaded),
    is then capped at what it holds plus HEADROOM_MB, and a page grows by BIG_PAGE_BLOCKS blocks:
    the next export's copy of that page does not fit, the kernel kills the worker (or, under the
    rlimit, an allocation fails), and an unlimited worker finishes the export."""
    address = temporal_server.address  # type: ignore[attr-defined]
    with EmulatorProcess(pages=30, seed=172, latency_ms=5) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        async with memory_cage() as cage:
            with reaped([spawn_worker(settings, address, cage.enter)]) as workers:
                limited = workers[0]
                warm = ExportInput(destination=str(tmp_path / "warm-up"), options=SMALL_OPTIONS)
                await (await start_export(temporal_client, settings, warm)).result()
                cap = cage.limit(limited.pid, HEADROOM_MB)
                emulator.mutate(
                    {"op": "append_blocks", "page_id": _a_top_page(emulator), "count": BIG_PAGE_BLOCKS}
                )
                # The reference on a queue of its own, so the limited worker never sees it.
                reference = tmp_path / "reference"
                reference_settings = worker_settings(emulator, tmp_path / "reference-state")
                await export_undisturbed(
                    temporal_client, reference_settings, reference, **SMALL_OPTIONS.model_dump()
                )
                destination = tmp_path / "disturbed"
                request = ExportInput(destination=str(destination), options=SMALL_OPTIONS)
                handle = await start_export(temporal_client, settings, request)
                before = await _progress_until_dead(temporal_client, handle.id, limited)
                died = time.monotonic()
                oom_kills = cage.oom_kills()
                workers.append(spawn_worker(settings, address))
                recovery = await wait_for_progress(temporal_client, handle.id, before, died)
                report = await asyncio.wait_for(handle.result(), timeout=300)

    assert report.status == "completed" and report.counters.failed == 0, report
    if oom_kills is not None:  # a cgroup: the kernel's OOM killer ended it
        assert limited.returncode == -signal.SIGKILL and oom_kills >= 1, (limited.returncode, oom_kills)
    else:  # RLIMIT_AS: an allocation failed, the worker ended (MemoryError, abort)
        assert limited.returncode != 0
    record_recovery(f"worker-memory-limit-{cage.describe().split()[0]}-{cap // 2**20}MB", recovery)
    assert_same_snapshot(destination, reference)


def _a_top_page(emulator: EmulatorProcess) -> str:
    """A page at the workspace's top level (not the showcase or the huge page: the last listed)."""
    found = httpx.post(
        f"{emulator.base_url}/v1/search",
        headers=emulator.headers,
        json={"filter": {"property": "object", "value": "page"}, "page_size": 100},
    ).json()["results"]
    top = [page["id"] for page in found if page["parent"]["type"] == "workspace"]
    return str(top[-1])
