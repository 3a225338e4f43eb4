"""Rich text: escaping renders literally, annotations nest validly, mentions and links resolve."""

from __future__ import annotations

import random
from typing import Any

import pytest
from convert_helpers import block_trees, cassette_paths, find_objects, mention, para, parse, render_html, text
from markdown_it.token import Token

from notion_sync.convert.links import NoLinks
from notion_sync.convert.markdown import blocks_to_markdown
from notion_sync.convert.richtext import rich_to_html, rich_to_md

NASTY = [
    "*not bold*",
    "**x**",
    "_under_",
    "__dunder__",
    "snake_case_name",
    "[link](http://x)",
    "![img](x.png)",
    "(parens)",
    "# not a heading",
    "## two",
    "issue #4",
    "<script>alert(1)</script>",
    "<b>bold?</b>",
    "<!-- comment -->",
    "a | b | c",
    "back\\slash\\",
    "\\*",
    "`tick`",
    "``double``",
    "1. not a list",
    "2) nor this",
    "- dash",
    "+ plus",
    "> quote",
    "---",
    "===",
    "~~strike~~",
    "$x^2$",
    "&amp; &copy; &#65;",
    "<https://auto.link>",
    "    four spaces",
    "line one\n- two\n# three\n> four\n1. five\n---",
    "trailing\\",
    "* [ ] task",
    "[^1] footnote",
    "```\nfence\n```",
    "<div>\nblock\n</div>",
    "emoji 😀 ✨ and 中文",
    "x < y > z",
    "a*b*c",
    "***",
    "[ ]",
    "!",
    "|",
]


def _chars(inline: Token) -> list[tuple[str, frozenset[str]]]:
    """Each visible character with the formatting markdown-it gives it."""
    out: list[tuple[str, frozenset[str]]] = []
    stack: list[str] = []
    tags = {"<strong>": "bold", "<em>": "italic", "<del>": "strikethrough", "<u>": "underline"}
    for tok in inline.children or []:
        if tok.type.endswith("_open") and tok.type != "link_open":
            stack.append({"strong_open": "bold", "em_open": "italic", "s_open": "strikethrough"}[tok.type])
        elif tok.type == "link_open":
            stack.append("link:" + str(tok.attrs.get("href")))
        elif tok.type.endswith("_close"):
            stack.pop()
        elif tok.type == "html_inline":
            if tok.content.startswith("</"):
                stack.pop()
            else:
                stack.append(tags.get(tok.content, "color"))
        elif tok.type in ("softbreak", "hardbreak") or tok.content == "<br>":
            out.append(("\n", frozenset(stack)))
        elif tok.type == "code_inline":
            out.extend((c, frozenset([*stack, "code"])) for c in tok.content)
        else:
            assert tok.type == "text", tok.type
            out.extend((c, frozenset(stack)) for c in tok.content)
    return out


def _expected(rich: list[dict[str, Any]]) -> list[tuple[str, frozenset[str]]]:
    out: list[tuple[str, frozenset[str]]] = []
    for item in rich:
        ann = item["annotations"]
        marks = {k for k in ("bold", "italic", "strikethrough", "underline", "code") if ann.get(k)}
        if ann.get("color", "default") != "default":
            marks.add("color")
        if item.get("href"):
            marks.add("link:" + item["href"])
        out.extend((c, frozenset(marks)) for c in item["plain_text"])
    return out


def _significant(chars: list[tuple[str, frozenset[str]]]) -> list[tuple[str, frozenset[str]]]:
    # whitespace may move outside a mark (CommonMark needs it there); every other char must match
    text = "".join(c for c, _ in chars).strip()
    lines = [line.strip() for line in text.split("\n")]
    kept = "\n".join(lines)
    it = iter(chars)
    out = []
    for c in kept:
        for got in it:
            if got[0] == c:
                out.append((c, got[1] if not c.isspace() else frozenset()))
                break
    return out


