"""`ReadModel`: the API objects of the workspace, as the server's `Backend` reads them.

Page content is built on demand from `(seed, page index, version)` and kept in a bounded LRU;
file URLs are signed at read time, never cached.
"""

import random
import re
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal
from urllib.parse import unquote

from notion_sync.emulator.content import (
    JSON,
    ORDINARY,
    SHOWCASE,
    PagePlan,
    PageTree,
    TreeBuilder,
    build_tree,
    huge_sections,
    rich,
    text,
)
from notion_sync.emulator.filters import IdSequence, timestamp_filter, timestamp_sort
from notion_sync.emulator.generate import DELETED, ROW, TOP, TRASHED, minutes_iso
from notion_sync.emulator.ids import Kind
from notion_sync.emulator.overlay import Overlay
from notion_sync.emulator.properties import RowMeta, property_item
from notion_sync.emulator.shape import WorkspaceShape

NOT_ALNUM = re.compile(r"[\W_]")  # \w is exactly str.isalnum() plus "_"


class ReadModel(Overlay):
    """Fresh API JSON for every read (see docs/emulator.md), with the caches that make it cheap."""

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        super().__init__(seed, pages, shape)
        self._trees: OrderedDict[int, PageTree] = OrderedDict()
        # derived orders, cleared by every mutation
        self._search_cache: dict[str | None, array[int]] = {}
        self._query_cache: OrderedDict[tuple[int, str], list[int]] = OrderedDict()

    # --- page content -------------------------------------------------------------------------

    def _tree(self, index: int) -> PageTree:
        tree = self._trees.get(index)
        if tree is not None:
            self._trees.move_to_end(index)
            return tree
        tree = self._build_tree(index)
        self._trees[index] = tree
        if len(self._trees) > self.shape.lru_pages:
            self._trees.popitem(last=False)
        return tree

    def _forget(self, *indexes: int) -> None:
        """Drop cached trees and derived orders after a mutation."""
        for index in indexes:
            self._trees.pop(index, None)
        self._search_cache.clear()
        self._query_cache.clear()

    def _plan_for(self, index: int) -> PagePlan:
        rng = random.Random(f"plan-{self.seed}-{index}")
        if index == self.showcase and index < self.n_tree:
            sections = SHOWCASE
        elif index == self.huge:
            sections = (huge_sections(self.shape.huge_page_blocks),)
        elif self.flags[index] & ROW:
            sections = tuple(rng.sample(ORDINARY, rng.randint(0, 2)))
        else:
            sections = tuple(rng.sample(ORDINARY, rng.randint(1, 4)))
        refs = [
            ("child_page", self.page_id(c), self.page_title(c))
            for c in self.child_pages(index)
            if self._live(c) and not self.flags[c] & TRASHED  # unshared children keep their block
        ]
        refs += [
            ("child_database", self.database_id(db), self.database_title(db))
            for db in self.child_dbs.get(index, [])
        ]
        version = self._versions.get(index, 0)
        return PagePlan(
            sections=sections,
            child_refs=tuple(refs),
            version=version,
            edited=minutes_iso(self.etime[index]) if version else None,
            appended=tuple(self._appended.get(index, ())),
            deleted=frozenset(self._deleted_blocks.get(index, ())),
        )

    def _build_tree(self, index: int) -> PageTree:
        created = minutes_iso(self.ctime[index])
        builder = TreeBuilder(self, index, (created, created), self._author(index))
        return build_tree(builder, random.Random(f"content-{self.seed}-{index}"), self._plan_for(index))

    def _materialize(self, tree: PageTree, block: int) -> JSON:
        """A fresh top-level dict; file objects are signed now (nested values are shared, read-only)."""
        out = dict(tree.blocks[block])
        slot = tree.files.get(block)
        if slot is not None:
            holder = out
            for key in slot.path[:-1]:
                holder[key] = dict(holder[key])
                holder = holder[key]
            last = slot.path[-1]
            kept = {k: v for k, v in holder[last].items() if k not in ("type", "file", "external")}
            holder[last] = kept | self.file_object(slot.key, slot.external)
        return out

    # --- objects ------------------------------------------------------------------------------

    def _parent_ref(self, index: int) -> JSON:
        parent = self.parent[index]
        if parent == TOP:
            return {"type": "workspace", "workspace": True}
        if parent >= 0:
            return {"type": "page_id", "page_id": self.page_id(parent)}
        k = -parent - 2
        return {
            "type": "data_source_id",
            "data_source_id": self._source_id(k),
            "database_id": self.database_id(self.ds_db[k]),
        }

    def _decoration(self, tag: str, index: int) -> tuple[JSON | None, JSON | None]:
        """(icon, cover) for a page or database: emoji, external or Notion-hosted files, or none."""
        h = (index * 2246822519 + self.seed) % 20
        icon: JSON | None = None
        if h < 12:
            icon = {"type": "emoji", "emoji": "📄🚀💡🧪✅📌"[h % 6]}
        elif h < 16:
            icon = self.file_object(self.file_key(f"{tag}{index}i", "icon.png"), external=h < 14)
        cover = None
        if h % 7 == 0:
            cover = self.file_object(self.file_key(f"{tag}{index}c", "cover.png"), external=h % 2 == 0)
        return icon, cover

    def _page_url(self, index: int) -> str:
        slug = "-".join(NOT_ALNUM.sub(" ", self.page_title(index)).split())
        hex_id = self.page_id(index).replace("-", "")
        return f"https://app.notion.com/p/{slug}-{hex_id}" if slug else f"https://app.notion.com/p/{hex_id}"

    def page(self, page_id: str) -> JSON | None:
        index = self._page_index(page_id)
        if index is None or not self._visible(index):
            return None
        return self._page_object(index)

    def _page_object(self, index: int) -> JSON:
        trashed = self._in_trash(index)
        icon, cover = self._decoration("p", index)
        return {
            "object": "page",
            "id": self.page_id(index),
            "created_time": minutes_iso(self.ctime[index]),
            "last_edited_time": minutes_iso(self.etime[index]),
            "created_by": self._author(index),
            "last_edited_by": self._author(index + self._versions.get(index, 0)),
            "cover": cover,
            "icon": icon,
            "parent": self._parent_ref(index),
            "in_trash": trashed,
            "is_archived": trashed,
            "is_locked": index % 50 == 7,
            "properties": self._properties(index, capped=True),
            "url": self._page_url(index),
            "public_url": None,
            "archived": trashed,
        }

    def _properties(self, index: int, capped: bool) -> JSON:
        parent = self.parent[index]
        if parent >= TOP:
            return {"title": {"id": "title", "type": "title", "title": rich(self.page_title(index))}}
        meta = RowMeta(
            version=self._versions.get(index, 0),
            created=minutes_iso(self.ctime[index]),
            edited=minutes_iso(self.etime[index]),
            creator=self.user_object(index % self.n_users),
            editor=self.user_object((index + self._versions.get(index, 0)) % self.n_users),
        )
        return self.schemas.values(index, self._sources[-parent - 2], meta, capped)

    def database(self, database_id: str) -> JSON | None:
        db = self._decode(database_id, Kind.DATABASE)
        if db is None or not self._db_visible(db):
            return None
        home = self.db_parent[db]
        trashed = self._in_trash(home)
        icon, cover = self._decoration("d", db)
        return {
            "object": "database",
            "id": self.database_id(db),
            "title": rich(self.database_title(db)),
            "description": [text("A generated database with <every> *property* type.")],
            "parent": {"type": "page_id", "page_id": self.page_id(home)},
            "is_inline": bool(self.db_inline[db]),
            "in_trash": trashed,
            "is_locked": False,
            "created_time": minutes_iso(self.db_ctime[db]),
            "last_edited_time": minutes_iso(self.db_ctime[db] + 5),
            "data_sources": [
                {"id": self._source_id(k), "name": self.source_title(k)} for k in self.db_sources[db]
            ],
            "icon": icon,
            "cover": cover,
            "url": "https://app.notion.com/p/" + self.database_id(db).replace("-", ""),
            "public_url": None,
            "archived": trashed,
        }

    def data_source(self, data_source_id: str) -> JSON | None:
        k = self._decode(data_source_id, Kind.DATA_SOURCE)
        if k is None or k >= len(self.ds_count) or not self._db_visible(self.ds_db[k]):
            return None
        return self._source_object(k)

    def _source_object(self, k: int) -> JSON:
        db = self.ds_db[k]
        home = self.db_parent[db]
        trashed = self._in_trash(home)
        icon, cover = self._decoration("s", k)
        author = self._author(db)
        return {
            "object": "data_source",
            "id": self._source_id(k),
            "cover": cover,
            "icon": icon,
            "created_time": minutes_iso(self.db_ctime[db]),
            "created_by": author,
            "last_edited_by": author,
            "last_edited_time": minutes_iso(self.db_ctime[db] + 5),
            "title": rich(self.source_title(k)),
            "description": [],
            "is_inline": bool(self.db_inline[db]),
            "properties": self.schemas.schema(self._sources[k]),
            "parent": {"type": "database_id", "database_id": self.database_id(db)},
            "database_parent": {"type": "page_id", "page_id": self.page_id(home)},
            "url": "https://app.notion.com/p/" + self.database_id(db).replace("-", ""),
            "public_url": None,
            "in_trash": trashed,
            "archived": trashed,
        }

    def _reference_block(self, index: int | None, db: int | None) -> JSON:
        """The child_page / child_database block whose id is the page's or database's own id."""
        if index is not None:
            object_id, kind, title = self.page_id(index), "child_page", self.page_title(index)
            owner, parent, trashed = index, self._parent_ref(index), self._in_trash(index)
        else:
            assert db is not None
            home = self.db_parent[db]
            object_id, kind, title = self.database_id(db), "child_database", self.database_title(db)
            owner, parent, trashed = (
                home,
                {"type": "page_id", "page_id": self.page_id(home)},
                self._in_trash(home),
            )
        return {
            "object": "block",
            "id": object_id,
            "parent": parent,
            "created_time": minutes_iso(self.ctime[owner]),
            "last_edited_time": minutes_iso(self.etime[owner]),
            "created_by": self._author(owner),
            "last_edited_by": self._author(owner),
            "has_children": kind == "child_page",
            "archived": trashed,
            "in_trash": trashed,
            "type": kind,
            kind: {"title": title},
        }

    def _locate(self, block_id: str, shared: bool = True) -> tuple[Kind, int, int] | None:
        """(kind, page or database index, block index) of a visible page, database or block
        (with `shared=False`, of a live one, shared with the integration or not)."""
        decoded = self.codec.decode(block_id)
        if decoded is None:
            return None
        kind, a, b = decoded
        visible = self._visible if shared else self._live
        if kind == Kind.DATABASE:
            return (kind, a, 0) if self._db_visible(a, visible) else None
        if kind not in (Kind.PAGE, Kind.BLOCK) or a >= self.n_pages or not visible(a):
            return None
        if kind == Kind.BLOCK:
            blocks = self._tree(a).blocks
            if not 0 < b < len(blocks) or not blocks[b]:
                return None
        return kind, a, b

    def block(self, block_id: str) -> JSON | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return self._reference_block(None, a)
        if kind == Kind.PAGE:
            return self._reference_block(a, None)
        return self._materialize(self._tree(a), b)

    def block_children(self, block_id: str) -> list[JSON] | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return []
        tree = self._tree(a)
        b = tree.alias.get(b, b)  # a duplicate synced block lists its original's children
        return [self._materialize(tree, child) for child in tree.children.get(b, ())]

    # --- users and comments -------------------------------------------------------------------

    def users(self) -> list[JSON]:
        return [dict(person) for person in self._people] + [dict(self.bot_user)]

    def user(self, user_id: str) -> JSON | None:
        index = self._decode(user_id, Kind.USER)
        if index is None or index > self.n_users:
            return None
        return dict(self.bot_user if index == 0 else self.user_object(index - 1))

    def comments(self, block_id: str) -> list[JSON] | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return []
        count = (a % 4 == 0) + (a % 8 == 0) if kind == Kind.PAGE else int((a * 31 + b) % 13 == 0)
        parent = (
            {"type": "page_id", "page_id": self.page_id(a)}
            if kind == Kind.PAGE
            else {"type": "block_id", "block_id": self.codec.encode(Kind.BLOCK, a, b)}
        )
        return [self._comment(a, b, n, parent) for n in range(count)]

    def _comment(self, page: int, block: int, n: int, parent: JSON) -> JSON:
        stamp = minutes_iso(self.ctime[page] + 10 + n)
        words = ["Looks good", "<script>alert('c')</script> *really*?", "See the spec"][
            (page + block + n) % 3
        ]
        return {
            "object": "comment",
            "id": self.codec.encode(Kind.COMMENT, page, block * 4 + n),
            "parent": parent,
            "discussion_id": self.codec.encode(Kind.DISCUSSION, page, block),
            "created_time": stamp,
            "last_edited_time": stamp,
            "created_by": self._author(page + n),
            "rich_text": [text(f"{words} "), text("(comment)", "italic")],
        }

    # --- property items -----------------------------------------------------------------------

    def property_item(self, page_id: str, property_id: str) -> JSON | list[JSON] | None:
        index = self._page_index(page_id)
        if index is None or not self._visible(index):
            return None
        props = self._properties(index, capped=False)
        for name, prop in props.items():
            if property_id in (prop["id"], unquote(prop["id"]), name):
                return property_item(prop)
        return None

    # --- search and query ---------------------------------------------------------------------

    def _searchable(self, index: int) -> bool:
        return self._visible(index) and not self._in_trash(index)

    def search(self, kind: Literal["page", "data_source"] | None, descending: bool) -> Sequence[str]:
        """Visible, untrashed pages (rows included) and data sources by (last_edited_time, id)."""
        entries = self._search_cache.get(kind)
        if entries is None:
            entries = self._search_order(kind)
            self._search_cache[kind] = entries
        return IdSequence(self.page_id, self._source_id, entries, reverse=descending)

    def _search_order(self, kind: str | None) -> "array[int]":
        number, etime = self.codec.number, self.etime
        keyed: list[tuple[int, int, int]] = []
        if kind in (None, "page"):
            keyed += [(etime[i], number(Kind.PAGE, i), i) for i in range(self.n_pages) if self._searchable(i)]
        if kind in (None, "data_source"):
            for k in range(len(self.ds_count)):
                db = self.ds_db[k]
                if self._db_visible(db) and not self._in_trash(self.db_parent[db]):
                    keyed.append((self.db_ctime[db] + 5, number(Kind.DATA_SOURCE, k), -k - 1))
        keyed.sort()
        return array("q", (entry for _, _, entry in keyed))

    def search_result(self, object_id: str) -> JSON:
        decoded = self.codec.decode(object_id)
        if decoded is not None and decoded.kind == Kind.DATA_SOURCE:
            return self._source_object(decoded.a)
        assert decoded is not None and decoded.kind == Kind.PAGE, object_id
        return self._page_object(decoded.a)

    def query(
        self, data_source_id: str, filter: JSON | None, sorts: list[JSON] | None
    ) -> Sequence[str] | None:
        k = self._decode(data_source_id, Kind.DATA_SOURCE)
        if k is None or k >= len(self.ds_count) or not self._db_visible(self.ds_db[k]):
            return None
        accept = timestamp_filter(filter) if filter else None
        order = timestamp_sort(sorts or [], self.ctime, self.etime)
        cache_key = (k, repr((filter, sorts)))
        rows = self._query_cache.get(cache_key)
        if rows is None:
            start = self.ds_start[k]
            rows = [
                i
                for i in range(start, start + self.ds_count[k])
                if self._searchable(i) and (accept is None or accept(self.ctime[i], self.etime[i]))
            ]
            if order is not None:
                rows.sort(key=order)
            self._query_cache[cache_key] = rows
            if len(self._query_cache) > 32:
                self._query_cache.popitem(last=False)
        return IdSequence(self.page_id, self._source_id, rows)

    # --- summary ------------------------------------------------------------------------------

    def summary(self) -> JSON:
        deleted = sum(1 for i in self._flagged if self.flags[i] & DELETED)
        return {
            "seed": self.seed,
            "pages": self.n_pages - deleted,
            "tree_pages": self.n_tree,
            "rows": sum(self.ds_count),
            "databases": len(self.db_sources),
            "data_sources": len(self.ds_count),
            "largest_data_source_rows": max(self.ds_count, default=0),
            "private_pages": len(self.private),
            "unshared_pages": sum(1 for shared in self._access.values() if not shared),
            "users": self.n_users + 1,
            "max_depth": max(self.depth, default=0),
            "huge_page_blocks": self.shape.huge_page_blocks if self.huge is not None else 0,
        }
