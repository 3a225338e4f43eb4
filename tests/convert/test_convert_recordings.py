"""Every recorded real Notion response converts; the full page walk renders every block."""

from __future__ import annotations

import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from convert_helpers import (
    RECORDINGS,
    block_trees,
    cassette_interactions,
    cassette_paths,
    find_objects,
    parse,
    render_html,
)

from notion_sync.convert.csvfmt import write_csv
from notion_sync.convert.links import NoLinks
from notion_sync.convert.markdown import blocks_to_markdown, page_title, page_to_markdown
from notion_sync.convert.richtext import plain_text

CASSETTES = cassette_paths()
PAGE_WALK = RECORDINGS / "ultimate-notion/tests/cassettes/test_page/test_page_to_markdown.yaml"
MD_CONVERTER = sorted((RECORDINGS / "notion-md-converter").rglob("*.json"))


def test_recordings_are_present() -> None:
    assert len(CASSETTES) >= 25 and PAGE_WALK in CASSETTES and len(MD_CONVERTER) >= 25


def _front_matter(markdown: str) -> dict[str, Any]:
    assert markdown.startswith("---\n")
    data = yaml.safe_load(markdown[4 : markdown.index("\n---\n", 4)])
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(RECORDINGS)))
def test_cassette_converts(path: Path) -> None:
    bodies = [body for _, _, body in cassette_interactions(path)]
    for page in find_objects(bodies, "page"):
        if "properties" in page:
            out = page_to_markdown(page, [], NoLinks())
            parse(out)
            assert _front_matter(out)["id"] == page["id"]
            assert _front_matter(out)["title"] == page_title(page)
    for blocks in [find_objects(body, "block") for body in bodies] + list(block_trees(path).values()):
        parse(blocks_to_markdown(blocks, NoLinks()))
    rows = [p for p in find_objects(bodies, "page") if p.get("parent", {}).get("type") == "data_source_id"]
    for source in find_objects(bodies, "data_source") + find_objects(bodies, "database"):
        if isinstance(source.get("properties"), dict):
            buf = io.StringIO(newline="")
            write_csv(buf, source, rows, NoLinks(), bom=True)
            assert buf.getvalue().startswith("\ufeff")
            page_title(source)


@pytest.mark.parametrize("path", MD_CONVERTER, ids=lambda p: p.parent.name + "/" + p.name)
def test_notion_md_converter_blocks_convert(path: Path) -> None:
    blocks = json.loads(path.read_text(encoding="utf-8"))
    out = blocks_to_markdown(blocks, NoLinks())
    parse(out)
    for b in find_objects(blocks, "block"):
        body = b.get(b["type"], {})
        if body.get("rich_text") and b["type"] != "code":
            words = re.findall(r"\w+", plain_text(body["rich_text"]))
            assert all(w in out for w in words), (b["type"], words)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_front_matter(markdown: str) -> str:
    return markdown[markdown.index("\n---\n", 4) + 5 :] if markdown.startswith("---\n") else markdown


def _visible_text(markdown: str) -> str:
    parser = _Text()
    parser.feed(render_html(markdown))
    return re.sub(r"\s+", " ", html.unescape("".join(parser.parts)))


def _walk(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for b in blocks:
        out.append(b)
        out.extend(_walk(b.get("children", [])))
    return out


def _expected_text(b: dict[str, Any]) -> list[str]:
    body = b.get(b["type"], {})
    texts = [plain_text(body.get(k)) for k in ("rich_text", "caption") if body.get(k)]
    texts += [plain_text(cell) for cell in body.get("cells", [])]
    texts += [body[k] for k in ("title", "expression", "url", "name") if body.get(k)]
    return [re.sub(r"\s+", " ", t).strip() for t in texts]


def test_full_page_walk_renders_every_block() -> None:
    trees = block_trees(PAGE_WALK)
    blocks = trees["00000000-0000-4000-8000-000000000004"]
    page = {"object": "page", "id": "00000000-0000-4000-8000-000000000004", "properties": {}}
    out = strip_front_matter(page_to_markdown(page, blocks, NoLinks()))
    visible = _visible_text(out)
    all_blocks = _walk(blocks)
    assert len(all_blocks) >= 40 and len({b["type"] for b in all_blocks}) >= 26
    for b in all_blocks:
        for expected in _expected_text(b):
            assert expected in visible or expected in out, (b["id"], b["type"], expected)
    for kind in ("button", "ai_block"):
        assert f"Unsupported block: {kind}" in visible
    # the duplicate synced block shows its original's content
    assert "This is the original Paragraph on SubPage" in visible
    kinds = [t.type for t in parse(out)]
    assert kinds.count("hr") == 1 and "table_open" in kinds and "fence" in kinds
    assert kinds.count("bullet_list_open") >= 3 and kinds.count("ordered_list_open") == 1
    assert "https://www.notion.so/00000000000040008000000000000005" in out  # child_page, link_to_page
