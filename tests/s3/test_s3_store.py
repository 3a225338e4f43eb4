"""The S3 object store: a sync uploads only the digests that changed, a retried publish nothing,
garbage collection deletes exactly the unreferenced objects (and an interrupted one harms no kept
snapshot), and a destination published before the store is adopted without Notion requests."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportReport, ManifestFile, RetentionPolicy
from notion_sync.settings import Settings
from notion_sync.snapshot import snapshot_file, write_whole_manifest
from notion_sync.storage.digests import DigestSet
from notion_sync.storage.s3 import (
    RUN_METADATA,
    S3Destination,
    SnapshotUnusable,
    mirror_path,
    parse_s3_url,
)
from notion_sync.storage.s3_store import damaged_snapshots
from tests.export.harness import EmulatorAndWorker, snapshot_files
from tests.s3.conftest import S3Server
from tests.s3.test_s3_destination import OPTIONS, _current, _objects

STORE_OPTIONS = OPTIONS
# The site's index and stylesheet belong to no object: the manifest does not list them, and they go
# up at their paths under the snapshot (every page's HTML is listed, and stored once).
SITE_FILES = ("html/index.html", "html/style.css")
SENDS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CopyObject"}


class SendCounter:
    """Every request that sends bytes (PUT, multipart part, server-side copy) made through an
    `S3Destination`'s client in this process (the worker runs here), with its key."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        made = S3Destination.client.fget  # type: ignore[attr-defined]
        counter = self

        def client(destination: S3Destination) -> Any:
            if destination._client is None:
                made(destination).meta.events.register("before-parameter-build.s3", counter._seen)
            return destination._client

        monkeypatch.setattr(S3Destination, "client", property(client))

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in SENDS:
            with self._lock:
                self.sent.append((model.name, str(params.get("Key", ""))))

    def take(self) -> list[tuple[str, str]]:
        with self._lock:
            sent, self.sent = self.sent, []
        return sent


async def _export(client: Client, settings: Settings, destination: str, **options: Any) -> ExportReport:
    request = ExportInput(destination=destination, options=STORE_OPTIONS.model_copy(update=options))
    report = await (await start_export(client, settings, request)).result()
    assert report.status == "completed", report
    return report


