"""S3 garbage collection never deletes what a snapshot or a publishing run may need: a snapshot
whose manifest cannot be read stops it before any deletion, a run's publish lease stops it (before
listing and between batches), and adoption copies a file without checksum metadata only once its
bytes are hashed."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.models import ManifestFile, RetentionPolicy
from notion_sync.settings import Settings
from notion_sync.storage import digests, s3_store
from notion_sync.storage.digests import DigestSet, path_digest
from notion_sync.storage.s3 import S3Destination, parse_s3_url
from notion_sync.storage.s3_store import CollectionRefused, StoreBusy, damaged_snapshots
from tests.s3.conftest import S3Server
from tests.s3.test_s3_destination import _objects

OLD, NEW = "2026-01-01T00-00-00Z-00000001", "2026-01-02T00-00-00Z-00000002"
HEADER = {"format": "notion-sync-manifest", "version": 1, "objects": 1}


def _entry(files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "0" * 32,
        "type": "page",
        "title": "A",
        "last_edited_time": None,
        "path": "A.md",
        "status": "exported",
        "files": files,
    }


def _manifest(*files: bytes) -> bytes:
    listed = [
        {"path": f"{n}.md", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
        for n, body in enumerate(files)
    ]
    return (json.dumps(HEADER) + "\n" + json.dumps(_entry(listed)) + "\n").encode()


def _put_object(s3: Any, bucket: str, body: bytes) -> str:
    sha = hashlib.sha256(body).hexdigest()
    key = f"team/objects/{sha[:2]}/{sha}"
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha})
    return key


def _store_destination(s3: Any, bucket: str) -> tuple[S3Destination, dict[str, str]]:
    """Two snapshots in the store layout (OLD lists `old`, NEW, current, lists `kept`) and an
    unreferenced object."""
    keys = {name: _put_object(s3, bucket, name.encode() * 10) for name in ("old", "kept", "garbage")}
    for name, body in ((OLD, b"old" * 10), (NEW, b"kept" * 10)):
        s3.put_object(Bucket=bucket, Key=f"team/snapshots/{name}/manifest.jsonl", Body=_manifest(body))
        s3.put_object(Bucket=bucket, Key=f"team/snapshots/{name}/report.json", Body=b"{}")
    pointer = {"snapshot": NEW, "store": "objects", "manifest": f"team/snapshots/{NEW}/manifest.jsonl"}
    s3.put_object(Bucket=bucket, Key="team/current.json", Body=json.dumps(pointer).encode())
    s3.put_object(Bucket=bucket, Key="team/store.json", Body=b'{"store": "objects", "damaged": []}')
    return S3Destination(parse_s3_url(f"s3://{bucket}/team"), Settings()), keys


def _gc(dest: str) -> Any:
    return CliRunner().invoke(app, ["gc", dest])


@pytest.mark.parametrize(
    "manifest",
    [
        b'{"format": "notion-sync-manifest", "version": 1, "objects": 1}\n{"id": \n',
        _manifest(b"x").replace(hashlib.sha256(b"x").hexdigest().encode(), b"not-a-digest"),
    ],
    ids=["truncated", "malformed-digest"],
)
def test_an_unreadable_manifest_stops_gc_before_it_deletes_anything(
    s3_server: S3Server, manifest: bytes
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    remote, keys = _store_destination(s3, bucket)
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{OLD}/manifest.jsonl", Body=manifest)

    with pytest.raises(CollectionRefused, match=f"snapshot {OLD}"):
        remote.collect_garbage(grace_seconds=0)
    assert all(_objects(s3, bucket, key) for key in keys.values())  # nothing deleted
    result = _gc(f"s3://{bucket}/team")
    assert result.exit_code == 1 and not isinstance(result.exception, Exception), result.output
    assert f"snapshot {OLD}" in result.output and "Traceback" not in result.output
    assert all(_objects(s3, bucket, key) for key in keys.values())

    # A snapshot prefix without a manifest (a run publishing, a dead run's leftovers) is skipped:
    # only the grace period protects what it uploaded.
    s3.delete_object(Bucket=bucket, Key=f"team/snapshots/{OLD}/manifest.jsonl")
    report = remote.collect_garbage(grace_seconds=0)
    assert report.deleted == 2 and report.referenced == 1
    assert not _objects(s3, bucket, keys["old"]) and not _objects(s3, bucket, keys["garbage"])
    assert _objects(s3, bucket, keys["kept"])


def test_a_publish_lease_stops_a_hand_run_gc_and_prune(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    remote, keys = _store_destination(s3, bucket)
    s3_store.take_lease(remote, "run-a")

    # By hand (grace > 0): refused before listing, nothing deleted, a clear error on the command line.
    with pytest.raises(StoreBusy, match="run-a"):
        remote.collect_garbage(grace_seconds=0.0001)
    with pytest.raises(StoreBusy):
        remote.prune(RetentionPolicy(keep_last=1))
    assert set(_objects(s3, bucket, "team/snapshots/")) >= {f"team/snapshots/{OLD}/manifest.jsonl"}
    result = _gc(f"s3://{bucket}/team")
    assert result.exit_code == 1 and "a run is publishing" in result.output, result.output
    assert all(_objects(s3, bucket, key) for key in keys.values())
    # A dry run only counts.
    assert remote.collect_garbage(dry_run=True, grace_seconds=0).deleted == 1

    # Another run's compensation leaves the lease; the run's own collection ignores it.
    assert remote.discard("run-b") == []
    assert _objects(s3, bucket, "team/publishing.json")
    assert remote.collect_garbage(grace_seconds=0, run_id="run-a").deleted == 1
    remote.discard("run-a")
    assert not _objects(s3, bucket, "team/publishing.json")

    # A lease taken while a collection deletes stops it before its next batch.
    for n in range(3):
        _put_object(s3, bucket, f"garbage {n}".encode())
    client = remote.client
    real_delete = client.delete_objects
    batches: list[int] = []

    def delete_then_publish(**request: Any) -> Any:
        batches.append(len(request["Delete"]["Objects"]))
        answer = real_delete(**request)
        s3_store.take_lease(remote, "run-c")
        return answer

    monkeypatch.setattr(client, "delete_objects", delete_then_publish)
    with pytest.raises(StoreBusy, match="run-c"):
        remote.collect_garbage(grace_seconds=0, batch_size=1)
    assert batches == [1]

    # A lease older than a day is a dead run's: ignored.
    monkeypatch.setattr(s3_store, "LEASE_SECONDS", 0)
    assert remote.collect_garbage(grace_seconds=0).deleted == 2


def test_an_object_found_by_head_is_reused_only_while_young(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    remote, keys = _store_destination(s3, bucket)
    sha = keys["garbage"].rpartition("/")[2]
    file = ManifestFile(path="a.md", sha256=sha, size=len(b"garbage" * 10))
    assert s3_store.fresh_in_store(remote, file, 3600)
    # Old enough for a collection to delete it before the run's manifest lists it: upload again.
    assert not s3_store.fresh_in_store(remote, file, 0)
    assert not s3_store.fresh_in_store(remote, file.model_copy(update={"size": 1}), 3600)


def test_adoption_hashes_a_file_without_checksum_metadata(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    good, listed_bad = b"# A page\n", b"# B page\n"
    base = f"team/snapshots/{OLD}/"
    s3.put_object(Bucket=bucket, Key=base + "manifest.jsonl", Body=_manifest(good, listed_bad))
    s3.put_object(Bucket=bucket, Key=base + "0.md", Body=good)
    s3.put_object(Bucket=bucket, Key=base + "1.md", Body=b"# B rot!\n")  # same size, other bytes
    remote = S3Destination(parse_s3_url(f"s3://{bucket}/team"), Settings())

    assert remote.adopt() == 1
    stored = {key.rpartition("/")[2] for key in _objects(s3, bucket, "team/objects/")}
    assert stored == {hashlib.sha256(good).hexdigest()}
    assert {base + "0.md", base + "1.md"} <= set(_objects(s3, bucket, base))
    assert damaged_snapshots(remote) == [OLD]
    # Marked: garbage collection does not adopt again.
    assert remote.collect_garbage(grace_seconds=0).adopted == 0


def test_unlisted_files_are_found_without_listing_the_whole_snapshot(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    for relpath in ("html/index.html", "html/style.css", "json/pages/a.json", "A.md", "report.json"):
        (snapshot / relpath).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / relpath).write_text(relpath)
    (snapshot / "html/.x.tmp").write_text("a download in progress")
    totals = [0, 0]
    with DigestSet() as listed:
        for relpath in ("json/pages/a.json", "A.md"):
            listed.add(path_digest(relpath))
        unlisted = s3_store.unlisted_files(snapshot, listed, totals)
        found = sorted(path.relative_to(snapshot).as_posix() for path in unlisted)
    assert found == ["html/index.html", "html/style.css", "report.json"]
    assert totals[0] == 3


def test_the_runs_own_collection_after_publish_only_logs_its_failure(
    s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    remote, keys = _store_destination(s3, bucket)
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{NEW}/manifest.jsonl", Body=b"not a manifest\n")

    # By hand: the snapshot is pruned, then the collection refuses (a clear error, no traceback).
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{OLD}/report.json", Body=b"{}")
    result = CliRunner().invoke(app, ["prune", f"s3://{bucket}/team", "--keep", "1"])
    assert result.exit_code == 1 and f"snapshot {NEW}" in result.output, result.output
    assert not isinstance(result.exception, Exception)
    assert all(_objects(s3, bucket, key) for key in keys.values())

    # In the run that just published: the snapshot is current, so the failure is only logged.
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{OLD}/manifest.jsonl", Body=_manifest(b"old" * 10))
    with caplog.at_level("WARNING"):
        plan = remote.prune(RetentionPolicy(keep_last=1), grace_seconds=0, run_id="run-a")
    assert plan.removed == [OLD]
    assert any("garbage collection after publishing failed" in r.getMessage() for r in caplog.records)
    assert all(_objects(s3, bucket, key) for key in keys.values())


def test_a_digest_set_remembers_when_it_was_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DigestSet(tmp_path / "journal.sqlite") as journal:
        assert journal.age_seconds() < 60
    later = time.time() + 3 * 3600
    monkeypatch.setattr(digests, "time", SimpleNamespace(time=lambda: later))
    with DigestSet(tmp_path / "journal.sqlite") as journal:  # reopened: as old as its first digest
        assert journal.age_seconds() > 3 * 3600 - 60


def test_a_publish_reuses_an_object_it_did_not_upload_only_while_young(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    remote = S3Destination(parse_s3_url(f"s3://{bucket}/team"), Settings())
    body = b"# A page\n"
    snapshot = tmp_path / "mirror" / "snapshots" / NEW
    snapshot.mkdir(parents=True)
    (snapshot / "0.md").write_bytes(body)
    (snapshot / "manifest.jsonl").write_bytes(_manifest(body))
    sha = hashlib.sha256(body).hexdigest()
    journal = tmp_path / "mirror" / ".notion-sync" / "state" / "run-a.uploads.sqlite"

    assert remote.publish(snapshot, NEW, "run-a").uploaded == 2  # the object, the manifest
    assert not _objects(s3, bucket, "team/publishing.json")  # the lease is gone with the publish
    # A retry whose journal holds the digest (nothing published yet), or a HEAD that finds it (a
    # current snapshot whose manifest the mirror lacks): reused.
    other = json.dumps({"snapshot": OLD, "store": "objects"}).encode()
    for grace, uploaded in ((None, 0), (0, 1)):
        if grace is not None:  # older than a collection spares: uploaded again, which refreshes it
            monkeypatch.setattr("notion_sync.storage.s3.GC_GRACE_SECONDS", grace)
        s3.delete_object(Bucket=bucket, Key="team/current.json")
        with DigestSet(journal) as finished:
            finished.add(sha)
        assert remote.publish(snapshot, NEW, "run-a").uploaded == uploaded
        s3.put_object(Bucket=bucket, Key="team/current.json", Body=other)
        assert remote.publish(snapshot, NEW, "run-b").uploaded == uploaded
