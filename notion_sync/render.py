"""`notion-sync render SNAPSHOT`: every other format rebuilt offline from a snapshot's JSON.

Zero API calls: no Notion client is ever built. The manifest is streamed once into a small SQLite
catalogue (id -> path, title, kind) in a temporary folder, so memory stays flat at any size; links
resolve through it exactly as they did through the export index, which makes re-rendered Markdown
and CSV byte-identical to the exported files. HTML mirrors the Markdown paths under `html/`
(`A/B.md` -> `html/A/B.html`, a data source's `A/S.csv` -> `html/A/S.html`) with `html/index.html`
holding the workspace tree and `html/style.css` the one stylesheet.

A snapshot's files are read where `snapshot.snapshot_file` finds them: in its tree, or, for a packed
folder snapshot (an older one whose tree was removed), in the destination's object store, by the
digest the manifest records. A packed snapshot is only read: its HTML is rendered with `--out`.
"""

from __future__ import annotations

import io
import os
import posixpath
import sqlite3
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from notion_sync.convert.csvfmt import write_csv
from notion_sync.convert.html import (
    SITE,
    HtmlLinks,
    Nav,
    TreeNode,
    data_source_to_html,
    database_to_html,
    html_path,
    index_html,
    page_to_html,
    site_nav,
    stylesheet,
)
from notion_sync.convert.links import dashed_id, encode_path, relative_path
from notion_sync.convert.markdown import database_to_markdown, page_to_markdown
from notion_sync.convert.properties import with_property_items
from notion_sync.exporter.files import find_files
from notion_sync.models import ManifestFile
from notion_sync.snapshot import JSON_DIRS, is_packed, read_manifest, saved_json, snapshot_file

JSON = dict[str, Any]
FORMATS = ("md", "csv", "html")
_SCHEMA = """
CREATE TABLE objects (id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL, path TEXT NOT NULL,
                      dir TEXT NOT NULL, folder TEXT NOT NULL, parent TEXT, created_time TEXT,
                      json_sha256 TEXT);
CREATE INDEX objects_dir ON objects(dir);
CREATE INDEX objects_folder ON objects(folder);
CREATE TABLE rows (data_source_id TEXT NOT NULL, created_time TEXT, id TEXT NOT NULL);
CREATE INDEX rows_source ON rows(data_source_id, created_time, id);
-- The files databases and data sources list (their downloaded icons and covers): a few per table.
CREATE TABLE table_files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
"""
_ENTRY = "SELECT id, kind, title, path, created_time, json_sha256 FROM objects"
# Table rows from the manifest alone: pages under a data source, when it recorded their created_time.
_ROWS_FROM_MANIFEST = """
INSERT INTO rows SELECT o.parent, o.created_time, o.id FROM objects AS o JOIN objects AS d ON d.id = o.parent
WHERE o.kind = 'page' AND o.created_time IS NOT NULL AND d.kind = 'data_source'
"""
# The index page lists each folder by title, as a reader looks for things (Python's casefold).
_BY_TITLE = " ORDER BY tree_title(title), site_href(path)"


@dataclass(frozen=True)
class _Entry:
    id: str
    kind: str
    title: str
    path: str
    created_time: str | None = None
    # The digest of its JSON in the manifest: where a packed snapshot's store holds it.
    json_sha256: str | None = None


@dataclass
class RenderResult:
    """What a render wrote, per kind of file, and where the HTML site starts."""

    written: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FORMATS})
    index: Path | None = None


