"""Exports to s3://bucket/prefix through real Temporal, the emulator over HTTP and a real S3 server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from notion_sync.control import start_export
from notion_sync.devserver import DevServer
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions, ExportReport, Phase
from notion_sync.settings import Settings
from notion_sync.storage.s3 import mirror_path, parse_s3_url
from tests.export.harness import EmulatorAndWorker, running_worker, wait_for, worker_process, worker_settings
from tests.s3.conftest import S3Server
from tests.s3.slow_uploads import slow_uploads
from workflows.export import ExportWorkflow

MULTIPART_MB = 0.05  # the 8 MiB file of the showcase page goes in two parts, other big files in one
OPTIONS = ExportOptions(batch_size=10, max_parallel_batches=4)


def _current(client: Any, bucket: str, prefix: str) -> dict[str, Any] | None:
    try:
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/current.json")["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    data: dict[str, Any] = json.loads(body)
    return data


def _objects(client: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = entry
    return found


def _uploads(client: Any, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        uploads.extend(page.get("Uploads", []))
    return uploads


def _manifest_files(client: Any, bucket: str, manifest_key: str) -> list[dict[str, Any]]:
    lines = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().splitlines()
    return [f for line in lines[1:] for f in json.loads(line)["files"]]


def _assert_complete(client: Any, bucket: str, pointer: dict[str, Any], check_sha: bool = True) -> int:
    """Every file of the snapshot's manifest is in the object store with its size (and sha256), and
    the snapshot's prefix holds only its own files; returns how many objects the prefix holds."""
    prefix = pointer["prefix"]
    root = prefix.rpartition("snapshots/")[0]
    objects = _objects(client, bucket, prefix)
    stored = _objects(client, bucket, root + "objects/")
    files = _manifest_files(client, bucket, pointer["manifest"])
    assert files
    for file in files:
        key = f"{root}objects/{file['sha256'][:2]}/{file['sha256']}"
        entry = stored.get(key)
        assert entry is not None, file["path"]
        assert entry["Size"] == file["size"], file["path"]
        if check_sha:
            head = client.head_object(Bucket=bucket, Key=key)
            assert head["Metadata"]["sha256"] == file["sha256"], file["path"]
    # Under the prefix: manifest, problems and report, and the snapshot's HTML site (rendered from
    # them, so not in the manifest); the pointer counts those and the manifest's files.
    site = [key for key in objects if key.startswith(prefix + "html/")]
    assert prefix + "html/index.html" in site
    assert len(objects) == 3 + len(site)
    assert len({f["path"] for f in files}) + 3 + len(site) == pointer["objects"]
    return len(objects)


async def _export(client: Client, settings: Settings, destination: str) -> ExportReport:
    handle = await start_export(client, settings, ExportInput(destination=destination, options=OPTIONS))
    return await handle.result()


def _watch_pointer(
    client: Any, bucket: str, prefix: str, stop: threading.Event, seen: list[str], errors: list[str]
) -> None:
    """A reader polling current.json during a sync: whatever it points at must be complete."""
    checked: set[str] = set()
    while True:
        # One last read after `stop`: the sync is over by then, and its pointer must be seen.
        last = stop.is_set()
        pointer = _current(client, bucket, prefix)
        if pointer is not None:
            if not seen or seen[-1] != pointer["snapshot"]:
                seen.append(pointer["snapshot"])
            if pointer["snapshot"] not in checked:
                try:
                    _assert_complete(client, bucket, pointer, check_sha=False)
                except AssertionError as error:
                    errors.append(f"{pointer['snapshot']}: {error!r}")
                checked.add(pointer["snapshot"])
        if last:
            return
        stop.wait(0.05)


