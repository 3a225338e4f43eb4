"""A month of daily syncs into one destination: what the snapshot store keeps and what it uploads.

Exports N generated pages to a folder and to S3 (SeaweedFS), then for each of D simulated days
edits a share of the pages through the emulator's mutation API and syncs both destinations. Every
snapshot is kept (no retention), as a month of daily backups would be. After each day it records:

- the bytes the destination holds: the folder's distinct files (hard links counted once) and its
  disk use (`du`, folders and manifests included); the S3 prefix's object bytes;
- the S3 requests the sync made, counted by a client hook (PUT-class: PutObject, UploadPart,
  CreateMultipartUpload, CopyObject), against the files the sync changed (manifest entries whose
  path and digest were not in the previous snapshot);
- the wall time of each sync (the two destinations sync side by side, as two schedules would).

    .venv/bin/python bench/store_bench.py --pages 10000 --days 30 --edit-percent 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notion_sync.control import start_export
from notion_sync.devserver import free_port, start_dev_server
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from notion_sync.settings import Settings
from notion_sync.snapshot import MANIFEST, MANIFEST_DELTA, read_manifest
from notion_sync.workers import build_worker
from tests.s3.seaweedfs import running_seaweedfs

PUT_CLASS = ("PutObject", "UploadPart", "CreateMultipartUpload", "CopyObject")
S3_PREFIX = "backup"


@contextmanager
def counted_s3_requests() -> Iterator[Counter[str]]:
    """Counts every S3 operation of every boto3 client made while it is active (the worker's too:
    it runs in this process)."""
    counts: Counter[str] = Counter()
    original = boto3.session.Session.client

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if (args[0] if args else kwargs.get("service_name")) == "s3":
            made.meta.events.register("before-call.s3", lambda model, **_: counts.update([model.name]))
        return made

    boto3.session.Session.client = client
    try:
        yield counts
    finally:
        boto3.session.Session.client = original


def folder_bytes(root: Path) -> tuple[int, int]:
    """(bytes of the distinct files under `root`, disk blocks in use, folders included)."""
    seen: set[tuple[int, int]] = set()
    logical = blocks = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            stat = os.lstat(os.path.join(dirpath, name))
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            blocks += stat.st_blocks * 512
            if name in filenames:
                logical += stat.st_size
    return logical, blocks


def bucket_bytes(bucket: str) -> tuple[int, int, int]:
    """(object bytes, objects, bytes of the snapshots' manifests, whole or deltas) under the
    destination's prefix."""
    size = count = manifests = 0
    paginator = boto3.session.Session().client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=S3_PREFIX + "/"):
        for item in page.get("Contents", []):
            size += int(item["Size"])
            count += 1
            if str(item["Key"]).endswith((MANIFEST, MANIFEST_DELTA)):
                manifests += int(item["Size"])
    return size, count, manifests


def snapshot_entries(snapshot: Path) -> set[tuple[str, str]]:
    with read_manifest(snapshot) as (_header, entries):
        return {(f.path, f.sha256) for e in entries for f in e.files}


def snapshot_size(snapshot: Path) -> int:
    with read_manifest(snapshot) as (_header, entries):
        listed = {f.path: f.size for e in entries for f in e.files}
    return sum(listed.values())


async def timed_export(client: Client, settings: Settings, destination: str) -> float:
    started = time.monotonic()
    handle = await start_export(
        client, settings, ExportInput(destination=destination, options=ExportOptions())
    )
    await handle.result()
    return time.monotonic() - started


async def run(args: argparse.Namespace, work: Path) -> None:
    server = start_dev_server(work / "temporal", port=free_port(), ui_port=None, persist=False)
    (work / "seaweedfs").mkdir()
    try:
        with (
            running_seaweedfs(work / "seaweedfs") as s3,
            EmulatorProcess(pages=args.pages, seed=7, latency_ms=0, track_ids=False) as emulator,
            counted_s3_requests() as requests,
        ):
            bucket = s3.new_bucket()
            client = await Client.connect(server.address, data_converter=pydantic_data_converter)
            base = Settings().model_dump()
            base.update(
                notion_token=SecretStr(emulator.token),
                notion_base_url=emulator.base_url,
                state_dir=work / "state",
                task_queue=f"bench-{uuid.uuid4().hex[:8]}",
                requests_per_second=0.0,
            )
            settings = Settings.model_construct(**base)
            folder = work / "folder"
            remote = f"s3://{bucket}/{S3_PREFIX}"
            with ThreadPoolExecutor(max_workers=16) as executor:
                async with build_worker(client, settings, executor):
                    await measure(args, client, settings, emulator, folder, remote, bucket, requests)
    finally:
        server.stop()


async def measure(
    args: argparse.Namespace,
    client: Client,
    settings: Settings,
    emulator: EmulatorProcess,
    folder: Path,
    remote: str,
    bucket: str,
    requests: Counter[str],
) -> None:
    print(
        f"store benchmark: {args.pages} generated pages, {args.edit_percent}% edited a day, "
        f"{args.days} days, every snapshot kept, emulator without latency or rate limit"
    )
    print(
        "day  folder: sync s  distinct MB  disk MB |  s3: sync s  PUTs  changed files  objects  stored MB"
        "  manifests MB  stored/full"
    )
    previous: set[tuple[str, str]] = set()
    full_bytes = 0
    for day in range(args.days + 1):
        if day > 0:
            pages = sorted(previous_pages(folder))
            edits = max(1, round(len(pages) * args.edit_percent / 100))
            for page_id in random.Random(day).sample(pages, edits):
                emulator.mutate({"op": "edit_page", "page_id": page_id})
        requests.clear()
        # Side by side, as two destinations' schedules would run: the folder export makes no S3 request.
        folder_s, s3_s = await asyncio.gather(
            timed_export(client, settings, str(folder)), timed_export(client, settings, remote)
        )
        puts = sum(requests[name] for name in PUT_CLASS)
        current = (folder / "current").resolve()
        entries = snapshot_entries(current)
        changed = len(entries - previous)
        previous = entries
        if day == 0:
            full_bytes = snapshot_size(current)
        distinct, disk = folder_bytes(folder)
        stored, objects, manifests = bucket_bytes(bucket)
        print(
            f"{day:>3}  {folder_s:>13.1f}  {distinct / 2**20:>11.1f}  {disk / 2**20:>7.1f} | "
            f"{s3_s:>10.1f}  {puts:>4}  {changed:>13}  {objects:>7}  {stored / 2**20:>9.1f}"
            f"  {manifests / 2**20:>12.1f}  {stored / full_bytes:>11.3f}",
            flush=True,
        )
    distinct, disk = folder_bytes(folder)
    stored, _objects, _manifests = bucket_bytes(bucket)
    print(f"one full snapshot: {full_bytes / 2**20:.1f} MB of files")
    print(
        f"after {args.days} days: folder {distinct / full_bytes:.2f}x in distinct bytes, "
        f"{disk / full_bytes:.2f}x in disk use; S3 {stored / full_bytes:.2f}x"
    )


def previous_pages(folder: Path) -> Iterator[str]:
    with read_manifest(folder / "current") as (_header, entries):
        for entry in entries:
            if entry.type == "page" and entry.status == "exported":
                yield entry.id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--edit-percent", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-bench-") as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