class Catalogue:
    """The manifest's exported objects in SQLite: paths by id, titles by folder, rows by data source."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        # a throwaway file rebuilt on every render: a journal and an fsync per row buy nothing
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.executescript(_SCHEMA)
        self._db.create_function("tree_title", 1, _tree_title, deterministic=True)
        self._db.create_function("site_href", 1, _site_href, deterministic=True)

    def close(self) -> None:
        self._db.close()

    def load(self, snapshot: Path) -> int:
        """Streams the snapshot's manifest; returns the objects kept."""
        kept = 0
        with read_manifest(snapshot) as (_header, entries):
            self._db.execute("BEGIN")
            for entry in entries:
                if entry.status != "exported" or entry.type not in JSON_DIRS or not entry.path:
                    continue
                json_path = saved_json(entry.type, entry.id)
                self._db.execute(
                    "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.id,
                        entry.type,
                        entry.title,
                        entry.path,
                        posixpath.dirname(entry.path),
                        _folder(entry.path),
                        entry.parent,
                        entry.created_time,
                        next((f.sha256 for f in entry.files if f.path == json_path), None),
                    ),
                )
                if entry.type != "page":
                    self._db.executemany(
                        "INSERT OR REPLACE INTO table_files VALUES (?, ?)",
                        ((f.path, f.sha256) for f in entry.files),
                    )
                kept += 1
            self._db.execute(_ROWS_FROM_MANIFEST)
            self._db.execute("COMMIT")
        return kept

    def path(self, object_id: str) -> str | None:
        row = self._db.execute("SELECT path FROM objects WHERE id = ?", (object_id,)).fetchone()
        return str(row[0]) if row else None

    def title(self, object_id: str) -> str | None:
        row = self._db.execute("SELECT title FROM objects WHERE id = ?", (object_id,)).fetchone()
        return str(row[0]) if row else None

    def table_file(self, path: str) -> ManifestFile | None:
        """A file a database or data source lists (its icon, its cover), with its digest."""
        row = self._db.execute("SELECT sha256 FROM table_files WHERE path = ?", (path,)).fetchone()
        return ManifestFile(path=path, sha256=row[0], size=0) if row else None

    def at_folder(self, folder: str) -> _Entry | None:
        """The object whose children live in `folder` (the page `folder.md`, say)."""
        row = self._db.execute(_ENTRY + " WHERE folder = ?", (folder,)).fetchone()
        return _Entry(*row) if row else None

    def entries(self, kind: str) -> Iterator[_Entry]:
        yield from self._entries(_ENTRY + " WHERE kind = ? ORDER BY path", (kind,))

    def in_dir(self, directory: str) -> Iterator[_Entry]:
        """The objects in one folder, by title."""
        yield from self._entries(_ENTRY + " WHERE dir = ?" + _BY_TITLE, (directory,))

    def tops(self) -> Iterator[_Entry]:
        """The objects no other object holds in its folder (the top level, or a parent not exported)."""
        query = _ENTRY + " AS o WHERE NOT EXISTS (SELECT 1 FROM objects WHERE folder = o.dir)" + _BY_TITLE  # nosec B608 # constant SQL text and ? placeholders; every value is bound
        yield from self._entries(query, ())

    def _entries(self, query: str, args: tuple[str, ...]) -> Iterator[_Entry]:
        # a cursor of its own, so lookups while iterating do not disturb it
        for row in self._db.cursor().execute(query, args):
            yield _Entry(*row)

    def add_row(self, data_source_id: str, created_time: str | None, page_id: str) -> None:
        self._db.execute("INSERT INTO rows VALUES (?, ?, ?)", (data_source_id, created_time, page_id))

    def rows(self, data_source_id: str) -> Iterator[tuple[str, str | None]]:
        """(page id, its JSON's digest) of a data source's rows in the exporter's order (created_time, id)."""
        query = (
            "SELECT r.id, o.json_sha256 FROM rows AS r LEFT JOIN objects AS o ON o.id = r.id"
            " WHERE r.data_source_id = ? ORDER BY r.created_time, r.id"
        )
        for page_id, sha256 in self._db.cursor().execute(query, (data_source_id,)):
            yield str(page_id), sha256


class ManifestLinks:
    """A LinkResolver backed by the manifest, relative to one exported file (like IndexLinks).

    Local files come from the page JSON's `files` map (URL -> path in the snapshot), set per page
    (and per row while a table streams).
    """

    def __init__(self, catalogue: Catalogue, from_path: str, files: dict[str, str] | None = None) -> None:
        self._catalogue = catalogue
        self._from_dir = posixpath.dirname(from_path)
        self.files = files or {}

    def page_link(self, page_id: str) -> str | None:
        path = self._catalogue.path(dashed_id(page_id))
        return relative_path(path, self._from_dir) if path is not None else None

    def file_link(self, url: str) -> str | None:
        path = self.files.get(url)
        return relative_path(path, self._from_dir) if path is not None else None

    def page_title(self, page_id: str) -> str | None:
        return self._catalogue.title(dashed_id(page_id))