def _only_paragraph(markdown: str) -> Token:
    tokens = parse(markdown)
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], markdown
    return tokens[1]


def _check_roundtrip(rich: list[dict[str, Any]]) -> None:
    md = rich_to_md(rich, NoLinks())
    if not "".join(i["plain_text"] for i in rich).strip():
        return
    got = _significant(_chars(_only_paragraph(md)))
    assert got == _significant(_expected(rich)), md


@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_text_renders_literally(nasty: str) -> None:
    md = rich_to_md([text(nasty)], NoLinks())
    inline = _only_paragraph(md)
    assert {t.type for t in inline.children or []} <= {"text", "hardbreak"}
    expected = "\n".join(line.strip() for line in nasty.split("\n"))
    assert "".join(c for c, _ in _chars(inline)) == expected
    assert "<script" not in render_html(md)


@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_text_is_literal_in_every_container(nasty: str) -> None:
    flat = " ".join(nasty.split())
    blocks = [
        para(nasty, kind="heading_2"),
        para(nasty, kind="bulleted_list_item", children=[para(nasty, kind="numbered_list_item")]),
        para(nasty, kind="to_do", checked=False),
        para(nasty, kind="quote"),
        para(nasty, kind="callout", icon={"type": "emoji", "emoji": "💡"}),
        para(nasty, kind="toggle", children=[para(nasty)]),
        {
            "type": "table",
            "id": "t",
            "table": {"table_width": 2, "has_column_header": True},
            "children": [
                {"type": "table_row", "id": "r", "table_row": {"cells": [[text(nasty)], [text("x")]]}}
            ],
        },
    ]
    md = blocks_to_markdown(blocks, NoLinks())
    html = render_html(md)
    assert "<script" not in html and "<b>" not in html and "<div>" not in html
    tokens = parse(md)
    kinds = [t.type for t in tokens]
    assert kinds.count("heading_open") == 1 and kinds.count("table_open") == 1
    assert kinds.count("bullet_list_open") == 2 and kinds.count("ordered_list_open") == 1  # bullets, to-dos
    assert kinds.count("blockquote_open") == 2 and kinds.count("hr") == 0
    inline_text = ["".join(c for c, _ in _chars(t)) for t in tokens if t.type == "inline"]
    assert flat in [" ".join(s.split()) for s in inline_text if s.strip()]
    for t in tokens:
        if t.type == "inline":
            inline_kinds = {c.type if c.content != "<br>" else "br" for c in t.children or []}
            assert inline_kinds <= {"text", "hardbreak", "softbreak", "br"}, (nasty, md)


def test_annotation_combinations_nest_validly() -> None:
    rng = random.Random(4)
    words = ["a", "word", "x_y", "*", "'q'", "(p)", "1.", " ", "  sp ", "é", "😀", "-", "#", "`", "\n", "\\"]
    flags = ["bold", "italic", "strikethrough", "underline", "code"]
    for _ in range(3000):
        rich = []
        for _ in range(rng.randint(1, 6)):
            ann: dict[str, Any] = {f: rng.random() < 0.4 for f in flags}
            ann["color"] = rng.choice(["default", "default", "red", "blue_background"])
            href = rng.choice([None, None, None, "https://e.com/a", "https://e.com/b"])
            rich.append(text("".join(rng.choice(words) for _ in range(rng.randint(1, 3))), href, **ann))
        _check_roundtrip(rich)


def test_recorded_rich_text_keeps_formatting() -> None:
    count = 0
    for path in cassette_paths():
        for tree in block_trees(path).values():
            for block in find_objects(tree, "block"):
                rich = block.get(block["type"], {}).get("rich_text") or []
                if rich and all(i["type"] == "text" for i in rich):
                    _check_roundtrip(rich)
                    count += 1
    assert count > 50


