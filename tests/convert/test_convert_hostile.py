"""Hostile content through every converter: URL spellings that only become `javascript:` once a
renderer decodes them, raw HTML outside rich text, and formula-like CSV header cells.

Markdown is rendered by a deliberately careless CommonMark renderer (markdown-it with its own link
check off and destinations written as decoded, raw HTML on), so the test sees what the Markdown
itself allows, not what one renderer happens to filter; HTML is read as a browser reads it.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from convert_helpers import block, mention, para, prop, render_html, text
from markdown_it import MarkdownIt

from notion_sync.convert.csvfmt import csv_row, neutralise, write_csv
from notion_sync.convert.html import HtmlLinks, TreeNode, data_source_to_html, index_html, page_to_html
from notion_sync.convert.links import NoLinks, is_safe_url
from notion_sync.convert.markdown import (
    blocks_to_markdown,
    database_to_markdown,
    front_matter,
    page_to_markdown,
)

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SAFE_SCHEMES = {"http", "https", "mailto", "tel", "ftp", "notion"}

UNSAFE_URLS = [
    # the issue's three: CommonMark (and browsers, in attributes) decode these to `javascript:`
    "javascript&colon;alert(1)",
    "&#106;avascript:alert(1)",
    "jav&#x09;ascript:alert(1)",
    # more entity spellings, double encoding (decoded once by Markdown, once by the browser)
    "&#x6A;avascript&#x3A;alert(1)",
    "&#0000106;avascript:alert(1)",
    "jav&Tab;ascript:alert(1)",
    "java&NewLine;script:alert(1)",
    "&#32;javascript:alert(1)",
    "&amp;#106;avascript:alert(1)",
    "javascript&amp;colon;alert(1)",
    # case, whitespace and control characters that browsers ignore
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\nscript:alert(1)",
    "java\tscript:alert(1)",
    "java\rscript:alert(1)",
    "java\x00script:alert(1)",
    "  javascript:alert(1)",
    "\x01\x1f javascript:alert(1)",
    "\u200bjavascript:alert(1)",
    "\ufeffjavascript:alert(1)",
    "javascript\\:alert(1)",  # CommonMark reads `\:` as `:`
    # other executable schemes
    "vbscript:msgbox(1)",
    "VBScript&colon;msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "d&#97;ta:text/html,x",
    "file:///etc/passwd",
]

SAFE_URLS = [
    "https://example.com/a_b",
    "https://example.com/search?q=a&b=c",
    "HTTPS://Example.com/X",
    "mailto:ada@example.com",
    "tel:+15550100",
    "ftp://files.example.com/x",
    "notion://www.notion.so/x",
    "relative/page.md",
    "#section",
    "https://en.wikipedia.org/wiki/Foo_(bar)",
    "https://example.com/a b",
    "https://example.com/<x>",
    "https://example.com/?q=&amp;x&#106;",  # literal `&amp;`: kept, not decoded by the renderer
    "https://example.com/x)](javascript:alert(1))",  # tries to end the link and start another
    "https://example.com/x>)\n\n<script>alert(1)</script>",
]


# --- what a careless renderer and a browser make of the output -------------------------------------


class _Careless(MarkdownIt):
    """Accepts every link destination and writes it as decoded (entities, backslash escapes).

    (The method names are markdown-it's.)
    """

    def validateLink(self, url: str) -> bool:
        return True

    def normalizeLink(self, url: str) -> str:
        return url


def _careless() -> MarkdownIt:
    return _Careless("commonmark", {"maxNesting": 200}).enable(["table", "strikethrough"])


class _Elements(HTMLParser):
    """Every start tag with its attributes, values decoded as a browser decodes them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def _browser_scheme(url: str) -> str | None:
    """The scheme a browser's URL parser finds: C0 controls and spaces stripped at the ends,
    tabs and newlines removed anywhere (WHATWG URL); None for a relative reference."""
    url = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(0x21)))))
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    return m.group(1).lower() if m else None


def _assert_inert(markup: str) -> list[tuple[str, dict[str, str]]]:
    assert "<script" not in markup.lower()
    tags = _Elements(markup).tags
    for tag, attrs in tags:
        assert tag not in ("script", "iframe", "object", "embed", "svg", "style"), markup
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, markup)
            if name in ("href", "src", "action", "formaction"):
                scheme = _browser_scheme(value)
                assert scheme is None or scheme in SAFE_SCHEMES, (tag, name, value, markup)
    return tags