class _Renderer:
    def __init__(
        self, snapshot: Path, catalogue: Catalogue, formats: Collection[str], out: Path, keep_page_html: bool
    ) -> None:
        self.snapshot = snapshot
        self.catalogue = catalogue
        self.formats = formats
        self.out = out
        self.site = out / SITE
        self.keep_page_html = keep_page_html
        self.result = RenderResult()
        # both depend only on the folder (the catalogue's objects never change once loaded)
        self._asset_prefixes: dict[str, str] = {}
        self._navs: dict[str, Nav] = {}

    def read(self, entry: _Entry) -> JSON:
        # `snapshot_file` needs the path and the digest only; the bytes are parsed, not checked.
        saved = ManifestFile(path=saved_json(entry.kind, entry.id), sha256=entry.json_sha256 or "", size=0)
        data: JSON = orjson.loads(snapshot_file(self.snapshot, saved).read_bytes())
        return data

    def downloaded(self, path: str) -> bool:
        """Whether a database's or data source's icon or cover is in the snapshot (tree or store)."""
        listed = self.catalogue.table_file(path)
        return (self.snapshot / path).is_file() or (
            listed is not None and snapshot_file(self.snapshot, listed).is_file()
        )

    def write(self, fmt: str, relpath: str, text: str) -> None:
        self.write_pieces(fmt, relpath, (text,))

    def write_pieces(self, fmt: str, relpath: str, pieces: Iterable[str]) -> None:
        target = (self.site if fmt == "html" else self.out) / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        # A new file renamed over the old one, never written into it: a snapshot's files are hard
        # links into the destination's object store, shared with every other snapshot.
        written = target.with_name(f".{target.name}.rendering")
        with written.open("w", encoding="utf-8", newline="") as out:
            out.writelines(pieces)
        os.replace(written, target)
        self.result.written[fmt] += 1

    def html_links(self, links: ManifestLinks, path: str) -> HtmlLinks:
        folder = posixpath.dirname(path)
        asset_prefix = self._asset_prefixes.get(folder)
        if asset_prefix is None:
            # from <site>/<folder>/ back to <snapshot>/<folder>/: downloaded files stay in the snapshot
            asset_prefix = Path(os.path.relpath(self.snapshot / folder, self.site / folder)).as_posix() + "/"
            self._asset_prefixes[folder] = asset_prefix
        return HtmlLinks(links, asset_prefix)

    def nav(self, path: str) -> Nav:
        folder = posixpath.dirname(path)
        nav = self._navs.get(folder)
        if nav is None:
            nav = self._navs[folder] = site_nav(folder, self._owner)
        return nav

    def _owner(self, folder: str) -> tuple[str, str] | None:
        entry = self.catalogue.at_folder(folder)
        return (entry.title, entry.path) if entry is not None else None

    def page(self, entry: _Entry) -> None:
        markdown = "md" in self.formats
        html = "html" in self.formats and not (
            self.keep_page_html and (self.site / html_path(entry.path)).is_file()
        )
        row_known = entry.created_time is not None
        if row_known and not (markdown or html):
            return
        raw = self.read(entry)
        parent = raw["page"].get("parent")
        if not row_known and isinstance(parent, dict) and parent.get("type") == "data_source_id":
            # an older manifest: whether the page is a table row, and where, is in its JSON only
            self.catalogue.add_row(str(parent["data_source_id"]), raw["page"].get("created_time"), entry.id)
        if not (markdown or html):
            return
        page = with_property_items(raw["page"], raw.get("property_items") or {})
        blocks, comments = raw.get("blocks") or [], raw.get("comments") or []
        links = ManifestLinks(self.catalogue, entry.path, raw.get("files") or {})
        if markdown:
            self.write("md", entry.path, page_to_markdown(page, blocks, links, comments))
        if html:
            text = page_to_html(
                page, blocks, self.html_links(links, entry.path), comments, self.nav(entry.path)
            )
            self.write("html", html_path(entry.path), text)

    def database(self, entry: _Entry) -> None:
        raw = self.read(entry)
        # A database's JSON is Notion's object as is; its downloaded icon and cover sit at known paths.
        files = {ref.url: ref.path for ref in find_files(raw, []) if self.downloaded(ref.path)}
        links = ManifestLinks(self.catalogue, entry.path, files)
        if "md" in self.formats:
            self.write("md", entry.path, database_to_markdown(raw, links))
        if "html" in self.formats:
            text = database_to_html(raw, self.html_links(links, entry.path), self.nav(entry.path))
            self.write("html", html_path(entry.path), text)

    def rows(self, data_source_id: str, links: ManifestLinks) -> Iterator[JSON]:
        """The complete row pages, streamed; `links` knows each row's local files while it is out."""
        for page_id, sha256 in self.catalogue.rows(data_source_id):
            raw = self.read(_Entry(page_id, "page", "", "", json_sha256=sha256))
            links.files = raw.get("files") or {}
            yield with_property_items(raw["page"], raw.get("property_items") or {})

    def data_source(self, entry: _Entry) -> None:
        raw = self.read(entry)
        # A database's JSON is Notion's object as is; its downloaded icon and cover sit at known paths.
        files = {ref.url: ref.path for ref in find_files(raw, []) if self.downloaded(ref.path)}
        links = ManifestLinks(self.catalogue, entry.path, files)
        if "csv" in self.formats:
            buffer = io.StringIO()
            write_csv(buffer, raw, self.rows(entry.id, links), links, bom=False)
            self.write("csv", entry.path, buffer.getvalue())
        if "html" in self.formats:
            rows = self.rows(entry.id, links)
            pieces = data_source_to_html(raw, rows, self.html_links(links, entry.path), self.nav(entry.path))
            self.write_pieces("html", html_path(entry.path), pieces)

    def tree(self) -> Iterator[TreeNode]:
        """Pages, databases and data sources by folder, read as the index page is written; rows are
        reached through their tables (and what is inside a row, through the row)."""
        for entry in self.catalogue.tops():
            if not (entry.kind == "page" and self._under_data_source(entry.path)):
                yield self._node(entry)

    def _node(self, entry: _Entry) -> TreeNode:
        inside = (
            () if entry.kind == "data_source" else map(self._node, self.catalogue.in_dir(_folder(entry.path)))
        )
        return TreeNode(entry.title or "Untitled", _site_href(entry.path), entry.kind, inside)

    def _under_data_source(self, path: str) -> bool:
        folder = posixpath.dirname(path)
        while folder:
            ancestor = self.catalogue.at_folder(folder)
            if ancestor is not None and ancestor.kind == "data_source":
                return True
            folder = posixpath.dirname(folder)
        return False


