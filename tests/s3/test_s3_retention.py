"""Retention: `prune s3://...` (the N newest, or by age) and `--keep N` after each publish, on folders
and in S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.models import Counters, ExportInput, ExportOptions, ExportReport, RetentionPolicy
from notion_sync.settings import Settings
from tests.export.harness import EmulatorAndWorker
from tests.s3.conftest import S3Server
from tests.s3.test_s3_destination import OPTIONS, _assert_complete, _current, _objects, _uploads

DAYS = [f"2026-01-0{day}T00-00-00Z-0000000{day}" for day in range(1, 6)]
EMPTY_MANIFEST = b'{"format": "notion-sync-manifest", "version": 1, "objects": 0}\n'


def _snapshots(s3: Any, bucket: str, prefix: str) -> list[str]:
    names = {key[len(prefix) :].split("/", 1)[0] for key in _objects(s3, bucket, prefix)}
    return sorted(names)


def _start_multipart(s3: Any, bucket: str, key: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)


def _prune(dest: str, *flags: str) -> str:
    result = CliRunner().invoke(app, ["prune", dest, *flags])
    assert result.exit_code == 0, result.output
    return result.output


def test_prune_in_s3_keeps_the_newest_and_the_current_one(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    for name in DAYS:
        for path in ("manifest.jsonl", "report.json", "Page.md", "files/abc/image.png"):
            # A manifest that lists nothing: garbage collection refuses to run past an unreadable one.
            body = EMPTY_MANIFEST if path == "manifest.jsonl" else path.encode()
            s3.put_object(Bucket=bucket, Key=f"team/snapshots/{name}/{path}", Body=body)
    # More objects than one listing page (and one batch delete) holds.
    for n in range(1005):
        s3.put_object(Bucket=bucket, Key=f"team/snapshots/{DAYS[0]}/json/pages/{n}.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="team/current.json", Body=f'{{"snapshot": "{DAYS[1]}"}}'.encode())
    s3.put_object(Bucket=bucket, Key=f"team-other/snapshots/{DAYS[0]}/Page.md", Body=b"not ours")
    _start_multipart(s3, bucket, f"team/snapshots/{DAYS[2]}/files/big.bin")  # a removed snapshot's
    _start_multipart(s3, bucket, f"team/snapshots/{DAYS[4]}/files/big.bin")  # maybe an export's, running

    output = _prune(f"s3://{bucket}/team", "--keep", "2")

    # The two newest stay, and the one current.json names although it is older.
    assert _snapshots(s3, bucket, "team/snapshots/") == [DAYS[1], DAYS[3], DAYS[4]]
    assert f"s3://{bucket}/team/snapshots/{DAYS[0]}/" in output and DAYS[2] in output
    assert len(_objects(s3, bucket, f"team/snapshots/{DAYS[1]}/")) == 4
    assert set(_objects(s3, bucket, "team-other/")) == {f"team-other/snapshots/{DAYS[0]}/Page.md"}
    assert "team/current.json" in _objects(s3, bucket, "team/current.json")
    assert [u["Key"] for u in _uploads(s3, bucket)] == [f"team/snapshots/{DAYS[4]}/files/big.bin"]
    # Again: nothing more to do.
    assert "removed" not in _prune(f"s3://{bucket}/team", "--keep", "2")
    assert _snapshots(s3, bucket, "team/snapshots/") == [DAYS[1], DAYS[3], DAYS[4]]


def test_prune_by_age_in_s3_keeps_the_newest_of_each_week_and_month(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    # Mondays and Fridays of January 2026, and 30 December 2025 (ISO week 2026-W01 with 2 January).
    days = [(2025, 12, 30), (2026, 1, 2), (2026, 1, 5), (2026, 1, 9), (2026, 1, 12), (2026, 1, 16)]
    names = [f"{y}-{m:02d}-{d:02d}T08-00-00Z-{n:08d}" for n, (y, m, d) in enumerate(days)]
    report = ExportReport(
        status="completed", destination="s3", counters=Counters(), started_at=None, finished_at=None
    )
    for name in names:
        for path, body in (("report.json", report.model_dump_json().encode()), ("Page.md", b"# Page")):
            s3.put_object(Bucket=bucket, Key=f"age/snapshots/{name}/{path}", Body=body)
    s3.put_object(Bucket=bucket, Key="age/current.json", Body=f'{{"snapshot": "{names[-1]}"}}'.encode())

    output = _prune(f"s3://{bucket}/age", "--keep-weekly", "2", "--keep-monthly", "2")

    # Weeks: 12-16 and 5-9 January; months: January (the 16th) and December (the 30th).
    assert _snapshots(s3, bucket, "age/snapshots/") == [names[0], names[3], names[5]]
    removed = [line.removeprefix("removed ") for line in output.splitlines() if line.startswith("removed")]
    assert removed == [f"s3://{bucket}/age/snapshots/{name}/" for name in (names[1], names[2], names[4])]
    assert f"kept (--keep-weekly 2): {names[5]}, {names[3]}" in output
    assert f"kept (--keep-monthly 2): {names[5]}, {names[0]}" in output


def test_prune_of_a_missing_bucket_says_so(s3_server: S3Server) -> None:
    result = CliRunner().invoke(app, ["prune", "s3://no-such-bucket/x", "--keep", "1"])
    assert result.exit_code == 1 and "no-such-bucket" in result.output


async def _export(
    client: Client, settings: Settings, destination: str, options: ExportOptions
) -> ExportReport:
    handle = await start_export(client, settings, ExportInput(destination=destination, options=options))
    report = await handle.result()
    assert report.status == "completed"
    return report


async def test_keep_applies_after_each_publish_to_a_folder_and_to_s3(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    folder = tmp_path / "backup"
    async with emulator_and_worker(pages=8, seed=3) as (_, settings):
        published = []
        # The folder as inputs from before retention policies say it, S3 as they say it now.
        keep_two = OPTIONS.model_copy(update={"keep_snapshots": 2})
        last_two = OPTIONS.model_copy(update={"retention": RetentionPolicy(keep_last=2)})
        for _ in range(3):
            await _export(temporal_client, settings, str(folder), keep_two)
            report = await _export(temporal_client, settings, f"s3://{bucket}/kept", last_two)
            assert report.snapshot is not None
            published.append(report.snapshot.rstrip("/").rsplit("/", 1)[-1])

    local = sorted(p.name for p in (folder / "snapshots").iterdir())
    assert len(local) == 2 and (folder / "current").resolve().name == local[-1]
    assert _snapshots(s3, bucket, "kept/snapshots/") == published[1:]
    pointer = _current(s3, bucket, "kept")
    assert pointer is not None and pointer["snapshot"] == published[-1]
    _assert_complete(s3, bucket, pointer)
    assert _uploads(s3, bucket) == []
