"""Many exports at once: N small workspaces and one big one on one cluster, two worker processes.

Does one big export starve ten small ones? Everything runs on this box, each in its own process:
  * a Temporal dev server (`start_dev_server`, free port, headless, SQLite persistence as in
    production),
  * one Notion API emulator per workspace (`--small-count` with `--small-pages` generated pages each,
    one with `--big-pages`), each with its own seed and its own token, `--latency-ms` per request,
  * `--workers` worker processes (`python worker.py`), configured only through their environment;
    every one holds every workspace through one credentials YAML (`NOTION_SYNC_CREDENTIALS_FILE`),
    so each polls the workflow queue plus one activity queue per workspace.
`NOTION_SYNC_RATE` is 0 (no per-token budget) unless `--rate` says otherwise: the run measures how
the exports share the workers' slots and CPU, not Notion's 3 requests/s.

Phase A: the small exports alone, started together. Phase B: fresh destinations, the small ones and
the big one started together. `--big-alone` adds phase C: the big one alone, for its own throughput.
`--staggered` adds phase D: the big one first, the small ones started as soon as a progress query
sees it exporting (started together, the big one is still listing its pages while the small ones
run). Each export's time-to-finish runs from its own `start_export` to its result. The script
prints, per export, pages exported (manifest), skipped, failed and seconds; the small ones' median
and max seconds per phase and the ratio to A; the big one's pages/min and its workflow phases over
time (a progress query every `--poll` s); the emulators' 429 and 401 counts; CPU seconds of the
workers / emulators / dev server per phase. It exits non-zero if an export did not complete,
skipped or failed anything, or an emulator answered 401 (a token at the wrong door).

Usage: .venv/bin/python bench/many_exports_bench.py --big-alone --staggered   # 10 x 1,000 + 20,000
       .venv/bin/python bench/many_exports_bench.py --small-pages 50 --small-count 3 --big-pages 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from export_bench import cpu_seconds, start_workers  # noqa: E402  (this script's folder is on sys.path)

from notion_sync.control import query_progress, start_export  # noqa: E402
from notion_sync.devserver import free_port, start_dev_server  # noqa: E402
from notion_sync.emulator.process import EmulatorProcess  # noqa: E402
from notion_sync.models import ExportInput, ExportOptions, ExportProgress, ExportReport  # noqa: E402
from notion_sync.models import Phase as WorkflowPhase  # noqa: E402
from notion_sync.processes import stop_process  # noqa: E402
from notion_sync.settings import Settings  # noqa: E402
from notion_sync.snapshot import MANIFEST, read_manifest  # noqa: E402

DEFAULTS = ExportOptions()
BIG = "big"
PHASES = {
    "A": "small ones alone",
    "B": "all started together",
    "C": "big one alone",
    "D": "small ones started once the big one is exporting",
}
BEFORE_EXPORTING = (WorkflowPhase.STARTING, WorkflowPhase.DISCOVERING, WorkflowPhase.LAYOUT)


def small_name(i: int) -> str:
    return f"small{i + 1:02d}"


def manifest_pages(snapshot: str | None) -> int:
    """Pages the snapshot's manifest lists as exported (objects of other types not counted)."""
    if not snapshot or not (Path(snapshot) / MANIFEST).exists():
        return 0
    with read_manifest(Path(snapshot)) as (_header, entries):
        return sum(entry.type == "page" and entry.status == "exported" for entry in entries)


@dataclass
class Outcome:
    """One export of one phase."""

    workspace: str
    seconds: float = 0.0
    status: str = "not finished"
    pages: int = 0
    objects: int = 0
    skipped: int = 0
    failed: int = 0
    error: str | None = None


