"""Blocks as Notion returns them, turned into the bodies Notion accepts to create them again.

Pure functions over the JSON a snapshot saved (`json/pages/<id>.json`: each block with the
`children` the export added): no I/O, no Temporal. What the API cannot create (`unsupported` blocks,
link previews, templates, a file whose copy is missing...) becomes a grey callout saying what stood
there, and a `Loss` for the restore report: a restored page never has a silent gap.

Ids are remapped through `Targets`: links, mentions and synced-block references to objects inside
the restored set point at their new copies; those outside it keep their old ids (the pages still
exist in the source workspace) or, for users the target workspace does not know, become their name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Notion's limits on one create request (API reference, "Request limits").
MAX_CHILDREN = 100
MAX_TEXT = 2000
MAX_RICH_TEXT_ITEMS = 100

# Blocks whose body is rich text plus a colour (and, for some, a flag), created as read.
_TEXT_BLOCKS = {
    "paragraph": (),
    "heading_1": ("is_toggleable",),
    "heading_2": ("is_toggleable",),
    "heading_3": ("is_toggleable",),
    "bulleted_list_item": (),
    "numbered_list_item": (),
    "quote": (),
    "to_do": ("checked",),
    "toggle": (),
}
_MEDIA = ("image", "video", "pdf", "file", "audio")
# Blocks that are objects of their own: restored as pages and databases, not as children.
SEPARATE = ("child_page", "child_database")
_ANNOTATIONS = ("bold", "italic", "strikethrough", "underline", "code", "color")


@dataclass(frozen=True)
class Loss:
    """Something of the snapshot the API could not recreate as it was."""

    block_id: str
    kind: str
    what: str


@dataclass
class Targets:
    """What the restore knows when it converts a page's blocks."""

    # Old id -> new id of every page, database, data source and block restored so far.
    ids: Mapping[str, str] = field(default_factory=dict)
    # File URL as saved -> id of the file upload that now holds its local copy.
    uploads: Mapping[str, str] = field(default_factory=dict)
    # Users the target workspace has (None: the same workspace, every user id is kept).
    users: frozenset[str] | None = None
    # Links and mentions only of restored objects (others become text or a placeholder): for a
    # block Notion refused because a page it names is not there.
    strict: bool = False

    def new_id(self, old: str) -> str:
        return self.ids.get(old, old)


@dataclass
class Converted:
    blocks: list[JSON]
    losses: list[Loss] = field(default_factory=list)


def creatable_blocks(blocks: list[JSON], targets: Targets) -> Converted:
    """The create bodies of `blocks` (and their `children`, nested), in order, with what was lost.

    Child pages and databases are left out: the restore creates them as objects of their own.
    """
    converted = Converted(blocks=[])
    for block in blocks:
        if block.get("type") in SEPARATE:
            continue
        converted.blocks.append(_block(block, targets, converted.losses))
    return converted


