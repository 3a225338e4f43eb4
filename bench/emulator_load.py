"""Load benchmark of the Notion API emulator.

1. Throughput: the emulator runs as one subprocess; a separate load process (aiohttp client,
   keep-alive, N concurrent requests, fixed duration) hammers `GET /v1/blocks/{id}/children`
   over a pool of pages and reports requests/s.
2. Memory: an emulator with 100,000 pages is started, a sample of pages and blocks is read,
   and its RSS is reported (psutil).

Usage: .venv/bin/python bench/emulator_load.py [--duration 10] [--concurrency 48] [--pages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import subprocess
import tempfile
import time
from typing import Any

import aiohttp
import httpx
import psutil

from notion_sync.emulator.process import EmulatorProcess

TARGET_RPS = 1_500
TARGET_RSS_MB = 300


def tree_page_ids(emulator: EmulatorProcess, limit: int) -> list[str]:
    """Ids of pages that are not data source rows (their block trees are the varied content)."""
    ids: list[str] = []
    body: dict[str, Any] = {"filter": {"property": "object", "value": "page"}, "page_size": 100}
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=60) as http:
        while len(ids) < limit:
            page = http.post("/v1/search", json=body).json()
            ids += [p["id"] for p in page["results"] if p["parent"]["type"] != "data_source_id"]
            if not page["has_more"]:
                break
            body["start_cursor"] = page["next_cursor"]
    return ids[:limit]


async def drive(
    base_url: str, headers: dict[str, str], paths: list[str], seconds: float, workers: int
) -> tuple[int, float]:
    """Keep `workers` requests in flight for `seconds`; return (200 responses, elapsed seconds)."""
    start = time.monotonic()
    deadline = start + seconds
    done = 0

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < deadline:
            async with session.get(paths[i % len(paths)]) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
            done += 1
            i += workers

    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as session:
        await asyncio.gather(*(worker(session, k) for k in range(workers)))
    return done, time.monotonic() - start


def load_process(
    base_url: str, headers: dict[str, str], paths: list[str], seconds: float, workers: int
) -> tuple[int, float]:
    return asyncio.run(drive(base_url, headers, paths, seconds, workers))


WRK_SCRIPT = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {%s})
end
"""


def wrk(base_url: str, headers: dict[str, str], paths: list[str], seconds: float, workers: int) -> str:
    """Debian's wrk (C, 2 threads) as the load process, rotating over the same paths."""
    lua_paths = ", ".join(f'"{p}"' for p in paths)
    lua_headers = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % (lua_paths, lua_headers))
        script.flush()
        cmd = ["wrk", "-t2", f"-c{workers}", f"-d{seconds:.0f}s", "-s", script.name, base_url]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return next(line.strip() for line in out.splitlines() if "Requests/sec" in line)


def throughput(pages: int, pool: int, seconds: float, workers: int) -> None:
    with EmulatorProcess(pages=pages, track_ids=False) as emulator:
        ids = tree_page_ids(emulator, pool)
        paths = [f"/v1/blocks/{i}/children" for i in ids]
        emulator.reset()
        cpu_before = psutil.Process(emulator.pid).cpu_times()
        with multiprocessing.get_context("spawn").Pool(1) as workers_pool:
            ok, elapsed = workers_pool.apply(
                load_process, (emulator.base_url, emulator.headers, paths, seconds, workers)
            )
        cpu = psutil.Process(emulator.pid).cpu_times()
        stats = emulator.stats()
    if stats["requests_total"] != ok:
        raise SystemExit(f"counters disagree: client saw {ok}, server counted {stats['requests_total']}")
    busy = (cpu.user + cpu.system - cpu_before.user - cpu_before.system) / elapsed
    print(
        f"throughput: GET /v1/blocks/{{id}}/children over {len(paths)} pages, {workers} concurrent, "
        f"{elapsed:.1f} s"
    )
    print(
        f"  {ok} responses, {ok / elapsed:,.0f} req/s (target >= {TARGET_RPS:,}), "
        f"{stats['bytes_sent'] / ok / 1024:.1f} KiB/response, emulator CPU {busy:.0%} of one core"
    )
    print(f"  server counted {stats['requests_total']} requests, statuses {stats['by_status']}")
    if shutil.which("wrk"):
        with EmulatorProcess(pages=pages, track_ids=False) as emulator:
            result = wrk(emulator.base_url, emulator.headers, paths, seconds, workers)
        print(f"  wrk -t2 -c{workers} over the same paths (a fresh emulator): {result}")


def memory(pages: int) -> None:
    start = time.monotonic()
    with EmulatorProcess(pages=pages, track_ids=False) as emulator:
        started = time.monotonic() - start
        process = psutil.Process(emulator.pid)
        idle = process.memory_info().rss
        ids = tree_page_ids(emulator, 1_000)
        with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=60) as http:
            for page_id in ids:
                http.get(f"/v1/pages/{page_id}")
                http.get(f"/v1/blocks/{page_id}/children")
        rss = process.memory_info().rss
        summary = emulator.workspace_summary()
    print(
        f"memory: {summary['pages']:,} pages ({summary['rows']:,} rows, {summary['data_sources']} data "
        f"sources), started in {started:.1f} s"
    )
    print(
        f"  RSS idle {idle / 2**20:.0f} MB; after reading {len(ids)} pages and their children "
        f"{rss / 2**20:.0f} MB (target <= {TARGET_RSS_MB} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--pages", type=int, default=1_000, help="workspace size for the throughput run")
    parser.add_argument("--pool", type=int, default=200, help="distinct pages to cycle over (LRU: 256)")
    parser.add_argument("--memory-pages", type=int, default=100_000)
    args = parser.parse_args()
    throughput(args.pages, args.pool, args.duration, args.concurrency)
    memory(args.memory_pages)


if __name__ == "__main__":
    main()
