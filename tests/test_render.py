"""`notion-sync render`: a real export re-rendered offline, byte-identical, with a walkable HTML site."""

from __future__ import annotations

import json
import posixpath
import shutil
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.control import start_export
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportInput, ExportOptions
from notion_sync.render import render_snapshot
from notion_sync.snapshot import JSON_DIRS
from tests.export.harness import running_worker, worker_settings


@pytest.fixture(scope="module")
async def exported(
    temporal_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Path, EmulatorProcess]]:
    """One export of a generated workspace (every block and property type, hostile titles)."""
    root = tmp_path_factory.mktemp("render")
    with EmulatorProcess(pages=60, seed=11) as emulator:
        settings = worker_settings(emulator, root / "state")
        async with running_worker(temporal_client, settings):
            destination = root / "backup"
            handle = await start_export(
                temporal_client,
                settings,
                ExportInput(destination=str(destination), options=ExportOptions(batch_size=20)),
            )
            report = await handle.result()
        assert report.status == "completed"
        snapshot = (destination / "current").resolve()
        # The site as the export published it, before any test re-renders it.
        shutil.copytree(snapshot / "html", root / "published-html")
        yield snapshot, emulator


@pytest.mark.parametrize("created_times", [True, False], ids=["manifest", "older-manifest"])
def test_published_site_equals_an_offline_render(
    exported: tuple[Path, EmulatorProcess], tmp_path: Path, created_times: bool
) -> None:
    """Pages rendered by the export batches are byte for byte what `render` makes of the JSON.

    Table rows are found from the manifest, or from the pages' JSON in a manifest written before
    it recorded `created_time`.
    """
    snapshot, _ = exported
    published = snapshot.parent.parent.parent / "published-html"
    copy = tmp_path / "snapshot"
    shutil.copytree(snapshot, copy, symlinks=True)
    shutil.rmtree(copy / "html")
    if not created_times:
        header, *lines = (copy / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines]
        assert sum(e.pop("created_time") is not None for e in entries) > 60
        older = [header, *(json.dumps(e) for e in entries)]
        (copy / "manifest.jsonl").write_text("\n".join(older) + "\n", encoding="utf-8")
    render_snapshot(copy)
    files = sorted(p.relative_to(published) for p in published.rglob("*") if p.is_file())
    assert len(files) > 60
    assert files == sorted(p.relative_to(copy / "html") for p in (copy / "html").rglob("*") if p.is_file())
    for file in files:
        assert (copy / "html" / file).read_bytes() == (published / file).read_bytes(), file
    # Publishing renders only the pages a batch did not: one removed page comes back the same.
    page = next(f for f in files if f.suffix == ".html" and f.name != "index.html" and len(f.parts) > 1)
    (copy / "html" / page).unlink()
    (copy / "html" / "index.html").unlink()
    render_snapshot(copy, keep_page_html=True)
    assert (copy / "html" / page).read_bytes() == (published / page).read_bytes()


@pytest.fixture(scope="module")
def site(exported: tuple[Path, EmulatorProcess]) -> Path:
    snapshot, _ = exported
    render_snapshot(snapshot)
    return snapshot / "html"


