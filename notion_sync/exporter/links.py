"""Resolves internal references to relative paths through the export index."""

from __future__ import annotations

import posixpath

from notion_sync.storage.index import ExportIndex


class IndexLinks:
    """A LinkResolver for one exported file: targets come back relative to that file's folder."""

    def __init__(self, index: ExportIndex, from_path: str) -> None:
        self._index = index
        self._from_dir = posixpath.dirname(from_path) or "."

    def page_link(self, page_id: str) -> str | None:
        dashed = _dashed(page_id)
        path = self._index.paths([dashed]).get(dashed)
        return posixpath.relpath(path, self._from_dir) if path is not None else None

    def page_title(self, page_id: str) -> str | None:
        found = self._index.titles([_dashed(page_id)])
        return found.get(_dashed(page_id))

    def file_link(self, url: str) -> str | None:
        path = self._index.file_path(url)
        return posixpath.relpath(path, self._from_dir) if path is not None else None


def _dashed(object_id: str) -> str:
    raw = object_id.replace("-", "").lower()
    if len(raw) != 32:
        return object_id
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