def _folder(path: str) -> str:
    """Where an exported file's children live: `A/B.md` -> `A/B`."""
    return path.rsplit(".", 1)[0]


def _tree_title(title: str) -> str:
    return (title or "Untitled").casefold()


def _site_href(path: str) -> str:
    return encode_path(html_path(path))


def render_snapshot(
    snapshot: Path,
    formats: Collection[str] = ("html",),
    out: Path | None = None,
    keep_page_html: bool = False,
) -> RenderResult:
    """Re-renders a snapshot: HTML into `(out or snapshot)/html/`, Markdown and CSV into `out`.

    With `keep_page_html`, a page whose HTML file is already in the site keeps it: the export
    writes each page's HTML beside its Markdown, leaving databases, tables and the index to this.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats: {', '.join(sorted(unknown))}")
    if out is None and set(formats) & {"md", "csv"}:
        raise ValueError("Markdown and CSV need --out: a snapshot's own files are never overwritten")
    if out is None and is_packed(snapshot):
        raise ValueError(
            f"{snapshot} is packed (its files are in the destination's object store): render it with "
            "--out, or `notion-sync restore-files --snapshot` it first"
        )
    with tempfile.TemporaryDirectory(prefix="notion-sync-render-") as scratch:
        catalogue = Catalogue(Path(scratch) / "catalogue.sqlite")
        try:
            catalogue.load(snapshot)
            renderer = _Renderer(snapshot, catalogue, formats, out or snapshot, keep_page_html)
            for entry in catalogue.entries("page"):
                renderer.page(entry)
            for entry in catalogue.entries("database"):
                renderer.database(entry)
            for entry in catalogue.entries("data_source"):
                renderer.data_source(entry)
            if "html" in formats:
                renderer.write("html", "style.css", stylesheet())
                renderer.write_pieces("html", "index.html", index_html(renderer.tree()))
                renderer.result.written["html"] -= 2
                renderer.result.index = renderer.site / "index.html"
            return renderer.result
        finally:
            catalogue.close()
