"""Resolves internal references to relative paths through the export index."""

from __future__ import annotations

import posixpath

from notion_sync.convert.links import dashed_id, relative_path
from notion_sync.storage.index import ExportIndex


class IndexLinks:
    """A LinkResolver for one exported file: targets come back relative to that file's folder.

    `files` maps the file URLs of the page being exported to their local copies; without it, the
    index is asked (tables link the files of many rows).
    """

    def __init__(self, index: ExportIndex, from_path: str, files: dict[str, str] | None = None) -> None:
        self._index = index
        self._from_dir = posixpath.dirname(from_path)
        self._files = files

    def page_link(self, page_id: str) -> str | None:
        dashed = dashed_id(page_id)
        path = self._index.paths([dashed]).get(dashed)
        return relative_path(path, self._from_dir) if path is not None else None

    def page_title(self, page_id: str) -> str | None:
        key = dashed_id(page_id)
        return self._index.titles([key]).get(key)

    def file_link(self, url: str) -> str | None:
        path = self._index.file_path(url) if self._files is None else self._files.get(url)
        return relative_path(path, self._from_dir) if path is not None else None