def _block(block: JSON, targets: Targets, losses: list[Loss]) -> JSON:
    kind = str(block.get("type", ""))
    found = block.get(kind)
    body: JSON = found if isinstance(found, dict) else {}
    children = [c for c in block.get("children") or [] if c.get("type") not in SEPARATE]
    block_id = str(block.get("id", ""))
    for nested in block.get("children") or []:
        if nested.get("type") in SEPARATE:
            # Notion creates a page or database only at the end of its parent page, never inside a block.
            where = f"restored at the end of its parent page, not inside this {kind} block"
            losses.append(Loss(str(nested.get("id", "")), str(nested["type"]), where))

    def lost(what: str) -> JSON:
        losses.append(Loss(block_id, kind, what))
        return placeholder(kind, what)

    created: JSON | None = None
    if kind in _TEXT_BLOCKS:
        created = {"rich_text": rich_text(body.get("rich_text"), targets, losses, block_id)}
        created["color"] = body.get("color", "default")
        for flag in _TEXT_BLOCKS[kind]:
            if flag in body:
                created[flag] = bool(body[flag])
    elif kind == "callout":
        created = {
            "rich_text": rich_text(body.get("rich_text"), targets, losses, block_id),
            "color": body.get("color", "default"),
        }
        icon = file_object(body.get("icon"), targets)
        if icon is not None:
            created["icon"] = icon
    elif kind == "code":
        created = {
            "rich_text": rich_text(body.get("rich_text"), targets, losses, block_id),
            "language": body.get("language", "plain text"),
            "caption": rich_text(body.get("caption"), targets, losses, block_id),
        }
    elif kind == "equation":
        created = {"expression": str(body.get("expression", ""))}
    elif kind in ("divider", "breadcrumb"):
        created = {}
    elif kind == "table_of_contents":
        created = {"color": body.get("color", "default")}
    elif kind in ("bookmark", "embed"):
        if not body.get("url"):
            return lost(f"{kind} without a URL")
        created = {"url": body["url"]}
        if kind == "bookmark":
            created["caption"] = rich_text(body.get("caption"), targets, losses, block_id)
    elif kind in _MEDIA:
        source = file_object(body, targets)
        if source is None:
            return lost(f"{kind}: its file has no local copy to upload and no external URL")
        created = {**source, "caption": rich_text(body.get("caption"), targets, losses, block_id)}
    elif kind == "link_to_page":
        target_kind = str(body.get("type", ""))
        if target_kind not in ("page_id", "database_id") or not body.get(target_kind):
            return lost("link_to_page without a target")
        if targets.strict and str(body[target_kind]) not in targets.ids:
            return lost("a link to a page that is not in this workspace")
        created = {"type": target_kind, target_kind: targets.new_id(str(body[target_kind]))}
    elif kind == "table":
        created = {
            "table_width": int(body.get("table_width", 1)),
            "has_column_header": bool(body.get("has_column_header")),
            "has_row_header": bool(body.get("has_row_header")),
        }
    elif kind == "table_row":
        created = {"cells": [rich_text(cell, targets, losses, block_id) for cell in body.get("cells") or []]}
    elif kind in ("column_list", "column"):
        created = {}
        if kind == "column" and "width_ratio" in body:
            created["width_ratio"] = body["width_ratio"]
    elif kind == "synced_block":
        origin = (body.get("synced_from") or {}).get("block_id")
        if origin:
            # A reference: points at the restored original; its content is the original's. An
            # original not restored (outside the set, or later in it) cannot be referenced.
            if str(origin) not in targets.ids:
                return lost("a synced block whose original was not restored before it")
            return {"type": kind, kind: {"synced_from": {"block_id": targets.ids[str(origin)]}}}
        created = {"synced_from": None}
    else:
        reason = "the API cannot create it" if kind != "unsupported" else "Notion does not expose it"
        shown = str(body.get("block_type") or kind) if kind == "unsupported" else kind
        losses.append(Loss(block_id, shown, reason))
        return placeholder(shown, reason)
    if children:
        created["children"] = [_block(child, targets, losses) for child in children]
    return {"type": kind, kind: created}


def placeholder(kind: str, why: str) -> JSON:
    """The visible stand-in for a block that could not be recreated."""
    text = f"notion-sync restore: a {kind} block stood here and could not be recreated ({why})."
    return {
        "type": "callout",
        "callout": {
            "rich_text": [_text(text)],
            "icon": {"type": "emoji", "emoji": "⚠️"},
            "color": "gray_background",
        },
    }


