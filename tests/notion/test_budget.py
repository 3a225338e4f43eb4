"""The request budget shared by worker processes: several processes drawing from one bucket file get
no more than its rate allows between them, and a 429 one of them meets stops them all.

Real processes (spawned), real time: bounds are loose ratios, as these machines are noisy.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from notion_sync.notion.budget import RequestBudget

PROCESSES = 4
RATE = 20.0
BURST = 5


def _draw(
    path: Path, seconds: float, barrier: Barrier, results: Any, worker: int, block_after: float | None
) -> None:
    """Takes requests from the budget for `seconds`; reports when each was granted. With
    `block_after`, blocks the bucket for a second (a 429's Retry-After) that long after the start."""
    budget = RequestBudget(path, RATE, BURST)
    barrier.wait()
    start = time.time()
    granted: list[float] = []
    blocked_at: float | None = None

    async def draw() -> None:
        nonlocal blocked_at
        while (now := time.time()) < start + seconds:
            if block_after is not None and blocked_at is None and now >= start + block_after:
                blocked_at = time.time()
                budget.block_for(1.0)
            await budget.acquire()
            if (at := time.time()) < start + seconds:
                granted.append(at)

    asyncio.run(draw())
    budget.close()
    results.put((worker, start, granted, blocked_at))


def _run(
    path: Path, seconds: float, block_after: float | None = None
) -> list[tuple[int, float, list[float], float | None]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(
            target=_draw, args=(path, seconds, barrier, results, worker, block_after if worker == 0 else None)
        )
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
    assert all(process.exitcode == 0 for process in processes)
    return sorted(reports)


def test_processes_sharing_a_bucket_get_its_rate_between_them(tmp_path: Path) -> None:
    seconds = 2.0
    reports = _run(tmp_path / "budget", seconds)
    granted = [at for _, _, times, _ in reports for at in times]
    window = max(start for _, start, _, _ in reports) + seconds - min(start for _, start, _, _ in reports)
    allowed = RATE * window + BURST
    assert len(granted) <= allowed + 1, f"{len(granted)} requests granted, the bucket allows {allowed:.0f}"
    # Not starved either: the bucket is drawn close to its rate, by every process.
    assert len(granted) >= 0.5 * RATE * seconds
    assert all(times for _, _, times, _ in reports)


def test_a_block_from_one_process_stops_every_process(tmp_path: Path) -> None:
    reports = _run(tmp_path / "budget", 3.0, block_after=0.5)
    [blocked_at] = [blocked for _, _, _, blocked in reports if blocked is not None]
    # Margins for a grant taken just before the block but noted just after, and for a slow wake-up.
    quiet_from, quiet_to = blocked_at + 0.1, blocked_at + 0.9
    for worker, _, times, _ in reports:
        assert not [at for at in times if quiet_from <= at <= quiet_to], (
            f"process {worker} drew while blocked"
        )
        assert [at for at in times if at > blocked_at + 1.0], f"process {worker} never drew again"
    assert sum(1 for _, _, times, _ in reports for at in times if at < blocked_at) >= BURST


def test_an_unlimited_budget_never_waits_and_keeps_no_file(tmp_path: Path) -> None:
    budget = RequestBudget(tmp_path / "budget", 0, BURST)

    async def draw() -> float:
        started = time.monotonic()
        for _ in range(1000):
            await budget.acquire()
        budget.block_for(60)
        await budget.acquire()
        return time.monotonic() - started

    assert asyncio.run(draw()) < 1.0
    assert not (tmp_path / "budget").exists() and budget.waited_s == 0
