"""End-to-end export benchmark: Temporal dev server + emulator + a worker process, one export.

Everything runs on this box, each in its own process:
  * a Temporal dev server (`temporal server start-dev`, headless, free port; SQLite persistence by
    default, `--no-persist` for in-memory),
  * the Notion API emulator with N generated pages (`--pages`, `--latency-ms`, `--rate`, `--burst`),
  * one worker (or `--workers N`), `python worker.py`, configured only through its environment
    (as in production),
    so its peak RSS (children included, sampled every 0.2 s with psutil) is its own.
The script itself is the client: it starts one export into a temp folder, polls progress and the
emulator's counters once a second, and prints pages/min, API requests per page, history events per
page (all runs of the continue-as-new chain), runs, peak RSS and, with a budget, the achieved rate.

Usage: .venv/bin/python bench/export_bench.py --pages 2000 --latency-ms 20
       .venv/bin/python bench/export_bench.py --pages 150 --rate 3 --burst 10 --sync-rate 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from notion_sync.control import query_progress, start_export  # noqa: E402
from notion_sync.devserver import free_port, start_dev_server  # noqa: E402
from notion_sync.emulator.process import EmulatorProcess  # noqa: E402
from notion_sync.models import ExportInput, ExportOptions, Phase  # noqa: E402
from notion_sync.processes import die_with_parent, stop_process  # noqa: E402
from notion_sync.settings import Settings  # noqa: E402
from notion_sync.snapshot import MANIFEST, read_manifest  # noqa: E402

DEFAULTS = ExportOptions()


class RssSampler:
    """Peak RSS of a process and its children, sampled on a thread every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.last = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = 0
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            if rss:
                self.last = rss
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def api_requests(stats: dict[str, Any]) -> int:
    """Requests to the Notion API; file downloads go to the emulator's storage routes, unbudgeted."""
    return sum(n for endpoint, n in stats["by_endpoint"].items() if " /v1/" in endpoint)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its children so far (0 if it is gone)."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


