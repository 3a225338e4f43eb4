"""Each page's HTML, written by the export beside its Markdown.

The pages are most of the site and their JSON is in memory here, so they are rendered by every
worker during the export; `render_snapshot` adds databases, tables and the index at publish.
"""

from __future__ import annotations

import posixpath
from typing import Any

from notion_sync.convert.html import (
    SITE,
    HtmlLinks,
    Nav,
    html_path,
    page_to_html,
    site_asset_prefix,
    site_nav,
)
from notion_sync.exporter.context import StepContext
from notion_sync.exporter.links import IndexLinks

JSON = dict[str, Any]


class SitePages:
    """Writes pages into the staged site; breadcrumbs are worked out once per folder."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self._navs: dict[str, Nav] = {}

    def write(
        self, path: str, page: JSON, blocks: list[JSON], comments: list[JSON], files: dict[str, str]
    ) -> None:
        """The HTML twin of the page exported at `path` (its Markdown path); `files` as in IndexLinks."""
        folder = posixpath.dirname(path)
        nav = self._navs.get(folder)
        if nav is None:
            nav = self._navs[folder] = site_nav(folder, self._ctx.index.at_folder)
        links = HtmlLinks(IndexLinks(self._ctx.index, path, files), site_asset_prefix(folder))
        text = page_to_html(page, blocks, links, comments, nav)
        self._ctx.destination.write(self._ctx.staging_id, f"{SITE}/{html_path(path)}", text.encode())
