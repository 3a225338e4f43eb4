"""`notion-sync restore-files s3://bucket/prefix`: the current snapshot downloaded as the ordinary
tree equals the worker's local mirror of it, file for file; a page's subtree; a corrupt object."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.storage.s3 import mirror_path, parse_s3_url
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.s3.conftest import S3Server
from tests.test_restore_files import descendants, file_tree, manifest_entries

runner = CliRunner()


async def test_restore_of_the_current_s3_snapshot_equals_the_mirror(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    destination = f"s3://{bucket}/backups/team"
    async with emulator_and_worker(pages=25, seed=82) as (_emulator, settings):
        report = await export_and_wait(temporal_client, settings, destination)  # type: ignore[arg-type]
    assert report.status == "completed"
    snapshot = (mirror_path(parse_s3_url(destination), settings) / "current").resolve()

    done = runner.invoke(app, ["restore-files", destination, "--out", str(tmp_path / "whole")])
    assert done.exit_code == 0, done.output
    assert snapshot.name in done.output
    assert file_tree(tmp_path / "whole") == file_tree(snapshot)

    entries = manifest_entries(snapshot)
    page = next(e for e in entries if e["type"] == "page" and any(c["parent"] == e["id"] for c in entries))
    args = ["restore-files", destination, "--page", page["id"], "--out", str(tmp_path / "page")]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    subtree = descendants(entries, page["id"])
    restored = file_tree(tmp_path / "page")
    assert set(restored) == {f["path"] for e in entries if e["id"] in subtree for f in e["files"]}
    assert all(data == (snapshot / path).read_bytes() for path, data in restored.items())

    # An object whose bytes no longer match the manifest: exit 2, nothing left in --out.
    damaged = next(f["path"] for e in entries for f in e["files"] if f["path"].endswith(".md"))
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key=f"backups/team/snapshots/{snapshot.name}/{damaged}", Body=b"tampered")
    done = runner.invoke(app, ["restore-files", destination, "--out", str(tmp_path / "corrupt")])
    assert done.exit_code == 2 and "is damaged" in done.output, done.output
    assert not (tmp_path / "corrupt").exists()
