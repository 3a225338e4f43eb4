"""Golden files per block type, plus structure checked through markdown-it's token stream."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from convert_helpers import block, check_golden, mention, para, parse, render_html, text
from markdown_it.token import Token

from notion_sync.convert.links import NoLinks
from notion_sync.convert.markdown import blocks_to_markdown, page_title, page_to_markdown

CHILD_PAGE = "00000000-0000-4000-8000-00000000aaaa"
IMAGE_URL = "https://prod-files-secure.s3.amazonaws.com/x/photo.png?X-Amz-Signature=abc"


class Links:
    def page_link(self, page_id: str) -> str | None:
        return {CHILD_PAGE: "Child Page/Child Page.md"}.get(page_id)

    def file_link(self, url: str) -> str | None:
        return "assets/photo 1.png" if url == IMAGE_URL else None

    def page_title(self, page_id: str) -> str | None:
        return None


def _row(*cells: str) -> dict[str, Any]:
    return block("table_row", {"cells": [[text(c)] if c else [] for c in cells]})


def _file(url: str, hosted: bool = True) -> dict[str, Any]:
    return (
        {"type": "file", "file": {"url": url, "expiry_time": "2030-01-01T00:00:00.000Z"}}
        if hosted
        else {
            "type": "external",
            "external": {"url": url},
        }
    )


def _nested(depth: int) -> list[dict[str, Any]]:
    item = para(f"level {depth}", kind="numbered_list_item")
    if depth < 20:
        item["children"] = [*_nested(depth + 1), para(f"after {depth}", kind="numbered_list_item")]
    return [item]


CASES: dict[str, list[dict[str, Any]]] = {
    "paragraph": [
        para("Plain ", text("bold", bold=True), " and ", text("code", code=True), "\nsecond line"),
        para(),
        para("Parent paragraph", children=[para("indented child")]),
    ],
    "headings": [
        para("One", kind="heading_1"),
        para("Two #2", kind="heading_2"),
        para("Three", kind="heading_3"),
    ],
    "toggle_heading": [
        para("Toggle H2", kind="heading_2", is_toggleable=True, children=[para("hidden body")]),
        para("Empty toggle H3", kind="heading_3", is_toggleable=True),
    ],
    "bulleted_list": [
        para("a", kind="bulleted_list_item", children=[para("a.1", kind="bulleted_list_item")]),
        para("b\nwith break", kind="bulleted_list_item", children=[para("b para")]),
    ],
    "numbered_list": [
        para("one", kind="numbered_list_item", children=[para("1.1", kind="numbered_list_item")]),
        para("two", kind="numbered_list_item", children=[para("2.1", kind="numbered_list_item")]),
        para("three", kind="numbered_list_item"),
        para("break"),
        para("restart", kind="numbered_list_item"),
    ],
    "numbered_list_start": [
        para("ten", kind="numbered_list_item", list_start_index=10),
        para("eleven", kind="numbered_list_item"),
    ],
    "deep_list": _nested(1),
    "to_do": [
        para("open", kind="to_do", checked=False),
        para("done", kind="to_do", checked=True, children=[para("sub", kind="to_do", checked=False)]),
        para("bullet after to-dos", kind="bulleted_list_item"),
    ],
    "toggle": [
        para(
            "Click ",
            text("me", bold=True),
            " <now>",
            kind="toggle",
            children=[para("inside"), para("item", kind="bulleted_list_item")],
        ),
    ],
    "quote": [para("Quoted\nline two", kind="quote", children=[para("child para")])],
    "callout": [
        para("Note this", kind="callout", icon={"type": "emoji", "emoji": "💡"}, children=[para("more")]),
        para("Custom", kind="callout", icon={"type": "custom_emoji", "custom_emoji": {"name": "party"}}),
        para("No icon", kind="callout", icon=None),
    ],
    "code": [
        block(
            "code",
            {"rich_text": [text("log('```')\n")], "language": "javascript", "caption": [text("main.py")]},
        ),
        block("code", {"rich_text": [text("x")], "language": "plain text", "caption": []}),
        block("code", {"rich_text": [text("int main()")], "language": "c++", "caption": []}),
    ],
    "equation": [
        block("equation", {"expression": "e^{i\\pi} + 1 = 0"}),
        para(
            "inline ",
            {
                "type": "equation",
                "equation": {"expression": "a<b"},
                "plain_text": "a<b",
                "annotations": {},
                "href": None,
            },
        ),
    ],
    "table": [
        block(
            "table",
            {"table_width": 3, "has_column_header": True, "has_row_header": True},
            [_row("H1", "H|2", "H3"), _row("r1", "`x`", ""), _row("r2", "a\nb", "c")],
        ),
        block(
            "table", {"table_width": 2, "has_column_header": False, "has_row_header": False}, [_row("a", "b")]
        ),
    ],
    "columns": [
        block("column_list", {}, [block("column", {}, [para("left")]), block("column", {}, [para("right")])]),
    ],
    "divider": [para("above"), block("divider"), para("below")],
    "synced_block": [
        block("synced_block", {"synced_from": None}, [para("original")]),
        block("synced_block", {"synced_from": {"type": "block_id", "block_id": "x"}}, [para("copy")]),
        block("synced_block", {"synced_from": {"type": "block_id", "block_id": "y"}}),
    ],
    "web_links": [
        block("bookmark", {"url": "https://example.com/a_b", "caption": [text("Example")]}),
        block("embed", {"url": "https://x.com/status/1", "caption": []}),
        block("link_preview", {"url": "https://github.com/o/r/pull/1"}),
        block("bookmark", {"url": "javascript:alert(1)", "caption": []}),
    ],
    "media": [
        block("image", {**_file(IMAGE_URL), "caption": [text("A *photo*")]}),
        block("image", {**_file("https://e.com/pic.gif", hosted=False), "caption": []}),
        block("video", {**_file("https://youtu.be/abc", hosted=False), "caption": []}),
        block("audio", {**_file("https://e.com/s.mp3", hosted=False), "caption": [text("Song")]}),
        block("pdf", {**_file("https://e.com/doc%201.pdf", hosted=False), "caption": []}),
        block("file", {**_file("https://e.com/f.zip?sig=1"), "caption": [], "name": "archive.zip"}),
        block("file", {"type": "file_upload", "file_upload": {"id": "u"}, "caption": []}),
    ],
    "table_of_contents": [
        block("table_of_contents", {"color": "default"}),
        para("Intro", kind="heading_1"),
        para("Intro", kind="heading_2"),
        para("Details & more", kind="heading_2"),
    ],
    "breadcrumb": [block("breadcrumb"), para("after breadcrumb")],
    "tabs": [
        block(
            "tab",
            {},
            [
                para("Overview", children=[para("overview body")]),
                para("Details", children=[para("details body")]),
            ],
        )
    ],
    "child_pages": [
        block("child_page", {"title": "Child Page"}, block_id=CHILD_PAGE),
        block("child_database", {"title": ""}, block_id="00000000-0000-4000-8000-00000000bbbb"),
        block("link_to_page", {"type": "page_id", "page_id": CHILD_PAGE}),
        block("link_to_page", {"type": "database_id", "database_id": "00000000-0000-4000-8000-00000000cccc"}),
    ],
    "unsupported": [
        block("unsupported", {"block_type": "button"}),
        block(
            "meeting_notes",
            {"title": [text("Standup")], "rich_text": [text("notes text")]},
            [para("child kept")],
        ),
        {"object": "block", "id": "z", "type": "brand_new", "weird": {"x": [1, 2]}},
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_golden(name: str) -> None:
    check_golden(f"blocks/{name}.md", blocks_to_markdown(CASES[name], Links()))


def _types(md: str) -> list[str]:
    return [t.type for t in parse(md)]


def _inline_texts(md: str) -> list[str]:
    return [t.content for t in parse(md) if t.type == "inline"]


def test_deep_list_nests_twenty_levels_with_numbers() -> None:
    tokens = parse(blocks_to_markdown(CASES["deep_list"], NoLinks()))
    depth = max_depth = 0
    for t in tokens:
        if t.type == "ordered_list_open":
            depth += 1
            max_depth = max(max_depth, depth)
            assert t.attrs.get("start") is None  # every level numbers from 1
        elif t.type == "ordered_list_close":
            depth -= 1
    assert max_depth == 20
    item_texts = [t.content for t in tokens if t.type == "inline"]
    assert item_texts[:3] == ["level 1", "level 2", "level 3"] and "after 1" in item_texts


def test_numbering_restarts_and_start_index() -> None:
    tokens = parse(blocks_to_markdown(CASES["numbered_list"], NoLinks()))
    lists = [t for t in tokens if t.type == "ordered_list_open"]
    assert len(lists) == 4  # outer, two nested, the list after the paragraph
    start = [
        t
        for t in parse(blocks_to_markdown(CASES["numbered_list_start"], NoLinks()))
        if t.type == "ordered_list_open"
    ]
    assert start[0].attrs["start"] == 10


def test_to_dos_are_task_items_and_bullets_stay_separate() -> None:
    md = blocks_to_markdown(CASES["to_do"], NoLinks())
    assert _types(md).count("bullet_list_open") == 3
    assert [t for t in _inline_texts(md)] == ["[ ] open", "[x] done", "[ ] sub", "bullet after to-dos"]


def test_table_cells_and_header() -> None:
    tokens = parse(blocks_to_markdown(CASES["table"], NoLinks()))
    cells = [t.content for t in tokens if t.type == "inline"]
    assert cells[:3] == ["**H1**", "H|2", "H3"]  # row header bolds the first column
    assert [t.type for t in tokens].count("th_open") == 5 and [t.type for t in tokens].count("td_open") == 8
    html = render_html(blocks_to_markdown(CASES["table"], NoLinks()))
    assert "<th><strong>H1</strong></th>" in html and "<th>H|2</th>" in html and "a<br>b" in html
    assert "<td><code>x</code></td>" not in html and "<td>`x`</td>" in html


def test_code_fence_info_and_length() -> None:
    tokens = [t for t in parse(blocks_to_markdown(CASES["code"], NoLinks())) if t.type == "fence"]
    assert [(t.info, t.markup, t.content) for t in tokens] == [
        ("javascript", "````", "log('```')\n\n"),
        ("text", "```", "x\n"),
        ("cpp", "```", "int main()\n"),
    ]


def test_toggle_and_toggle_heading_structure() -> None:
    md = blocks_to_markdown(CASES["toggle"] + CASES["toggle_heading"], NoLinks())
    tokens = parse(md)
    assert tokens[0].type == "html_block" and "<summary>Click <strong>me</strong> &lt;now&gt;</summary>" in md
    assert "bullet_list_open" in [t.type for t in tokens]
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [h.tag for h in headings] == ["h2", "h3"]
    assert md.count("<details>") == md.count("</details>") == 2


def test_callout_and_quote_are_blockquotes() -> None:
    md = blocks_to_markdown(CASES["callout"] + CASES["quote"], NoLinks())
    assert _types(md).count("blockquote_open") == 4
    assert _inline_texts(md)[0] == "💡 Note this"


def test_media_and_links_use_resolver() -> None:
    tokens = parse(blocks_to_markdown(CASES["media"] + CASES["child_pages"], Links()))
    links = [
        (c.type, c.attrs.get("src") or c.attrs.get("href"))
        for t in tokens
        if t.type == "inline"
        for c in t.children or []
        if c.type in ("image", "link_open")
    ]
    assert links[0] == ("image", "assets/photo%201.png")
    assert ("link_open", "Child%20Page/Child%20Page.md") in links
    assert (
        "link_open",
        "https://www.notion.so/00000000000040008000000000000000bbbb"[:0]
        or "https://www.notion.so/0000000000004000800000000000bbbb",
    ) in links
    image = next(c for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "image")
    assert "".join(c.content for c in image.children or []) == "A *photo*"


def test_unknown_blocks_are_visible_and_never_raise() -> None:
    md = blocks_to_markdown(CASES["unsupported"], NoLinks())
    html = render_html(md)
    for kind in ("button", "meeting_notes", "brand_new"):
        assert f"Unsupported block: {kind}" in html
    assert "notes text" in html and "child kept" in html
    for junk in (
        {},
        {"type": None},
        {"type": "paragraph", "paragraph": None},
        {"type": "table", "table": {}},
        {"type": "image", "image": {"type": "file"}},
        {"type": "to_do", "children": "x"},
    ):
        blocks_to_markdown([junk], NoLinks())


def _page(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "object": "page",
        "id": "00000000-0000-4000-8000-00000000000p",
        "url": "https://www.notion.so/p",
        "created_time": "2024-01-01T00:00:00.000Z",
        "last_edited_time": "2024-01-02T00:00:00.000Z",
        "properties": props,
        **extra,
    }


def test_page_front_matter_and_comments_golden() -> None:
    page = _page(
        {
            "Name": {"id": "title", "type": "title", "title": [text("My "), text("Page", bold=True)]},
            "Tags": {"id": "t", "type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
            "Done": {"id": "d", "type": "checkbox", "checkbox": True},
        }
    )
    comments = [
        {
            "object": "comment",
            "created_time": "2024-01-03T00:00:00.000Z",
            "created_by": {"object": "user", "id": "u1", "name": "Ada"},
            "rich_text": [text("Looks *good*\nthanks")],
        },
        {
            "object": "comment",
            "created_time": "2024-01-04T00:00:00.000Z",
            "created_by": {"object": "user", "id": "u2"},
            "rich_text": [mention("user", {"id": "u1", "name": "Ada"}, "@Ada")],
        },
    ]
    out = page_to_markdown(page, [para("Body")], NoLinks(), comments)
    check_golden("page.md", out)
    fm = yaml.safe_load(out.split("---\n")[1])
    assert fm["title"] == "My Page" and fm["properties"] == {
        "Name": "My Page",
        "Tags": ["a", "b"],
        "Done": True,
    }


HOSTILE_TITLES = [
    "---\nid: evil\n---",
    "'; DROP TABLE",
    'quote " and \\ backslash',
    "#!/bin/sh\n...\n",
    "key: value",
    "- list",
    "{flow: map}",
    "&anchor *alias !tag",
    "\x00\x07 control \u2028 line sep \ufeff",
    "<script>alert(1)</script>",
    "",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_titles_keep_front_matter_valid(title: str) -> None:
    page = _page(
        {
            "T": {"id": "title", "type": "title", "title": [text(title)]},
            title or "empty": {"id": "r", "type": "rich_text", "rich_text": [text(title)]},
        }
    )
    out = page_to_markdown(page, [], NoLinks())
    head, body = out[4:].split("\n---\n", 1)
    fm = yaml.safe_load(head)
    assert fm["id"] == page["id"] and set(fm) == {
        "id",
        "url",
        "title",
        "created_time",
        "last_edited_time",
        "properties",
    }
    assert fm["title"] == (page_title(page))
    h1: list[Token] = [t for t in parse(body) if t.type == "heading_open"]
    assert len(h1) == 1 and "<script" not in render_html(body)
