"""HTML conversion: structure per block type through a parsed DOM, and hostile content kept inert."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from convert_helpers import block, mention, new_id, para, prop, text

from notion_sync.convert.html import (
    HtmlLinks,
    Nav,
    TreeNode,
    data_source_to_html,
    database_to_html,
    html_path,
    index_html,
    page_to_html,
    safe_url,
)
from notion_sync.convert.links import NoLinks

LOCAL_PAGE = "00000000-0000-4000-8000-00000000aaaa"
SCRIPT = "<script>alert(1)</script>"
VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# --- a tiny DOM on top of html.parser --------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self._raw_text().strip()

    def _raw_text(self) -> str:
        return "".join(self.text_parts) + "".join(c._raw_text() for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                out.append(child)
            out.extend(child.find_all(tag, cls))
        return out

    def find(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag} class={cls}>"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert tag not in VOID
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text_parts.append(data)


def dom(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


class Links:
    """Resolves LOCAL_PAGE to a Markdown path, as the exporter's resolver would."""

    def page_link(self, page_id: str) -> str | None:
        return "Sub dir/Local page.md" if page_id == LOCAL_PAGE else None

    def file_link(self, url: str) -> str | None:
        return "files/photo.png" if url.endswith("/local.png") else None

    def page_title(self, page_id: str) -> str | None:
        return None


PAGE: dict[str, Any] = {
    "object": "page",
    "id": new_id(),
    "url": "https://www.notion.so/x",
    "icon": {"type": "emoji", "emoji": "📌"},
    "last_edited_time": "2025-01-01T00:00:00.000Z",
    "properties": {"Name": {"id": "title", "type": "title", "title": [text("My page")]}},
}


def body_of(blocks: list[dict[str, Any]], links: Any = None, **kwargs: Any) -> Node:
    html = page_to_html(PAGE, blocks, HtmlLinks(links or Links()), **kwargs)
    return dom(html).find("div", "body")


# --- block types ----------------------------------------------------------------------------------


def test_page_document_title_and_stylesheet() -> None:
    root = dom(page_to_html(PAGE, [], NoLinks(), nav=Nav(root="../", crumbs=(("Parent", "../P.html"),))))
    assert root.find("title").text == "My page"
    assert "My page" in root.find("h1").text and "📌" in root.find("h1").text
    assert root.find("link").attrs["href"] == "../style.css"
    crumbs = [a.attrs["href"] for a in root.find("nav", "crumbs").find_all("a")]
    assert crumbs == ["../index.html", "../P.html"]


def test_headings_paragraph_and_rich_text() -> None:
    body = body_of(
        [
            block("heading_1", {"rich_text": [text("One")]}),
            block("heading_3", {"rich_text": [text("Three", bold=True)], "color": "red"}),
            para("plain ", text("bold", bold=True), text(" link", href="https://example.com/")),
        ]
    )
    assert body.find("h2").text == "One"
    h4 = body.find("h4")
    assert h4.find("strong").text == "Three" and "color-red" in h4.classes
    assert body.find("p").find("a").attrs["href"] == "https://example.com/"


def test_toggleable_heading_keeps_children() -> None:
    body = body_of([block("heading_2", {"rich_text": [text("T")], "is_toggleable": True}, [para("inside")])])
    details = body.find("details")
    assert details.find("summary").find("h3").text == "T"
    assert details.find("p").text == "inside"


def test_lists_nest_and_number() -> None:
    body = body_of(
        [
            para("a", kind="bulleted_list_item", children=[para("a1", kind="bulleted_list_item")]),
            para("b", kind="bulleted_list_item"),
            para("one", kind="numbered_list_item", list_start_index=3),
            para("two", kind="numbered_list_item"),
            para("done", kind="to_do", checked=True),
            para("open", kind="to_do", checked=False),
        ]
    )
    outer = [u for u in body.children if u.tag == "ul"]
    assert [len(u.children) for u in outer] == [2, 2]
    assert outer[0].children[0].find("ul").find("li").text == "a1"
    ol = body.find("ol")
    assert ol.attrs["start"] == "3" and [li.text for li in ol.children] == ["one", "two"]
    boxes = body.find("ul", "to_do").find_all("input")
    assert ["checked" in b.attrs for b in boxes] == [True, False]
    assert all("disabled" in b.attrs for b in boxes)


