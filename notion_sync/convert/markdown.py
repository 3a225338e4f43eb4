"""Notion pages and block trees to CommonMark + GFM Markdown.

Decisions: toggles become `<details><summary>` (summary text as inline HTML, since Markdown is not
parsed inside an HTML line); toggleable headings keep a real Markdown heading inside the summary so
outlines still see it; callouts are blockquotes opening with their icon; columns, tabs and synced
blocks render their content in order; children of paragraphs and other plain blocks follow them
unindented; breadcrumbs are dropped (the folder tree is the breadcrumb); unsupported and unknown
blocks become a visible `> ⚠️ Unsupported block: <type>` note followed by any text and children.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml

from .links import LinkResolver, encode_path, file_target, is_safe_url, notion_url, page_target
from .properties import Value, property_value
from .richtext import (
    escape_md,
    link_dest,
    math_safe,
    md_link,
    plain_text,
    rich_to_html,
    rich_to_md,
    with_marks,
)

# libyaml's dumper when available: the pure-Python one is a visible share of export CPU.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LIST_TYPES = ("bulleted_list_item", "numbered_list_item", "to_do")
_HEADING = re.compile(r"heading_(\d)")
_CODE_LANGS = {
    "plain text": "text",
    "c++": "cpp",
    "c#": "csharp",
    "f#": "fsharp",
    "objective-c": "objectivec",
    "visual basic": "vb",
    "vb.net": "vbnet",
    "java/c/c++/c#": "java",
}


@dataclass
class _Ctx:
    links: LinkResolver
    toc: list[tuple[int, str, str]] = field(default_factory=list)  # level, text, anchor


def _body(block: dict[str, Any]) -> dict[str, Any]:
    body = block.get(str(block.get("type")))
    return body if isinstance(body, dict) else {}


def _children(block: dict[str, Any]) -> list[dict[str, Any]]:
    kids = block.get("children")
    return [k for k in kids if isinstance(k, dict)] if isinstance(kids, list) else []


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([(first + lines[0]).rstrip(" "), *(rest + line if line else "" for line in lines[1:])])


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _join(*chunks: str) -> str:
    return "\n\n".join(c for c in chunks if c)


def _inline(text: object, line_start: bool = False) -> str:
    """Text outside rich text (names, titles, icons) escaped onto one line: any line break in it
    could end the list item or quote it stands in, or start a block of its own."""
    return escape_md(" ".join(str(text).split()), line_start=line_start)


# --- lists ----------------------------------------------------------------------------------------


def _list_run(items: list[dict[str, Any]], ctx: _Ctx, bullet: str) -> str:
    kind = items[0]["type"]
    number = _body(items[0]).get("list_start_index")
    number = number if isinstance(number, int) and number >= 0 else 1
    out = []
    for item in items:
        body = _body(item)
        if kind == "numbered_list_item":
            marker, number = f"{number}. ", number + 1
        elif kind == "to_do":
            marker = f"{bullet} [{'x' if body.get('checked') else ' '}] "
        else:
            marker = f"{bullet} "
        width = len(marker) if kind == "numbered_list_item" else 2
        text = rich_to_md(body.get("rich_text"), ctx.links)
        kids = _children(item)
        inner = _render(kids, ctx)
        if inner:
            tight = kids[0].get("type") in _LIST_TYPES and _body(kids[0]).get("list_start_index") in (None, 1)
            text = text + ("\n" if tight or not text else "\n\n") + inner
        out.append(_indent(text, marker if text else marker.rstrip(), " " * width))
    return "\n".join(out)


# --- single blocks --------------------------------------------------------------------------------


def _details(summary_html: str, inner: str) -> str:
    head = f"<details>\n<summary>{summary_html}</summary>"
    return f"{head}\n\n{inner}\n\n</details>" if inner else f"{head}\n</details>"


def _heading(block: dict[str, Any], ctx: _Ctx, level: int) -> str:
    body = _body(block)
    line = "#" * min(max(level, 1), 6) + " " + rich_to_md(body.get("rich_text"), ctx.links, "heading")
    inner = _render(_children(block), ctx)
    if body.get("is_toggleable") and inner:
        return f"<details>\n<summary>\n\n{line.rstrip()}\n\n</summary>\n\n{inner}\n\n</details>"
    return _join(line.rstrip(), inner)


def _code(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    # a lone CR ends a line too: unindented inside a list item or quote, it would end the fence
    content = plain_text(body.get("rich_text")).replace("\r\n", "\n").replace("\r", "\n")
    runs = [len(r) for r in re.findall(r"`+", content)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    lang = str(body.get("language") or "").lower()
    lang = re.sub(r"[^a-z0-9_+#.-]", "", _CODE_LANGS.get(lang, lang.replace(" ", "-")))
    caption = rich_to_md(with_marks(body.get("caption"), italic=True), ctx.links)
    return _join(f"{fence}{lang}\n{content}\n{fence}", caption)


def _table(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    rows = [_body(r).get("cells") or [] for r in _children(block) if r.get("type") == "table_row"]
    width = max([int(body.get("table_width") or 0), *(len(r) for r in rows)])
    if not width:
        return ""

    def cells(row: list[Any], first_bold: bool) -> list[str]:
        out = []
        for n in range(width):
            rich = row[n] if n < len(row) and isinstance(row[n], list) else []
            rich = with_marks(rich, bold=True) if first_bold and n == 0 else rich
            out.append(rich_to_md(rich, ctx.links, "table"))
        return out

    def line(values: list[str]) -> str:
        return "| " + " | ".join(values) + " |"

    row_header = bool(body.get("has_row_header"))
    header = cells(rows.pop(0), row_header) if body.get("has_column_header") and rows else [""] * width
    return "\n".join([line(header), line(["---"] * width), *(line(cells(r, row_header)) for r in rows)])


def _media_url(body: dict[str, Any], ctx: _Ctx) -> str | None:
    source = body.get(str(body.get("type")))
    url = source.get("url") if isinstance(source, dict) else None
    if not isinstance(url, str) or not is_safe_url(url):
        return None
    return file_target(url, ctx.links)


def _media(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    target = _media_url(body, ctx)
    caption = plain_text(body.get("caption")).strip()
    if target is None:
        return _unsupported(block, ctx, f"{block.get('type')} without a URL")
    if block.get("type") == "image":
        return f"![{_inline(caption)}]({link_dest(target)})"
    name = caption or str(body.get("name") or "") or unquote(target.split("?")[0].rstrip("/").rsplit("/")[-1])
    return md_link(_inline(name) or _inline(block.get("type")), target)


def _web_link(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    url = body.get("url")
    if not isinstance(url, str) or not url:
        return ""
    caption = rich_to_md(body.get("caption"), ctx.links, "heading")
    if not is_safe_url(url):
        return caption or _inline(url)
    return md_link(caption or _inline(url), url)


def _page_link(block: dict[str, Any], ctx: _Ctx) -> str:
    kind = block.get("type")
    body = _body(block)
    if kind in ("child_page", "child_database"):
        target_id, title = str(block.get("id")), str(body.get("title") or "") or "Untitled"
    else:
        target_id = str(body.get(str(body.get("type"))) or "")
        local = ctx.links.page_link(target_id) if target_id else None
        # link_to_page carries no title: the exported file's name is the best one we have
        title = local.rsplit("/", 1)[-1].rsplit(".", 1)[0] if local else "Linked page"
    if not target_id:
        return _unsupported(block, ctx, "link_to_page without a target")
    return md_link(_inline(title), page_target(target_id, ctx.links))


def _unsupported(block: dict[str, Any], ctx: _Ctx, what: str | None = None) -> str:
    body = _body(block)
    what = what or str(body.get("block_type") or block.get("type") or "unknown")
    note = "> ⚠️ Unsupported block: " + _inline(what)
    texts = [
        rich_to_md(body[k], ctx.links)
        for k in ("title", "rich_text", "caption")
        if isinstance(body.get(k), list)
    ]
    return _join(note, *texts, _render(_children(block), ctx))


def _toc(ctx: _Ctx) -> str:
    if not ctx.toc:
        return ""
    top = min(level for level, _, _ in ctx.toc)
    return "\n".join(
        "  " * (level - top) + "- " + md_link(_inline(text), "#" + anchor) for level, text, anchor in ctx.toc
    )


def _text_block(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    return _join(rich_to_md(body.get("rich_text"), ctx.links), _render(_children(block), ctx))


def _callout(block: dict[str, Any], ctx: _Ctx) -> str:
    body = _body(block)
    icon = body.get("icon") if isinstance(body.get("icon"), dict) else {}
    assert isinstance(icon, dict)
    kind = icon.get("type")
    if kind == "emoji":  # an emoji by contract, but any text by content: escaped like text
        mark = _inline(icon.get("emoji") or "", line_start=True)
    elif kind == "custom_emoji" and isinstance(icon.get("custom_emoji"), dict):
        mark = _inline(":" + str(icon["custom_emoji"].get("name") or "emoji") + ":")
    elif kind in ("file", "external"):
        target = _media_url(icon, ctx)
        mark = f"![icon]({link_dest(target)})" if target else ""
    else:
        mark = ""
    text = rich_to_md(body.get("rich_text"), ctx.links)
    first = f"{mark} {text}".strip() if mark else text
    return _quote(_join(first, _render(_children(block), ctx)) or mark or ">")


_RENDERERS: dict[str, Callable[[dict[str, Any], _Ctx], str]] = {
    "paragraph": _text_block,
    "template": _text_block,
    "quote": lambda b, c: _quote(_text_block(b, c) or ">"),
    "callout": _callout,
    "toggle": lambda b, c: _details(
        rich_to_html(_body(b).get("rich_text"), c.links), _render(_children(b), c)
    ),
    "code": _code,
    "equation": lambda b, _: "$$" + math_safe(str(_body(b).get("expression") or "")) + "$$",
    "table": _table,
    "divider": lambda b, c: "---",
    "bookmark": _web_link,
    "embed": _web_link,
    "link_preview": _web_link,
    "image": _media,
    "video": _media,
    "audio": _media,
    "pdf": _media,
    "file": _media,
    "child_page": _page_link,
    "child_database": _page_link,
    "link_to_page": _page_link,
    "table_of_contents": lambda b, c: _toc(c),
    "breadcrumb": lambda b, c: "",
    "column_list": lambda b, c: _render(_children(b), c),
    "column": lambda b, c: _render(_children(b), c),
    "synced_block": lambda b, c: _render(_children(b), c),
    "tab": lambda b, c: _render(_children(b), c),
}


def _block(block: dict[str, Any], ctx: _Ctx) -> str:
    kind = str(block.get("type"))
    heading = _HEADING.fullmatch(kind)
    if heading:
        return _heading(block, ctx, int(heading.group(1)))
    render = _RENDERERS.get(kind)
    if render is None:
        return _unsupported(block, ctx)
    if kind == "synced_block" and not _children(block) and _body(block).get("synced_from"):
        return "> ⚠️ Synced block: original content not available"
    return render(block, ctx)


def _render(blocks: Sequence[dict[str, Any]], ctx: _Ctx) -> str:
    chunks: list[str] = []
    prev_bullet = ""
    i = 0
    while i < len(blocks):
        kind = blocks[i].get("type")
        if kind in _LIST_TYPES:
            j = i
            while j < len(blocks) and blocks[j].get("type") == kind:
                j += 1
            # adjacent bullet and to-do lists would merge into one list if they shared a marker
            bullet = "*" if prev_bullet == "-" and kind != "numbered_list_item" else "-"
            chunks.append(_list_run(list(blocks[i:j]), ctx, bullet))
            prev_bullet = bullet if kind != "numbered_list_item" else ""
            i = j
            continue
        chunk = _block(blocks[i], ctx)
        if chunk:
            chunks.append(chunk)
            prev_bullet = ""
        i += 1
    return "\n\n".join(chunks)


# --- headings for the table of contents ----------------------------------------------------------


def _slug(text: str) -> str:
    """GitHub's heading anchor: lower-case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def _collect_headings(
    blocks: Sequence[dict[str, Any]], out: list[tuple[int, str, str]], seen: dict[str, int]
) -> None:
    for block in blocks:
        m = _HEADING.fullmatch(str(block.get("type")))
        if m:
            text = plain_text(_body(block).get("rich_text")).replace("\n", " ").strip()
            slug = _slug(text)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            out.append((int(m.group(1)), text, f"{slug}-{count}" if count else slug))
        _collect_headings(_children(block), out, seen)


