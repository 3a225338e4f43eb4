"""Builders for Notion JSON, the recorded-cassette loader and a Markdown parser for convert tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

# Real API responses, kept in the repository with their licences (see its README.md)
RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures/notion-api-recordings"
GOLDEN = Path(__file__).parent / "golden"

_counter = iter(range(1, 10**9))


def new_id() -> str:
    return f"00000000-0000-4000-8000-{next(_counter):012d}"


def text(content: str, href: str | None = None, **annotations: Any) -> dict[str, Any]:
    ann: dict[str, Any] = {"bold": False, "italic": False, "strikethrough": False, "underline": False}
    ann["code"] = False
    ann["color"] = "default"
    ann.update(annotations)
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": href} if href else None},
        "annotations": ann,
        "plain_text": content,
        "href": href,
    }


def mention(kind: str, body: dict[str, Any], plain: str, href: str | None = None) -> dict[str, Any]:
    item = text(plain, href)
    item.update(type="mention", mention={"type": kind, kind: body})
    del item["text"]
    return item


def block(
    kind: str,
    body: dict[str, Any] | None = None,
    children: list[dict[str, Any]] | None = None,
    block_id: str | None = None,
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "object": "block",
        "id": block_id or new_id(),
        "type": kind,
        kind: body or {},
        "has_children": bool(children),
    }
    if children:
        b["children"] = children
    return b


def para(
    *rich: dict[str, Any] | str,
    children: list[dict[str, Any]] | None = None,
    kind: str = "paragraph",
    **extra: Any,
) -> dict[str, Any]:
    items = [text(r) if isinstance(r, str) else r for r in rich]
    return block(kind, {"rich_text": items, "color": "default", **extra}, children)


def prop(kind: str, value: Any) -> dict[str, Any]:
    return {"id": "x", "type": kind, kind: value}


def _md() -> MarkdownIt:
    # markdown-it stops nesting at 20 levels by default; Notion lists go deeper
    return MarkdownIt("commonmark", {"maxNesting": 200}).enable(["table", "strikethrough"])


def parse(markdown: str) -> list[Token]:
    return _md().parse(markdown)


def render_html(markdown: str) -> str:
    return _md().render(markdown)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
    assert path.exists(), f"missing golden {name}: run with UPDATE_GOLDEN=1 and review the diff"
    with path.open(encoding="utf-8", newline="") as f:
        assert actual == f.read(), f"{name} differs from its golden"


# --- recorded responses -------------------------------------------------------------------------


def cassette_paths() -> list[Path]:
    paths = sorted(RECORDINGS.rglob("*.yaml"))
    assert paths, f"no recordings under {RECORDINGS}"  # a failure, never an empty (skipped) parametrize
    return paths


def cassette_interactions(path: Path) -> list[tuple[str, str, Any]]:
    """(method, uri, parsed JSON body) for every JSON response in a vcrpy cassette (both formats)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for it in data.get("interactions", []):
        response = it["response"]
        raw = response.get("content") or (response.get("body") or {}).get("string")
        try:
            body = json.loads(str(raw))
        except ValueError:
            continue
        out.append((it["request"]["method"], it["request"]["uri"], body))
    return out


def find_objects(node: Any, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("object") == kind:
            found.append(node)
        for value in node.values():
            found.extend(find_objects(value, kind))
    elif isinstance(node, list):
        for value in node:
            found.extend(find_objects(value, kind))
    return found


def block_trees(path: Path) -> dict[str, list[dict[str, Any]]]:
    """parent id -> its children with nested "children" filled in from later children calls.

    Duplicate synced blocks get their original's children, as the exporter does.
    """
    children: dict[str, list[dict[str, Any]]] = {}
    for method, uri, body in cassette_interactions(path):
        if method == "GET" and "/blocks/" in uri and "/children" in uri and isinstance(body, dict):
            parent = uri.split("/blocks/")[1].split("/")[0]
            children.setdefault(parent, []).extend(
                b for b in body.get("results", []) if b.get("object") == "block"
            )

    def fill(blocks: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
        out = []
        for b in blocks:
            b = dict(b)
            source = b["id"]
            synced = (b.get("synced_block") or {}).get("synced_from") if b["type"] == "synced_block" else None
            if synced:
                source = synced["block_id"]
            if source in children and depth < 50 and b["type"] not in ("child_page", "child_database"):
                b["children"] = fill(children[source], depth + 1)
            out.append(b)
        return out

    return {parent: fill(blocks) for parent, blocks in children.items()}