def test_toggle_quote_callout_and_colours() -> None:
    body = body_of(
        [
            para("Open me", kind="toggle", children=[para("hidden")]),
            para("Quoted", kind="quote"),
            block(
                "callout",
                {
                    "rich_text": [text("Note")],
                    "icon": {"type": "emoji", "emoji": "💡"},
                    "color": "blue_background",
                },
                [para("more")],
            ),
        ]
    )
    assert body.find("details").find("summary").text == "Open me"
    assert body.find("blockquote").text == "Quoted"
    callout = body.find("aside", "callout")
    assert "bg-blue" in callout.classes
    assert callout.find("span", "icon").text == "💡"
    assert [p.text for p in callout.find_all("p")] == ["Note", "more"]


def test_code_with_language_and_caption_and_equation() -> None:
    body = body_of(
        [
            block(
                "code",
                {"rich_text": [text("if a < b:\n    pass")], "language": "python", "caption": [text("cap")]},
            ),
            block("equation", {"expression": "a < b \\sum"}),
        ]
    )
    figure = body.find("figure", "code")
    code = figure.find("code")
    assert code.text == "if a < b:\n    pass" and code.attrs["data-language"] == "python"
    assert figure.find("figcaption").text == "cap"
    assert body.find("div", "equation").find("code").text == "a < b \\sum"


def test_table_with_headers() -> None:
    def row(*cells: str) -> dict[str, Any]:
        made: dict[str, Any] = block("table_row", {"cells": [[text(c)] for c in cells]})
        return made

    body = body_of(
        [
            block(
                "table",
                {"table_width": 2, "has_column_header": True, "has_row_header": True},
                [row("h1", "h2"), row("r1", "v1")],
            )
        ]
    )
    table = body.find("table")
    assert [th.text for th in table.find("thead").find_all("th")] == ["h1", "h2"]
    body_row = table.find("tbody").find("tr")
    assert [c.tag for c in body_row.children] == ["th", "td"]
    assert body_row.text == "r1v1"


def test_columns_synced_tabs_divider() -> None:
    body = body_of(
        [
            block(
                "column_list", {}, [block("column", {}, [para("left")]), block("column", {}, [para("right")])]
            ),
            block("synced_block", {"synced_from": None}, [para("synced")]),
            block("synced_block", {"synced_from": {"block_id": new_id()}}),
            block("tab", {}, [para("tabbed")]),
            block("divider"),
        ]
    )
    columns = body.find("div", "columns")
    assert [c.text for c in columns.find_all("div", "column")] == ["left", "right"]
    assert body.find("div", "synced").text == "synced"
    assert "original content not available" in body.find("div", "unsupported").text
    assert body.find("section", "tab").text == "tabbed"
    assert body.find_all("hr")


def test_media_bookmarks_and_files() -> None:
    body = body_of(
        [
            block(
                "image",
                {"type": "external", "external": {"url": "https://x.test/a.png"}, "caption": [text("cap")]},
            ),
            block("image", {"type": "file", "file": {"url": "https://s3.test/local.png"}, "caption": []}),
            block("video", {"type": "external", "external": {"url": "https://x.test/v.mp4"}, "caption": []}),
            block("pdf", {"type": "file", "file": {"url": "https://x.test/doc.pdf?sig=1"}, "caption": []}),
            block("bookmark", {"url": "https://example.com/b", "caption": []}),
            block("embed", {"url": "https://example.com/e", "caption": [text("Embedded")]}),
        ],
        links=Links(),
    )
    images = body.find_all("img")
    assert images[0].attrs["src"] == "https://x.test/a.png" and images[0].attrs["alt"] == "cap"
    assert images[1].attrs["src"] == "files/photo.png"
    assert body.find("video").attrs["src"] == "https://x.test/v.mp4"
    assert body.find("figure", "pdf").find("a").text == "📎 doc.pdf"
    assert body.find("p", "bookmark").find("a").attrs["href"] == "https://example.com/b"
    assert body.find("p", "embed").find("a").text == "Embedded"


def test_internal_links_point_to_html_twins() -> None:
    body = body_of(
        [
            block("child_page", {"title": "Child"}, block_id=LOCAL_PAGE),
            block("link_to_page", {"type": "page_id", "page_id": LOCAL_PAGE}),
            block("child_database", {"title": "Elsewhere"}),
            para(mention("page", {"id": LOCAL_PAGE}, "Mentioned")),
        ]
    )
    hrefs = [a.attrs["href"] for a in body.find_all("a")]
    assert hrefs[0] == hrefs[1] == hrefs[3] == "Sub%20dir/Local%20page.html"
    assert hrefs[2].startswith("https://www.notion.so/")
    assert body.find_all("p", "link_to_page")[0].text.endswith("Local page")