# --- public API -----------------------------------------------------------------------------------


def blocks_to_markdown(blocks: list[dict[str, Any]], links: LinkResolver) -> str:
    """Markdown body for a block tree (children in each block's added "children" list)."""
    ctx = _Ctx(links)
    _collect_headings(blocks, ctx.toc, {})
    body = _render(blocks, ctx)
    return body + "\n" if body else ""


def page_title(page_or_data_source: dict[str, Any]) -> str:
    """Plain title of a page (its title property), a database or a data source; "Untitled" if empty."""
    title = page_or_data_source.get("title")
    if not isinstance(title, list):
        props = page_or_data_source.get("properties")
        props = props if isinstance(props, dict) else {}
        title = next(
            (p.get("title") for p in props.values() if isinstance(p, dict) and p.get("type") == "title"), []
        )
    text = plain_text(title if isinstance(title, list) else []).strip()
    return text or "Untitled"


def front_matter(page: dict[str, Any], links: LinkResolver) -> str:
    props = page.get("properties") if isinstance(page.get("properties"), dict) else {}
    assert isinstance(props, dict)
    values: dict[str, Value] = {
        str(name): property_value(prop, links) for name, prop in props.items() if isinstance(prop, dict)
    }
    page_id = str(page.get("id") or "")
    url = page.get("url")
    data: dict[str, Any] = {
        "id": page_id,
        "url": url if isinstance(url, str) and url and is_safe_url(url) else notion_url(page_id),
        "title": page_title(page),
        "created_time": page.get("created_time"),
        "last_edited_time": page.get("last_edited_time"),
        "properties": values,
    }
    token = _escape_token(data)
    dumped = yaml.dump(
        _with_markup_escaped(data, token) if token else data,
        Dumper=_FrontMatterDumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=10**6,
    )
    if token:
        dumped = dumped.replace(token, "\\x")
    return f"---\n{dumped}---\n"