def file_object(value: Any, targets: Targets) -> JSON | None:
    """A file reference (block body, icon, cover) as Notion accepts it: an emoji or external URL as
    is, a Notion-hosted file as the upload that now holds its local copy; None if neither exists."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "emoji" and value.get("emoji"):
        return {"type": "emoji", "emoji": value["emoji"]}
    if kind == "external" and (value.get("external") or {}).get("url"):
        return {"type": "external", "external": {"url": value["external"]["url"]}}
    if kind == "file":
        upload = targets.uploads.get(str((value.get("file") or {}).get("url", "")))
        if upload is not None:
            return {"type": "file_upload", "file_upload": {"id": upload}}
    return None


def rich_text(items: Any, targets: Targets, losses: list[Loss], block_id: str) -> list[JSON]:
    """Rich text as Notion accepts it: read-only fields dropped, ids remapped, text over 2,000
    characters split into several items with the same style; more than 100 items are joined into
    the last one's style (reported)."""
    dicts = [item for item in items or [] if isinstance(item, dict)]
    created = [part for item in dicts for part in _item(item, targets, losses, block_id)]
    if len(created) > MAX_RICH_TEXT_ITEMS:
        losses.append(Loss(block_id, "rich_text", f"{len(created)} text items joined into 100"))
        head, tail = created[: MAX_RICH_TEXT_ITEMS - 1], created[MAX_RICH_TEXT_ITEMS - 1 :]
        joined = "".join(_plain(t) for t in tail)
        created = head + list(_split(_text(joined), joined))[:1]
    return created


def _item(item: JSON, targets: Targets, losses: list[Loss], block_id: str) -> Iterator[JSON]:
    kind = item.get("type")
    annotations = {k: v for k, v in (item.get("annotations") or {}).items() if k in _ANNOTATIONS}
    if kind == "equation":
        yield {
            "type": "equation",
            "equation": {"expression": str((item.get("equation") or {}).get("expression", ""))},
            "annotations": annotations,
        }
        return
    if kind == "mention":
        mention = _mention(item.get("mention") or {}, targets)
        if mention is not None:
            yield {"type": "mention", "mention": mention, "annotations": annotations}
            return
        # Not creatable here (a user the workspace lacks, a link preview...): its text stays, as a
        # link to where it pointed if it has an address.
        content = str(item.get("plain_text", ""))
        kind_of_mention = str((item.get("mention") or {}).get("type", ""))
        losses.append(Loss(block_id, f"{kind_of_mention} mention", "kept as its text"))
        kept: JSON = {"type": "text", "text": {"content": ""}, "annotations": annotations}
        href = item.get("href")
        if isinstance(href, str) and href.startswith(("http://", "https://")):
            kept["text"]["link"] = {"url": href}
        yield from _split(kept, content)
        return
    text = item.get("text") or {}
    content = str(text.get("content", item.get("plain_text", "")))
    made: JSON = {"type": "text", "text": {"content": ""}, "annotations": annotations}
    link = (text.get("link") or {}).get("url")
    if link:
        made["text"]["link"] = {"url": _remap_url(str(link), targets)}
    yield from _split(made, content)


def _mention(mention: JSON, targets: Targets) -> JSON | None:
    kind = mention.get("type")
    if kind in ("page", "database"):
        target = (mention.get(kind) or {}).get("id")
        if targets.strict and str(target) not in targets.ids:
            return None
        return {"type": kind, kind: {"id": targets.new_id(str(target))}} if target else None
    if kind == "date" and mention.get("date"):
        return {"type": "date", "date": mention["date"]}
    if kind == "user":
        user = (mention.get("user") or {}).get("id")
        if user and (targets.users is None or user in targets.users):
            return {"type": "user", "user": {"id": user}}
        return None
    return None


def _remap_url(url: str, targets: Targets) -> str:
    """A link to a restored page (`/<32 hex id>` form, as Notion writes internal links) points at
    its copy."""
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit("-", 1)[-1]
    if len(tail) == 32:
        dashed = f"{tail[:8]}-{tail[8:12]}-{tail[12:16]}-{tail[16:20]}-{tail[20:]}"
        new = targets.ids.get(dashed)
        if new is not None:
            return f"/{new.replace('-', '')}"
    return url


