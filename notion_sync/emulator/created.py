"""`CreatedModel`: the objects created through the write endpoints (pages, blocks, databases, data
sources, comments, file uploads), kept beside the generated workspace and answered by every read in
the shapes the generated objects have.

Created objects live in dicts keyed by id (`Node`s): a restore creates thousands, not millions. Their
ids come from the seed's `IdCodec` with indexes from `CREATED_BASE` up, which the generated layers
never decode as theirs (their indexes stay below the page, database and source counts).
"""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload
from urllib.parse import unquote

from notion_sync.emulator.backend import JSON
from notion_sync.emulator.filters import timestamp_filter, timestamp_sort
from notion_sync.emulator.generate import BASE, PRIVATE, minutes_iso
from notion_sync.emulator.ids import Kind
from notion_sync.emulator.properties import property_item
from notion_sync.emulator.reads import ReadModel
from notion_sync.emulator.shape import WorkspaceShape

CREATED_BASE = 0x8000_0000  # first index of created objects in ids
UPLOAD_KEY_PREFIX = "upload-"
CAPPED_ITEMS = 25  # page objects carry at most 25 relations / people / rich text items
CAPPED_TYPES = ("relation", "people", "title", "rich_text")
NOT_ALNUM = re.compile(r"[\W_]")
EMPTY_ROOT_TITLE = "Restore target"


@dataclass
class Node:
    """A created page, block, database or data source; `data` holds its normalised content."""

    id: str
    object: Literal["page", "block", "database", "data_source"]
    parent_type: str  # workspace, page_id, block_id, database_id, data_source_id
    parent_id: str
    created: int  # minutes since BASE, as generated timestamps
    edited: int
    data: JSON
    in_trash: bool = False


@dataclass
class Upload:
    """A file upload: pending until its bytes are sent, then usable in blocks, properties, icons."""

    id: str
    filename: str
    content_type: str
    created: float
    status: str = "pending"
    data: bytes = b""

    @property
    def key(self) -> str:
        return f"{UPLOAD_KEY_PREFIX}{self.id.replace('-', '')}/{self.filename.replace('/', '_') or 'file'}"


@dataclass
class Counters:
    """What the write endpoints created (trashed objects included), for GET /_emulator/workspace."""

    pages: int = 0
    blocks: int = 0
    databases: int = 0
    data_sources: int = 0
    comments: int = 0
    file_uploads: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Chain(Sequence[str]):
    """Two id sequences one after the other, sliced without being copied."""

    def __init__(self, first: Sequence[str], second: Sequence[str]) -> None:
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self))
            cut = len(self.first)
            head = list(self.first[start : min(stop, cut)]) if start < cut else []
            tail = list(self.second[max(start - cut, 0) : max(stop - cut, 0)])
            return head + tail
        if index < 0:
            index += len(self)
        return self.first[index] if index < len(self.first) else self.second[index - len(self.first)]

    def __iter__(self) -> Iterator[str]:
        yield from self.first
        yield from self.second


def plain(rich_text: list[JSON]) -> str:
    return "".join(str(part.get("plain_text", "")) for part in rich_text)