def _manifest(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    return [json.loads(line) for line in lines[1:]]


def _files(entries: list[dict[str, Any]]) -> dict[str, str]:
    """path -> sha256 of every file a manifest lists."""
    return {f["path"]: f["sha256"] for e in entries for f in e["files"]}


def _store(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The digests in a destination's object store, by listing it."""
    return {key.rpartition("/")[2] for key in _objects(s3, bucket, f"{prefix}/objects/")}


def _download_all(remote: S3Destination, snapshot: str, entries: list[dict[str, Any]], into: Path) -> None:
    """Every listed file of a snapshot, each checked against the manifest (SnapshotUnusable if not)."""
    listed = [(f["path"], ManifestFile(**f)) for e in entries for f in e["files"]]
    remote.download(snapshot, listed, into)


def _remote(destination: str, settings: Settings) -> S3Destination:
    return S3Destination(parse_s3_url(destination), settings)


async def test_a_sync_uploads_only_changed_digests_and_gc_deletes_only_unreferenced_objects(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_server.new_bucket()
    destination, fresh = f"s3://{bucket}/team", f"s3://{bucket}/fresh"
    s3 = s3_server.client()
    sends = SendCounter(monkeypatch)
    async with emulator_and_worker(pages=25, seed=31) as (emulator, settings):
        await _export(temporal_client, settings, destination)
        first = _current(s3, bucket, "team")
        assert first is not None and first["store"] == "objects"
        before = _manifest(s3, bucket, first["manifest"])
        pages = [e["id"] for e in before if e["type"] == "page" and e["status"] == "exported"]
        emulator.mutate({"op": "edit_page", "page_id": pages[3]})
        sends.take()
        await _export(temporal_client, settings, destination)
        sync_sends = sends.take()
        await _export(temporal_client, settings, fresh)  # the edited workspace, exported afresh
    second = _current(s3, bucket, "team")
    assert second is not None and second["snapshot"] != first["snapshot"]
    after = _manifest(s3, bucket, second["manifest"])
    old_files, new_files = _files(before), _files(after)

    # Only the digests the previous snapshot did not hold went up, each once; then manifest,
    # report, problems and current.json (and the publish lease).
    new_digests = set(new_files.values()) - set(old_files.values())
    changed = [p for p, sha in new_files.items() if old_files.get(p) != sha]
    assert new_digests and changed
    stored = [key for _op, key in sync_sends if key.startswith("team/objects/")]
    assert sorted(stored) == sorted(f"team/objects/{d[:2]}/{d}" for d in new_digests)
    assert len(sync_sends) <= 2 * len(changed) + 5, sync_sends

    # The snapshot prefix holds the snapshot's own files; every digest is in the store.
    assert set(_objects(s3, bucket, second["prefix"])) == {
        second["prefix"] + name for name in ("manifest.jsonl", "report.json", "problems.jsonl", *SITE_FILES)
    }
    assert any(path.startswith("html/") for path in changed)  # the edited page's HTML is listed
    assert set(new_files.values()) <= _store(s3, bucket, "team")

    # File for file what a fresh export of the edited workspace holds (signed URLs masked, as they
    # differ between two reads), downloaded from the store.
    pointer = _current(s3, bucket, "fresh")
    assert pointer is not None
    fresh_files = _files(_manifest(s3, bucket, pointer["manifest"]))
    assert set(new_files) == set(fresh_files)
    remote = _remote(destination, settings)
    _download_all(remote, second["snapshot"], after, tmp_path / "restored")
    fresh_mirror = (mirror_path(parse_s3_url(fresh), settings) / "current").resolve()
    exported = snapshot_files(fresh_mirror)
    meta = ("manifest.jsonl", "report.json", "problems.jsonl", *SITE_FILES)
    assert snapshot_files(tmp_path / "restored") == {p: d for p, d in exported.items() if p not in meta}

    # A publish repeated (a retry after the worker died past current.json) sends no object again.
    mirror = (mirror_path(parse_s3_url(destination), settings) / "current").resolve()
    assert mirror.name == second["snapshot"]
    sends.take()  # the fresh export's
    result = remote.publish(mirror, second["snapshot"], "retry")
    assert result.uploaded == 0
    # Only the publish lease, taken first and deleted after the switch, and current.json.
    assert [key for _op, key in sends.take()] == ["team/publishing.json", "team/current.json"]
    assert not _objects(s3, bucket, "team/publishing.json")

    # Retention drops the first snapshot; a collection with a grace period spares its young objects.
    plan = remote.prune(RetentionPolicy(keep_last=1), grace_seconds=3600)
    assert plan.removed == [first["snapshot"]]
    unreferenced = _store(s3, bucket, "team") - set(new_files.values())
    assert len(unreferenced) >= 2

    # A collection that dies after its first batch of deletions leaves the kept snapshot whole.
    client = remote.client
    real_delete = client.delete_objects
    batches: list[int] = []

    def failing_delete(**request: Any) -> Any:
        if batches:
            raise ConnectionError("the worker died")
        batches.append(len(request["Delete"]["Objects"]))
        return real_delete(**request)

    monkeypatch.setattr(client, "delete_objects", failing_delete)
    with pytest.raises(ConnectionError):
        remote.collect_garbage(grace_seconds=0, batch_size=1)
    monkeypatch.setattr(client, "delete_objects", real_delete)
    assert batches == [1]
    left = _store(s3, bucket, "team")
    assert len(left - set(new_files.values())) == len(unreferenced) - 1
    _download_all(remote, second["snapshot"], after, tmp_path / "after-interrupted-gc")

    # A young unreferenced object (a run uploading now) survives; then the collection finishes.
    young = hashlib.sha256(b"uploaded by a run still publishing").hexdigest()
    s3.put_object(Bucket=bucket, Key=f"team/objects/{young[:2]}/{young}", Body=b"x")
    report = remote.collect_garbage(grace_seconds=3600)
    assert report.young == len(unreferenced) - 1 + 1 and report.deleted == 0
    report = remote.collect_garbage(grace_seconds=0)
    assert report.deleted == len(unreferenced) and report.referenced == len(set(new_files.values()))
    assert _store(s3, bucket, "team") == set(new_files.values())
    assert set(fresh_files.values()) <= _store(s3, bucket, "fresh")  # another prefix: untouched


def _upload_old_layout(s3: Any, bucket: str, prefix: str, snapshots: list[Path]) -> None:
    """Publishes folder snapshots to S3 as publishes did before the store: every file at its path
    under `snapshots/<name>/`, tagged with its sha256 and the run, manifest last, then current.json.
    A packed folder snapshot's listed files are read from the folder's store."""
    for snapshot in snapshots:
        write_whole_manifest(snapshot)  # a packed one keeps a delta; the old layout had it whole
        base = f"{prefix}/snapshots/{snapshot.name}/"
        in_tree = {
            p.relative_to(snapshot).as_posix(): p
            for p in snapshot.rglob("*")
            if p.is_file() and p.name not in ("manifest.jsonl", "packed.json")
        }
        listed = {
            f["path"]: snapshot_file(snapshot, ManifestFile(**f))
            for e in _manifest_lines(snapshot)
            for f in e["files"]
        }
        files = sorted({**in_tree, **listed}.items())
        for relpath, path in [*files, ("manifest.jsonl", snapshot / "manifest.jsonl")]:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            metadata = {"sha256": sha, RUN_METADATA: "old-run"}
            s3.put_object(Bucket=bucket, Key=base + relpath, Body=path.read_bytes(), Metadata=metadata)
    pointer = {
        "snapshot": snapshots[-1].name,
        "prefix": f"{prefix}/snapshots/{snapshots[-1].name}/",
        "manifest": f"{prefix}/snapshots/{snapshots[-1].name}/manifest.jsonl",
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}/current.json", Body=json.dumps(pointer).encode())


async def test_an_old_layout_destination_is_adopted_then_synced_into_the_store(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/old"
    s3 = s3_server.client()
    folder = tmp_path / "folder"
    sends = SendCounter(monkeypatch)
    async with emulator_and_worker(pages=20, seed=44) as (emulator, settings):
        await _export(temporal_client, settings, str(folder))
        first = (folder / "current").resolve()
        pages = [e["id"] for e in _manifest_lines(first) if e["type"] == "page" and e["status"] == "exported"]
        emulator.mutate({"op": "edit_page", "page_id": pages[2]})
        await _export(temporal_client, settings, str(folder))
        second = (folder / "current").resolve()
        assert second != first
        _upload_old_layout(s3, bucket, "old", [first, second])

        # Adoption: server-side copies only, no request to Notion.
        emulator.reset()
        remote = _remote(destination, settings)
        sends.take()
        copied = remote.adopt()
        assert emulator.stats()["requests_total"] == 0
        digests = {sha for snap in (first, second) for sha in _files(_manifest_lines(snap)).values()}
        assert copied == len(digests)
        assert {op for op, _key in sends.take()} == {"CopyObject", "PutObject"}  # the copies, store.json
        assert _store(s3, bucket, "old") == digests
        assert "old/store.json" in _objects(s3, bucket, "old/store.json")
        for snap in (first, second):
            # Only the snapshot's own files (and the unlisted site index) stay at their paths; every
            # file reads back as listed.
            assert {k.rpartition("/")[2] for k in _objects(s3, bucket, f"old/snapshots/{snap.name}/")} == {
                "manifest.jsonl",
                "report.json",
                "problems.jsonl",
                "index.html",
                "style.css",
            }
            into = tmp_path / "adopted" / snap.name
            _download_all(remote, snap.name, _manifest_lines(snap), into)
            for file in (ManifestFile(**f) for e in _manifest_lines(snap) for f in e["files"]):
                assert (into / file.path).read_bytes() == snapshot_file(snap, file).read_bytes()
        assert remote.adopt() == 0  # repeatable: nothing left to copy

        # A sync on top (a new machine: the mirror is seeded from S3) sends only the new digests,
        # and its retention collects what the dropped snapshots alone referenced.
        emulator.mutate({"op": "edit_page", "page_id": pages[5]})
        await _export(temporal_client, settings, destination, keep_snapshots=1)
    pointer = _current(s3, bucket, "old")
    assert pointer is not None and pointer["snapshot"] not in (first.name, second.name)
    synced = _files(_manifest(s3, bucket, pointer["manifest"]))
    new_digests = set(synced.values()) - set(_files(_manifest_lines(second)).values())
    stored = sorted(key for _op, key in sends.take() if key.startswith("old/objects/"))
    assert new_digests and stored == sorted(f"old/objects/{d[:2]}/{d}" for d in new_digests)
    assert _store(s3, bucket, "old") == set(synced.values())


def _manifest_lines(snapshot: Path) -> list[dict[str, Any]]:
    lines = (snapshot / "manifest.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines[1:]]


def test_a_damaged_old_file_stays_at_its_path_and_blocks_the_store_marker(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    good, bad = b"# A page\n", b"# Another page\n"
    entries = [
        {"path": "A.md", "sha256": hashlib.sha256(good).hexdigest(), "size": len(good)},
        {"path": "B.md", "sha256": hashlib.sha256(bad).hexdigest(), "size": len(bad)},
    ]
    header = {"format": "notion-sync-manifest", "version": 1, "objects": 1}
    entry = {
        "id": "0" * 32,
        "type": "page",
        "title": "A",
        "last_edited_time": None,
        "path": "A.md",
        "status": "exported",
        "files": entries,
    }
    manifest = (json.dumps(header) + "\n" + json.dumps(entry) + "\n").encode()
    base = "team/snapshots/2026-01-01T00-00-00Z-00000001/"
    s3.put_object(Bucket=bucket, Key=base + "A.md", Body=good, Metadata={"sha256": entries[0]["sha256"]})
    # Its sha256 metadata says the bytes are not what the manifest lists.
    s3.put_object(Bucket=bucket, Key=base + "B.md", Body=bad, Metadata={"sha256": "f" * 64})
    s3.put_object(Bucket=bucket, Key=base + "manifest.jsonl", Body=manifest)
    remote = S3Destination(parse_s3_url(f"s3://{bucket}/team"), Settings())

    assert remote.adopt() == 1
    assert _store(s3, bucket, "team") == {entries[0]["sha256"]}
    assert set(_objects(s3, bucket, base)) == {base + "A.md", base + "B.md", base + "manifest.jsonl"}
    # Marked all the same, naming the damaged snapshot: a publish does not adopt it again.
    assert damaged_snapshots(remote) == [base.split("/")[2]]
    # GC on it deletes nothing a snapshot needs, and the damaged file is still read at its path.
    report = remote.collect_garbage(grace_seconds=0)
    assert report.deleted == 0 and report.referenced == 1
    with pytest.raises(SnapshotUnusable):
        remote.download(base.split("/")[2], [("B.md", ManifestFile(**entries[1]))], tmp_path)

    # Repaired, it is adopted; the per-path copies go, and the store is marked.
    s3.put_object(Bucket=bucket, Key=base + "B.md", Body=bad, Metadata={"sha256": entries[1]["sha256"]})
    assert remote.adopt() == 1
    assert set(_objects(s3, bucket, base)) == {base + "manifest.jsonl"}
    assert damaged_snapshots(remote) == []


def test_digest_sets_hold_digests_in_a_file(tmp_path: Path) -> None:
    digests = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(1000)]
    with DigestSet(tmp_path / "journal.sqlite") as journal:
        journal.add_many(digests[:500])
        journal.add(digests[500])
        journal.add(digests[0])
    with DigestSet(tmp_path / "journal.sqlite") as journal:  # durable: reopened, all there
        assert journal.count() == 501
        assert digests[500] in journal and digests[501] not in journal and "not a digest" not in journal
        assert list(journal) == sorted(digests[:501])
        with pytest.raises(ValueError):
            journal.add("abc")
        journal.remove()
    assert list(tmp_path.iterdir()) == []
    with DigestSet() as temporary:
        temporary.add(digests[0])
        path = temporary.path
        assert digests[0] in temporary
    assert not path.exists()