def _exported_files(snapshot: Path) -> Iterator[Path]:
    for line in (snapshot / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[1:]:
        entry = json.loads(line)
        for file in entry["files"]:
            if file["path"].endswith((".md", ".csv")):
                yield Path(file["path"])


def test_render_makes_no_api_calls_and_reproduces_markdown_and_csv(
    exported: tuple[Path, EmulatorProcess], tmp_path: Path
) -> None:
    snapshot, emulator = exported
    before = emulator.stats()["requests_total"]
    result = render_snapshot(snapshot, ("md", "csv", "html"), tmp_path / "out")
    assert emulator.stats()["requests_total"] == before
    files = list(_exported_files(snapshot))
    assert sum(1 for f in files if f.suffix == ".csv") >= 1
    assert result.written["md"] + result.written["csv"] == len(files)
    for file in files:
        assert (tmp_path / "out" / file).read_bytes() == (snapshot / file).read_bytes(), file
    assert result.index == tmp_path / "out" / "html" / "index.html"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)
            if name == "id" and value:
                self.ids.add(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_of_the_site_resolves(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    checked = 0
    for page in pages:
        links = _parse(page)
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme:
                assert parts.scheme in ("http", "https", "mailto", "tel"), (page, target)
                continue
            if not parts.path:  # an anchor in the same page
                assert parts.fragment in links.ids, (page, target)
                continue
            resolved = (page.parent / unquote(parts.path)).resolve()
            assert resolved.is_file(), (page.relative_to(site), target)
            assert site.parent in resolved.parents, target  # pages in the site, files in the snapshot
            checked += 1
    assert checked > len(pages)


def test_every_exported_object_has_an_html_twin_reachable_from_the_index(
    exported: tuple[Path, EmulatorProcess], site: Path
) -> None:
    snapshot, _ = exported
    for file in _exported_files(snapshot):
        assert (site / file.with_suffix(".html")).is_file(), file
    index = _parse(site / "index.html")
    top_level = {f.with_suffix(".html").as_posix() for f in _exported_files(snapshot) if len(f.parts) == 1}
    assert top_level <= {unquote(t) for t in index.targets}
    assert (site / "style.css").is_file()


def test_hostile_content_from_the_emulator_stays_inert(site: Path) -> None:
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8").lower()
        assert "<script" not in html, page
        links = _parse(page)
        for target in links.targets:
            assert not target.strip().lower().startswith(("javascript:", "data:", "vbscript:")), page


def test_render_command(exported: tuple[Path, EmulatorProcess], tmp_path: Path) -> None:
    snapshot, _ = exported
    runner = CliRunner()
    done = runner.invoke(app, ["render", str(snapshot), "--out", str(tmp_path / "site"), "--formats", "html"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "site" / "html" / "index.html").is_file()
    assert not list((tmp_path / "site").glob("*.md"))
    refused = runner.invoke(app, ["render", str(snapshot), "--formats", "md"])
    assert refused.exit_code == 2
    assert "--out" in refused.output
    unknown = runner.invoke(app, ["render", str(snapshot), "--out", str(tmp_path / "x"), "--formats", "pdf"])
    assert unknown.exit_code == 2


def test_nav_crumbs_lead_to_ancestors(site: Path) -> None:
    nested = [p for p in site.rglob("*.html") if len(p.relative_to(site).parts) >= 3]
    assert nested
    for page in nested:
        targets = _parse(page).targets
        depth = len(page.relative_to(site).parts) - 1
        assert "../" * depth + "index.html" in targets
        assert "../" * depth + "style.css" in targets
        ancestors = [posixpath.normpath(posixpath.join(page.parent.as_posix(), unquote(t))) for t in targets]
        assert any(a == page.parent.as_posix() + ".html" for a in ancestors), page


def _snapshot_of(root: Path, objects: list[tuple[str, str, str, str | None]]) -> Path:
    """A hand-made snapshot: (kind, title, path, parent id) per object, ids in list order."""
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(len(objects))]
    lines = [{"format": "notion-sync-manifest", "version": 1, "objects": len(objects)}]
    for object_id, (kind, title, path, parent) in zip(ids, objects, strict=True):
        text = [{"type": "text", "text": {"content": title}, "plain_text": title}]
        if kind == "page":
            page_parent = (
                {"type": "data_source_id", "data_source_id": parent} if parent else {"type": "workspace"}
            )
            raw: dict[str, object] = {
                "page": {
                    "object": "page",
                    "id": object_id,
                    "parent": page_parent,
                    "properties": {"title": {"id": "title", "type": "title", "title": text}},
                },
                "blocks": [],
            }
        else:
            raw = {"object": kind, "id": object_id, "title": text, "properties": {}, "data_sources": []}
        saved = root / JSON_DIRS[kind] / f"{object_id}.json"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(raw), encoding="utf-8")
        lines.append(
            {
                "id": object_id,
                "type": kind,
                "title": title,
                "last_edited_time": None,
                "path": path,
                "status": "exported",
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return root


def test_index_lists_folders_by_title_and_leaves_table_rows_to_their_tables(tmp_path: Path) -> None:
    source = "00000000-0000-4000-8000-000000000003"  # the data source's id: fourth in the list
    snapshot = _snapshot_of(
        tmp_path,
        [
            ("page", "beta", "beta.md", None),
            ("page", "Alpha", "Alpha.md", None),
            ("page", "zed", "Alpha/zed.md", None),
            ("data_source", "Table", "Alpha/Table.csv", None),
            ("page", "Row", "Alpha/Table/Row.md", source),
            ("page", "Inside a row", "Alpha/Table/Row/Inside.md", None),
            ("database", "Database in a row", "Alpha/Table/Row/Database.md", None),
            ("page", "Orphan", "Gone/Orphan.md", None),  # its parent was not exported
        ],
    )
    render_snapshot(snapshot)
    index = _parse(snapshot / "html" / "index.html")
    assert [unquote(t) for t in index.targets if not t.endswith((".css", "index.html"))] == [
        "Alpha.html",
        "Alpha/Table.html",
        "Alpha/zed.html",
        "beta.html",
        "Gone/Orphan.html",
    ]
    assert (snapshot / "html" / "Alpha" / "Table" / "Row" / "Database.html").is_file()