# Front matter is YAML to the tools that read it, but Markdown to a renderer that does not know it:
# there `<` could open raw HTML or an autolink, and `[` a link. Strings holding them are written
# double-quoted with those characters as the YAML escapes `\x3C` and `\x5B`: the same value to
# YAML, plain text to Markdown. (The emitter cannot be told to escape a printable character, so
# it writes a token, unique per page, that becomes `\x` afterwards.)
_MARKUP_IN_YAML = re.compile(r"[<\[]")


class _Quoted(str):
    """A string the front matter writes double-quoted."""


class _FrontMatterDumper(_YAML_DUMPER):  # type: ignore[misc,valid-type]
    pass


_FrontMatterDumper.add_representer(
    _Quoted, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _escape_token(data: dict[str, Any]) -> str | None:
    """None when no string of `data` holds markup; else a token found in none of them."""
    strings = list(_strings(data))
    if not any(_MARKUP_IN_YAML.search(s) for s in strings):
        return None
    n = 0
    while any(f"escape{n}z" in s for s in strings):
        n += 1
    return f"escape{n}z"


def _with_markup_escaped(value: Any, token: str) -> Any:
    if isinstance(value, str):
        if not _MARKUP_IN_YAML.search(value):
            return value
        return _Quoted(_MARKUP_IN_YAML.sub(lambda m: f"{token}{ord(m.group()):02X}", value))
    if isinstance(value, dict):
        return {_with_markup_escaped(k, token): _with_markup_escaped(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_markup_escaped(item, token) for item in value]
    return value


def _comments(comments: Sequence[dict[str, Any]], links: LinkResolver) -> str:
    lines = []
    for comment in comments:
        author = comment.get("created_by") if isinstance(comment.get("created_by"), dict) else {}
        assert isinstance(author, dict)
        name = author.get("name") or author.get("id") or "unknown"
        who = _inline(f"{name} ({comment.get('created_time')}):")
        text = rich_to_md(comment.get("rich_text"), links)
        lines.append(_indent(f"{who} {text}".rstrip(), "- ", "  "))
    return "## Comments\n\n" + "\n".join(lines) if lines else ""


def page_to_markdown(
    page: dict[str, Any],
    blocks: list[dict[str, Any]],
    links: LinkResolver,
    comments: Sequence[dict[str, Any]] = (),
) -> str:
    """YAML front matter, `# Title`, the page body and, if any, its comments."""
    title = "# " + escape_md(" ".join(page_title(page).split()), line_start=True, heading=True)
    body = _join(title, blocks_to_markdown(blocks, links).rstrip("\n"), _comments(comments, links))
    return front_matter(page, links) + "\n" + body + "\n"


__all__ = ["blocks_to_markdown", "front_matter", "page_title", "page_to_markdown"]


def database_to_markdown(database: dict[str, Any], links: LinkResolver) -> str:
    """A database's index file: its title, then a link to each of its data sources' tables."""
    title = escape_md(" ".join(page_title(database).split()), line_start=True, heading=True)
    lines = [f"# {title}", ""]
    for ref in database.get("data_sources", []):
        name = _inline(ref.get("name") or "Untitled")
        target = links.page_link(ref["id"])
        lines.append(f"- {md_link(name, encode_path(target))}" if target else f"- {name}")
    return "\n".join(lines) + "\n"
