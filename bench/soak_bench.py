"""Soak: hundreds of small exports back to back through injected faults and periodic worker kills.

Everything runs on this box, each in its own process, as in production:
  * a Temporal dev server (`start_dev_server`, SQLite persistence),
  * one Notion API emulator (`--pages` generated pages, `--latency-ms` per request) answering
    `--fault-rate` of its /v1 requests with a fault: 500, 502, 503, 504, 529 (Retry-After: 1), a TCP
    reset, a truncated body or a slow answer (`--slow-seconds`), in the shares of `FAULT_MIX`; and
    every `--burst-every` seconds a burst of up to `--burst-size` 429s within `--burst-seconds`
    (`Retry-After: --burst-retry-after`,
    the emulator's hostile `rate_limit`),
  * `--workers` worker processes (`python worker.py`); every `--kill-every` seconds one of them
    (round robin) is SIGKILLed and a replacement started at once, as a supervisor would.

First one export with no faults and no kills: the reference. Then `--exports` exports, `--parallel`
at a time, each into a fresh destination (deleted once checked): an export *completed* when its
workflow returned `completed` with no failed object and its manifest matches the reference's
(every object's id, type, status, path and file count, hashed while streamed); *degraded* when it
completed otherwise; *failed* when the workflow failed or timed out (its destination is kept).

Recovery time after a kill. Just before each kill the running exports are described; an activity
in state STARTED whose last worker is the victim is lost with it. Its recovery time runs from the
kill until that activity (same scheduled event) completes on another worker, read from the run's
history once the export ends; its restart time until that completing attempt started. Both are
bounded below by the heartbeat timeout (`ExportOptions.worker_lost_after_seconds`, `--lost-after`;
workers heartbeat every 2 s): Temporal only presumes the worker dead then; then the retry policy's
first interval (1 s), schedule-to-start (a free slot on a live worker), and the re-run itself.

Progress lines go to stdout every `--report-every` seconds (counts, recoveries so far, RSS of this
script, the workers, the emulator and the dev server); the summary goes to `--json`.

Usage: .venv/bin/python bench/soak_bench.py                       # 500 x 30 pages, a kill every 20 s
       .venv/bin/python bench/soak_bench.py --exports 10 --kill-every 8 --lost-after 10   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from notion_sync.control import start_export  # noqa: E402
from notion_sync.devserver import DevServer, free_port, start_dev_server  # noqa: E402
from notion_sync.emulator.process import EmulatorProcess  # noqa: E402
from notion_sync.models import ExportInput, ExportOptions, ExportReport  # noqa: E402
from notion_sync.processes import die_with_parent, stop_process  # noqa: E402
from notion_sync.settings import Settings  # noqa: E402
from notion_sync.snapshot import read_manifest  # noqa: E402

# Shares of the injected faults (of --fault-rate); one seeded draw per /v1 request.
FAULT_MIX = {
    "500": 0.2,
    "502": 0.1,
    "503": 0.15,
    "504": 0.1,
    "529": 0.15,
    "reset": 0.15,
    "truncate": 0.05,
    "slow": 0.1,
}


@dataclass
class LostActivity:
    """An activity running on a killed worker, and when another worker finished it."""

    workflow_id: str
    run_id: str
    activity_id: str
    activity_type: str
    restart_s: float | None = None
    recovery_s: float | None = None


@dataclass
class Kill:
    at: float  # unix time
    pid: int
    lost: list[LostActivity] = field(default_factory=list)


@dataclass
class Tally:
    started: int = 0
    completed: int = 0
    degraded: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def manifest_fingerprint(snapshot: Path) -> tuple[str, int]:
    """A hash of every object's id, type, status, path and file count, and the object count
    (streamed: the manifest is never held)."""
    digest = hashlib.sha256()
    count = 0
    with read_manifest(snapshot) as (_header, entries):
        for entry in entries:
            digest.update(
                f"{entry.id}|{entry.type}|{entry.status}|{entry.path}|{len(entry.files)}\n".encode()
            )
            count += 1
    return digest.hexdigest(), count


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total / 2**20


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Workers:
    """The worker processes; `kill_one` SIGKILLs one (round robin) and starts its replacement."""

    def __init__(self, count: int, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.processes = [self._spawn() for _ in range(count)]
        self.exited: list[int] = []  # return codes of workers that died without being killed
        self._turn = itertools.count()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, str(REPO / "worker.py")],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    def victim(self) -> subprocess.Popen[bytes]:
        return self.processes[next(self._turn) % len(self.processes)]

    def replace(self, victim: subprocess.Popen[bytes]) -> None:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.processes[self.processes.index(victim)] = self._spawn()

    def check(self) -> None:
        """A worker that exited by itself is counted (a finding) and replaced, so the soak goes on."""
        for i, process in enumerate(self.processes):
            if process.poll() is not None:
                print(f"a worker exited by itself ({process.returncode}); see {self.log_path}", flush=True)
                self.exited.append(process.returncode)
                self.processes[i] = self._spawn()

    def close(self) -> None:
        for process in self.processes:
            stop_process(process, grace=10)


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.tally = Tally()
        self.kills: list[Kill] = []
        self.running: dict[str, WorkflowHandle[Any, ExportReport]] = {}
        self.rss: list[dict[str, float]] = []
        self.started_at = time.monotonic()
        self.reference: tuple[str, int] | None = None
        self.worker_exits: list[int] = []
        self.emulator_stats: dict[str, Any] = {}
        self.options = ExportOptions(
            batch_size=args.batch_size,
            max_parallel_batches=args.parallel_batches,
            worker_lost_after_seconds=args.lost_after,
        )

    async def run(self) -> None:
        args = self.args
        server: DevServer = start_dev_server(
            self.work / "temporal", port=free_port(), ui_port=None, persist=True
        )
        workers: Workers | None = None
        try:
            with EmulatorProcess(
                pages=args.pages, seed=args.seed, latency_ms=args.latency_ms, track_ids=False
            ) as emulator:
                queue = f"soak-{uuid.uuid4().hex[:8]}"
                env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "TEMPORAL_"))}
                env.update(
                    TEMPORAL_ADDRESS=server.address,
                    NOTION_TOKEN=emulator.token,
                    NOTION_BASE_URL=emulator.base_url,
                    NOTION_SYNC_TASK_QUEUE=queue,
                    NOTION_SYNC_STATE_DIR=str(self.work / "state"),
                    NOTION_SYNC_RATE="0",
                )
                workers = Workers(args.workers, env, self.work / "workers.log")
                self.worker_exits = workers.exited
                client = await Client.connect(server.address, data_converter=pydantic_data_converter)
                settings = Settings.model_construct(
                    **{
                        **Settings().model_dump(),
                        "task_queue": queue,
                        "notion_token": SecretStr(emulator.token),
                        "notion_base_url": emulator.base_url,
                    }
                )
                await self._reference(client, settings)
                fault_knobs = {f"fault_{kind}": args.fault_rate * share for kind, share in FAULT_MIX.items()}
                emulator.configure(**fault_knobs, slow_seconds=args.slow_seconds, fault_seed=args.seed)
                self.started_at = time.monotonic()
                chores = [
                    asyncio.create_task(self._killer(client, workers)),
                    asyncio.create_task(self._bursts(emulator)),
                    asyncio.create_task(self._reporter(workers, emulator, server)),
                ]
                try:
                    await self._exports(client, settings, workers)
                finally:
                    for chore in chores:
                        chore.cancel()
                    await asyncio.gather(*chores, return_exceptions=True)
                self.emulator_stats = emulator.stats()
                await self._recoveries(client)
        finally:
            if workers is not None:
                workers.close()
            server.stop()

    async def _reference(self, client: Client, settings: Settings) -> None:
        destination = self.work / "reference"
        request = ExportInput(destination=str(destination), options=self.options)
        report = await (await start_export(client, settings, request)).result()
        if report.status != "completed" or report.counters.failed or report.snapshot is None:
            raise RuntimeError(f"the undisturbed reference export did not complete cleanly: {report}")
        self.reference = manifest_fingerprint(Path(report.snapshot))
        print(f"work folder {self.work} (worker log: workers.log)", flush=True)
        print(
            f"reference export: {self.reference[1]} objects, {report.counters.exported} exported", flush=True
        )

    async def _exports(self, client: Client, settings: Settings, workers: Workers) -> None:
        slots = asyncio.Semaphore(self.args.parallel)

        async def one(number: int) -> None:
            async with slots:
                workers.check()
                await self._export(client, settings, number)

        await asyncio.gather(*(one(n) for n in range(self.args.exports)))

    async def _export(self, client: Client, settings: Settings, number: int) -> None:
        destination = self.work / "exports" / f"{number:04d}"
        request = ExportInput(destination=str(destination), options=self.options)
        began = time.monotonic()
        self.tally.started += 1
        handle = await start_export(client, settings, request)
        self.running[handle.id] = handle
        try:
            report = await asyncio.wait_for(handle.result(), timeout=self.args.export_timeout)
        except Exception as error:  # a failed or stuck workflow: recorded, its destination kept
            with contextlib.suppress(Exception):
                await handle.terminate("soak: export timed out")
            self._fail(handle.id, destination, f"{type(error).__name__}: {error}; cause: {error.__cause__!r}")
            return
        finally:
            self.running.pop(handle.id, None)
        self.tally.seconds.append(time.monotonic() - began)
        if report.status != "completed" or report.snapshot is None:
            self._fail(handle.id, destination, f"status {report.status}: {report.error}")
            return
        fingerprint = manifest_fingerprint(Path(report.snapshot))
        if report.counters.failed or fingerprint != self.reference:
            self.tally.degraded += 1
            self.tally.failures.append(
                {
                    "workflow_id": handle.id,
                    "destination": str(destination),
                    "error": f"degraded: {report.counters.failed} failed objects, "
                    f"{fingerprint[1]} objects vs {self.reference[1] if self.reference else 0}",
                }
            )
            return
        self.tally.completed += 1
        shutil.rmtree(destination, ignore_errors=True)

    def _fail(self, workflow_id: str, destination: Path, error: str) -> None:
        self.tally.failed += 1
        self.tally.failures.append(
            {"workflow_id": workflow_id, "destination": str(destination), "error": error}
        )
        print(f"FAILED {workflow_id}: {error}", flush=True)

    async def _killer(self, client: Client, workers: Workers) -> None:
        """Every --kill-every s: note what the victim runs, SIGKILL it, start its replacement."""
        identity_host = socket.gethostname()
        while True:
            await asyncio.sleep(self.args.kill_every)
            victim = workers.victim()
            identity = f"{victim.pid}@{identity_host}"
            lost: list[LostActivity] = []
            for handle in list(self.running.values()):
                with contextlib.suppress(Exception):  # it may have just ended
                    described = await handle.describe()
                    for pending in described.raw_description.pending_activities:
                        if (
                            pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                            and pending.last_worker_identity == identity
                        ):
                            lost.append(
                                LostActivity(
                                    handle.id,
                                    described.run_id,
                                    pending.activity_id,
                                    pending.activity_type.name,
                                )
                            )
            self.kills.append(Kill(time.time(), victim.pid, lost))
            workers.replace(victim)

    async def _bursts(self, emulator: EmulatorProcess) -> None:
        """A burst: up to --burst-size 429s within --burst-seconds, then the mode is cleared (a count
        left standing would answer 429 to every request of an idle minute, forever)."""
        while True:
            await asyncio.sleep(self.args.burst_every)
            emulator.hostile(
                rate_limit={"count": self.args.burst_size, "retry_after": str(self.args.burst_retry_after)}
            )
            await asyncio.sleep(self.args.burst_seconds)
            emulator.hostile()

    async def _reporter(self, workers: Workers, emulator: EmulatorProcess, server: DevServer) -> None:
        server_pid = server.process.pid if server.process else None
        while True:
            await asyncio.sleep(self.args.report_every)
            workers.check()
            sample = {
                "t_s": round(time.monotonic() - self.started_at),
                "bench_mb": round(rss_mb([os.getpid()]), 1),
                "workers_mb": round(rss_mb([w.pid for w in workers.processes]), 1),
                "emulator_mb": round(rss_mb([emulator.pid] if emulator.pid else []), 1),
                "devserver_mb": round(rss_mb([server_pid] if server_pid else []), 1),
            }
            self.rss.append(sample)
            t = self.tally
            lost = sum(len(k.lost) for k in self.kills)
            print(
                f"[{sample['t_s']:>5}s] started {t.started} completed {t.completed} degraded {t.degraded} "
                f"failed {t.failed} running {len(self.running)} | kills {len(self.kills)}, activities lost "
                f"{lost} | RSS MB bench {sample['bench_mb']} workers {sample['workers_mb']} emulator "
                f"{sample['emulator_mb']} devserver {sample['devserver_mb']}",
                flush=True,
            )

    async def _recoveries(self, client: Client) -> None:
        """Each lost activity's completion (and the start of the completing attempt) from history."""
        histories: dict[str, Any] = {}
        for kill in self.kills:
            for lost in kill.lost:
                key = f"{lost.workflow_id}/{lost.run_id}"
                if key not in histories:
                    handle = client.get_workflow_handle(lost.workflow_id, run_id=lost.run_id)
                    histories = {key: await handle.fetch_history()}  # one history held at a time
                events = histories[key].events
                scheduled = next(
                    (
                        e.event_id
                        for e in events
                        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                        and e.activity_task_scheduled_event_attributes.activity_id == lost.activity_id
                    ),
                    None,
                )
                for event in events:
                    when = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
                    if (
                        event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                        and event.activity_task_started_event_attributes.scheduled_event_id == scheduled
                    ):
                        lost.restart_s = when - kill.at
                    if (
                        event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                        and event.activity_task_completed_event_attributes.scheduled_event_id == scheduled
                    ):
                        lost.recovery_s = when - kill.at

    def summary(self) -> dict[str, Any]:
        args = self.args
        # An activity that finished between the describe and the kill was not lost.
        lost = [a for k in self.kills for a in k.lost if a.recovery_s is None or a.recovery_s > 0]
        recoveries = [a.recovery_s for a in lost if a.recovery_s is not None]
        restarts = [a.restart_s for a in lost if a.restart_s is not None and a.restart_s > 0]
        t = self.tally

        def figures(values: list[float]) -> dict[str, float | None]:
            return {
                "count": len(values),
                "min_s": min(values) if values else None,
                "p50_s": percentile(values, 0.5),
                "p99_s": percentile(values, 0.99),
                "max_s": max(values) if values else None,
            }

        stats = self.emulator_stats
        return {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": {
                **{k: v for k, v in vars(args).items() if k not in ("json", "keep")},
                "fault_mix": FAULT_MIX,
                "export_options": self.options.model_dump(
                    include={"batch_size", "max_parallel_batches", "worker_lost_after_seconds"}
                ),
            },
            "wall_s": round(time.monotonic() - self.started_at, 1),
            "exports": {
                "started": t.started,
                "completed": t.completed,
                "degraded": t.degraded,
                "failed": t.failed,
                "success_rate": t.completed / t.started if t.started else None,
                "seconds_p50": statistics.median(t.seconds) if t.seconds else None,
                "seconds_max": max(t.seconds) if t.seconds else None,
                "failures": t.failures,
            },
            "kills": len(self.kills),
            "kills_with_lost_activities": sum(bool(k.lost) for k in self.kills),
            "workers_exited_by_themselves": self.worker_exits,
            "lost_activities": len(lost),
            "lost_activities_never_completed": [asdict(a) for a in lost if a.recovery_s is None],
            "recovery": figures(recoveries),
            "restart": figures(restarts),
            "emulator": {
                "requests_total": stats.get("requests_total"),
                "by_status": stats.get("by_status"),
                "faults_injected": stats.get("faults_injected"),
                "rate_limited_total": stats.get("rate_limited_total"),
                "hostile": stats.get("hostile"),
            },
            "rss_mb": {"first": self.rss[:1], "last": self.rss[-1:], "samples": len(self.rss)},
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exports", type=int, default=500, help="exports after the reference")
    p.add_argument("--parallel", type=int, default=3, help="exports running at once")
    p.add_argument("--pages", type=int, default=30, help="generated pages of the emulated workspace")
    p.add_argument("--seed", type=int, default=170)
    p.add_argument("--latency-ms", type=float, default=10.0, help="emulator latency per /v1 request")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--kill-every", type=float, default=20.0, help="seconds between worker kills")
    p.add_argument("--lost-after", type=int, default=30, help="ExportOptions.worker_lost_after_seconds")
    p.add_argument("--batch-size", type=int, default=10, help="ExportOptions.batch_size")
    p.add_argument("--parallel-batches", type=int, default=2, help="ExportOptions.max_parallel_batches")
    p.add_argument("--fault-rate", type=float, default=0.05, help="share of /v1 requests given a fault")
    p.add_argument("--slow-seconds", type=float, default=3.0, help="delay of a 'slow' fault")
    p.add_argument("--burst-every", type=float, default=45.0, help="seconds between 429 bursts")
    p.add_argument("--burst-size", type=int, default=20, help="429s in a burst, at most")
    p.add_argument("--burst-seconds", type=float, default=3.0, help="how long a burst lasts, at most")
    p.add_argument("--burst-retry-after", type=int, default=2, help="Retry-After of a burst's 429s")
    p.add_argument("--export-timeout", type=float, default=1800.0, help="an export not done by then fails")
    p.add_argument("--report-every", type=float, default=30.0, help="seconds between progress lines")
    p.add_argument("--json", type=Path, default=Path("/tmp/soak.json"), help="where the summary goes")
    p.add_argument("--keep", action="store_true", help="keep the temp folder even when all went well")
    args = p.parse_args()
    if args.exports < 1 or args.parallel < 1 or args.workers < 1:
        p.error("--exports, --parallel and --workers must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="soak-bench-"))
    soak = Soak(args, work)
    error: str | None = None
    try:
        asyncio.run(soak.run())
    except Exception as failure:  # reported in the summary; the processes are already stopped
        error = f"{type(failure).__name__}: {failure}"
    summary = soak.summary()
    summary["error"] = error
    summary["work"] = str(work)
    args.json.write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2, default=str))
    bad = error or summary["exports"]["failed"] or summary["exports"]["degraded"]
    if bad or args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