class CreatedModel(ReadModel):
    """The generated workspace plus what the write endpoints created, read as one workspace.

    `pages=0` starts an empty workspace: the one generated page is hidden and a single created
    page, `EMPTY_ROOT_TITLE`, is the root the integration can edit.
    """

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        super().__init__(seed, max(pages, 1), shape)
        self.clock: Callable[[], float] = time.time
        self.nodes: dict[str, Node] = {}
        self.order: dict[str, list[str]] = {}  # parent id -> child ids (blocks, pages, rows)
        self.created_comments: dict[str, list[JSON]] = {}  # page or block id -> comments
        self.discussions: dict[str, str] = {}  # discussion id -> the page or block it is on
        self.uploads: dict[str, Upload] = {}
        self.counters = Counters()
        self._next_index = CREATED_BASE
        self._created_search: dict[str | None, list[str]] = {}
        self.empty = pages == 0
        self.root_page_id: str | None = None
        if self.empty:
            self.flags[0] |= PRIVATE  # the generated page is nobody's: 404, not searched
            self.root_page_id = self.new_id(Kind.PAGE)
            title = [self._plain_text_item(EMPTY_ROOT_TITLE)]
            self.add_node(
                Node(
                    self.root_page_id,
                    "page",
                    "workspace",
                    "",
                    self.minutes(),
                    self.minutes(),
                    {"title": title, "icon": None, "cover": None},
                )
            )
            self.counters.pages = 0  # the root is the workspace's, not the client's

    # --- bookkeeping ----------------------------------------------------------------------------

    @staticmethod
    def _plain_text_item(content: str) -> JSON:
        annotations = {
            "bold": False,
            "italic": False,
            "strikethrough": False,
            "underline": False,
            "code": False,
            "color": "default",
        }
        return {
            "type": "text",
            "text": {"content": content, "link": None},
            "annotations": annotations,
            "plain_text": content,
            "href": None,
        }

    def minutes(self) -> int:
        """Minutes since BASE, now: Notion stamps created and edited times to the minute."""
        return int(self.clock() - BASE) // 60

    def new_id(self, kind: Kind) -> str:
        index = self._next_index
        self._next_index += 1
        return self.codec.encode(kind, index)

    def add_node(self, node: Node, position: int | None = None) -> None:
        """Store a node and place it among its parent's children (at the end by default)."""
        self.nodes[node.id] = node
        siblings = self.sibling_list(node.parent_id) if node.parent_type != "workspace" else None
        if siblings is not None:
            siblings.insert(len(siblings) if position is None else position, node.id)
        counted = {"page": "pages", "block": "blocks", "database": "databases", "data_source": "data_sources"}
        name = counted[node.object]
        setattr(self.counters, name, getattr(self.counters, name) + 1)
        if node.object == "block":
            kind = str(node.data["type"])
            self.counters.by_kind[kind] = self.counters.by_kind.get(kind, 0) + 1
        self.changed()

    def sibling_list(self, parent_id: str) -> list[str]:
        """The stored child order of a parent; a generated parent's own children are listed first."""
        found = self.order.get(parent_id)
        if found is None:
            found = []
            if parent_id not in self.nodes:
                generated = super().block_children(parent_id)
                found = [block["id"] for block in generated or []]
            self.order[parent_id] = found
        return found

    def changed(self) -> None:
        self._created_search.clear()

    def touch(self, object_id: str) -> None:
        """Stamp an edited object and the page whose content it is (a block edit edits its page)."""
        now = self.minutes()
        current, node = object_id, self.nodes.get(object_id)
        while node is not None:
            node.edited = max(node.edited, now)
            if node.object != "block":
                break
            current, node = node.parent_id, self.nodes.get(node.parent_id)
        index = self._page_index(current) if node is None else None
        if index is not None:  # a generated page whose content grew
            self.etime[index] = max(self.etime[index], now)
            self._forget()
        self.changed()

    # --- what the integration can see ------------------------------------------------------------

    def _chain(self, object_id: str) -> tuple[list[Node], str]:
        """The created nodes from `object_id` up, and the generated (or workspace) id above them."""
        nodes: list[Node] = []
        current = object_id
        while current in self.nodes and len(nodes) < 10_000:
            node = self.nodes[current]
            nodes.append(node)
            current = node.parent_id
        return nodes, current

    def readable(self, object_id: str) -> bool:
        """A created object under a generated page, block or database the integration can read."""
        nodes, top = self._chain(object_id)
        if not nodes:
            return False
        return top == "" or self._locate(top) is not None

    def trashed(self, object_id: str) -> bool:
        nodes, top = self._chain(object_id)
        if any(node.in_trash for node in nodes):
            return True
        decoded = self.codec.decode(top) if top else None
        return decoded is not None and decoded.kind == Kind.PAGE and self._in_trash(decoded.a)

    def exists(self, object_id: str) -> bool:
        """Readable: a created object, or a generated page, block or database."""
        if object_id in self.nodes:
            return self.readable(object_id)
        return self._locate(object_id) is not None

    # --- rendering --------------------------------------------------------------------------------

    def author(self) -> JSON:
        return {"object": "user", "id": self.bot_user["id"]}

    def signed(self, value: JSON | None) -> JSON | None:
        """A stored file object with a fresh signed URL (uploads are stored by key)."""
        if value is None or value.get("type") != "file" or "key" not in value.get("file", {}):
            return value
        rest = {k: v for k, v in value.items() if k not in ("type", "file")}
        return rest | self.file_object(value["file"]["key"], external=False)

    def parent_ref(self, node: Node) -> JSON:
        if node.parent_type == "workspace":
            return {"type": "workspace", "workspace": True}
        if node.parent_type == "data_source_id":
            source = self.nodes[node.parent_id]
            return {
                "type": "data_source_id",
                "data_source_id": node.parent_id,
                "database_id": source.parent_id,
            }
        return {"type": node.parent_type, node.parent_type: node.parent_id}

    def _url(self, title: str, object_id: str) -> str:
        slug = "-".join(NOT_ALNUM.sub(" ", title).split())
        hex_id = object_id.replace("-", "")
        return f"https://app.notion.com/p/{slug}-{hex_id}" if slug else f"https://app.notion.com/p/{hex_id}"

    def created_title(self, node: Node) -> str:
        if node.object == "page":
            if node.parent_type != "data_source_id":
                return plain(node.data["title"])
            source = self.nodes[node.parent_id]
            for name, conf in source.data["properties"].items():
                if conf["type"] == "title":
                    return plain(node.data["properties"].get(name, {}).get("title", []))
            return ""
        return plain(node.data.get("title", []))

    def render_page(self, node: Node, capped: bool = True) -> JSON:
        trashed = self.trashed(node.id)
        return {
            "object": "page",
            "id": node.id,
            "created_time": minutes_iso(node.created),
            "last_edited_time": minutes_iso(node.edited),
            "created_by": self.author(),
            "last_edited_by": self.author(),
            "cover": self.signed(node.data.get("cover")),
            "icon": self.signed(node.data.get("icon")),
            "parent": self.parent_ref(node),
            "in_trash": trashed,
            "is_archived": trashed,
            "is_locked": False,
            "properties": self.page_properties(node, capped),
            "url": self._url(self.created_title(node), node.id),
            "public_url": None,
            "archived": trashed,
        }

    def page_properties(self, node: Node, capped: bool) -> JSON:
        if node.parent_type != "data_source_id":
            return {"title": {"id": "title", "type": "title", "title": node.data["title"]}}
        schema: JSON = self.nodes[node.parent_id].data["properties"]
        stored: JSON = node.data["properties"]
        out: JSON = {}
        for name, conf in schema.items():
            kind = conf["type"]
            value = stored[name][kind] if name in stored else self.default_value(node, conf)
            prop: JSON = {"id": conf["id"], "type": kind, kind: value}
            if kind == "files":
                prop["files"] = [self.signed(item) for item in value]
            if kind in CAPPED_TYPES and capped and len(value) > CAPPED_ITEMS:
                prop[kind] = value[:CAPPED_ITEMS]
            if kind == "relation":
                prop["has_more"] = capped and len(value) > CAPPED_ITEMS
            out[name] = prop
        return out

    def default_value(self, node: Node, conf: JSON) -> Any:
        """The value of a property the request did not set, or of a computed one."""
        kind = conf["type"]
        if kind in ("title", "rich_text", "multi_select", "people", "files", "relation"):
            return []
        if kind == "checkbox":
            return False
        if kind in ("created_time", "last_edited_time"):
            return minutes_iso(node.created if kind == "created_time" else node.edited)
        if kind in ("created_by", "last_edited_by"):
            return self.author()
        if kind == "formula":
            return {"type": "string", "string": None}
        if kind == "rollup":
            return {"type": "array", "array": [], "function": conf["rollup"].get("function", "show_original")}
        if kind == "unique_id":
            rows = self.order.get(node.parent_id, [])
            number = rows.index(node.id) + 1 if node.id in rows else None
            return {"prefix": conf["unique_id"].get("prefix"), "number": number}
        if kind == "verification":
            return {"state": "unverified", "verified_by": None, "date": None}
        if kind == "button":
            return {}
        return None

    def render_block(self, node: Node) -> JSON:
        kind = str(node.data["type"])
        content = dict(node.data[kind])
        if kind in ("image", "video", "audio", "file", "pdf"):
            content = self.signed(content) or content
        trashed = self.trashed(node.id)
        return {
            "object": "block",
            "id": node.id,
            "parent": self.parent_ref(node),
            "created_time": minutes_iso(node.created),
            "last_edited_time": minutes_iso(node.edited),
            "created_by": self.author(),
            "last_edited_by": self.author(),
            "has_children": self.has_children(node),
            "archived": trashed,
            "in_trash": trashed,
            "type": kind,
            kind: content,
        }

    def reference_block(self, node: Node) -> JSON:
        """The child_page / child_database block of a created page or database (its own id)."""
        kind = "child_page" if node.object == "page" else "child_database"
        trashed = self.trashed(node.id)
        return {
            "object": "block",
            "id": node.id,
            "parent": self.parent_ref(node),
            "created_time": minutes_iso(node.created),
            "last_edited_time": minutes_iso(node.edited),
            "created_by": self.author(),
            "last_edited_by": self.author(),
            "has_children": kind == "child_page",
            "archived": trashed,
            "in_trash": trashed,
            "type": kind,
            kind: {"title": self.created_title(node)},
        }

    def children_source(self, node: Node) -> str:
        """Whose children a block lists: a duplicate synced block lists its original's."""
        if node.object == "block" and node.data["type"] == "synced_block":
            source = node.data["synced_block"]["synced_from"]
            if source is not None and source["block_id"] in self.nodes:
                return str(source["block_id"])
        return node.id

    def has_children(self, node: Node) -> bool:
        kids = self.order.get(self.children_source(node), [])
        return any(not self.nodes[kid].in_trash for kid in kids if kid in self.nodes)

    def render(self, node: Node) -> JSON:
        if node.object == "page":
            return self.render_page(node)
        if node.object == "block":
            return self.render_block(node)
        if node.object == "database":
            return self.render_database(node)
        return self.render_source(node)

    def render_database(self, node: Node) -> JSON:
        trashed = self.trashed(node.id)
        data = node.data
        return {
            "object": "database",
            "id": node.id,
            "title": data["title"],
            "description": data["description"],
            "parent": self.parent_ref(node),
            "is_inline": data["is_inline"],
            "in_trash": trashed,
            "is_locked": False,
            "created_time": minutes_iso(node.created),
            "last_edited_time": minutes_iso(node.edited),
            "data_sources": [
                {"id": ds, "name": plain(self.nodes[ds].data["title"])} for ds in self.order.get(node.id, [])
            ],
            "icon": self.signed(data["icon"]),
            "cover": self.signed(data["cover"]),
            "url": "https://app.notion.com/p/" + node.id.replace("-", ""),
            "public_url": None,
            "archived": trashed,
        }

    def render_source(self, node: Node) -> JSON:
        database = self.nodes[node.parent_id]
        trashed = self.trashed(node.id)
        return {
            "object": "data_source",
            "id": node.id,
            "cover": self.signed(database.data["cover"]),
            "icon": self.signed(database.data["icon"]),
            "created_time": minutes_iso(node.created),
            "created_by": self.author(),
            "last_edited_by": self.author(),
            "last_edited_time": minutes_iso(node.edited),
            "title": node.data["title"],
            "description": [],
            "is_inline": database.data["is_inline"],
            "properties": {name: dict(conf) for name, conf in node.data["properties"].items()},
            "parent": {"type": "database_id", "database_id": database.id},
            "database_parent": self.parent_ref(database),
            "url": "https://app.notion.com/p/" + database.id.replace("-", ""),
            "public_url": None,
            "in_trash": trashed,
            "archived": trashed,
        }

    def _found(self, object_id: str, kind: str) -> Node | None:
        node = self.nodes.get(object_id)
        if node is None or node.object != kind or not self.readable(object_id):
            return None
        return node

    # --- the reads, over both layers -------------------------------------------------------------

    def page(self, page_id: str) -> JSON | None:
        node = self._found(page_id, "page")
        return self.render_page(node) if node is not None else super().page(page_id)

    def database(self, database_id: str) -> JSON | None:
        node = self._found(database_id, "database")
        return self.render_database(node) if node is not None else super().database(database_id)

    def data_source(self, data_source_id: str) -> JSON | None:
        node = self._found(data_source_id, "data_source")
        return self.render_source(node) if node is not None else super().data_source(data_source_id)

    def _grown(self, block: JSON) -> JSON:
        """A generated block that got created children: it has children now."""
        kids = self.order.get(block["id"])
        if (
            kids
            and not block["has_children"]
            and any(k in self.nodes and not self.nodes[k].in_trash for k in kids)
        ):
            return {**block, "has_children": True}
        return block

    def block(self, block_id: str) -> JSON | None:
        node = self.nodes.get(block_id)
        if node is None:
            found = super().block(block_id)
            return self._grown(found) if found is not None and self.order else found
        if not self.readable(block_id) or node.object == "data_source":
            return None
        return self.render_block(node) if node.object == "block" else self.reference_block(node)

    def block_children(self, block_id: str) -> list[JSON] | None:
        node = self.nodes.get(block_id)
        if node is None:
            generated = super().block_children(block_id)
            if generated is None or not self.order:
                return generated
            if block_id not in self.order:
                return [self._grown(block) for block in generated]
            return self._merged(generated, self.order[block_id])
        if not self.readable(block_id) or node.object == "data_source":
            return None
        if node.object == "database":
            return []
        return [
            self.render_block(kid) if kid.object == "block" else self.reference_block(kid)
            for kid in (self.nodes[i] for i in self.order.get(self.children_source(node), []))
            if not kid.in_trash and kid.object != "data_source"
        ]

    def _merged(self, generated: list[JSON], order: list[str]) -> list[JSON]:
        """Generated children in the stored order with created ones between them; generated blocks
        gone since are dropped, generated blocks added since (mutations) go last."""
        by_id = {block["id"]: block for block in generated}
        out: list[JSON] = []
        for object_id in order:
            node = self.nodes.get(object_id)
            if node is None:
                block = by_id.pop(object_id, None)
                if block is not None:
                    out.append(self._grown(block))
            elif not node.in_trash:
                out.append(self.render_block(node) if node.object == "block" else self.reference_block(node))
        return out + [self._grown(block) for block in by_id.values()]

    def comments(self, block_id: str) -> list[JSON] | None:
        base = [] if block_id in self.nodes and self.readable(block_id) else super().comments(block_id)
        if base is None:
            return None
        return base + [dict(comment) for comment in self.created_comments.get(block_id, [])]

    def property_item(self, page_id: str, property_id: str) -> JSON | list[JSON] | None:
        node = self._found(page_id, "page")
        if node is None:
            return super().property_item(page_id, property_id)
        for name, prop in self.page_properties(node, capped=False).items():
            if property_id in (prop["id"], unquote(prop["id"]), name):
                return property_item(prop)
        return None

    def search(self, kind: Literal["page", "data_source"] | None, descending: bool) -> Sequence[str]:
        created = self._created_search.get(kind)
        if created is None:
            wanted = ("page", "data_source") if kind is None else (kind,)
            found = [n for n in self.nodes.values() if n.object in wanted and self.readable(n.id)]
            keyed = sorted((n.edited, n.id) for n in found if not self.trashed(n.id))
            created = self._created_search[kind] = [object_id for _, object_id in keyed]
        generated = super().search(kind, descending)
        return Chain(created[::-1], generated) if descending else Chain(generated, created)

    def search_result(self, object_id: str) -> JSON:
        node = self.nodes.get(object_id)
        return self.render(node) if node is not None else super().search_result(object_id)

    def query(
        self, data_source_id: str, filter: JSON | None, sorts: list[JSON] | None
    ) -> Sequence[str] | None:
        if self._found(data_source_id, "data_source") is None:
            return super().query(data_source_id, filter, sorts)
        accept = timestamp_filter(filter) if filter else None
        rows = [
            self.nodes[row]
            for row in self.order.get(data_source_id, [])
            if not self.trashed(row)
            and (accept is None or accept(self.nodes[row].created, self.nodes[row].edited))
        ]
        order = timestamp_sort(
            sorts or [], array("I", (r.created for r in rows)), array("I", (r.edited for r in rows))
        )
        positions = sorted(range(len(rows)), key=order) if order is not None else range(len(rows))
        return [rows[i].id for i in positions]

    def file_bytes(self, key: str) -> bytes | None:
        if key.startswith(UPLOAD_KEY_PREFIX):
            hex_id = key.removeprefix(UPLOAD_KEY_PREFIX).split("/", 1)[0]
            upload = next((u for u in self.uploads.values() if u.id.replace("-", "") == hex_id), None)
            return upload.data if upload is not None and upload.key == key else None
        return super().file_bytes(key)

    def summary(self) -> JSON:
        out = super().summary()
        live = [n for n in self.nodes.values() if not self.trashed(n.id)]
        created_pages = sum(1 for n in live if n.object == "page")
        out["pages"] += created_pages - (1 if self.empty else 0)
        out["tree_pages"] -= 1 if self.empty else 0
        out["created"] = {
            "pages": self.counters.pages,
            "blocks": self.counters.blocks,
            "databases": self.counters.databases,
            "data_sources": self.counters.data_sources,
            "comments": self.counters.comments,
            "file_uploads": self.counters.file_uploads,
            "blocks_by_type": dict(sorted(self.counters.by_kind.items())),
            "live_pages": created_pages,
            "live_blocks": sum(1 for n in live if n.object == "block"),
            "trashed": len(self.nodes) - len(live),
        }
        out["root_page_id"] = self.root_page_id
        return out