def test_table_of_contents_links_to_heading_anchors() -> None:
    heading = block("heading_2", {"rich_text": [text("Part")]})
    body = body_of([block("table_of_contents", {"color": "default"}), heading])
    link = body.find("nav", "toc").find("a")
    assert link.text == "Part" and link.attrs["href"] == "#" + body.find("h3").attrs["id"]


def test_unknown_and_unsupported_blocks_are_visible() -> None:
    body = body_of(
        [
            block("unsupported", {"block_type": "ai_block"}),
            block("brand_new_type", {"rich_text": [text("kept text")]}, [para("kid")]),
        ]
    )
    notes = body.find_all("div", "unsupported")
    assert "ai_block" in notes[0].text
    assert "brand_new_type" in notes[1].text and "kept text" in notes[1].text and "kid" in notes[1].text


def test_comments_shown() -> None:
    comment = {"created_by": {"name": "Ada"}, "created_time": "2025-01-01", "rich_text": [text("Nice")]}
    root = dom(page_to_html(PAGE, [], NoLinks(), comments=[comment]))
    section = root.find("section", "comments")
    assert "Ada" in section.text and "Nice" in section.text


# --- hostile content ---------------------------------------------------------------------------


HOSTILE_BLOCKS = [
    para(SCRIPT, text(SCRIPT, bold=True), text("x", href="javascript:alert(1)")),
    block("heading_1", {"rich_text": [text(SCRIPT)]}),
    block("code", {"rich_text": [text(SCRIPT)], "language": SCRIPT, "caption": [text(SCRIPT)]}),
    block("equation", {"expression": SCRIPT}),
    block("bookmark", {"url": "javascript:alert(1)", "caption": [text(SCRIPT)]}),
    block("embed", {"url": "data:text/html,<script>alert(1)</script>", "caption": []}),
    block(
        "image", {"type": "external", "external": {"url": "javascript:alert(1)"}, "caption": [text(SCRIPT)]}
    ),
    block("video", {"type": "external", "external": {"url": "data:video/mp4;base64,AAAA"}, "caption": []}),
    block(
        "callout", {"rich_text": [text(SCRIPT)], "icon": {"type": "emoji", "emoji": SCRIPT}, "color": SCRIPT}
    ),
    block("child_page", {"title": SCRIPT}),
    block("unsupported", {"block_type": SCRIPT}),
    block(SCRIPT, {"rich_text": [text(SCRIPT)]}),
    para(mention("link_mention", {"href": "javascript:alert(1)", "title": SCRIPT}, SCRIPT)),
]


def _assert_inert(html: str) -> None:
    root = dom(html)
    assert "<script" not in html.lower()
    assert not root.find_all("script")
    for node in root.find_all():
        for name, value in node.attrs.items():
            assert not name.startswith("on"), (node.tag, name)
            if name in ("href", "src"):
                assert safe_url(value) == value, (node.tag, name, value)
                assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:"))


def test_hostile_page_content_is_escaped_and_links_neutralised() -> None:
    page = {
        **PAGE,
        "icon": {"type": "external", "external": {"url": "javascript:alert(1)"}},
        "url": "javascript:alert(1)",
        "properties": {
            "Name": {"id": "title", "type": "title", "title": [text(SCRIPT)]},
            SCRIPT: prop("rich_text", [text(SCRIPT)]),
            "Link": prop("url", "javascript:alert(1)"),
            "Mail": prop("email", '"><script>alert(1)</script>'),
            "Files": prop("files", [{"name": SCRIPT, "type": "external", "external": {"url": "data:x"}}]),
        },
    }
    comment = {"created_by": {"name": SCRIPT}, "rich_text": [text(SCRIPT)]}
    html = page_to_html(page, HOSTILE_BLOCKS, HtmlLinks(NoLinks()), comments=[comment])
    _assert_inert(html)
    assert html.count("&lt;script&gt;") >= 15  # the text is shown, as text


