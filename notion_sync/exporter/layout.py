"""Layout: where each object goes. The folder tree mirrors the page tree.

    <Page>.md and <Page>/            a page and the folder of its children
    <Database>.md and <Database>/    a database's index and its folder
    <Database>/<Source>.csv          one table per data source, rows in <Database>/<Source>/

Names come from titles made safe; siblings never collide (case-insensitively), and a collision is
settled by a suffix derived from the object's own id, so one rename never reshuffles the others.
"""

from __future__ import annotations

from collections.abc import Callable

from notion_sync.convert.names import safe_name, unique_name
from notion_sync.models import Layout
from notion_sync.storage.index import ExportIndex

_EXTENSIONS = {"page": ".md", "database": ".md", "data_source": ".csv"}
_CHUNK = 2000


class _ClaimedNames:
    """The names already taken in one folder, as a Container for `unique_name`."""

    def __init__(self, index: ExportIndex, directory: str) -> None:
        self._index = index
        self._dir = directory

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not self._index.name_free(self._dir, name.casefold())


def assign_paths(
    index: ExportIndex, heartbeat: Callable[[], None] = lambda: None, layout: Layout = "tree"
) -> int:
    """Places every object whose parent is placed; returns how many it placed.

    The "notion" layout names files as Notion's own export does: `Title <32 hex id>`, unique by
    construction, for tools that read that layout.
    """
    placed = 0
    while True:
        heartbeat()
        ready = index.unplaced(_CHUNK)
        if not ready:
            return placed
        # One commit per chunk: thousands of objects are placed before the first page is exported.
        with index.transaction():
            for _seq, object_id, kind, title, parent_dir, _parent_status in ready:
                directory = parent_dir or ""
                if layout == "notion":
                    # Notion caps its titles shorter than we do, leaving room for the id.
                    name = f"{safe_name(title, max_len=50)} {object_id.replace('-', '')}"
                else:
                    name = unique_name(safe_name(title), object_id, _ClaimedNames(index, directory))
                index.claim_name(directory, name.casefold())
                folder = f"{directory}/{name}" if directory else name
                index.place(object_id, folder + _EXTENSIONS.get(kind, ".md"), folder)
                placed += 1
