"""Request payloads of the write endpoints, checked and normalised as Notion 2025-09-03 does:
rich text, block trees (100 children, two levels of nesting per request) and block contents.

Every error is Notion's 400 `validation_error`, worded like api.notion.com
("body failed validation: body.children.length should be ≤ `100`, instead was `101`.").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from notion_sync.emulator.api import ApiError, validation_error
from notion_sync.emulator.backend import JSON

MAX_CHILDREN = 100
MAX_RICH_TEXT_ITEMS = 100
MAX_TEXT_LENGTH = 2000
MAX_EQUATION_LENGTH = 1000
NESTING_LEVELS = 3  # a request's blocks, their children, their grandchildren (none below)
SHOWN_VALUE = 55  # Notion quotes this much of an offending value, then "..."
ANNOTATION_DEFAULTS: JSON = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}
TEXT_BLOCKS = (
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "toggle",
    "quote",
    "callout",
)
MEDIA_BLOCKS = ("image", "video", "audio", "file", "pdf")
CREATABLE_BLOCKS = (
    *TEXT_BLOCKS,
    *MEDIA_BLOCKS,
    "code",
    "equation",
    "divider",
    "breadcrumb",
    "table_of_contents",
    "column_list",
    "column",
    "table",
    "table_row",
    "synced_block",
    "link_to_page",
    "bookmark",
    "embed",
)
MENTION_TYPES = ("page", "database", "user", "date", "link_preview", "template_mention", "link_mention")

# Resolves `{"type": "file_upload", "file_upload": {"id"}}` to (file key, file name) or raises.
UploadResolver = Callable[[str, str], tuple[str, str]]
# The plain text of a page / database / user mention, from its id (None: unknown, kept as "Untitled").
MentionNamer = Callable[[str, str], str | None]


def failed(message: str) -> ApiError:
    return validation_error(f"body failed validation: {message}")


def shown(value: Any) -> str:
    """An offending value as Notion quotes it: compact JSON, cut after SHOWN_VALUE characters."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= SHOWN_VALUE else text[:SHOWN_VALUE] + "..."