def test_overlapping_annotations_output() -> None:
    rich = [text("bolded ", bold=True), text("then", bold=True, italic=True), text(" typed.", bold=True)]
    assert rich_to_md(rich, NoLinks()) == "**bolded *then* typed.**"
    rich = [text("a", bold=True), text("b", italic=True)]
    assert rich_to_md(rich, NoLinks()) == "**a**<em>b</em>"  # `**a***b*` would be ambiguous
    assert rich_to_md([text('"q"', bold=True), text("x")], NoLinks()) == '<strong>"q"</strong>x'


def test_code_span_fences_and_colour() -> None:
    assert rich_to_md([text("a ``b`` c", code=True)], NoLinks()) == "```a ``b`` c```"
    assert rich_to_md([text("`x`", code=True)], NoLinks()) == "`` `x` ``"
    assert rich_to_md([text("red", color="red")], NoLinks()) == '<span style="color:#D44C47">red</span>'
    assert rich_to_md([text("bg", color="blue_background")], NoLinks()) == (
        '<span style="background-color:#E7F3F8">bg</span>'
    )
    assert rich_to_md([text("x", color='red" onload="x')], NoLinks()) == "x"


class Links:
    def page_link(self, page_id: str) -> str | None:
        return {"00000000-0000-4000-8000-000000000001": "Tests/My Page.md"}.get(page_id)

    def file_link(self, url: str) -> str | None:
        return None

    def page_title(self, page_id: str) -> str | None:
        return None


def test_mentions() -> None:
    page = mention(
        "page",
        {"id": "00000000-0000-4000-8000-000000000001"},
        "Tests",
        "https://www.notion.so/00000000000040008000000000000001",
    )
    other = mention("database", {"id": "00000000-0000-4000-8000-00000000000c"}, "Task DB")
    user = mention("user", {"object": "user", "id": "u1", "name": "Ada *L*"}, "@Ada *L*")
    nameless = mention("user", {"object": "user", "id": "u2"}, "")
    date = mention("date", {"start": "2024-01-01", "end": "2024-01-31", "time_zone": None}, "January 1, 2024")
    preview = mention("link_preview", {"url": "https://github.com/x/y"}, "https://github.com/x/y")
    link_mention = mention("link_mention", {"href": "https://e.com/p", "title": "E page"}, "E page")
    template = mention(
        "template_mention", {"type": "template_mention_date", "template_mention_date": "today"}, "@Today"
    )
    parts = [page, other, user, nameless, date, preview, link_mention, template]
    md = " ".join(rich_to_md([p], Links()) for p in parts)
    assert md == (
        "[Tests](Tests/My%20Page.md) [Task DB](https://www.notion.so/0000000000004000800000000000000c) "
        "@Ada \\*L\\* @u2 2024-01-01 → 2024-01-31 [https://github.com/x/y](https://github.com/x/y) "
        "[E page](https://e.com/p) @Today"
    )
    assert rich_to_html([page], Links()) == '<a href="Tests/My%20Page.md">Tests</a>'


def test_links_are_rewritten_and_neutralised() -> None:
    internal = text("see", "/00000000000040008000000000000001")
    outside = text("out", "https://www.notion.so/Some-Page-0000000000004000800000000000000d")
    evil = text("click", "javascript:alert(1)")
    spaced = text("sp", "https://e.com/a b(c)")
    md = rich_to_md([internal, text(" "), outside, text(" "), evil, text(" "), spaced], Links())
    assert md == (
        "[see](Tests/My%20Page.md) [out](https://www.notion.so/0000000000004000800000000000000d) click "
        "[sp](<https://e.com/a%20b(c)>)"
    )
    hrefs = [c.attrs["href"] for t in parse(md) if t.type == "inline" for c in t.children or [] if c.attrs]
    assert hrefs == [
        "Tests/My%20Page.md",
        "https://www.notion.so/0000000000004000800000000000000d",
        "https://e.com/a%20b(c)",
    ]
