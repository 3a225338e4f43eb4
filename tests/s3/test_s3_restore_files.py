"""`notion-sync restore-files s3://bucket/prefix`: the current snapshot downloaded as the ordinary
tree equals the worker's local mirror of it, file for file; a page's subtree; a corrupt object. A
snapshot whose files are in the object store (`objects/<sha[:2]>/<sha>`, uploaded by hand) restores
whole and by subtree; a store object missing or flipped stops the restore and leaves nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.models import ManifestFile, ManifestHeader, ManifestObject
from notion_sync.snapshot import MANIFEST, PROBLEMS, REPORT, object_path
from notion_sync.storage.s3 import mirror_path, parse_s3_url
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.s3.conftest import S3Server
from tests.s3.test_s3_verify import key_of, upload_snapshot
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
    damaged = next(f for e in entries for f in e["files"] if f["path"].endswith(".md"))
    s3 = s3_server.client()
    prefix = f"backups/team/snapshots/{snapshot.name}/"
    key = key_of(s3, bucket, "backups/team", prefix, damaged["path"], damaged["sha256"])
    s3.put_object(Bucket=bucket, Key=key, Body=b"tampered")
    done = runner.invoke(app, ["restore-files", destination, "--out", str(tmp_path / "corrupt")])
    assert done.exit_code == 2 and "is damaged" in done.output, done.output
    assert not (tmp_path / "corrupt").exists()


# id -> (title, parent): a root page, its child and grandchild, and an unrelated page.
TREE = {"r1": ("Root", None), "c2": ("Child", "r1"), "g3": ("Grandchild", "c2"), "u4": ("Other", None)}
LOGO = b"\x89PNG shared by two pages" * 40


def _store_snapshot(root: Path) -> Path:
    """A snapshot folder: each page's JSON and Markdown, and one download both top pages list."""
    folder = root / "2026-01-01T00-00-00Z-aaaaaaaa"
    objects = []
    for page_id, (title, parent) in sorted(TREE.items()):
        contents = {
            f"json/pages/{page_id}.json": f'{{"id": "{page_id}"}}'.encode(),
            f"{title}.md": f"# {title}\n\nBody of {page_id}.\n".encode(),
        }
        if parent is None:
            contents["files/shared/logo.png"] = LOGO
        listed = []
        for relpath, data in contents.items():
            (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
            (folder / relpath).write_bytes(data)
            listed.append(ManifestFile(path=relpath, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
        objects.append(
            ManifestObject(
                id=page_id,
                type="page",
                title=title,
                last_edited_time=None,
                parent=parent,
                path=f"{title}.md",
                status="exported",
                files=listed,
            )
        )
    lines = [ManifestHeader(objects=len(objects)).model_dump_json(), *(o.model_dump_json() for o in objects)]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    (folder / REPORT).write_text("{}")
    (folder / PROBLEMS).write_text("")
    return folder


def test_restore_of_a_snapshot_in_the_object_store(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    snapshot = _store_snapshot(tmp_path / "local")
    upload_snapshot(s3, bucket, "team", snapshot)
    destination = f"s3://{bucket}/team"
    prefix = f"team/snapshots/{snapshot.name}/"
    under_prefix = {
        o["Key"][len(prefix) :] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    }
    assert under_prefix == {MANIFEST, REPORT, PROBLEMS, "html/index.html"}

    done = runner.invoke(app, ["restore-files", destination, "--out", str(tmp_path / "whole")])
    assert done.exit_code == 0, done.output
    # Every file's bytes, the snapshot's own files, and its site (uploaded by `upload_snapshot`).
    assert file_tree(tmp_path / "whole") == {**file_tree(snapshot), "html/index.html": b"<html></html>"}

    args = ["restore-files", destination, "--page", "c2", "--out", str(tmp_path / "page")]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert file_tree(tmp_path / "page") == {
        path: data
        for path, data in file_tree(snapshot).items()
        if path in ("Child.md", "Grandchild.md", "json/pages/c2.json", "json/pages/g3.json")
    }
    done = runner.invoke(
        app, ["restore-files", destination, "--page", "Root.md", "--out", str(tmp_path / "root")]
    )
    assert done.exit_code == 0, done.output
    assert set(file_tree(tmp_path / "root")) == {
        "Root.md",
        "Child.md",
        "Grandchild.md",
        "files/shared/logo.png",
        *(f"json/pages/{page}.json" for page in ("r1", "c2", "g3")),
    }

    # A store object with one byte flipped, then one missing: exit 2, nothing left in --out.
    def store_key(relpath: str) -> str:
        return f"team/{object_path(hashlib.sha256((snapshot / relpath).read_bytes()).hexdigest())}"

    logo = bytearray(LOGO)
    logo[100] ^= 0x01
    s3.put_object(Bucket=bucket, Key=store_key("files/shared/logo.png"), Body=bytes(logo))
    (tmp_path / "flipped").mkdir()
    done = runner.invoke(app, ["restore-files", destination, "--out", str(tmp_path / "flipped")])
    assert done.exit_code == 2 and "is damaged" in done.output, done.output
    assert list((tmp_path / "flipped").iterdir()) == []
    s3.delete_object(Bucket=bucket, Key=store_key("Grandchild.md"))
    done = runner.invoke(app, ["restore-files", destination, "--page", "c2", "--out", str(tmp_path / "gone")])
    assert done.exit_code == 2 and "is damaged" in done.output and "missing" in done.output, done.output
    assert not (tmp_path / "gone").exists()