def expect_list(value: Any, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise failed(f"{path} should be an array, instead was `{shown(value)}`.")
    if len(value) > limit:
        raise failed(f"{path}.length should be ≤ `{limit}`, instead was `{len(value)}`.")
    return value


def expect_object(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise failed(f"{path} should be an object, instead was `{shown(value)}`.")
    return value


def expect_text(value: Any, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise failed(f"{path} should be a string, instead was `{shown(value)}`.")
    if len(value) > limit:
        raise failed(f"{path}.length should be ≤ `{limit}`, instead was `{len(value)}`.")
    return value


@dataclass
class RichText:
    """Normalises rich text arrays; `namer` gives mentions their plain text."""

    namer: MentionNamer

    def array(self, items: Any, path: str) -> list[JSON]:
        return [
            self.item(item, f"{path}[{i}]")
            for i, item in enumerate(expect_list(items, path, MAX_RICH_TEXT_ITEMS))
        ]

    def item(self, raw: Any, path: str) -> JSON:
        raw = expect_object(raw, path)
        kind = raw.get("type") or next((k for k in ("text", "mention", "equation") if k in raw), "text")
        annotations = {**ANNOTATION_DEFAULTS, **expect_object(raw.get("annotations") or {}, path)}
        if kind == "text":
            body = expect_object(raw.get("text"), f"{path}.text")
            content = expect_text(body.get("content"), f"{path}.text.content", MAX_TEXT_LENGTH)
            link = body.get("link")
            url = None
            if link is not None:
                url = expect_text(
                    expect_object(link, f"{path}.text.link").get("url"), f"{path}.text.link.url", 2000
                )
            text = {"content": content, "link": {"url": url} if url is not None else None}
            return {
                "type": "text",
                "text": text,
                "annotations": annotations,
                "plain_text": content,
                "href": url,
            }
        if kind == "equation":
            body = expect_object(raw.get("equation"), f"{path}.equation")
            expression = expect_text(
                body.get("expression"), f"{path}.equation.expression", MAX_EQUATION_LENGTH
            )
            return {
                "type": "equation",
                "equation": {"expression": expression},
                "annotations": annotations,
                "plain_text": expression,
                "href": None,
            }
        if kind == "mention":
            return self._mention(expect_object(raw.get("mention"), f"{path}.mention"), annotations, path)
        raise failed(f"{path}.type should be `text`, `mention` or `equation`, instead was `{shown(kind)}`.")

    def _mention(self, mention: JSON, annotations: JSON, path: str) -> JSON:
        kind = mention.get("type") or next((k for k in MENTION_TYPES if k in mention), None)
        if kind not in MENTION_TYPES:
            raise failed(
                f"{path}.mention.type should be one of {MENTION_TYPES}, instead was `{shown(kind)}`."
            )
        payload = expect_object(mention.get(kind), f"{path}.mention.{kind}")
        plain, href = "Untitled", None
        if kind in ("page", "database", "user"):
            target = str(payload.get("id", ""))
            plain = self.namer(kind, target) or ("@Unknown" if kind == "user" else "Untitled")
            if kind != "user":
                href = "https://www.notion.so/" + target.replace("-", "")
            payload = {"id": target} if kind != "user" else {"object": "user", "id": target}
        elif kind == "date":
            payload = {
                "start": payload.get("start"),
                "end": payload.get("end"),
                "time_zone": payload.get("time_zone"),
            }
            plain = str(payload["start"]) + (f" → {payload['end']}" if payload["end"] else "")
        elif kind in ("link_preview", "link_mention"):
            plain = href = str(payload.get("url", ""))
        return {
            "type": "mention",
            "mention": {"type": kind, kind: payload},
            "annotations": annotations,
            "plain_text": plain,
            "href": href,
        }


@dataclass
class BlockSpec:
    """One block of a request, checked: its type, normalised content and children."""

    type: str
    content: JSON
    children: list[BlockSpec] = field(default_factory=list)

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)


def _check_required_children(kind: str, children: list[BlockSpec], where: str) -> None:
    """Notion creates a table only with its rows, a column list only with two columns or more, and a
    column only with content (appending them later is too late)."""
    if kind == "table" and (not children or any(c.type != "table_row" for c in children)):
        raise failed(f"{where}.children should be defined, instead was `undefined`.")
    if kind == "column_list" and (len(children) < 2 or any(c.type != "column" for c in children)):
        raise failed(f"{where}.children should have at least 2 columns.")
    if kind == "column" and not children:
        raise failed(f"{where}.children should be defined, instead was `undefined`.")


@dataclass
class BlockReader:
    """Checks a request's `children` the way Notion does and turns them into `BlockSpec`s."""

    rich: RichText
    uploads: UploadResolver

    def children(self, raw: Any, path: str, level: int = 1) -> list[BlockSpec]:
        items = expect_list(raw, path, MAX_CHILDREN)
        return [self.block(item, f"{path}[{i}]", level) for i, item in enumerate(items)]

    def block(self, raw: Any, path: str, level: int) -> BlockSpec:
        raw = expect_object(raw, path)
        kind = raw.get("type") or next((k for k in CREATABLE_BLOCKS if k in raw), None)
        if kind not in CREATABLE_BLOCKS:
            raise failed(
                f"{path}.type should be a block type that can be created ({', '.join(CREATABLE_BLOCKS)}), "
                f"instead was `{shown(kind)}`."
            )
        where = f"{path}.{kind}"
        payload = expect_object(raw.get(kind, {}), where)
        nested = payload.get("children") or []
        children: list[BlockSpec] = []
        if nested:
            if level >= NESTING_LEVELS:
                raise failed(f"{where}.children should be not present, instead was `{shown(nested)}`.")
            children = self.children(nested, f"{where}.children", level + 1)
        _check_required_children(kind, children, where)
        return BlockSpec(kind, self.content(kind, payload, where), children)

    def content(self, kind: str, payload: JSON, where: str) -> JSON:
        """The block's content as Notion echoes it (defaults filled, children left out)."""
        rich = self.rich.array
        if kind in TEXT_BLOCKS:
            out: JSON = {"rich_text": rich(payload.get("rich_text", []), f"{where}.rich_text")}
            if kind.startswith("heading_"):
                out["is_toggleable"] = bool(payload.get("is_toggleable", False))
            if kind == "to_do":
                out["checked"] = bool(payload.get("checked", False))
            if kind == "callout":
                out["icon"] = payload.get("icon")
            out["color"] = str(payload.get("color", "default"))
            return out
        if kind in MEDIA_BLOCKS:
            return self.media(kind, payload, where)
        if kind == "code":
            return {
                "caption": rich(payload.get("caption", []), f"{where}.caption"),
                "rich_text": rich(payload.get("rich_text", []), f"{where}.rich_text"),
                "language": str(payload.get("language", "plain text")),
            }
        if kind == "equation":
            return {
                "expression": expect_text(
                    payload.get("expression", ""), f"{where}.expression", MAX_EQUATION_LENGTH
                )
            }
        if kind == "table":
            width = payload.get("table_width")
            if not isinstance(width, int) or width < 1:
                raise failed(
                    f"{where}.table_width should be a positive integer, instead was `{shown(width)}`."
                )
            return {
                "table_width": width,
                "has_column_header": bool(payload.get("has_column_header", False)),
                "has_row_header": bool(payload.get("has_row_header", False)),
            }
        if kind == "table_row":
            cells = expect_list(payload.get("cells", []), f"{where}.cells", MAX_CHILDREN)
            return {"cells": [rich(cell, f"{where}.cells[{i}]") for i, cell in enumerate(cells)]}
        if kind in ("bookmark", "embed"):
            url = expect_text(payload.get("url", ""), f"{where}.url", 2000)
            return {"caption": rich(payload.get("caption", []), f"{where}.caption"), "url": url}
        if kind == "table_of_contents":
            return {"color": str(payload.get("color", "default"))}
        if kind == "synced_block":
            source = payload.get("synced_from")
            if source is not None:
                block_id = expect_object(source, f"{where}.synced_from").get("block_id")
                source = {"type": "block_id", "block_id": str(block_id)}
            return {"synced_from": source}
        if kind == "link_to_page":
            target = payload.get("type") or ("database_id" if "database_id" in payload else "page_id")
            return {"type": target, target: str(payload.get(target, ""))}
        if kind == "column" and "width_ratio" in payload:
            return {"width_ratio": payload["width_ratio"]}
        return {}  # divider, breadcrumb, column_list, column

    def media(self, kind: str, payload: JSON, where: str) -> JSON:
        out: JSON = {"caption": self.rich.array(payload.get("caption", []), f"{where}.caption")}
        out.update(self.file(payload, where))
        if kind == "file":
            out["name"] = str(payload.get("name") or out.pop("_name"))
        out.pop("_name", None)
        return out

    def file(self, payload: JSON, where: str) -> JSON:
        """A file object of a request (external or file_upload), stored with a `_name` hint."""
        kind = payload.get("type") or ("file_upload" if "file_upload" in payload else "external")
        if kind == "external":
            url = expect_text(
                expect_object(payload.get("external"), f"{where}.external").get("url"),
                f"{where}.external.url",
                2000,
            )
            return {"type": "external", "external": {"url": url}, "_name": url.rstrip("/").rsplit("/", 1)[-1]}
        if kind == "file_upload":
            upload_id = str(expect_object(payload.get("file_upload"), f"{where}.file_upload").get("id", ""))
            key, name = self.uploads(upload_id, f"{where}.file_upload.id")
            return {"type": "file", "file": {"key": key}, "_name": name}
        raise failed(f"{where}.type should be `external` or `file_upload`, instead was `{shown(kind)}`.")
