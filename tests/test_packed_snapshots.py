"""A packed folder snapshot (its tree removed, its files read from the destination's object store)
reads as the tree it was: verify (and --deep), restore-files (whole and one page's subtree), archives
(the same bytes), render --out and diff against the current snapshot give what they gave before it
was packed; verify names a flipped or missing store object and a file dropped into the packed folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.archive import write_archive
from notion_sync.cli import app
from notion_sync.render import render_snapshot
from notion_sync.snapshot import MANIFEST, PACKED, is_packed, read_manifest
from notion_sync.storage.objects import ObjectStore
from notion_sync.verify import verify
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.test_restore_files import descendants, file_tree, manifest_entries
from tests.test_verify import make_destination, sample_files

runner = CliRunner()


def _pack(destination: Path, snapshot: Path) -> None:
    assert ObjectStore(destination).pack_snapshot(snapshot)
    assert is_packed(snapshot)
    with read_manifest(snapshot) as (_header, entries):
        assert not any((snapshot / f.path).exists() for e in entries for f in e.files), "tree left"


def _archives(snapshot: Path, out: Path) -> dict[str, bytes]:
    """Every archive part and checksum file of the snapshot, zip and tar.gz, split in parts."""
    write_archive(snapshot, out / "zip", "zip")
    write_archive(snapshot, out / "tar", "tar.gz", split_bytes=20_000)
    return file_tree(out)


def _restored(destination: Path, out: Path, *args: str) -> dict[str, bytes]:
    done = runner.invoke(app, ["restore-files", str(destination), *args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    return file_tree(out)


def _cli_json(*args: str | Path) -> Any:
    done = runner.invoke(app, [str(a) for a in args])
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def _store_object(destination: Path, snapshot: Path, suffix: str) -> Path:
    """The store object of the first file the snapshot lists whose path ends with `suffix`."""
    with read_manifest(snapshot) as (_header, entries):
        sha256 = next(f.sha256 for e in entries for f in e.files if f.path.endswith(suffix))
    return ObjectStore(destination).object(sha256)


def test_verify_and_archive_of_a_packed_snapshot(tmp_path: Path) -> None:
    destination = make_destination(tmp_path / "backup", sample_files(30))
    snapshot = (destination / "current").resolve()
    ObjectStore(destination).intern_snapshot(snapshot)
    before = _archives(snapshot, tmp_path / "tree-archives")
    (snapshot / "html").mkdir()
    (snapshot / "html" / "index.html").write_text("<html></html>")  # unlisted: it stays

    _pack(destination, snapshot)
    assert (snapshot / "html" / "index.html").is_file()
    report = verify(snapshot)
    assert report.ok, report.summary()
    assert report.verified == report.files == report.from_store == 30
    assert "30 read from the object store" in report.summary()
    assert _archives(snapshot, tmp_path / "packed-archives") == before

    # A flipped byte in a store object (read-only: made writable first), then the object deleted.
    stored = _store_object(destination, snapshot, "page 3.md")
    data = stored.read_bytes()
    os.chmod(stored, 0o644)
    stored.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    report = verify(snapshot)
    assert [(c.path, c.reason) for c in report.corrupted] == [
        ("Space 3/Ünïcode page 3.md", "sha256 differs from the manifest")
    ]
    assert not report.missing and not report.extra and not report.ok
    stored.unlink()
    report = verify(snapshot)
    assert report.missing == ["Space 3/Ünïcode page 3.md"] and not report.corrupted

    # A file dropped into the packed folder is extra; its own files and the site are not.
    stored.write_bytes(data)
    (snapshot / "Space 1").mkdir()
    (snapshot / "Space 1" / "stray.md").write_bytes(b"not listed")
    report = verify(snapshot)
    assert report.extra == ["Space 1/stray.md"] and not report.missing and not report.corrupted


async def test_a_packed_snapshot_reads_as_the_tree_it_was(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    # Two browsable snapshots: the older is packed by hand, between the readings compared.
    async with emulator_and_worker(pages=40, seed=83, settings={"browsable_snapshots": 2}) as (
        emulator,
        settings,
    ):
        await export_and_wait(temporal_client, settings, destination)
        older = (destination / "current").resolve()
        entries = manifest_entries(older)
        pages = {e["id"]: e for e in entries if e["type"] == "page" and e["status"] == "exported"}
        parents = {e["parent"] for e in entries}
        leaves = sorted(i for i, e in pages.items() if i not in parents and e["parent"] in pages)
        emulator.mutate({"op": "edit_page", "page_id": leaves[0]})
        emulator.mutate({"op": "rename_page", "page_id": leaves[1], "title": "Renamed while packed"})
        emulator.mutate({"op": "create_page", "parent_id": leaves[2], "title": "Brand new"})
        await export_and_wait(temporal_client, settings, destination, full_listing_days=0)
    assert (destination / "current").resolve() != older and not is_packed(older)

    # The page with the largest subtree short of the whole workspace: restored alone.
    page = max(
        (e for e in entries if e["type"] == "page" and e["parent"] is None),
        key=lambda e: len(descendants(entries, e["id"])),
    )
    assert len(descendants(entries, page["id"])) > 2

    def readings(label: str) -> dict[str, Any]:
        deep = verify(older, deep=True)
        assert deep.ok, deep.summary()
        out = tmp_path / label
        render_snapshot(older, ("md", "csv"), out / "rendered")
        return {
            "verified": (deep.files, deep.verified, deep.rerendered),
            "restored": _restored(destination, out / "whole", "--snapshot", older.name),
            "subtree": _restored(destination, out / "page", "--snapshot", older.name, "--page", page["id"]),
            "archives": _archives(older, out / "archives"),
            "rendered": file_tree(out / "rendered"),
            "diff": _cli_json("diff", destination, older.name, "--json"),
            "log": _cli_json("log", destination, "--json"),
        }

    tree = readings("tree")
    assert tree["restored"] == file_tree(older)
    assert tree["rendered"] and tree["subtree"] and tree["verified"][1] > 40
    diff = tree["diff"]
    assert [p["id"] for p in diff["renamed"]] == [leaves[1]] and len(diff["added"]) == 1
    edited = {p["id"]: p for p in diff["edited"]}
    assert edited[leaves[0]]["markdown_diff"], "the edited page's Markdown was read"

    _pack(destination, older)
    assert not (older / "json").exists()
    packed = readings("packed")
    for reading, value in tree.items():
        assert packed[reading] == value, f"{reading} differs once the snapshot is packed"

    # Its HTML is never rendered into it: it is only read.
    done = runner.invoke(app, ["render", str(older)])
    assert done.exit_code == 2 and "is packed" in done.output and "Traceback" not in done.output
    kept = sorted(p.name for p in older.iterdir())
    assert kept == sorted([MANIFEST, PACKED, "html", "problems.jsonl", "report.json"])