@dataclass
class PhaseClock:
    """When each workflow phase was first seen, with the emulator's request count and the CPU
    seconds all processes had used at that moment."""

    seen: dict[str, tuple[float, int]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def note(self, phase: str, at: float, requests: int, cpu_s: float = 0.0) -> None:
        if phase not in self.seen:
            self.seen[phase] = (at, requests)
            self.cpu[phase] = cpu_s


def start_workers(count: int, env: dict[str, str], log_path: Path) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes (`python worker.py`), configured only through `env` as in production,
    their output in `log_path`; they die with this script."""
    with log_path.open("wb") as log:
        return [
            subprocess.Popen(
                [sys.executable, str(REPO / "worker.py")],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
            for _ in range(count)
        ]


def worker_env(
    args: argparse.Namespace, emulator: EmulatorProcess, address: str, queue: str, state: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NOTION_TOKEN=emulator.token,
        NOTION_BASE_URL=emulator.base_url,
        TEMPORAL_ADDRESS=address,
        NOTION_SYNC_TASK_QUEUE=queue,
        NOTION_SYNC_STATE_DIR=str(state),
        NOTION_SYNC_RATE=str(args.sync_rate),
    )
    if args.sync_burst is not None:
        env["NOTION_SYNC_BURST"] = str(args.sync_burst)
    if args.page_concurrency is not None:
        env["NOTION_SYNC_PAGE_CONCURRENCY"] = str(args.page_concurrency)
    return env


async def history_events(client: Client, workflow_id: str) -> list[tuple[str, int]]:
    """(run id, event count) for every run of the workflow id, following continue-as-new."""
    runs: list[tuple[str, int]] = []
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history()
        runs.append((execution.run_id, len(history.events)))
    return runs


def manifest_counts(snapshot: str | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not snapshot or not (Path(snapshot) / MANIFEST).exists():
        return counts
    with read_manifest(Path(snapshot)) as (_header, entries):
        for entry in entries:
            key = f"{entry.type}:{entry.status}"
            counts[key] = counts.get(key, 0) + 1
    return counts


async def run_export(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> dict[str, Any]:
    out["args"] = vars(args)
    server_dir = work / "temporal"
    port = free_port()
    t0 = time.monotonic()
    server = start_dev_server(server_dir, port=port, ui_port=None, persist=args.persist)
    out["devserver_start_s"] = round(time.monotonic() - t0, 2)
    emulator: EmulatorProcess | None = None
    workers: list[subprocess.Popen[bytes]] = []
    samplers: list[RssSampler] = []
    profiler: subprocess.Popen[bytes] | None = None
    log_path = work / "worker.log"
    try:
        emulator_opts: dict[str, Any] = {"latency_ms": args.latency_ms}
        if args.rate is not None:
            emulator_opts["rate"] = args.rate
        if args.burst is not None:
            emulator_opts["burst"] = args.burst
        if args.shape:
            emulator_opts["shape"] = json.loads(args.shape)
        emulator = EmulatorProcess(pages=args.pages, seed=args.seed, track_ids=False, **emulator_opts)
        emulator.start()
        out["workspace"] = emulator.workspace_summary()

        queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = worker_env(args, emulator, server.address, queue, work / "state")
        workers.extend(start_workers(args.workers, env, log_path))
        worker = workers[0]
        samplers = [RssSampler(w.pid) for w in workers]
        for sampler in samplers:
            sampler.start()

        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        await asyncio.sleep(args.warmup)  # let the worker import and start polling
        out["worker_rss_idle_mb"] = round(max(s.last for s in samplers) / 2**20, 1)
        settings = Settings.model_construct(**{**Settings().model_dump(), "task_queue": queue})
        options = ExportOptions(
            batch_size=args.batch_size,
            max_parallel_batches=args.parallel,
            include_comments=args.comments,
        )
        cpu0 = {
            "worker": sum(cpu_seconds(w.pid) for w in workers),
            "emulator": cpu_seconds(emulator.pid),
            "devserver": cpu_seconds(server.process.pid if server.process else None),
        }
        stats0 = emulator.stats()
        out["loadavg_before"] = round(os.getloadavg()[0], 2)
        if args.profile:
            target = {"worker": worker.pid, "emulator": emulator.pid}[args.profile_target]
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--nonblocking",
                    "-o",
                    args.profile,
                    "-p",
                    str(target),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        start = time.monotonic()
        handle = await start_export(
            client, settings, ExportInput(destination=str(work / "out"), options=options)
        )
        clock = PhaseClock()
        pids = [w.pid for w in workers] + [emulator.pid, server.process.pid if server.process else None]
        clock.note("start", start, api_requests(stats0), sum(cpu_seconds(pid) for pid in pids))
        result_task = asyncio.create_task(handle.result())
        deadline = start + args.timeout
        last_progress = None
        while not result_task.done():
            await asyncio.wait({result_task}, timeout=args.poll)
            now = time.monotonic()
            if result_task.done():
                break  # a query now would make the worker replay the ended run (see BENCHMARKS.md)
            with contextlib.suppress(Exception):
                last_progress = await query_progress(handle)
                used = sum(cpu_seconds(pid) for pid in pids)
                clock.note(last_progress.phase.value, now, api_requests(emulator.stats()), used)
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"a worker exited with {w.returncode}; see {log_path}")
            if now > deadline and not result_task.done():
                result_task.cancel()
                with contextlib.suppress(Exception):
                    await handle.terminate("benchmark timeout")
                out["timeout"] = True
                out["progress_at_timeout"] = last_progress.model_dump(mode="json") if last_progress else None
                out["wall_s"] = round(now - start, 2)
                raise TimeoutError(f"export not done after {args.timeout:.0f} s: {last_progress}")
        report = result_task.result()
        end = time.monotonic()
        used_at_end = sum(cpu_seconds(pid) for pid in pids)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
        stats = emulator.stats()
        out["loadavg_after"] = round(os.getloadavg()[0], 2)
        clock.note("end", end, api_requests(stats), used_at_end)
        cpu = {
            "worker": sum(cpu_seconds(w.pid) for w in workers) - cpu0["worker"],
            "emulator": cpu_seconds(emulator.pid) - cpu0["emulator"],
            "devserver": cpu_seconds(server.process.pid if server.process else None) - cpu0["devserver"],
        }
        for sampler in samplers:
            sampler.stop()
        final = await query_progress(handle)
        runs = await history_events(client, handle.id)
        for _ in range(50):  # visibility may lag the last continue-as-new briefly
            if len(runs) >= final.runs:
                break
            await asyncio.sleep(0.2)
            runs = await history_events(client, handle.id)

        wall = end - start
        counts = manifest_counts(report.snapshot)
        pages = counts.get("page:exported", 0)
        requests = stats["requests_total"] - stats0["requests_total"]
        api = api_requests(stats) - api_requests(stats0)
        events = sum(n for _, n in runs)
        out.update(
            status=report.status,
            counters=report.counters.model_dump(),
            manifest=counts,
            pages_exported=pages,
            objects_exported=report.counters.exported,
            wall_s=round(wall, 2),
            pages_per_min=round(pages / wall * 60, 0) if wall else 0,
            objects_per_min=round(report.counters.exported / wall * 60, 0) if wall else 0,
            requests=requests,
            requests_per_page=round(requests / pages, 2) if pages else None,
            api_requests=api,
            api_requests_per_page=round(api / pages, 2) if pages else None,
            by_status=stats["by_status"],
            by_endpoint=stats["by_endpoint"],
            rate_limited=stats["rate_limited_total"],
            runs=len(runs),
            runs_reported=final.runs,
            events_per_run=[n for _, n in runs],
            history_events=events,
            events_per_page=round(events / pages, 2) if pages else None,
            worker_rss_peak_mb=round(max(s.peak for s in samplers) / 2**20, 1),
            worker_rss_peak_each_mb=[round(s.peak / 2**20, 1) for s in samplers],
            worker_rss_samples=min(s.samples for s in samplers),
            cpu_s={k: round(v, 1) for k, v in cpu.items()},
            phases={k: (round(t - start, 2), r) for k, (t, r) in clock.seen.items()},
            api_requests_per_s=round(api / wall, 3) if wall else 0,
        )
        exporting = clock.seen.get(Phase.EXPORTING.value)
        after = [
            clock.seen[p]
            for p in (Phase.TABLES.value, Phase.PUBLISHING.value, Phase.DONE.value, "end")
            if p in clock.seen
        ]
        if exporting and after:
            t_end, r_end = min(after)
            span = t_end - exporting[0]
            if span > 0:
                next_phase = next(p for p, seen in clock.seen.items() if seen == (t_end, r_end))
                out["export_phase"] = {
                    "seconds": round(span, 1),
                    "requests": r_end - exporting[1],
                    "requests_per_s": round((r_end - exporting[1]) / span, 3),
                    "cpu_s": round(clock.cpu[next_phase] - clock.cpu[Phase.EXPORTING.value], 1),
                }
        return out
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.send_signal(signal.SIGINT)
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()
        for sampler in samplers:
            sampler.stop()
        for w in workers:
            stop_process(w, grace=10)
        if emulator is not None:
            emulator.stop()
        server.stop()
        if "status" not in out and log_path.exists():
            out["worker_log_tail"] = log_path.read_text(errors="replace")[-3000:]


def describe(r: dict[str, Any], args: argparse.Namespace) -> str:
    ws = r.get("workspace", {})
    lines = [
        f"export of {args.pages} generated pages (emulator: {ws.get('tree_pages')} tree pages, "
        f"{ws.get('rows')} rows, {ws.get('data_sources')} data sources; latency {args.latency_ms} ms, "
        f"rate {args.rate or 'unlimited'}"
        f"{f', burst {args.burst}' if args.burst else ''})",
        f"  exporter: NOTION_SYNC_RATE={args.sync_rate} NOTION_SYNC_BURST={args.sync_burst or 'default'} "
        f"NOTION_SYNC_PAGE_CONCURRENCY={args.page_concurrency or 'default'} batch_size={args.batch_size} "
        f"parallel={args.parallel} comments={args.comments}; {args.workers} worker process(es); "
        f"dev server {'SQLite' if args.persist else 'in-memory'}",
    ]
    if "status" not in r:
        lines.append(f"  FAILED: {r.get('error')}")
        if r.get("progress_at_timeout"):
            lines.append(f"  progress at timeout: {r['progress_at_timeout']}")
        if r.get("worker_log_tail"):
            lines.append("  worker log tail:\n" + r["worker_log_tail"])
        return "\n".join(lines)
    c = r["counters"]
    each = f"; each {r['worker_rss_peak_each_mb']}" if args.workers > 1 else ""
    lines += [
        f"  status {r['status']}: {r['pages_exported']} pages exported ({r['objects_exported']} objects; "
        f"skipped {c['skipped']}, failed {c['failed']}) in {r['wall_s']:.1f} s",
        f"  throughput: {r['pages_per_min']:,.0f} pages/min ({r['objects_per_min']:,.0f} objects/min)",
        f"  requests: {r['requests']} = {r['requests_per_page']} per page, of which {r['api_requests']} = "
        f"{r['api_requests_per_page']} per page to the API (the rest file downloads); "
        f"statuses {r['by_status']}",
        f"  history: {r['history_events']} events over {r['runs']} run(s) {r['events_per_run']} = "
        f"{r['events_per_page']} events per page",
        f"  worker peak RSS {r['worker_rss_peak_mb']} MB (idle {r['worker_rss_idle_mb']} MB, "
        f"{r['worker_rss_samples']} samples{each})",
        f"  CPU seconds during the export: {r['cpu_s']} (wall {r['wall_s']:.0f} s, 2 cores)",
        "  CPU ms per page: "
        + ", ".join(f"{k} {1000 * v / max(1, r['pages_exported']):.2f}" for k, v in r["cpu_s"].items()),
        f"  phases first seen at (s, API requests): {r['phases']}",
        *(
            [
                f"  exporting phase: {e['seconds']} s, {e['cpu_s']} CPU-s in all processes = "
                f"{100 * e['cpu_s'] / e['seconds'] / 2:.0f}% of 2 cores"
            ]
            if (e := r.get("export_phase"))
            else []
        ),
        f"  1-min load average before/after: {r.get('loadavg_before')}/{r.get('loadavg_after')} "
        "(other jobs on the box inflate wall time)",
    ]
    budget = [b for b in (args.rate, args.sync_rate or None) if b]
    if budget:
        limit = min(budget)
        lines.append(
            f"  API rate: {r['api_requests_per_s']:.2f} req/s over the whole export = "
            f"{100 * r['api_requests_per_s'] / limit:.1f}% "
            f"of {limit:g} req/s; 429s: {r['rate_limited']}"
        )
        if "export_phase" in r:
            e = r["export_phase"]
            lines.append(
                f"  exporting phase: {e['requests']} API requests in {e['seconds']} s = "
                f"{e['requests_per_s']:.2f} req/s "
                f"= {100 * e['requests_per_s'] / limit:.1f}% of the budget"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=2000, help="generated pages in the emulator")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency per /v1 request")
    p.add_argument("--rate", type=float, default=None, help="emulator rate limit, req/s (default unlimited)")
    p.add_argument("--burst", type=int, default=None, help="emulator token bucket size")
    p.add_argument("--shape", default=None, help="emulator WorkspaceShape knobs as JSON")
    p.add_argument(
        "--sync-rate", type=float, default=0.0, help="NOTION_SYNC_RATE for the worker (0 = unlimited)"
    )
    p.add_argument("--sync-burst", type=int, default=None, help="NOTION_SYNC_BURST (default: the worker's)")
    p.add_argument(
        "--page-concurrency",
        type=int,
        default=None,
        help="NOTION_SYNC_PAGE_CONCURRENCY (default: the worker's)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the task queue")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="ExportOptions.batch_size")
    p.add_argument(
        "--parallel",
        type=int,
        default=DEFAULTS.max_parallel_batches,
        help="ExportOptions.max_parallel_batches",
    )
    p.add_argument("--comments", action=argparse.BooleanOptionalAction, default=DEFAULTS.include_comments)
    p.add_argument(
        "--persist",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dev server with SQLite persistence (default) or in memory",
    )
    p.add_argument(
        "--timeout", type=float, default=900.0, help="give up (and terminate the workflow) after this"
    )
    p.add_argument("--poll", type=float, default=1.0, help="progress / emulator stats polling interval, s")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="seconds for the worker to start before the export"
    )
    p.add_argument("--profile", default=None, help="py-spy record (raw collapsed stacks) into this file")
    p.add_argument("--profile-target", choices=["worker", "emulator"], default="worker")
    p.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (export, worker log, server db)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    result: dict[str, Any] = {}
    try:
        result = asyncio.run(run_export_safely(args, work))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(describe(result, args))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "worker_log_tail"}, default=str))
    if result.get("status") != "completed":
        sys.exit(1)


async def run_export_safely(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        return await run_export(args, work, out)
    except Exception as error:  # reported, not raised: the processes are already cleaned up
        log = work / "worker.log"
        out["error"] = f"{type(error).__name__}: {error}"
        out.setdefault("worker_log_tail", log.read_text(errors="replace")[-3000:] if log.exists() else "")
        return out


if __name__ == "__main__":
    main()