def _split(template: JSON, content: str) -> Iterator[JSON]:
    """`template` with `content`, as items of at most MAX_TEXT characters each."""
    for start in range(0, max(len(content), 1), MAX_TEXT):
        item = {**template, "text": {**template["text"], "content": content[start : start + MAX_TEXT]}}
        yield item


def _text(content: str) -> JSON:
    return {"type": "text", "text": {"content": content}}


def _plain(item: JSON) -> str:
    if item.get("type") == "text":
        return str(item["text"]["content"])
    if item.get("type") == "equation":
        return str(item["equation"]["expression"])
    return ""


# Notion creates at most two levels of children below the blocks of one request.
MAX_NESTING = 2
# Blocks that cannot be created without their children (columns need content, tables rows), and
# how many levels below them a request must hold.
_NEEDS_CHILDREN = {"column_list": 2, "column": 1, "table": 1}
# The content a column is created with when its own first block is too deep for the request (a
# table, a column list): trashed once the column's real content is appended after it.
FILLER: JSON = {"type": "paragraph", "paragraph": {"rich_text": [], "color": "default"}}


@dataclass
class Append:
    """One append request: at most 100 blocks nested at most two levels, and the children held
    back for later requests, keyed by the position of their parent in `blocks` ((i,), (i, j),
    (i, j, k)): appended under that block once its new id is known, after the first `sent[path]`
    of its children (a table's first hundred rows, say, which Notion needs at its creation). A
    path in `fillers` was created with `FILLER` as its only child, trashed after."""

    blocks: list[JSON]
    deferred: dict[tuple[int, ...], list[JSON]] = field(default_factory=dict)
    sent: dict[tuple[int, ...], int] = field(default_factory=dict)
    fillers: set[tuple[int, ...]] = field(default_factory=set)


def split_for_append(blocks: list[JSON]) -> list[Append]:
    """Create bodies (from `creatable_blocks`) cut into requests Notion accepts: 100 blocks each,
    children past the second level (or any children list over 100) held back whole, so every
    list keeps its order when it is appended under its created parent. A table, column list or
    column goes with its first hundred children (Notion refuses one without) up to the first one
    too deep for the request, the rest after; a column whose first block is too deep (a column list
    or table in a column) goes with a filler paragraph instead. A column list too deep for its
    columns' content makes its parent's children a later append."""
    requests = []
    for start in range(0, len(blocks), MAX_CHILDREN):
        request = Append(blocks=[])
        for i, block in enumerate(blocks[start : start + MAX_CHILDREN]):
            request.blocks.append(_trimmed(block, (i,), 0, request))
        requests.append(request)
    return requests


def _trimmed(block: JSON, path: tuple[int, ...], depth: int, request: Append) -> JSON:
    kind = block["type"]
    children = block[kind].get("children")
    if not children:
        return block
    body = {k: v for k, v in block[kind].items() if k != "children"}
    if kind in _NEEDS_CHILDREN and depth < MAX_NESTING:
        fitting = 0
        for child in children[:MAX_CHILDREN]:
            if depth + 1 + _NEEDS_CHILDREN.get(child["type"], 0) > MAX_NESTING:
                break
            fitting += 1
        inline, rest = children[:fitting], children[fitting:]
        if not inline:
            inline = [FILLER]
            request.fillers.add(path)
        if rest:
            request.deferred[path] = rest
            request.sent[path] = len(inline)
        body["children"] = [_trimmed(child, (*path, j), depth + 1, request) for j, child in enumerate(inline)]
        return {"type": kind, kind: body}
    fits = len(children) <= MAX_CHILDREN and all(
        depth + 1 + _NEEDS_CHILDREN.get(child["type"], 0) <= MAX_NESTING for child in children
    )
    if depth >= MAX_NESTING or not fits:
        request.deferred[path] = children
        return {"type": kind, kind: body}
    body["children"] = [_trimmed(child, (*path, j), depth + 1, request) for j, child in enumerate(children)]
    return {"type": kind, kind: body}
