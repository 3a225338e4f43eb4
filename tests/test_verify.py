"""`notion-sync verify`: a fresh export passes; missing, extra and corrupted files fail loudly."""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.archive import write_archive
from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions, ManifestHeader, ManifestObject
from notion_sync.snapshot import MANIFEST, PROBLEMS, REPORT, read_manifest, write_manifest_line
from notion_sync.storage.local import LocalDestination
from notion_sync.verify import verify
from tests.export.harness import EmulatorAndWorker

runner = CliRunner()


def make_destination(
    root: Path, files: Iterable[tuple[str, bytes]], snapshot: str = "2026-01-01T00-00-00Z"
) -> Path:
    """A published snapshot written with the exporter's own helpers: one object per file."""
    destination = LocalDestination(root)
    staging = f"staging-{snapshot}"
    destination.prepare(staging)
    objects = [
        ManifestObject(
            id=f"{n:08d}",
            type="page",
            title=path,
            last_edited_time=None,
            path=path,
            status="exported",
            files=[destination.write(staging, path, data)],
        )
        for n, (path, data) in enumerate(files)
    ]
    with destination.open_stream(staging, MANIFEST) as manifest:
        manifest.write(ManifestHeader(objects=len(objects)).model_dump_json().encode() + b"\n")
        for entry in objects:
            manifest.write(entry.model_dump_json().encode() + b"\n")
    destination.write(staging, PROBLEMS, b"")
    destination.write(staging, REPORT, b"{}")
    destination.publish(staging, snapshot)
    return destination.root