async def test_export_then_sync_switch_current_json_atomically(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/backups/team"
    s3 = s3_server.client()
    multipart = {"s3_multipart_mb": MULTIPART_MB}
    async with emulator_and_worker(pages=40, seed=5, settings=multipart) as (emulator, settings):
        first = await _export(temporal_client, settings, destination)
        assert first.status == "completed" and first.counters.failed == 0
        assert first.snapshot is not None and first.snapshot.startswith(f"s3://{bucket}/backups/team/")
        pointer = _current(s3, bucket, "backups/team")
        assert pointer is not None
        count = _assert_complete(s3, bucket, pointer)
        assert pointer["manifest"] == pointer["prefix"] + "manifest.jsonl"

        # Multipart: files over the threshold went up in parts (ETag "<md5>-<parts>") and are whole.
        big = [o for o in _objects(s3, bucket, "backups/team/objects/").values() if o["Size"] >= 8 << 20]
        assert big, "the showcase page's 8 MiB file is in the export"
        assert all(str(o["ETag"]).strip('"').endswith("-2") for o in big)
        assert _uploads(s3, bucket) == []

        # The mirror keeps the snapshot S3 serves, for the next sync.
        mirror = mirror_path(parse_s3_url(destination), settings)
        assert (mirror / "current").resolve().name == pointer["snapshot"]

        objects = _manifest_objects(s3, bucket, pointer["manifest"])
        pages = [o["id"] for o in objects if o["type"] == "page" and o["status"] == "exported"]
        emulator.mutate({"op": "edit_page", "page_id": pages[3]})

        stop = threading.Event()
        seen: list[str] = []
        errors: list[str] = []
        reader = threading.Thread(
            target=_watch_pointer, args=(s3, bucket, "backups/team", stop, seen, errors)
        )
        reader.start()
        try:
            second = await _export(temporal_client, settings, destination)
        finally:
            stop.set()
            reader.join()
    assert second.status == "completed"
    assert errors == []
    new = _current(s3, bucket, "backups/team")
    assert new is not None and new["snapshot"] != pointer["snapshot"]
    assert seen == [pointer["snapshot"], new["snapshot"]]
    _assert_complete(s3, bucket, new)
    # The old snapshot was never touched.
    assert len(_objects(s3, bucket, pointer["prefix"])) == count
    assert _uploads(s3, bucket) == []
    assert sorted(p.name for p in (mirror / "snapshots").iterdir()) == [new["snapshot"]]


def _manifest_objects(client: Any, bucket: str, manifest_key: str) -> list[dict[str, Any]]:
    lines = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().splitlines()
    return [json.loads(line) for line in lines[1:]]


async def _wait_for_uploads(
    handle: WorkflowHandle[ExportWorkflow, ExportReport], s3: Any, bucket: str, prefix: str, at_least: int
) -> None:
    await wait_for(handle, lambda p: p.phase == Phase.PUBLISHING, timeout=60)
    stored = set(_objects(s3, bucket, f"{prefix}/objects/"))
    for _ in range(600):
        snapshots = _objects(s3, bucket, f"{prefix}/snapshots/")
        current = _current(s3, bucket, prefix)
        fresh = [k for k in snapshots if current is None or not k.startswith(current["prefix"])]
        fresh += [k for k in _objects(s3, bucket, f"{prefix}/objects/") if k not in stored]
        if len(fresh) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the upload did not start")


async def test_cancelled_sync_keeps_the_previous_export_and_leaves_no_upload(
    temporal_client: Client, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/nightly"
    s3 = s3_server.client()
    with EmulatorProcess(pages=30, seed=8) as emulator:
        settings = worker_settings(emulator, tmp_path / "state", s3_multipart_mb=MULTIPART_MB)
        async with running_worker(temporal_client, settings):
            await _export(temporal_client, settings, destination)
        before = _current(s3, bucket, "nightly")
        assert before is not None
        count = _assert_complete(s3, bucket, before, check_sha=False)

        # The store has every digest of a full refresh: to have a long upload to cancel, the sync runs
        # on a new machine (no mirror: it asks the store about each digest) that lost the 8 MiB object.
        for key, entry in _objects(s3, bucket, "nightly/objects/").items():
            if entry["Size"] >= 8 << 20:
                s3.delete_object(Bucket=bucket, Key=key)
        slow_uploads(monkeypatch.setattr)
        slow = settings.model_copy(update={"s3_concurrency": 2, "state_dir": tmp_path / "other-machine"})
        async with running_worker(temporal_client, slow):
            handle = await start_export(
                temporal_client,
                slow,
                ExportInput(
                    destination=destination, options=OPTIONS.model_copy(update={"full_refresh": True})
                ),
            )
            await wait_for(handle, lambda p: p.phase == Phase.PUBLISHING, timeout=60)
            for _ in range(600):
                if _uploads(s3, bucket):
                    break  # the 8 MiB file is being sent in parts
                await asyncio.sleep(0.05)
            assert _uploads(s3, bucket), "the 8 MiB file is being sent in parts"
            await handle.cancel()
            with pytest.raises(WorkflowFailureError):
                await handle.result()
    assert _current(s3, bucket, "nightly") == before
    assert _uploads(s3, bucket) == []
    # Only the previous snapshot is left under snapshots/, as it was.
    assert set(_objects(s3, bucket, "nightly/snapshots/")) == set(_objects(s3, bucket, before["prefix"]))
    assert len(_objects(s3, bucket, before["prefix"])) == count


async def test_worker_killed_during_upload_finishes_without_duplicates(
    temporal_client: Client,
    temporal_server: DevServer,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/killed"
    s3 = s3_server.client()
    with EmulatorProcess(pages=30, seed=9) as emulator:
        settings = worker_settings(emulator, tmp_path / "state")
        monkeypatch.setenv("NOTION_SYNC_S3_MULTIPART_MB", str(MULTIPART_MB))
        monkeypatch.setenv("NOTION_SYNC_S3_CONCURRENCY", "2")
        with worker_process(settings, temporal_server.address, module="tests.s3.slow_uploads") as first:
            handle = await start_export(
                temporal_client,
                settings,
                # The killed worker's upload moves to the next worker after 10 s without a heartbeat.
                ExportInput(
                    destination=destination,
                    options=OPTIONS.model_copy(update={"worker_lost_after_seconds": 10}),
                ),
            )
            await _wait_for_uploads(handle, s3, bucket, "killed", at_least=2)
            # Largest files go first: the 8 MiB one is being sent in parts when the worker dies.
            assert _uploads(s3, bucket)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        assert _current(s3, bucket, "killed") is None  # killed mid-upload: nothing published yet
        assert _uploads(s3, bucket), "the kill left a multipart upload in progress"
        with worker_process(settings, temporal_server.address):
            report = await handle.result()
    assert report.status == "completed" and report.counters.failed == 0
    pointer = _current(s3, bucket, "killed")
    assert pointer is not None
    _assert_complete(s3, bucket, pointer)
    # One snapshot, nothing beside it, no multipart upload left behind.
    assert set(_objects(s3, bucket, "killed/snapshots/")) == set(_objects(s3, bucket, pointer["prefix"]))
    assert _uploads(s3, bucket) == []


async def test_a_missing_bucket_fails_fast_and_says_so(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server
) -> None:
    async with emulator_and_worker(pages=5, seed=2) as (emulator, settings):
        handle = await start_export(
            temporal_client, settings, ExportInput(destination="s3://no-such-bucket/x", options=OPTIONS)
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), timeout=30)
        # Stopped before reading the workspace: only the question who the token is was asked.
        assert set(emulator.stats()["by_endpoint"]) <= {"GET /v1/users/me"}
    assert "S3Unusable" in str(failure.value.cause) and "no-such-bucket" in str(failure.value.cause)
