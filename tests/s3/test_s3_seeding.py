"""A new machine (an empty state folder) syncs an S3 destination from the snapshot S3 serves."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportReport
from notion_sync.settings import Settings
from notion_sync.storage.destination import SEED, open_destination, remote_destination, seed_mirror
from notion_sync.storage.digests import DigestSet
from notion_sync.storage.s3 import SnapshotUnusable, mirror_path, parse_s3_url
from notion_sync.storage.s3_store import reupload_path
from tests.export.harness import running_worker, snapshot_files, worker_settings
from tests.s3.conftest import S3Server
from tests.s3.test_s3_destination import OPTIONS, _assert_complete, _current, _objects, _uploads


async def _sync(client: Client, settings: Settings, destination: str | Path) -> ExportReport:
    """An export, or a sync when the destination (or, for S3, the mirror) holds one."""
    request = ExportInput(destination=str(destination), options=OPTIONS)
    return await (await start_export(client, settings, request)).result()


def _download(s3: Any, bucket: str, prefix: str, into: Path) -> Path:
    """A snapshot in S3 as a folder, to compare it with local ones: every object under its prefix,
    and each file its manifest lists from the object store."""
    for key in _objects(s3, bucket, prefix):
        target = into / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    root = prefix.rpartition("snapshots/")[0]
    for line in (into / "manifest.jsonl").read_bytes().splitlines()[1:]:
        for file in json.loads(line)["files"]:
            (into / file["path"]).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(
                bucket, f"{root}objects/{file['sha256'][:2]}/{file['sha256']}", str(into / file["path"])
            )
    return into


def _page_fetches(emulator: EmulatorProcess, pages: set[str]) -> set[str]:
    """The pages whose blocks were read since the last reset."""
    return {i for i in emulator.stats()["fetches_by_id"]["block_children"] if i in pages}


def _exported_pages(s3: Any, bucket: str, pointer: dict[str, Any]) -> list[str]:
    lines = s3.get_object(Bucket=bucket, Key=pointer["manifest"])["Body"].read().splitlines()[1:]
    entries = [json.loads(line) for line in lines]
    return sorted(e["id"] for e in entries if e["type"] == "page" and e["status"] == "exported")


def _manifest_entries(s3: Any, bucket: str, pointer: dict[str, Any]) -> list[dict[str, Any]]:
    lines = s3.get_object(Bucket=bucket, Key=pointer["manifest"])["Body"].read().splitlines()[1:]
    return [json.loads(line) for line in lines]


def _store_object(s3: Any, bucket: str, sha: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=f"rot/objects/{sha[:2]}/{sha}")["Body"].read()
    return body


def _mirror(settings: Settings, destination: str) -> Path:
    return mirror_path(parse_s3_url(destination), settings)


async def test_a_new_machine_downloads_the_current_snapshot_and_syncs_incrementally(
    temporal_client: Client, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/team"
    s3 = s3_server.client()
    with EmulatorProcess(pages=20, seed=12) as emulator:
        machine_a = worker_settings(emulator, tmp_path / "state-a")
        machine_b = worker_settings(emulator, tmp_path / "state-b")
        local = tmp_path / "local"  # the same workspace synced on machine A, for comparison
        async with running_worker(temporal_client, machine_a):
            await _sync(temporal_client, machine_a, destination)
            await _sync(temporal_client, machine_a, local)
        first = _current(s3, bucket, "team")
        assert first is not None
        pages = _exported_pages(s3, bucket, first)
        edited = pages[4]
        emulator.mutate({"op": "edit_page", "page_id": edited})

        emulator.reset()
        async with running_worker(temporal_client, machine_a):
            on_a = await _sync(temporal_client, machine_a, local)
        stats_a = emulator.stats()
        fetched_a = _page_fetches(emulator, set(pages))

        emulator.reset()
        async with running_worker(temporal_client, machine_b):
            on_b = await _sync(temporal_client, machine_b, destination)
        stats_b = emulator.stats()
        fetched_b = _page_fetches(emulator, set(pages))

        emulator.reset()
        fresh = tmp_path / "fresh"
        async with running_worker(temporal_client, machine_a):
            await _sync(temporal_client, machine_a, fresh)
        full = emulator.stats()

    print(
        f"requests: sync on A {stats_a['requests_total']}, sync on a new machine B "
        f"{stats_b['requests_total']}, fresh export {full['requests_total']}; "
        f"B by endpoint {stats_b['by_endpoint']}"
    )
    assert on_b.status == "completed" and on_b.counters.failed == 0
    # Only the listing and the edited page were read: the same requests as a sync on machine A.
    assert fetched_b == fetched_a == {edited}
    assert on_b.counters.reused == on_a.counters.reused == len(pages) - 1
    assert stats_b["by_endpoint"] == stats_a["by_endpoint"]
    assert stats_b["requests_total"] < full["requests_total"] / 2

    published = _current(s3, bucket, "team")
    assert published is not None and published["snapshot"] != first["snapshot"]
    _assert_complete(s3, bucket, published)
    assert _uploads(s3, bucket) == []
    # File for file what machine A's sync and a fresh export of the edited workspace hold.
    from_s3 = snapshot_files(_download(s3, bucket, published["prefix"], tmp_path / "from-s3"))
    assert from_s3 == snapshot_files((local / "current").resolve())
    assert from_s3 == snapshot_files((fresh / "current").resolve())
    # B's mirror holds the new snapshot only, and no download in progress.
    mirror = _mirror(machine_b, destination)
    assert sorted(p.name for p in (mirror / "snapshots").iterdir()) == [published["snapshot"]]
    assert (mirror / "current").resolve().name == published["snapshot"]
    assert not list((mirror / ".notion-sync" / "staging").glob(f"{SEED}*"))


async def test_a_corrupt_object_in_s3_makes_the_sync_a_full_export(
    temporal_client: Client,
    s3_server: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/rot"
    s3 = s3_server.client()
    with EmulatorProcess(pages=20, seed=14) as emulator:
        machine_a = worker_settings(emulator, tmp_path / "state-a")
        async with running_worker(temporal_client, machine_a):
            await _sync(temporal_client, machine_a, destination)
        first = _current(s3, bucket, "rot")
        assert first is not None
        pages = _exported_pages(s3, bucket, first)
        # Bit rot that keeps the object's metadata (its sha256 included), in a page's JSON that an
        # export writes again byte for byte (no signed file URL in it).
        listed = {f["path"]: f["sha256"] for e in _manifest_entries(s3, bucket, first) for f in e["files"]}
        stable = (
            (sha, body)
            for sha, body in (
                (
                    listed[f"json/pages/{page}.json"],
                    _store_object(s3, bucket, listed[f"json/pages/{page}.json"]),
                )
                for page in pages
            )
            if b"expiry_time" not in body
        )
        sha, body = next(stable)
        key = f"rot/objects/{sha[:2]}/{sha}"
        head = s3.head_object(Bucket=bucket, Key=key)
        s3.put_object(Bucket=bucket, Key=key, Body=body.replace(b'"', b"'", 1), Metadata=head["Metadata"])

        # Seeding by itself: it refuses, and leaves the mirror without a snapshot or a half download.
        machine_c = worker_settings(emulator, tmp_path / "state-c")
        mirror_c = open_destination(destination, machine_c)
        remote = remote_destination(destination, machine_c)
        assert remote is not None
        with pytest.raises(SnapshotUnusable, match="does not match its checksum"):
            seed_mirror(mirror_c, remote)
        assert mirror_c.current() is None
        # Read twice and still rotten, it stays (other snapshots may list it) and the mirror records
        # its digest: the next publish from this machine uploads it whatever the store holds.
        assert _objects(s3, bucket, key)
        with DigestSet(reupload_path(mirror_c)) as reupload:
            assert list(reupload) == [sha]
        assert not (mirror_c.root / "snapshots").exists()
        assert not list((mirror_c.internal / "staging").glob(f"{SEED}*"))

        machine_b = worker_settings(emulator, tmp_path / "state-b")
        emulator.reset()
        with caplog.at_level(logging.WARNING):
            async with running_worker(temporal_client, machine_b):
                report = await _sync(temporal_client, machine_b, destination)
        fetched = _page_fetches(emulator, set(pages))
    assert report.status == "completed" and report.counters.failed == 0
    assert report.counters.reused == 0 and fetched == set(pages)  # a full export
    assert any(
        "cannot be reused" in r.getMessage() and "full export" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    published = _current(s3, bucket, "rot")
    assert published is not None and published["snapshot"] != first["snapshot"]
    _assert_complete(s3, bucket, published)
    mirror = _mirror(machine_b, destination)
    assert sorted(p.name for p in (mirror / "snapshots").iterdir()) == [published["snapshot"]]
    assert not list((mirror / ".notion-sync" / "staging").glob(f"{SEED}*"))
    # The full export's publish put the good bytes back over the rotten object, and the set is empty.
    assert sha in {f["sha256"] for e in _manifest_entries(s3, bucket, published) for f in e["files"]}
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == sha
    with DigestSet(reupload_path(open_destination(destination, machine_b))) as reupload:
        assert reupload.count() == 0
    assert not _objects(s3, bucket, "rot/publishing.json")
    verified = CliRunner().invoke(app, ["verify", destination])
    assert verified.exit_code == 0, verified.output