def test_hostile_data_source_database_and_index() -> None:
    data_source = {
        "title": [text(SCRIPT)],
        "description": [text(SCRIPT)],
        "properties": {"Name": {"type": "title"}, SCRIPT: {"type": "url"}},
    }
    row = {
        "id": new_id(),
        "properties": {"Name": prop("title", [text(SCRIPT)]), SCRIPT: prop("url", "javascript:alert(1)")},
    }
    _assert_inert("".join(data_source_to_html(data_source, [row], HtmlLinks(NoLinks()))))
    database = {"title": [text(SCRIPT)], "data_sources": [{"id": new_id(), "name": SCRIPT}]}
    _assert_inert(database_to_html(database, HtmlLinks(NoLinks())))
    _assert_inert(
        "".join(index_html([TreeNode(SCRIPT, "javascript:alert(1)", children=[TreeNode(SCRIPT, None)])]))
    )


# --- tables, databases, index ------------------------------------------------------------------------


def test_data_source_table_in_schema_order_with_row_links() -> None:
    data_source = {
        "title": [text("Tasks")],
        "properties": {
            "Done": {"type": "checkbox"},
            "Name": {"type": "title"},
            "Tags": {"type": "multi_select"},
        },
    }
    row = {
        "id": LOCAL_PAGE,
        "properties": {
            "Name": prop("title", [text("Row one")]),
            "Done": prop("checkbox", True),
            "Tags": prop("multi_select", [{"name": "a"}, {"name": "b"}]),
        },
    }
    root = dom("".join(data_source_to_html(data_source, iter([row]), HtmlLinks(Links()))))
    table = root.find("table", "rows")
    assert [th.text for th in table.find("thead").find_all("th")] == ["Name", "Done", "Tags"]
    cells = table.find("tbody").find("tr").children
    assert cells[0].find("a").attrs["href"] == "Sub%20dir/Local%20page.html"
    assert [c.text for c in cells] == ["Row one", "true", "a, b"]


def test_a_table_is_written_while_its_rows_are_read() -> None:
    data_source = {"title": [text("Tasks")], "properties": {"Name": {"type": "title"}}}
    read: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(3):
            read.append(n)
            yield {"id": new_id(), "properties": {"Name": prop("title", [text(f"Row {n}")])}}

    seen_at: dict[int, int] = {}
    for piece in data_source_to_html(data_source, rows(), HtmlLinks(Links())):
        for n in range(3):
            if f"Row {n}<" in piece:
                seen_at[n] = len(read)
    assert seen_at == {0: 1, 1: 2, 2: 3}


def test_database_lists_its_data_sources() -> None:
    database = {"title": [text("DB")], "data_sources": [{"id": LOCAL_PAGE, "name": "Source"}]}
    root = dom(database_to_html(database, HtmlLinks(Links())))
    link = root.find("ul", "sources").find("a")
    assert link.attrs["href"] == "Sub%20dir/Local%20page.html" and "Source" in link.text


def test_index_tree_nests() -> None:
    tree = [TreeNode("Top", "Top.html", children=[TreeNode("Kid", "Top/Kid.html")])]
    root = dom("".join(index_html(tree)))
    top = root.find("ul", "tree").children[0]
    assert top.find("a").attrs["href"] == "Top.html"
    assert top.find("ul").find("a").text == "Kid"


def test_index_is_written_while_the_tree_is_walked() -> None:
    """A workspace's tree is read lazily: each piece goes out before the rest is walked."""
    walked: list[str] = []

    def kids() -> Iterator[TreeNode]:
        for name in ("one", "two", "three"):
            walked.append(name)
            yield TreeNode(name, f"Top/{name}.html")

    tree = [TreeNode("Top", "Top.html", children=kids()), TreeNode("Empty", "Empty.html", children=iter(()))]
    seen_at: dict[str, int] = {}
    html = ""
    for piece in index_html(tree):
        html += piece
        for name in ("one", "two", "three"):
            if f">{name}<" in piece:
                seen_at[name] = len(walked)
    assert seen_at == {"one": 1, "two": 2, "three": 3}
    empty = dom(html).find("ul", "tree").children[1]
    assert empty.find("a").text == "Empty" and not empty.find_all("ul")
    assert "Nothing was exported" in "".join(index_html([]))


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a/B.md", "a/B.html"), ("a/S.csv", "a/S.html"), ("x.md.md", "x.md.html"), ("a.mdx", "a.mdx")],
)
def test_html_path(path: str, expected: str) -> None:
    assert html_path(path) == expected


def test_html_links_maps_files_through_asset_prefix() -> None:
    links = HtmlLinks(Links(), asset_prefix="../../Sub/")
    assert links.file_link("https://s3.test/local.png") == "../../Sub/files/photo.png"
    assert links.file_link("https://s3.test/other.png") is None
    assert links.page_link(LOCAL_PAGE) == "Sub dir/Local page.html"