def sample_files(count: int, size: int = 1500) -> list[tuple[str, bytes]]:
    """Deterministic files: pseudo-random bytes (barely compressible), nested folders, a unicode name."""
    files = []
    for n in range(count):
        seed = hashlib.sha256(str(n).encode()).digest()
        data = (seed * (size // 32 + 1))[: size + n % 7]
        files.append((f"Space {n % 5}/Ünïcode page {n}.md", bytes(b ^ (i % 251) for i, b in enumerate(data))))
    return files


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


async def test_a_real_export_verifies_and_so_do_its_archives(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=40, seed=5) as (_, settings):
        handle = await start_export(
            temporal_client,
            settings,
            ExportInput(destination=str(destination), options=ExportOptions(batch_size=10)),
        )
        assert (await handle.result()).status == "completed"
    report = verify(destination)
    assert report.ok, report.summary()
    assert report.files > 40 and report.verified == report.files
    code, output = cli("verify", destination)
    assert code == 0 and f"OK: {report.files} files verified" in output
    # The exporter's Markdown and CSV are what the renderer makes of the JSON, byte for byte.
    deep = verify(destination, deep=True)
    assert deep.ok, deep.summary()
    snapshot = (destination / "current").resolve()
    texts = [p for p in listed_paths(snapshot) if p.endswith((".md", ".csv")) and not p.startswith("files/")]
    assert deep.rerendered == len(texts) >= 40
    for fmt in ("zip", "tar.gz"):
        result = write_archive(destination, tmp_path / fmt, fmt, split_bytes=64 * 1024)
        assert len(result.parts) > 1
        code, output = cli("verify", tmp_path / fmt / result.checksums, "--deep")
        assert code == 0, output
        assert (
            f"OK: {report.files} files verified, {deep.rerendered} Markdown/CSV files re-rendered" in output
        )

    # An edit to a page's Markdown, with the manifest updated to match: only the re-render catches it.
    edited = next(path for path in texts if path.endswith(".md"))
    rewrite_listed(snapshot, edited, (snapshot / edited).read_bytes() + b"\nAdded after the export.\n")
    assert verify(destination).ok
    report = verify(destination, deep=True)
    assert [(d.path, d.reason) for d in report.differing] == [
        (edited, "differs from its re-rendering from the JSON")
    ]
    code, output = cli("verify", destination, "--deep")
    assert code == 1 and f"rendering  {edited}: differs" in output, output
    result = write_archive(destination, tmp_path / "edited", "tar.gz")
    code, output = cli("verify", tmp_path / "edited" / result.checksums, "--deep")
    assert code == 1 and f"rendering  {edited}: differs" in output, output


def listed_paths(snapshot: Path) -> list[str]:
    with read_manifest(snapshot) as (_header, objects):
        return [file.path for entry in objects for file in entry.files]


def forged_manifest(manifest: IO[bytes], relpath: str, data: bytes) -> bytes:
    """The manifest with `relpath`'s size and sha256 made to match `data`, as a careful forger would."""
    with read_manifest(manifest) as (header, objects):
        entries = list(objects)
    forged = io.BytesIO()
    write_manifest_line(forged, header)
    for entry in entries:
        entry.files = [
            file.model_copy(update={"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            if file.path == relpath
            else file
            for file in entry.files
        ]
        write_manifest_line(forged, entry)
    return forged.getvalue()


def rewrite_listed(snapshot: Path, relpath: str, data: bytes) -> None:
    """Replaces a listed file, and its size and sha256 in the manifest."""
    (snapshot / relpath).write_bytes(data)
    with (snapshot / MANIFEST).open("rb") as manifest:
        forged = forged_manifest(manifest, relpath, data)
    (snapshot / MANIFEST).write_bytes(forged)


def test_missing_extra_and_corrupted_files_fail(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(30))
    snapshot = (root / "current").resolve()
    assert verify(root).ok
    (snapshot / "Space 0/Ünïcode page 0.md").unlink()
    (snapshot / "Space 1/stray.md").write_text("not exported")
    corrupted = snapshot / "Space 2/Ünïcode page 2.md"
    data = bytearray(corrupted.read_bytes())
    data[100] ^= 0x01  # same size, one bit changed
    corrupted.write_bytes(bytes(data))
    truncated = snapshot / "Space 3/Ünïcode page 3.md"
    truncated.write_bytes(truncated.read_bytes()[:-1])
    (snapshot / "html").mkdir()
    (snapshot / "html/index.html").write_text("<p>rendered view, not in the manifest</p>")

    report = verify(snapshot)
    assert report.missing == ["Space 0/Ünïcode page 0.md"]
    assert report.extra == ["Space 1/stray.md"]
    assert {(c.path, c.reason.split(" ")[0]) for c in report.corrupted} == {
        ("Space 2/Ünïcode page 2.md", "sha256"),
        ("Space 3/Ünïcode page 3.md", "size"),
    }
    assert report.verified == 27 and report.files == 30 and not report.errors
    code, output = cli("verify", root)
    assert code == 1
    assert output.startswith("FAILED:") and "1 missing, 1 extra, 2 corrupted" in output
    for line in ("missing    Space 0/Ünïcode page 0.md", "extra      Space 1/stray.md"):
        assert line in output
    assert "corrupted  Space 2/Ünïcode page 2.md: sha256 differs" in output


def test_a_truncated_manifest_fails(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(5))
    manifest = root / "current" / MANIFEST
    manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[:-1]))
    report = verify(root)
    assert report.errors == [f"{MANIFEST} lists 4 objects, its header says 5"]
    assert report.extra == ["Space 4/Ünïcode page 4.md"]


def test_damaged_archives_fail(tmp_path: Path) -> None:
    root = make_destination(tmp_path / "backup", sample_files(60))
    out = tmp_path / "archives"
    result = write_archive(root, out, "zip", split_bytes=30_000)
    names = [p.name for p in result.parts]
    assert len(names) >= 3 and verify(out / names[1]).ok

    copy = tmp_path / "damaged"
    shutil.copytree(out, copy)
    part = copy / names[1]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    (copy / names[2]).unlink()
    shutil.copy(copy / names[0], copy / names[0].replace("part001", "part099"))
    report = verify(copy / result.checksums)
    assert f"part {names[1]} does not match its checksum in {result.checksums}" in report.errors
    assert f"part {names[2]} is missing" in report.errors
    assert (
        f"part {names[0].replace('part001', 'part099')} is not listed in {result.checksums}" in report.errors
    )
    assert report.missing, "the files of the missing part are reported missing"
    code, output = cli("verify", copy / names[0])
    assert code == 1 and "does not match its checksum" in output

    (out / result.checksums).unlink()
    report = verify(out / names[0])
    assert report.errors == [f"checksum file {result.checksums} is missing"]
    assert report.verified == 60


def test_not_an_export(tmp_path: Path) -> None:
    code, output = cli("verify", tmp_path)
    assert code == 2 and "is not an export" in output
    root = make_destination(tmp_path / "backup", sample_files(3))
    code, output = cli("verify", root, "--snapshot", "2026-01-01T00-00-00Z")
    assert code == 0, output
    code, output = cli("verify", root, "--snapshot", "1999-01-01T00-00-00Z")
    assert code == 2 and "has no snapshot '1999-01-01T00-00-00Z'" in output
    code, output = cli("verify", root, "--snapshot", "../backup/snapshots/2026-01-01T00-00-00Z")
    assert code == 2 and "is not a snapshot name" in output