def _assert_inert_markdown(markdown: str) -> list[tuple[str, dict[str, str]]]:
    _assert_inert(render_html(markdown))  # markdown-it as configured for the other tests
    return _assert_inert(_careless().render(markdown))


# a part of every unsafe URL above: no link may carry it, however it was re-spelled
_PAYLOAD_MARKS = ("alert", "msgbox", "text/html", "passwd")


def _links(tags: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [attrs[name] for _, attrs in tags for name in ("href", "src") if name in attrs]


# --- URLs ------------------------------------------------------------------------------------------


def _url_blocks(url: str) -> list[dict[str, Any]]:
    """The URL in every place a block writes one."""
    return [
        para("see ", text("text link", href=url)),
        para(text("bold link", href=url, bold=True), " and ", text("coloured", href=url, color="red")),
        para(mention("link_mention", {"href": url, "title": "mention"}, "mention")),
        para(mention("link_preview", {"url": url}, "preview")),
        block("heading_2", {"rich_text": [text("heading link", href=url)]}),
        block("bookmark", {"url": url, "caption": []}),
        block("bookmark", {"url": url, "caption": [text("captioned")]}),
        block("embed", {"url": url, "caption": []}),
        block("link_preview", {"url": url}),
        block("image", {"type": "external", "external": {"url": url}, "caption": [text("alt")]}),
        block("video", {"type": "external", "external": {"url": url}, "caption": []}),
        block("file", {"type": "file", "file": {"url": url}, "caption": [], "name": "f.txt"}),
        block("pdf", {"type": "external", "external": {"url": url}, "caption": []}),
        block("callout", {"rich_text": [text("c")], "icon": {"type": "external", "external": {"url": url}}}),
        block("toggle", {"rich_text": [text("summary link", href=url)]}, [para("inside")]),
        block(
            "table",
            {"table_width": 1, "has_column_header": False, "has_row_header": False},
            [block("table_row", {"cells": [[text("cell link", href=url)]]})],
        ),
    ]


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_url_is_refused_however_spelled(url: str) -> None:
    assert not is_safe_url(url)


@pytest.mark.parametrize("url", SAFE_URLS)
def test_safe_url_is_accepted(url: str) -> None:
    assert is_safe_url(url)


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_url_never_becomes_a_markdown_link(url: str) -> None:
    markdown = blocks_to_markdown(_url_blocks(url), NoLinks())
    tags = _assert_inert_markdown(markdown)
    assert not _links(tags), markdown  # every one dropped: the texts stay, unlinked
    for shown in ("text link", "bold link", "mention", "heading link", "summary link", "cell link"):
        assert shown in markdown


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_url_never_becomes_an_html_link(url: str) -> None:
    page = {
        "id": "00000000-0000-4000-8000-0000000000f1",
        "url": url,
        "properties": {"Name": prop("title", [text("Hostile")]), "Link": prop("url", url)},
    }
    tags = _assert_inert(page_to_html(page, _url_blocks(url), HtmlLinks(NoLinks())))
    assert not [link for link in _links(tags) if any(mark in link for mark in _PAYLOAD_MARKS)]
    assert "#" in _links(tags)  # the bookmark, the media and the URL property: kept, unlinked
    data_source = {"title": [text("T")], "properties": {"Name": {"type": "title"}, "Link": {"type": "url"}}}
    row = {"id": "00000000-0000-4000-8000-0000000000f2", "properties": {"Link": prop("url", url)}}
    _assert_inert("".join(data_source_to_html(data_source, [row], HtmlLinks(NoLinks()))))
    _assert_inert("".join(index_html([TreeNode("node", url)])))


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_page_url_stays_out_of_front_matter(url: str) -> None:
    page = {"id": "00000000-0000-4000-8000-0000000000f1", "url": url, "properties": {}}
    data = yaml.safe_load(front_matter(page, NoLinks()).strip("-\n"))
    assert data["url"] == "https://www.notion.so/000000000000400080000000000000f1"


@pytest.mark.parametrize("url", SAFE_URLS)
def test_safe_url_is_linked_exactly_in_markdown(url: str) -> None:
    markdown = blocks_to_markdown(
        [para(text("link", href=url)), block("bookmark", {"url": url, "caption": []})], NoLinks()
    )
    tags = _assert_inert_markdown(markdown)
    hrefs = [attrs["href"] for tag, attrs in tags if tag == "a"]
    # the renderer reads back the URL itself (only unsafe characters percent-encoded), once per block
    assert [unquote(h) for h in hrefs] == [url, url], markdown


@pytest.mark.parametrize("url", [*SAFE_URLS, "https://example.com/a|b", "https://e.com/|<img src=x>|"])
def test_safe_url_keeps_its_table_cell(url: str) -> None:
    row = block("table_row", {"cells": [[text("cell", href=url)], [text("next")]]})
    markdown = blocks_to_markdown([block("table", {"table_width": 2}, [row])], NoLinks())
    tags = _assert_inert_markdown(markdown)
    assert [unquote(attrs["href"]) for tag, attrs in tags if tag == "a"] == [url], markdown
    assert [tag for tag, _ in tags].count("td") == 2, markdown


@pytest.mark.parametrize("url", SAFE_URLS)
def test_safe_url_is_linked_exactly_in_html(url: str) -> None:
    page = {"id": "00000000-0000-4000-8000-0000000000f1", "url": url, "properties": {}}
    tags = _assert_inert(page_to_html(page, [para(text("link", href=url))], HtmlLinks(NoLinks())))
    assert [attrs["href"] for tag, attrs in tags if tag == "a"].count(url) == 2  # link and "Open in Notion"


# --- raw HTML outside rich text --------------------------------------------------------------------

HOSTILE_TEXTS = [SCRIPT, IMG, f"x\n{SCRIPT}", f"x\r{IMG}", "</details><script>alert(1)</script>"]


def _text_blocks(payload: str) -> list[dict[str, Any]]:
    """The payload in every field a block writes outside rich text, and in rich text as well."""
    return [
        block("callout", {"rich_text": [text("c")], "icon": {"type": "emoji", "emoji": payload}}),
        block("callout", {"rich_text": [], "icon": {"type": "emoji", "emoji": payload}}),
        block(
            "callout",
            {"rich_text": [text("c")], "icon": {"type": "custom_emoji", "custom_emoji": {"name": payload}}},
        ),
        block("code", {"rich_text": [text(payload)], "language": payload, "caption": [text(payload)]}),
        block("equation", {"expression": payload}),
        para(text(payload), {"type": "equation", "equation": {"expression": payload}, "plain_text": payload}),
        block(
            "image",
            {"type": "external", "external": {"url": "https://e.com/i.png"}, "caption": [text(payload)]},
        ),
        block(
            "file",
            {"type": "external", "external": {"url": "https://e.com/f"}, "caption": [], "name": payload},
        ),
        block("bookmark", {"url": "https://e.com/b", "caption": [text(payload)]}),
        block("bookmark", {"url": payload, "caption": []}),
        block("child_page", {"title": payload}),
        block("child_database", {"title": payload}),
        block("unsupported", {"block_type": payload}),
        block("heading_1", {"rich_text": [text(payload)]}),
        block("table_of_contents", {}),
        block("toggle", {"rich_text": [text(payload)]}, [para(payload)]),
        block(
            "table",
            {"table_width": 2, "has_column_header": True, "has_row_header": True},
            [block("table_row", {"cells": [[text(payload)], [text(payload)]]})] * 2,
        ),
        para(mention("user", {"name": payload}, "@" + payload)),
    ]


def _nested_blocks(payload: str) -> list[dict[str, Any]]:
    """The same, inside the containers a line break could end: list items and quotes."""
    inner = _text_blocks(payload)
    return [
        para("item", kind="bulleted_list_item", children=inner),
        para("step", kind="numbered_list_item", children=inner),
        block("callout", {"rich_text": [text("note")], "icon": None}, inner),
        block("quote", {"rich_text": [text("quote")]}, inner),
    ]


@pytest.mark.parametrize("payload", HOSTILE_TEXTS)
def test_no_raw_html_in_markdown_from_any_block_field(payload: str) -> None:
    blocks = [*_text_blocks(payload), *_nested_blocks(payload)]
    _assert_inert_markdown(blocks_to_markdown(blocks, NoLinks()))


@pytest.mark.parametrize("payload", HOSTILE_TEXTS)
def test_callout_emoji_is_shown_as_text(payload: str) -> None:
    icon = {"type": "emoji", "emoji": payload}
    markdown = blocks_to_markdown([block("callout", {"rich_text": [text("note")], "icon": icon})], NoLinks())
    rendered = _careless().render(markdown)
    _assert_inert(rendered)
    assert "&lt;" in rendered and "alert(1)" in rendered and "note" in rendered  # the text survives
    assert rendered.count("<blockquote>") == 1


def test_ordinary_emoji_icon_is_unchanged() -> None:
    icon = {"type": "emoji", "emoji": "💡"}
    assert (
        blocks_to_markdown([block("callout", {"rich_text": [text("x")], "icon": icon})], NoLinks())
        == "> 💡 x\n"
    )


def test_code_with_a_lone_carriage_return_stays_inside_its_fence() -> None:
    code = block("code", {"rich_text": [text(f"a\r{SCRIPT}\rb")], "language": "html"})
    for blocks in ([code], [para("item", kind="bulleted_list_item", children=[code])]):
        markdown = blocks_to_markdown(blocks, NoLinks())
        rendered = _careless().render(markdown)
        _assert_inert(rendered)
        assert "&lt;script&gt;" in rendered and rendered.count("<code") == 1


@pytest.mark.parametrize(
    "payload", ["[x](javascript:alert(1))", "[x](<javascript:alert(1)>)", "<javascript:alert(1)>"]
)
def test_equations_form_no_links(payload: str) -> None:
    inline = {"type": "equation", "equation": {"expression": payload}, "plain_text": payload}
    markdown = blocks_to_markdown([block("equation", {"expression": payload}), para(inline)], NoLinks())
    tags = _assert_inert_markdown(markdown)
    assert not _links(tags), markdown


@pytest.mark.parametrize("payload", HOSTILE_TEXTS)
def test_no_raw_html_in_page_titles_front_matter_comments_and_database_index(payload: str) -> None:
    page = {
        "id": "00000000-0000-4000-8000-0000000000f1",
        "url": "https://www.notion.so/x",
        "properties": {
            "Name": prop("title", [text(payload)]),
            payload: prop("rich_text", [text(payload)]),
            "Tags": prop("multi_select", [{"name": payload}, {"name": "[a](javascript:alert(1))"}]),
            "Link": prop("url", "[x](javascript:alert(1))"),
        },
    }
    comment = {"created_by": {"name": payload}, "rich_text": [text(payload)], "created_time": "t"}
    markdown = page_to_markdown(page, [], NoLinks(), comments=[comment])
    tags = _assert_inert_markdown(markdown)  # front matter read as Markdown by a renderer without it
    assert not _links(tags), markdown
    # to YAML the front matter is the same data
    data = yaml.safe_load(markdown.split("---\n")[1])
    assert data["title"] == payload.strip()
    assert data["properties"][payload] == payload
    assert data["properties"]["Tags"] == [payload, "[a](javascript:alert(1))"]
    assert data["properties"]["Link"] == "[x](javascript:alert(1))"
    database = {"title": [text(payload)], "data_sources": [{"id": "d", "name": payload}]}
    _assert_inert_markdown(database_to_markdown(database, NoLinks()))


def test_front_matter_without_markup_is_unchanged() -> None:
    page = {
        "id": "p",
        "url": "https://www.notion.so/p",
        "properties": {"Name": prop("title", [text("Plain")])},
    }
    assert front_matter(page, NoLinks()).splitlines()[1:4] == [
        "id: p",
        "url: https://www.notion.so/p",
        "title: Plain",
    ]


# --- CSV ---------------------------------------------------------------------------------------------

FORMULA_NAMES = ['=HYPERLINK("http://evil.example","x")', "+cmd", "-2+3", "@SUM(A1)", "\tx", "\r=x", " =1+1"]


def test_csv_header_cells_are_neutralised_like_data_cells() -> None:
    data_source = {
        "properties": {
            "Name": {"type": "title"},
            **{name: {"type": "rich_text"} for name in FORMULA_NAMES},
            "-5": {"type": "rich_text"},
        }
    }
    row = {"properties": {name: prop("rich_text", [text(name)]) for name in ["-5", *FORMULA_NAMES]}}
    out = io.StringIO(newline="")
    write_csv(out, data_source, [row], NoLinks())
    header, cells = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert header == ["Name", *(neutralise(n) for n in FORMULA_NAMES), "-5"]
    assert all(cell.startswith("'") for cell in header[1:-1])
    assert header[1:] == cells[1:] == csv_row(data_source, row, NoLinks())[1:]  # one rule for both
    # the HTML table still finds each column by its real name
    html_table = "".join(data_source_to_html(data_source, [row], HtmlLinks(NoLinks())))
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;x&#34;)" in html_table
