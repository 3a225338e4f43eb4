"""`notion-sync verify s3://bucket/prefix`: an export to SeaweedFS verifies; a flipped byte, a deleted
object, an added one and (with --deep) a forged Markdown file fail, and an unreadable store exits 2.

An export keeps its files in the object store (`objects/<sha[:2]>/<sha>`); snapshots are also built
by hand from a folder snapshot, in the store, at their paths (published before the store) or half and
half (being adopted): they verify, and a flipped byte, a missing object or an extra one fail.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions
from notion_sync.snapshot import MANIFEST, META_FILES, object_path, read_manifest
from tests.export.harness import EmulatorAndWorker
from tests.s3.conftest import S3Server
from tests.test_verify import forged_manifest, listed_paths, make_destination, sample_files

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.output


def listed_files(s3: Any, bucket: str, manifest_key: str) -> dict[str, str]:
    """path -> sha256 of every file a snapshot's manifest lists."""
    manifest = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    with read_manifest(io.BytesIO(manifest)) as (_header, objects):
        return {file.path: file.sha256 for entry in objects for file in entry.files}


def key_of(s3: Any, bucket: str, root: str, prefix: str, relpath: str, sha256: str) -> str:
    """Where a listed file is: at its path under the snapshot prefix, else in the object store."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + relpath, MaxKeys=1).get("Contents", [])
    if any(entry["Key"] == prefix + relpath for entry in listed):
        return prefix + relpath
    return f"{root}/{object_path(sha256)}"


def copy_to_paths(s3: Any, bucket: str, root: str, prefix: str, chosen: Callable[[str], bool]) -> list[str]:
    """Copies the chosen listed files from the object store to their paths under the snapshot prefix,
    where a snapshot published before the store holds them (one being adopted holds both); returns
    the keys written."""
    written = []
    for relpath, sha256 in sorted(listed_files(s3, bucket, prefix + MANIFEST).items()):
        if chosen(relpath):
            source = {"Bucket": bucket, "Key": f"{root}/{object_path(sha256)}"}
            s3.copy_object(Bucket=bucket, Key=prefix + relpath, CopySource=source)
            written.append(prefix + relpath)
    return written


def upload_snapshot(
    s3: Any, bucket: str, root: str, snapshot: Path, in_store: Callable[[str], bool] = lambda path: True
) -> str:
    """A folder snapshot uploaded by hand under `<root>/snapshots/<name>/`, each listed file into the
    object store or, where `in_store` says not, at its path; current.json points at it. Returns the
    snapshot prefix."""
    prefix = f"{root}/snapshots/{snapshot.name}/"
    for relpath in listed_paths(snapshot):
        data = (snapshot / relpath).read_bytes()
        store = f"{root}/{object_path(hashlib.sha256(data).hexdigest())}"
        s3.put_object(Bucket=bucket, Key=store if in_store(relpath) else prefix + relpath, Body=data)
    for name in META_FILES:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=(snapshot / name).read_bytes())
    s3.put_object(Bucket=bucket, Key=prefix + "html/index.html", Body=b"<html></html>")
    pointer = {"snapshot": snapshot.name, "prefix": prefix, "manifest": prefix + MANIFEST}
    s3.put_object(Bucket=bucket, Key=f"{root}/current.json", Body=json.dumps(pointer).encode())
    return prefix


def forge(s3: Any, bucket: str, prefix: str, relpath: str, data: bytes) -> None:
    """Replaces a file (put at its path, where a reader looks first), and its size and sha256 in the
    snapshot's manifest."""
    s3.put_object(Bucket=bucket, Key=prefix + relpath, Body=data)
    manifest = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read()
    forged = forged_manifest(io.BytesIO(manifest), relpath, data)
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST, Body=forged)


