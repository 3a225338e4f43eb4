"""Layout: where each object goes. The folder tree mirrors the page tree.

    <Page>.md and <Page>/            a page and the folder of its children
    <Database>.md and <Database>/    a database's index and its folder
    <Database>/<Source>.csv          one table per data source, rows in <Database>/<Source>/

Names come from titles made safe; siblings never collide (case-insensitively), and a collision is
settled by a suffix derived from the object's own id, so one rename never reshuffles the others.

Every object lands somewhere: one whose path would be longer than file systems allow (deep trees of
long titles) and one whose parent chain is a cycle are placed at the top level, named with their id,
and reported in problems.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable

from notion_sync.convert.names import safe_name, unique_name
from notion_sync.models import Layout
from notion_sync.storage.index import ExportIndex

_EXTENSIONS = {"page": ".md", "database": ".md", "data_source": ".csv"}
_CHUNK = 2000
# Linux allows 4,096 bytes per path: room for the destination, staging and `html/` prefixes.
MAX_PATH_BYTES = 1024
_STUCK_SCAN = 100_000


class _ClaimedNames:
    """The names already taken in one folder, as a Container for `unique_name`."""

    def __init__(self, index: ExportIndex, directory: str) -> None:
        self._index = index
        self._dir = directory

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not self._index.name_free(self._dir, name.casefold())


def place_objects(
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
            loops = _cycle_members(index)
            if not loops:
                return placed
            with index.transaction():
                for object_id, kind, title in loops:
                    _place_at_top(index, object_id, kind, title, "its parent chain is a cycle")
            placed += len(loops)
            continue
        # One commit per chunk: thousands of objects are placed before the first page is exported.
        with index.transaction():
            for _seq, object_id, kind, title, parent_dir, _parent_status in ready:
                directory = parent_dir or ""
                if layout == "notion":
                    # Notion caps its titles shorter than we do, leaving room for the id.
                    name = f"{safe_name(title, max_len=50)} {object_id.replace('-', '')}"
                else:
                    name = unique_name(safe_name(title), object_id, _ClaimedNames(index, directory))
                folder = f"{directory}/{name}" if directory else name
                if len((folder + _EXTENSIONS.get(kind, ".md")).encode()) > MAX_PATH_BYTES:
                    reason = f"its path would be longer than {MAX_PATH_BYTES} bytes"
                    _place_at_top(index, object_id, kind, title, reason)
                else:
                    index.claim_name(directory, name.casefold())
                    index.place(object_id, folder + _EXTENSIONS.get(kind, ".md"), folder)
                placed += 1


def _place_at_top(index: ExportIndex, object_id: str, kind: str, title: str, reason: str) -> None:
    """At the top level, named `Title <id>` like Notion's layout (unique by construction), reported."""
    name = f"{safe_name(title, max_len=50)} {object_id.replace('-', '')}"
    index.claim_name("", name.casefold())
    index.place(object_id, name + _EXTENSIONS.get(kind, ".md"), name)
    index.add_problem(object_id, kind, f"placed at the top level: {reason}")


def _cycle_members(index: ExportIndex) -> list[tuple[str, str, str]]:
    """One object of each parent-chain cycle among the objects layout is stuck on (id, kind, title);
    objects waiting on a parent that is not fetched yet are not stuck for good."""
    waiting_on = dict(index.stuck(_STUCK_SCAN))
    breakers: dict[str, None] = {}
    for start in waiting_on:
        chain: set[str] = set()
        node = start
        while node in waiting_on and node not in chain:
            chain.add(node)
            node = waiting_on[node]
        if node in chain and not any(member in breakers for member in chain):
            breakers[node] = None
    found = []
    for object_id in breakers:
        obj = index.get(object_id)
        if obj is not None:
            found.append((obj.id, obj.kind, obj.title))
    return found
