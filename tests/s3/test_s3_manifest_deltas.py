"""Manifest deltas in S3: once a newer snapshot is current, the one before keeps its manifest as a
delta; every reader still gets the whole manifest, retention makes a dependent whole again first,
and garbage collection keeps what a delta inherits from its base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from notion_sync.models import RetentionPolicy
from notion_sync.restore_files import restore_files
from notion_sync.retention import RetentionPlan
from notion_sync.snapshot import MANIFEST, MANIFEST_DELTA
from notion_sync.storage import s3 as s3_destination
from notion_sync.storage.s3_manifests import fetch_manifest
from notion_sync.storage.s3_store import CollectionRefused
from notion_sync.verify import verify
from tests.export.harness import EmulatorAndWorker
from tests.s3.conftest import S3Server
from tests.s3.test_s3_destination import _current
from tests.s3.test_s3_store import _export, _remote


def _keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {str(o["Key"])[len(prefix) :] for o in listed}


async def test_older_s3_snapshots_keep_a_delta_every_reader_rebuilds(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/team"
    s3 = s3_server.client()
    names: list[str] = []
    wholes: dict[str, bytes] = {}
    async with emulator_and_worker(pages=25, seed=33) as (emulator, settings):
        for day in range(3):
            if day:
                entries = [json.loads(line) for line in wholes[names[-1]].splitlines()[1:]]
                pages = [e["id"] for e in entries if e["type"] == "page"]
                emulator.mutate({"op": "edit_page", "page_id": pages[day * 3]})
            await _export(temporal_client, settings, destination)
            pointer = _current(s3, bucket, "team")
            assert pointer is not None
            names.append(pointer["snapshot"])
            wholes[pointer["snapshot"]] = s3.get_object(Bucket=bucket, Key=pointer["manifest"])["Body"].read()

    prefixes = {name: f"team/snapshots/{name}/" for name in names}
    for name in names[:2]:  # the older ones: a delta, no whole manifest
        keys = _keys(s3, bucket, prefixes[name])
        assert MANIFEST_DELTA in keys and MANIFEST not in keys
        delta = s3.get_object(Bucket=bucket, Key=prefixes[name] + MANIFEST_DELTA)["Body"].read()
        assert len(delta) < len(wholes[name]) / 4
    assert MANIFEST in _keys(s3, bucket, prefixes[names[2]])

    # Readers rebuild the whole manifest, byte for byte; verify and restore-files read through it,
    # also after a garbage collection (which reads each delta as stored, its base the rest).
    remote = _remote(destination, settings)
    for name in names:
        assert (
            fetch_manifest(remote, name, tmp_path / name) and (tmp_path / name).read_bytes() == wholes[name]
        )
    # A delta's base without a manifest (a prune removing it while this GC reads): nothing deleted.
    middle = prefixes[names[1]] + MANIFEST_DELTA
    kept = s3.get_object(Bucket=bucket, Key=middle)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=middle)
    with pytest.raises(CollectionRefused, match="based on"):
        remote.collect_garbage(grace_seconds=0)
    s3.put_object(Bucket=bucket, Key=middle, Body=kept)
    remote.collect_garbage(grace_seconds=0)
    for name in names:
        result = verify(destination, snapshot=name)
        assert result.ok, result.summary()
    restored = restore_files(destination, tmp_path / "restored", settings, snapshot=names[0])
    assert restored.snapshot == names[0]
    assert (tmp_path / "restored" / MANIFEST).read_bytes() == wholes[names[0]]

    # Retention drops the middle snapshot, the base of the oldest's delta: the oldest gets its whole
    # manifest back first. GC then keeps everything the two kept snapshots reference.
    monkeypatch.setattr(s3_destination, "plan_retention", lambda *_args: RetentionPlan({}, [names[1]]))
    remote.prune(RetentionPolicy(keep_last=1), grace_seconds=0)
    assert not _keys(s3, bucket, prefixes[names[1]])
    assert _keys(s3, bucket, prefixes[names[0]]) >= {MANIFEST} and MANIFEST_DELTA not in _keys(
        s3, bucket, prefixes[names[0]]
    )
    assert s3.get_object(Bucket=bucket, Key=prefixes[names[0]] + MANIFEST)["Body"].read() == wholes[names[0]]
    for name in (names[0], names[2]):
        result = verify(destination, snapshot=name)
        assert result.ok, result.summary()