async def test_an_s3_export_verifies_and_each_damage_fails(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/backups/team"
    s3 = s3_server.client()
    async with emulator_and_worker(pages=20, seed=7) as (_, settings):
        options = ExportOptions(batch_size=10)
        handle = await start_export(
            temporal_client, settings, ExportInput(destination=destination, options=options)
        )
        assert (await handle.result()).status == "completed"
    pointer = json.loads(s3.get_object(Bucket=bucket, Key="backups/team/current.json")["Body"].read())
    prefix = pointer["prefix"]
    listed = listed_files(s3, bucket, pointer["manifest"])
    pages = sorted(path for path in listed if path.endswith(".md") and not path.startswith("files/"))

    code, output = cli(destination, "--deep")
    assert code == 0, output
    assert f"OK: {len(listed)} files verified, " in output
    assert f"(s3 s3://{bucket}/{prefix})" in output
    code, output = cli(destination, "--snapshot", pointer["snapshot"])
    assert code == 0, output

    # Every file is read from the object store; with half of them at their paths too (a snapshot
    # published before the store, being adopted), those are read there.
    assert f"files verified, {len(listed)} read from the object store (s3 " in output, output
    copies = copy_to_paths(s3, bucket, "backups/team", prefix, lambda path: len(path) % 2 == 0)
    assert 0 < len(copies) < len(listed)
    code, output = cli(destination, "--deep")
    assert code == 0, output
    assert f"files verified, {len(listed) - len(copies)} read from the object store, " in output, output
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in copies]})

    # A page's Markdown edited and its manifest line updated: only the re-render catches it.
    def where(relpath: str) -> str:
        return key_of(s3, bucket, "backups/team", prefix, relpath, listed[relpath])

    original = s3.get_object(Bucket=bucket, Key=where(pages[0]))["Body"].read()
    forge(s3, bucket, prefix, pages[0], original + b"\nAdded after the export.\n")
    code, output = cli(destination)
    assert code == 0, output
    code, output = cli(destination, "--deep")
    assert code == 1 and f"rendering  {pages[0]}: differs from its re-rendering" in output, output
    forge(s3, bucket, prefix, pages[0], original)
    assert cli(destination, "--deep")[0] == 0

    flipped, deleted = pages[1], pages[2]
    flipped_key = where(flipped)
    data = bytearray(s3.get_object(Bucket=bucket, Key=flipped_key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=flipped_key, Body=bytes(data))
    s3.delete_object(Bucket=bucket, Key=where(deleted))
    s3.put_object(Bucket=bucket, Key=prefix + "Stray/added.md", Body=b"not exported")
    code, output = cli(destination)
    assert code == 1
    assert "1 missing, 1 extra, 1 corrupted" in output, output
    for line in (
        f"missing    {deleted}",
        f"corrupted  {flipped}: sha256 differs from the manifest",
        "extra      Stray/added.md",
    ):
        assert line in output, output


def test_a_snapshot_in_the_object_store_verifies_and_each_damage_fails(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    files = sample_files(12)
    files.append(("Copies/same as the first.md", files[0][1]))  # two paths, one object in the store
    snapshot = make_destination(tmp_path / "local", files) / "snapshots" / "2026-01-01T00-00-00Z"
    prefix = upload_snapshot(s3, bucket, "team", snapshot)
    destination = f"s3://{bucket}/team"
    code, output = cli(destination)
    assert code == 0, output
    assert f"OK: {len(files)} files verified, {len(files)} read from the object store (s3 " in output
    # Nothing but the snapshot's own files (and its site) under its prefix.
    under_prefix = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert under_prefix == {prefix + name for name in (*META_FILES, "html/index.html")}

    def store_key(relpath: str) -> str:
        return f"team/{object_path(hashlib.sha256(dict(files)[relpath]).hexdigest())}"

    flipped, deleted = files[3][0], files[5][0]
    data = bytearray(s3.get_object(Bucket=bucket, Key=store_key(flipped))["Body"].read())
    data[7] ^= 0x80
    s3.put_object(Bucket=bucket, Key=store_key(flipped), Body=bytes(data))
    s3.delete_object(Bucket=bucket, Key=store_key(deleted))
    s3.put_object(Bucket=bucket, Key=prefix + "Stray/added.md", Body=b"not exported")
    code, output = cli(destination, "--snapshot", snapshot.name)
    assert code == 1, output
    assert "1 missing, 1 extra, 1 corrupted" in output, output
    verified = f"{len(files) - 2}/{len(files)} files verified, {len(files) - 1} read from the object store"
    assert verified in output, output
    for line in (
        f"missing    {deleted}",
        f"corrupted  {flipped}: sha256 differs from the manifest",
        "extra      Stray/added.md",
    ):
        assert line in output, output


def test_a_snapshot_half_in_the_store_verifies(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    files = sample_files(10)
    snapshot = make_destination(tmp_path / "local", files) / "snapshots" / "2026-01-01T00-00-00Z"
    at_paths = {path for path, _data in files[::2]}
    upload_snapshot(s3, bucket, "team", snapshot, lambda path: path not in at_paths)
    code, output = cli(f"s3://{bucket}/team")
    assert code == 0, output
    assert f"OK: 10 files verified, {10 - len(at_paths)} read from the object store" in output
    # A file at its path is read there: damage to it shows, though the store has no copy to mask it.
    first = files[0][0]
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{snapshot.name}/{first}", Body=b"x" * len(files[0][1]))
    code, output = cli(f"s3://{bucket}/team")
    assert code == 1 and f"corrupted  {first}: sha256 differs" in output, output
    # A manifest cut short: a clear failure, the files it still names checked.
    manifest = (snapshot / MANIFEST).read_bytes()
    s3.put_object(Bucket=bucket, Key=f"team/snapshots/{snapshot.name}/{MANIFEST}", Body=manifest[:-20])
    code, output = cli(f"s3://{bucket}/team", "--deep")
    assert code == 1 and f"error      {MANIFEST} is unreadable: " in output, output


def test_an_unreadable_store_or_no_export_exits_2(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    code, output = cli("s3://no-such-bucket/team")
    assert code == 2 and "the bucket no-such-bucket does not exist" in output, output
    code, output = cli(f"s3://{bucket}/nothing-here")
    assert code == 2 and "is not an export: no nothing-here/current.json there" in output, output
    code, output = cli(f"s3://{bucket}/nothing-here", "--snapshot", "2026-01-01T00-00-00Z-abc")
    assert code == 2 and "has no snapshot '2026-01-01T00-00-00Z-abc'" in output, output
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, output = cli(f"s3://{bucket}/team")
    assert code == 2 and "cannot be read: Unable to locate credentials" in output, output
