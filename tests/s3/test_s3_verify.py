"""`notion-sync verify s3://bucket/prefix`: an export to SeaweedFS verifies; a flipped byte, a deleted
object, an added one and (with --deep) a forged Markdown file fail, and an unreadable store exits 2."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions
from notion_sync.snapshot import MANIFEST, read_manifest
from tests.export.harness import EmulatorAndWorker
from tests.s3.conftest import S3Server
from tests.test_verify import forged_manifest

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.output


def forge(s3: Any, bucket: str, prefix: str, relpath: str, data: bytes) -> None:
    """Replaces an object, and its size and sha256 in the snapshot's manifest."""
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
    with read_manifest(io.BytesIO(s3.get_object(Bucket=bucket, Key=pointer["manifest"])["Body"].read())) as (
        _header,
        objects,
    ):
        listed = [file for entry in objects for file in entry.files]
    pages = [file.path for file in listed if file.path.endswith(".md") and not file.path.startswith("files/")]

    code, output = cli(destination, "--deep")
    assert code == 0, output
    assert f"OK: {len({file.path for file in listed})} files verified, " in output
    assert f"(s3 s3://{bucket}/{prefix})" in output
    code, output = cli(destination, "--snapshot", pointer["snapshot"])
    assert code == 0, output

    # A page's Markdown edited and its manifest line updated: only the re-render catches it.
    original = s3.get_object(Bucket=bucket, Key=prefix + pages[0])["Body"].read()
    forge(s3, bucket, prefix, pages[0], original + b"\nAdded after the export.\n")
    code, output = cli(destination)
    assert code == 0, output
    code, output = cli(destination, "--deep")
    assert code == 1 and f"rendering  {pages[0]}: differs from its re-rendering" in output, output
    forge(s3, bucket, prefix, pages[0], original)
    assert cli(destination, "--deep")[0] == 0

    flipped, deleted = pages[1], pages[2]
    data = bytearray(s3.get_object(Bucket=bucket, Key=prefix + flipped)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=prefix + flipped, Body=bytes(data))
    s3.delete_object(Bucket=bucket, Key=prefix + deleted)
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
