"""The round trip's normaliser: two exports compared object by object through a restore's mapping.

What the API cannot set is dropped before comparing: ids (mapped through `mapping.jsonl`), times,
authors, `has_children`, parents, request ids, signed or hosted file URLs (a re-uploaded file has a new
one: only its kind is kept), computed property values (formula, rollup, created/edited time and by,
unique id, verification, button). Rich text is compared as runs of (text, style, link, mention):
the restore may split a text item over 2,000 characters, which reads back as several items.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notion_sync.restore.properties import COMPUTED

JSON = dict[str, Any]
# What Notion sets on every block and object; never part of what a restore can reproduce.
_DROPPED = {
    "id",
    "created_time",
    "last_edited_time",
    "created_by",
    "last_edited_by",
    "has_children",
    "parent",
    "request_id",
    "archived",
    "in_trash",
    "object",
    "children",
    "url",
    "public_url",
    "expiry_time",
}
_MEDIA = ("image", "video", "pdf", "file", "audio")


def load_mapping(path: Path) -> dict[str, str]:
    mapping = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        mapping[entry["old"]] = entry["new"]
    return mapping


def load_losses(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines()}


@dataclass
class Survival:
    """Per block or property type: how many were compared, and how many came back exactly."""

    seen: Counter[str] = field(default_factory=Counter)
    exact: Counter[str] = field(default_factory=Counter)
    # (type, old id, what differs) of blocks that differ while the restore reported no loss for them.
    unexplained: list[tuple[str, str, str]] = field(default_factory=list)

    def survived(self) -> list[str]:
        return sorted(t for t in self.seen if self.exact[t] == self.seen[t])

    def degraded(self) -> list[str]:
        return sorted(t for t in self.seen if self.exact[t] < self.seen[t])

    def describe(self, kinds: list[str]) -> str:
        return ", ".join(f"{t} {self.exact[t]}/{self.seen[t]}" for t in kinds)


class Normaliser:
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def new(self, old: str) -> str:
        return self.mapping.get(old, old)

    def rich_text(self, items: list[JSON] | None, mapped: bool) -> list[tuple[Any, ...]]:
        runs: list[tuple[Any, ...]] = []
        for item in items or []:
            style = tuple(sorted((item.get("annotations") or {}).items()))
            kind = item.get("type")
            if kind == "mention":
                mention = item.get("mention") or {}
                target = mention.get(mention.get("type"), {})
                ident = target.get("id") if isinstance(target, dict) else None
                if ident and not mapped:
                    ident = self.new(ident)
                runs.append(("mention", mention.get("type"), ident, item.get("plain_text"), style))
                continue
            if kind == "equation":
                runs.append(("equation", (item.get("equation") or {}).get("expression"), style))
                continue
            link = ((item.get("text") or {}).get("link") or {}).get("url")
            if link and not mapped:
                link = self._link(link)
            text = (item.get("text") or {}).get("content", item.get("plain_text", ""))
            if runs and runs[-1][0] == "text" and runs[-1][2:] == (style, link):
                runs[-1] = ("text", runs[-1][1] + text, style, link)
            else:
                runs.append(("text", text, style, link))
        return runs

    def _link(self, url: str) -> str:
        tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit("-", 1)[-1]
        if len(tail) == 32:
            dashed = f"{tail[:8]}-{tail[8:12]}-{tail[12:16]}-{tail[16:20]}-{tail[20:]}"
            if dashed in self.mapping:
                return f"/{self.mapping[dashed].replace('-', '')}"
        return url

    def file(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        kind = value.get("type")
        if kind in ("file", "file_upload"):
            return {"hosted": True}
        if kind == "external":
            return {"external": (value.get("external") or {}).get("url")}
        if kind == "emoji":
            return {"emoji": value.get("emoji")}
        return {k: v for k, v in value.items() if k not in _DROPPED}

    def block(self, block: JSON, mapped: bool) -> JSON:
        """A block's content as the API can reproduce it (`mapped`: the restored side)."""
        kind = str(block.get("type"))
        body = dict(block.get(kind) or {})
        shown: JSON = {"type": kind}
        for key, value in body.items():
            if value is None:
                continue  # nothing set (a null icon reads as no icon)
            if key in ("rich_text", "caption") or (key == "cells"):
                if key == "cells":
                    shown[key] = [self.rich_text(cell, mapped) for cell in value or []]
                else:
                    shown[key] = self.rich_text(value, mapped)
            elif key == "icon":
                shown[key] = self.file(value)
            elif kind in _MEDIA and key in ("type", "file", "external", "file_upload", "name"):
                continue
            elif key in ("page_id", "database_id", "block_id") and isinstance(value, str):
                shown[key] = value if mapped else self.new(value)
            elif key == "synced_from":
                origin = (value or {}).get("block_id")
                shown[key] = origin if mapped or origin is None else self.new(origin)
            elif key not in _DROPPED:
                shown[key] = value
        if kind in _MEDIA:
            shown["source"] = self.file(body)
        return shown

    def properties(self, page: JSON, mapped: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for name, prop in (page.get("properties") or {}).items():
            kind = prop.get("type")
            if kind in COMPUTED:
                continue
            value = prop.get(kind)
            if kind in ("title", "rich_text"):
                value = self.rich_text(value, mapped)
            elif kind in ("select", "status"):
                value = value.get("name") if isinstance(value, dict) else None
            elif kind == "multi_select":
                value = sorted(o["name"] for o in value or [])
            elif kind == "people":
                value = sorted(u["id"] for u in value or [])
            elif kind == "relation":
                value = sorted(r["id"] if mapped else self.new(r["id"]) for r in value or [])
            elif kind == "files":
                value = [(f.get("name"), json.dumps(self.file(f), sort_keys=True)) for f in value or []]
            shown[f"{name} ({kind})"] = value
        return shown


def compare_blocks(
    norm: Normaliser, old: list[JSON], new: list[JSON], losses: set[str], survival: Survival
) -> None:
    """Walks both trees side by side (a placeholder stands where a block was lost: one for one)."""
    if len(old) != len(new):
        first = old[0]["id"] if old else ""
        survival.unexplained.append(("(list)", first, f"{len(old)} != {len(new)} blocks"))
    for before, after in zip(old, new, strict=False):
        kind = str(before.get("type"))
        survival.seen[kind] += 1
        want, got = norm.block(before, mapped=False), norm.block(after, mapped=True)
        if kind in ("child_page", "child_database"):
            want, got = {"title": before[kind].get("title")}, {"title": (after.get(kind) or {}).get("title")}
        if want == got:
            survival.exact[kind] += 1
        elif before["id"] not in losses:
            survival.unexplained.append((kind, before["id"], _difference(want, got)))
        children_old = before.get("children") or []
        if kind == "synced_block" and (before[kind].get("synced_from") or {}).get("block_id"):
            continue  # a reference lists its original's children: compared there
        if want == got or before["id"] not in losses:
            compare_blocks(norm, children_old, after.get("children") or [], losses, survival)


def _difference(want: JSON, got: JSON) -> str:
    """The first field (or rich-text run) that differs."""
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            a, b = want.get(key), got.get(key)
            if isinstance(a, list) and isinstance(b, list):
                for i, (x, y) in enumerate(zip(a, b, strict=False)):
                    if x != y:
                        return f"{key}[{i}]: {x} != {y}"
                return f"{key}: {len(a)} != {len(b)} items"
            return f"{key}: {a} != {b}"
    return "equal"