@dataclass
class Phase:
    label: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    worker_cpu_s: list[float] = field(default_factory=list)
    loadavg: tuple[float, float] = (0.0, 0.0)
    statuses: dict[str, int] = field(default_factory=dict)  # HTTP status -> count, all emulators
    rate_limited: int = 0
    unauthorized: int = 0
    # The big export's workflow phases, first seen at (seconds since its start, objects discovered,
    # objects exported), from a progress query every poll; and its progress when the last small
    # one finished.
    big_phases: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    big_at_small_end: tuple[float, ExportProgress] | None = None
    big_at_small_start: tuple[float, ExportProgress] | None = None  # staggered phase only

    def small(self) -> list[Outcome]:
        return [o for name, o in self.outcomes.items() if name != BIG]


class Cluster:
    """The dev server, the emulators and the worker processes; `close()` ends them all."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.server: Any = None
        self.emulators: dict[str, EmulatorProcess] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.queue = f"many-{uuid.uuid4().hex[:8]}"
        self.log_path = work / "workers.log"

    def start(self) -> None:
        args = self.args
        self.server = start_dev_server(
            self.work / "temporal", port=free_port(), ui_port=None, persist=args.persist
        )
        sizes = {small_name(i): args.small_pages for i in range(args.small_count)}
        sizes[BIG] = args.big_pages
        for i, (name, pages) in enumerate(sizes.items()):
            emulator = EmulatorProcess(
                pages=pages,
                seed=args.seed + i,
                token=f"secret_{name}_{uuid.uuid4().hex}",
                latency_ms=args.latency_ms,
                workspace_name=f"Bench {name}",
                track_ids=False,
            )
            self.emulators[name] = emulator  # before start(): stopped on exit even if it fails
            emulator.start()
        credentials = self.work / "credentials.yaml"
        credentials.write_text(
            yaml.safe_dump(
                {
                    "workspaces": {
                        name: {"token": e.token, "base_url": e.base_url} for name, e in self.emulators.items()
                    }
                }
            )
        )
        credentials.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "TEMPORAL_"))}
        env.update(
            TEMPORAL_ADDRESS=self.server.address,
            NOTION_SYNC_TASK_QUEUE=self.queue,
            NOTION_SYNC_STATE_DIR=str(self.work / "state"),
            NOTION_SYNC_RATE=str(args.rate),
            NOTION_SYNC_CREDENTIALS_FILE=str(credentials),
        )
        if args.activity_slots is not None:
            env["NOTION_SYNC_ACTIVITY_SLOTS"] = str(args.activity_slots)
        self.workers.extend(start_workers(args.workers, env, self.log_path))

    def check_workers(self) -> None:
        for w in self.workers:
            if w.poll() is not None:
                raise RuntimeError(f"a worker exited with {w.returncode}; see {self.log_path}")

    def cpu(self) -> dict[str, float]:
        server_pid = self.server.process.pid if self.server and self.server.process else None
        return {
            "workers": sum(cpu_seconds(w.pid) for w in self.workers),
            "emulators": sum(cpu_seconds(e.pid) for e in self.emulators.values()),
            "devserver": cpu_seconds(server_pid),
        }

    def emulator_stats(self) -> dict[str, dict[str, Any]]:
        return {name: e.stats() for name, e in self.emulators.items()}

    def close(self) -> None:
        for w in self.workers:
            stop_process(w, grace=10)
        for emulator in self.emulators.values():
            with contextlib.suppress(Exception):
                emulator.stop()
        if self.server is not None:
            self.server.stop()


async def run_phase(
    cluster: Cluster, client: Client, settings: Settings, label: str, names: list[str], stagger: bool = False
) -> Phase:
    """Starts one export per workspace at once and waits for every result; with `stagger`, the big
    one first and the others once it is exporting."""
    args = cluster.args
    phase = Phase(label, {name: Outcome(name) for name in names})
    options = ExportOptions(batch_size=args.batch_size, max_parallel_batches=args.parallel)
    stats0 = cluster.emulator_stats()
    cpu0 = cluster.cpu()
    worker_cpu0 = [cpu_seconds(w.pid) for w in cluster.workers]
    load0 = os.getloadavg()[0]
    handles: dict[str, WorkflowHandle[Any, ExportReport]] = {}
    started: dict[str, float] = {}

    async def start(name: str) -> None:
        started[name] = time.monotonic()
        destination = str(cluster.work / label / name)
        handles[name] = await start_export(
            client, settings, ExportInput(destination=destination, workspace=name, options=options)
        )

    async def finish(name: str) -> None:
        outcome = phase.outcomes[name]
        try:
            report = await handles[name].result()
        except Exception as error:  # a failed workflow: recorded, the run fails at the end
            outcome.seconds = time.monotonic() - started[name]
            outcome.error = f"{type(error).__name__}: {error}"
            return
        outcome.seconds = time.monotonic() - started[name]
        outcome.status = report.status
        outcome.error = report.error
        outcome.objects = report.counters.exported
        outcome.skipped = report.counters.skipped
        outcome.failed = report.counters.failed
        outcome.pages = manifest_pages(report.snapshot)

    tasks: dict[str, asyncio.Task[None]] = {}

    async def launch(batch: list[str]) -> None:
        await asyncio.gather(*(start(name) for name in batch))
        tasks.update({name: asyncio.create_task(finish(name)) for name in batch})

    def smalls_done() -> bool:
        return not waiting and all(t.done() for n, t in tasks.items() if n != BIG)

    t0 = time.monotonic()
    waiting = [n for n in names if n != BIG] if stagger else []
    try:
        await launch([BIG] if stagger else names)
        while waiting or not all(t.done() for t in tasks.values()):
            await asyncio.wait(set(tasks.values()), timeout=args.poll)
            cluster.check_workers()
            big = tasks.get(BIG)
            if big is not None and not big.done():
                # The latest run (a handle with a run id would ask the first, after continue-as-new);
                # never once the result is in, or the worker would replay the ended run.
                progress = None
                with contextlib.suppress(Exception):  # it may have just ended
                    progress = await query_progress(client.get_workflow_handle(handles[BIG].id))
                if progress is not None:
                    seen = (time.monotonic() - started[BIG], progress.discovered, progress.exported)
                    phase.big_phases.setdefault(progress.phase.value, seen)
                    if waiting and progress.phase not in BEFORE_EXPORTING:
                        phase.big_at_small_start = (seen[0], progress)
                        await launch(waiting)
                        waiting = []
                    elif smalls_done() and phase.big_at_small_end is None and len(names) > 1:
                        phase.big_at_small_end = (seen[0], progress)
            elif waiting:  # the big one ended before it was seen exporting
                await launch(waiting)
                waiting = []
            if time.monotonic() - t0 > args.timeout:
                raise TimeoutError(f"phase {label}: not every export done after {args.timeout:.0f} s")
    except BaseException:
        for name, handle in handles.items():
            if name not in tasks or not tasks[name].done():
                if name in tasks:
                    tasks[name].cancel()
                with contextlib.suppress(Exception):
                    await handle.terminate("benchmark stopped")
        raise
    phase.wall_s = time.monotonic() - t0
    cpu1 = cluster.cpu()
    phase.cpu_s = {k: cpu1[k] - cpu0[k] for k in cpu1}
    phase.worker_cpu_s = [cpu_seconds(w.pid) - c for w, c in zip(cluster.workers, worker_cpu0, strict=True)]
    phase.loadavg = (load0, os.getloadavg()[0])
    for name, stats in cluster.emulator_stats().items():
        before = stats0[name]
        for status, n in stats["by_status"].items():
            delta = n - before["by_status"].get(status, 0)
            if delta:
                phase.statuses[status] = phase.statuses.get(status, 0) + delta
        phase.rate_limited += stats["rate_limited_total"] - before["rate_limited_total"]
        phase.unauthorized += stats.get("unauthorized_total", 0) - before.get("unauthorized_total", 0)
    return phase


async def run(args: argparse.Namespace, work: Path) -> list[Phase]:
    cluster = Cluster(args, work)
    phases: list[Phase] = []
    try:
        cluster.start()
        client = await Client.connect(cluster.server.address, data_converter=pydantic_data_converter)
        settings = Settings.model_construct(**{**Settings().model_dump(), "task_queue": cluster.queue})
        await asyncio.sleep(args.warmup)  # let the workers import and start polling
        cluster.check_workers()
        smalls = [small_name(i) for i in range(args.small_count)]
        phases.append(await run_phase(cluster, client, settings, "A", smalls))
        phases.append(await run_phase(cluster, client, settings, "B", [*smalls, BIG]))
        if args.big_alone:
            phases.append(await run_phase(cluster, client, settings, "C", [BIG]))
        if args.staggered:
            phases.append(await run_phase(cluster, client, settings, "D", [*smalls, BIG], stagger=True))
        return phases
    finally:
        cluster.close()


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def describe(args: argparse.Namespace, phases: list[Phase]) -> str:
    lines = [
        f"many exports: {args.small_count} x {args.small_pages} generated pages + 1 x {args.big_pages}, "
        f"one emulator and one token each, latency {args.latency_ms:g} ms; "
        f"{args.workers} worker processes holding all {args.small_count + 1} workspaces; "
        f"NOTION_SYNC_RATE={args.rate:g}{' (no per-token budget)' if not args.rate else ''}, "
        f"activity slots {args.activity_slots or 'default (16)'} per workspace per worker; "
        f"batch_size={args.batch_size}, max_parallel_batches={args.parallel}; "
        f"dev server {'SQLite' if args.persist else 'in-memory'}; {os.cpu_count()} cores",
        "",
        f"{'phase':<5} {'export':<8} {'status':<10} {'pages':>7} {'skipped':>7} {'failed':>6} "
        f"{'seconds':>8} {'pages/min':>9}",
    ]
    for phase in phases:
        for o in phase.outcomes.values():
            rate = o.pages / o.seconds * 60 if o.seconds else 0
            lines.append(
                f"{phase.label:<5} {o.workspace:<8} {o.status:<10} {o.pages:>7} {o.skipped:>7} "
                f"{o.failed:>6} {o.seconds:>8.1f} {rate:>9,.0f}"
            )
    lines.append("")
    for phase in phases:
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in phase.cpu_s.items())
        total = sum(phase.cpu_s.values())
        each = ", ".join(f"{c:.0f}" for c in phase.worker_cpu_s)
        lines.append(
            f"phase {phase.label}: {len(phase.outcomes)} exports, {phase.wall_s:.1f} s wall; CPU s {cpu} "
            f"(workers each: {each}) = {percent(total, phase.wall_s * (os.cpu_count() or 1))} of the cores; "
            f"HTTP statuses {phase.statuses}, 429s {phase.rate_limited}, 401s {phase.unauthorized}; "
            f"1-min load {phase.loadavg[0]:.2f} -> {phase.loadavg[1]:.2f}"
        )
    small_a = [o.seconds for o in phases[0].small()]
    med_a, max_a = statistics.median(small_a), max(small_a)
    lines += ["", f"small exports, seconds to finish: alone (A) median {med_a:.1f}, max {max_a:.1f}"]
    for phase in phases[1:]:
        small = [o.seconds for o in phase.small()]
        if small:
            med, top = statistics.median(small), max(small)
            lines.append(
                f"  {PHASES[phase.label]} ({phase.label}): median {med:.1f}, max {top:.1f}; "
                f"{phase.label}/A median {med / med_a:.2f}, max {top / max_a:.2f}"
            )
    for phase in phases:
        big = phase.outcomes.get(BIG)
        if big is None or not big.seconds:
            continue
        lines.append(
            f"big export ({phase.label}, {PHASES[phase.label]}): {big.pages} pages in {big.seconds:.1f} s = "
            f"{big.pages / big.seconds * 60:,.0f} pages/min"
        )
        marks = (
            ("the small ones started", phase.big_at_small_start),
            ("the last small one finished", phase.big_at_small_end),
        )
        for what, mark in marks:
            if mark is not None:
                at, progress = mark
                lines.append(
                    f"  when {what} ({at:.0f} s in) "
                    f"it was {progress.phase.value}, {progress.exported} of {progress.discovered} "
                    "discovered objects exported"
                )
        seen = ", ".join(f"{p} {t:.0f} s ({d}/{e})" for p, (t, d, e) in phase.big_phases.items())
        lines.append(f"  its phases first seen at (s since its start, objects discovered/exported): {seen}")
    return "\n".join(lines)


def problems(phases: list[Phase]) -> list[str]:
    found = []
    for phase in phases:
        for o in phase.outcomes.values():
            if o.status != "completed" or o.skipped or o.failed or o.error:
                found.append(
                    f"phase {phase.label} {o.workspace}: {o.status}, skipped {o.skipped}, "
                    f"failed {o.failed}{f', {o.error}' if o.error else ''}"
                )
        if phase.unauthorized:
            found.append(f"phase {phase.label}: {phase.unauthorized} requests answered 401")
    # The same workspace exported twice must give the same pages.
    pages: dict[str, set[int]] = {}
    for phase in phases:
        for o in phase.outcomes.values():
            pages.setdefault(o.workspace, set()).add(o.pages)
    found += [f"{name}: pages differ between phases {sorted(n)}" for name, n in pages.items() if len(n) > 1]
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small-pages", type=int, default=1000, help="generated pages of each small workspace")
    p.add_argument("--small-count", type=int, default=10, help="small workspaces")
    p.add_argument("--big-pages", type=int, default=20000, help="generated pages of the big workspace")
    p.add_argument("--workers", type=int, default=2, help="worker processes, each holding every workspace")
    p.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency per /v1 request")
    p.add_argument(
        "--rate", type=float, default=0.0, help="NOTION_SYNC_RATE per token, req/s (0 = unlimited)"
    )
    p.add_argument(
        "--activity-slots", type=int, default=None, help="NOTION_SYNC_ACTIVITY_SLOTS (default: the worker's)"
    )
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="ExportOptions.batch_size")
    p.add_argument(
        "--parallel",
        type=int,
        default=DEFAULTS.max_parallel_batches,
        help="ExportOptions.max_parallel_batches of every export",
    )
    p.add_argument("--seed", type=int, default=101, help="seed of the first workspace; the others follow")
    p.add_argument(
        "--persist",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dev server with SQLite persistence (default) or in memory",
    )
    p.add_argument("--big-alone", action="store_true", help="phase C: the big export alone, afterwards")
    p.add_argument(
        "--staggered",
        action="store_true",
        help="phase D: the big export first, the small ones started once it is exporting",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="give up on a phase after this, s")
    p.add_argument("--poll", type=float, default=1.0, help="worker liveness polling interval, s")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds for the workers to start polling")
    p.add_argument(
        "--keep", action="store_true", help="keep the temp folder (exports, worker log, server db)"
    )
    args = p.parse_args()
    if args.small_count < 1:
        p.error("--small-count must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="many-exports-bench-"))
    phases: list[Phase] = []
    failure: str | None = None
    log_tail = ""
    try:
        phases = asyncio.run(run(args, work))
    except Exception as error:  # reported below; the processes are already stopped
        failure = f"{type(error).__name__}: {error}"
        log = work / "workers.log"
        log_tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if len(phases) >= 2:
        print(describe(args, phases))
    found = problems(phases)
    if failure:
        found.insert(0, failure)
    if found:
        print("\nFAILED:\n  " + "\n  ".join(found), file=sys.stderr)
        if log_tail:
            print("worker log tail:\n" + log_tail, file=sys.stderr)
        sys.exit(1)
    print("\nevery export completed with nothing skipped or failed; no 401s")


if __name__ == "__main__":
    main()
