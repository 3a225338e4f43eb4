"""`notion-sync restore-files` from a folder destination: whole snapshots (current and older) equal
to the snapshot file for file, one page's subtree exactly, and clean failures that leave nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.models import ManifestFile, ManifestHeader, ManifestObject
from tests.export.harness import EmulatorAndWorker, export_and_wait

runner = CliRunner()


def _restore(*args: str | Path) -> Any:
    return runner.invoke(app, ["restore-files", *(str(a) for a in args)])


def file_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_entries(snapshot: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (snapshot / "manifest.jsonl").read_text().splitlines()[1:]]


def descendants(entries: list[dict[str, Any]], root: str) -> set[str]:
    found, grew = {root}, True
    while grew:
        below = {e["id"] for e in entries if e["parent"] in found}
        grew = not below <= found
        found |= below
    return found


async def test_restores_snapshots_and_subtrees_from_a_folder(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    # Both snapshots stay trees, to compare each restore with the folder it came from.
    trees = {"browsable_snapshots": 2}
    async with emulator_and_worker(pages=40, seed=81, settings=trees) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        older = (destination / "current").resolve()
        edited = next(e["id"] for e in manifest_entries(older) if e["type"] == "page" and e["parent"] is None)
        emulator.mutate({"op": "edit_page", "page_id": edited})
        await export_and_wait(temporal_client, settings, destination)
    current = (destination / "current").resolve()
    assert current != older and file_tree(current) != file_tree(older)
    assert any(path.startswith("html/") for path in file_tree(current)), "the HTML site is restored too"

    # The current snapshot (the default) and an older one by name: file for file, byte for byte.
    done = _restore(destination, "--out", tmp_path / "now")
    assert done.exit_code == 0, done.output
    assert file_tree(tmp_path / "now") == file_tree(current)
    assert runner.invoke(app, ["verify", str(tmp_path / "now")]).exit_code == 0
    (tmp_path / "empty").mkdir()
    done = _restore(destination, "--snapshot", older.name, "--out", tmp_path / "empty")
    assert done.exit_code == 0, done.output
    assert file_tree(tmp_path / "empty") == file_tree(older)

    # A page with pages below pages: it, its descendants and their files, nothing else.
    entries = manifest_entries(current)
    by_id = {e["id"]: e for e in entries}
    parents = {e["parent"] for e in entries}
    # The smallest subtree holding pages below pages: neither a leaf nor the whole workspace.
    page = min(
        (
            e
            for e in entries
            if e["type"] == "page" and any(by_id.get(p, {}).get("parent") == e["id"] for p in parents)
        ),
        key=lambda e: len(descendants(entries, e["id"])),
    )
    subtree = descendants(entries, page["id"])
    assert 2 < len(subtree) < len(entries) // 2
    expected = {f["path"] for e in entries if e["id"] in subtree for f in e["files"]}
    for selector, out in ((page["id"], tmp_path / "by-id"), (page["path"], tmp_path / "by-path")):
        done = _restore(destination, "--page", selector, "--out", out)
        assert done.exit_code == 0, done.output
        restored = file_tree(out)
        assert set(restored) == expected
        assert all(data == (current / path).read_bytes() for path, data in restored.items())

    # Unknown page or snapshot, an --out in use: exit 2, a message, no traceback, nothing written.
    for args, message in (
        (("--page", "no-such-page"), "no page 'no-such-page'"),
        (("--snapshot", "2020-01-01T00-00-00Z-00000000"), "no snapshot 2020-01-01T00-00-00Z-00000000"),
        (("--snapshot", "../current"), "not a snapshot name"),
    ):
        done = _restore(destination, *args, "--out", tmp_path / "unknown")
        assert done.exit_code == 2 and message in done.output and "Traceback" not in done.output, done.output
        assert not (tmp_path / "unknown").exists()
    done = _restore(destination, "--out", tmp_path / "now")
    assert done.exit_code == 2 and "is not empty" in done.output
    done = _restore(destination, "--out", destination / "current" / "restored")
    assert done.exit_code == 2 and "inside the snapshot" in done.output
    assert not (current / "restored").exists()

    # A damaged file (same size, one byte flipped; then a shorter one): stopped, nothing left in --out.
    damaged = next(current / f["path"] for e in entries for f in e["files"] if f["path"].endswith(".md"))
    data = damaged.read_bytes()
    damaged.unlink()  # replaced, not written into: the file is a read-only link into the object store
    damaged.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    done = _restore(destination, "--out", tmp_path / "corrupt")
    assert done.exit_code == 2 and "does not match the manifest" in done.output, done.output
    assert not (tmp_path / "corrupt").exists()
    damaged.write_bytes(data[:-1])
    (tmp_path / "kept").mkdir()
    done = _restore(destination, "--out", tmp_path / "kept")
    assert done.exit_code == 2 and str(damaged.relative_to(current)) in done.output, done.output
    assert list((tmp_path / "kept").iterdir()) == []


def test_an_unsafe_manifest_path_writes_nothing_outside_out(tmp_path: Path) -> None:
    snapshot = tmp_path / "backup" / "snapshots" / "2026-01-01T00-00-00Z-00000001"
    snapshot.mkdir(parents=True)
    (tmp_path / "outside.md").write_text("secret")
    entry = ManifestObject(
        id="a1",
        type="page",
        title="Evil",
        last_edited_time=None,
        path="Evil.md",
        status="exported",
        files=[ManifestFile(path="../../../outside.md", sha256="0" * 64, size=6)],
    )
    lines = [ManifestHeader(objects=1).model_dump_json(), entry.model_dump_json()]
    (snapshot / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "backup" / "current").symlink_to(snapshot.relative_to(tmp_path / "backup"))
    done = _restore(tmp_path / "backup", "--out", tmp_path / "out")
    assert done.exit_code == 2 and "unsafe path" in done.output, done.output
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "outside.md").read_text() == "secret"
