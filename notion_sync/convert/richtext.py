"""Notion rich text arrays to plain text, CommonMark/GFM inline Markdown and inline HTML.

Annotations become a tree of nested marks so overlapping runs always nest validly. A mark is
written as Markdown (`**`, `*`, `~~`) only where CommonMark's flanking rules guarantee it parses;
otherwise the equivalent inline HTML tag is used. Text is escaped so it renders literally.
Colours are kept as `<span style="color:...">` with Notion's palette (decision: fidelity over
plainness; GitHub strips the style, Obsidian and browsers show it).
"""

from __future__ import annotations

import html
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from .links import LinkResolver, is_safe_url, notion_id_from_url, page_target

Mode = Literal["block", "heading", "table"]
Mark = tuple[str, str]

_MARK_ORDER = ("link", "color", "underline", "strikethrough", "bold", "italic")
_MD_DELIMS = {"bold": "**", "italic": "*", "strikethrough": "~~"}
_HTML_TAGS = {"bold": "strong", "italic": "em", "strikethrough": "del", "underline": "u"}
_TEXT_COLORS = {
    "gray": "#787774",
    "brown": "#9F6B53",
    "orange": "#D9730D",
    "yellow": "#CB912F",
    "green": "#448361",
    "blue": "#337EA9",
    "purple": "#9065B0",
    "pink": "#C14C8A",
    "red": "#D44C47",
}
_BG_COLORS = {
    "gray": "#F1F1EF",
    "brown": "#F4EEEE",
    "orange": "#FBECDD",
    "yellow": "#FBF3DB",
    "green": "#EDF3EC",
    "blue": "#E7F3F8",
    "purple": "#F6F3F9",
    "pink": "#FAF1F5",
    "red": "#FDEBEC",
}


def color_css(color: str) -> str | None:
    """CSS for a Notion colour name; None for default or unknown names (never echo raw input)."""
    if color.endswith("_background"):
        bg = _BG_COLORS.get(color.removesuffix("_background"))
        return f"background-color:{bg}" if bg else None
    fg = _TEXT_COLORS.get(color)
    return f"color:{fg}" if fg else None


def item_text(item: dict[str, Any]) -> str:
    text = item.get("plain_text")
    if isinstance(text, str):
        return text
    kind = item.get("type")
    body = item.get(kind) if isinstance(kind, str) else None
    if kind == "text" and isinstance(body, dict):
        return str(body.get("content") or "")
    if kind == "equation" and isinstance(body, dict):
        return str(body.get("expression") or "")
    return ""


def plain_text(rich: Sequence[dict[str, Any]] | None) -> str:
    return "".join(item_text(i) for i in rich or () if isinstance(i, dict))


def format_date(date: dict[str, Any] | None) -> str:
    if not isinstance(date, dict) or not date.get("start"):
        return ""
    text = str(date["start"])
    if date.get("end"):
        text += " → " + str(date["end"])
    return text


@dataclass(frozen=True)
class _Seg:
    kind: str  # text | code | equation | mention
    text: str
    marks: frozenset[Mark]
    item: dict[str, Any] = field(hash=False, compare=False)


@dataclass
class _Node:
    mark: Mark | None
    seg: _Seg | None = None
    children: list[_Node] = field(default_factory=list)


def _link_url(item: dict[str, Any], links: LinkResolver) -> str | None:
    body = item.get("text")
    url = None
    if isinstance(body, dict) and isinstance(body.get("link"), dict):
        url = body["link"].get("url")
    url = url or item.get("href")
    if not isinstance(url, str) or not url:
        return None
    target = notion_id_from_url(url)
    if target is not None:
        return page_target(target, links)
    return url if is_safe_url(url) else None


def _segments(rich: Sequence[dict[str, Any]], links: LinkResolver) -> list[list[_Seg]]:
    """Split the rich text into lines of segments, merging neighbours with identical formatting."""
    lines: list[list[_Seg]] = [[]]
    for item in rich:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type")) if item.get("type") in ("text", "equation", "mention") else "text"
        ann = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        assert isinstance(ann, dict)
        marks: set[Mark] = {(name, "") for name in _MARK_ORDER[2:] if ann.get(name)}
        css = color_css(str(ann.get("color") or "default"))
        if css:
            marks.add(("color", css))
        if kind == "text":
            url = _link_url(item, links)
            if url:
                marks.add(("link", url))
            if ann.get("code"):
                kind = "code"
        text = mention_text(item) if kind == "mention" else item_text(item)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if kind != "text" and kind != "code":
            text = text.replace("\n", " ")
        for n, part in enumerate(text.split("\n")):
            if n:
                lines.append([])
            if not part:
                continue
            seg = _Seg(kind, part, frozenset(marks), item)
            prev = lines[-1][-1] if lines[-1] else None
            if prev and prev.kind == seg.kind in ("text", "code") and prev.marks == seg.marks:
                lines[-1][-1] = _Seg(seg.kind, prev.text + part, seg.marks, item)
            else:
                lines[-1].append(seg)
    while lines and _blank(lines[0]):
        lines.pop(0)
    while lines and _blank(lines[-1]):
        lines.pop()
    return lines


def _blank(line: list[_Seg]) -> bool:
    return all(seg.kind == "text" and not seg.text.strip() for seg in line)


def _mark_rank(mark: Mark) -> int:
    return _MARK_ORDER.index(mark[0])


def _tree(segs: list[_Seg], active: frozenset[Mark] = frozenset()) -> list[_Node]:
    """Nest marks greedily: at each point open the pending mark whose run reaches furthest."""
    nodes: list[_Node] = []
    i = 0
    while i < len(segs):
        pending = segs[i].marks - active
        if not pending:
            nodes.append(_Node(None, segs[i]))
            i += 1
            continue

        def run_end(mark: Mark, start: int = i) -> int:
            j = start
            while j < len(segs) and mark in segs[j].marks:
                j += 1
            return j

        best = max(pending, key=lambda m: (run_end(m), -_mark_rank(m)))
        end = run_end(best)
        nodes.append(_Node(best, children=_tree(segs[i:end], active | {best})))
        i = end
    return nodes


# --- Markdown -----------------------------------------------------------------------------------

_ALWAYS_ESCAPE = set("\\`*[]<|~$")
_LINE_START_ESCAPE = set(">-=")  # quote, bullet/rule/setext; `#` and `+` only matter before a space
_ENTITY_START = re.compile(r"&(?=[#A-Za-z0-9])")
_ORDERED_MARKER = re.compile(r"^(\d{1,9})([.)])(?=[ \t]|$)")
_SPACED_MARKER = re.compile(r"^(#{1,6}|\+)(?=[ \t]|$)")
_LINE_BREAKS = re.compile(r"\r\n?|\n")
# A character reference CommonMark decodes in a link destination: its `&` is written `\&`.
_CHAR_REF = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")


def _is_word(c: str) -> bool:
    return not c.isspace() and c not in string.punctuation and unicodedata.category(c)[0] not in "PS"


def escape_md(text: str, line_start: bool = False, heading: bool = False) -> str:
    """Escape text so CommonMark/GFM renders exactly these characters, nothing more."""
    marker_at = -1
    if line_start:
        text = text.lstrip(" \t")
        m = _ORDERED_MARKER.match(text)
        marker_at = m.end(1) if m else (0 if _SPACED_MARKER.match(text) else -1)
    out: list[str] = []
    for n, c in enumerate(text):
        if (
            c in _ALWAYS_ESCAPE
            or (c == "#" and heading)
            or n == marker_at
            or (n == 0 and line_start and c in _LINE_START_ESCAPE)
            or (c == "&" and _ENTITY_START.match(text, n))
            # intraword underscores never emphasise, so snake_case stays readable
            or (c == "_" and not (0 < n < len(text) - 1 and text[n - 1].isalnum() and text[n + 1].isalnum()))
        ):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def math_safe(expr: str) -> str:
    """LaTeX that a renderer without math support cannot read as HTML or as a link.

    `<` is spelled `\\lt ` where it could open an HTML tag or an autolink; `](` becomes `]{}(` (an
    empty TeX group, invisible in the formula) so `[text](url)` never forms a Markdown link. Line
    breaks are spaces: a line ending in a list item or quote would end the container.
    """
    expr = re.sub(r"<(?=[A-Za-z/!?])", r"\\lt ", expr)
    return _LINE_BREAKS.sub(" ", expr.replace("](", "]{}("))


def code_span(text: str, table: bool = False) -> str:
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    if text.startswith("`") or text.endswith("`") or (text[:1] == text[-1:] == " " and text.strip()):
        text = f" {text} "
    if table:
        text = text.replace("|", "\\|")
    return fence + text + fence


def _split_ws(s: str) -> tuple[str, str, str]:
    core = s.strip()
    if not core:
        return s, "", ""
    start = s.index(core[0])
    return s[:start], core, s[start + len(core) :]


def link_dest(url: str, table: bool = False) -> str:
    """A link destination CommonMark reads back as exactly this URL.

    Spaces, line breaks, `<`, `>`, backslashes and control characters are percent-encoded inside
    `<...>` (so no URL can end the link early), and the `&` of anything a renderer would decode as
    a character reference is backslash-escaped, as is `|` in a table cell (GFM splits cells first).
    """
    if (
        re.fullmatch(r"[^\s<>()\\\x00-\x1f\x7f]*", url)
        and not _CHAR_REF.search(url)
        and not (table and "|" in url)
    ):
        return url
    encoded = re.sub(r"[\s<>\\\x00-\x1f\x7f]", lambda m: quote(m.group(), safe=""), url)
    encoded = _CHAR_REF.sub(r"\\&", encoded)
    return "<" + (encoded.replace("|", "\\|") if table else encoded) + ">"


def md_link(text_md: str, url: str, table: bool = False) -> str:
    return f"[{text_md}]({link_dest(url, table)})"


def mention_target(mention: dict[str, Any], links: LinkResolver) -> str | None:
    """Where a page/database/link mention points, after resolving it into the export."""
    kind = mention.get("type")
    body = mention.get(kind) if isinstance(kind, str) else None
    if not isinstance(body, dict):
        return None
    if kind in ("page", "database", "data_source") and isinstance(body.get("id"), str):
        return page_target(body["id"], links)
    url = body.get("url") or body.get("href")
    return url if isinstance(url, str) and is_safe_url(url) else None


def mention_text(item: dict[str, Any]) -> str:
    mention = item.get("mention") if isinstance(item.get("mention"), dict) else {}
    assert isinstance(mention, dict)
    kind = mention.get("type")
    body = mention.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "user":
        return "@" + str(body.get("name") or item_text(item).lstrip("@") or body.get("id") or "unknown")
    if kind == "date":
        return format_date(body) or item_text(item)
    if kind == "link_mention":
        return str(body.get("title") or body.get("href") or item_text(item))
    return item_text(item) or str(body.get("url") or body.get("id") or "")


class _MdWriter:
    def __init__(self, links: LinkResolver, mode: Mode) -> None:
        self.links = links
        self.mode = mode
        self.line_start = True
        self.in_link = False

    def nodes(self, nodes: list[_Node], top: bool = False) -> str:
        # Render every child first (in order, for the line-start state), then pick each mark's
        # syntax knowing its neighbours: Markdown delimiters only where they are sure to flank.
        parts: list[tuple[_Node, str]] = []
        for node in nodes:
            if node.seg is not None:
                parts.append((node, self.leaf(node.seg)))
                continue
            was_in_link = self.in_link
            self.in_link = self.in_link or (node.mark is not None and node.mark[0] == "link")
            parts.append((node, self.nodes(node.children)))
            self.in_link = was_in_link
        out = ""
        for n, (node, inner) in enumerate(parts):
            if node.mark is None:
                out += inner
                continue
            name, value = node.mark
            lead, core, trail = _split_ws(inner)
            if not core:
                out += lead
            elif name == "link":
                out += lead + md_link(core, value, self.mode == "table") + trail
            elif name == "color":
                out += f'{lead}<span style="{value}">{core}</span>{trail}'
            elif name in _MD_DELIMS and self._flanks(out + lead, core, trail, parts[n + 1 :], top):
                out += lead + _MD_DELIMS[name] + core + _MD_DELIMS[name] + trail
            else:
                out += f"{lead}<{_HTML_TAGS[name]}>{core}</{_HTML_TAGS[name]}>{trail}"
        return out

    @staticmethod
    def _flanks(before: str, core: str, trail: str, rest: list[tuple[_Node, str]], top: bool) -> bool:
        """True when `*`/`~~` around `core` can only open and only close (CommonMark flanking rules).

        Delimiters that could both open and close may pair with an outer run instead, so those
        cases use HTML tags. An unknown neighbour inside a parent is a delimiter: punctuation.
        """
        if before.endswith(("*", "~")):  # would merge with the previous sibling's delimiter run
            return False
        prev = before[-1] if before else (" " if top else "*")
        if rest:
            following = rest[0][1]
            nxt = following[0] if following and (rest[0][0].mark is None or following[0].isspace()) else "*"
        else:
            nxt = " " if trail or top else "*"
        nxt = " " if trail else nxt
        opens = prev.isspace() or (not _is_word(prev) and _is_word(core[0]))
        closes = nxt.isspace() or (not _is_word(nxt) and _is_word(core[-1]))
        return opens and closes

    def leaf(self, seg: _Seg) -> str:
        table = self.mode == "table"
        if seg.kind == "code":
            self.line_start = False
            return code_span(seg.text, table)
        if seg.kind == "equation":
            self.line_start = False
            expr = math_safe(seg.text).replace("$", "\\$")
            return "$" + (expr.replace("|", "\\|") if table else expr) + "$"
        escaped = escape_md(seg.text, self.line_start, heading=self.mode == "heading")
        self.line_start = self.line_start and not seg.text.strip()
        if seg.kind == "mention" and not self.in_link and escaped:
            mention = seg.item.get("mention")
            target = mention_target(mention, self.links) if isinstance(mention, dict) else None
            if target:
                return md_link(escaped, target, self.mode == "table")
        return escaped


def rich_to_md(rich: Sequence[dict[str, Any]] | None, links: LinkResolver, mode: Mode = "block") -> str:
    """Inline Markdown for a rich text array. Line breaks become hard breaks (`<br>` in tables)."""
    rendered = []
    for line in _segments(rich or (), links):
        writer = _MdWriter(links, mode)
        rendered.append(writer.nodes(_tree(line), top=True).rstrip())
    sep = {"block": "\\\n", "heading": " ", "table": "<br>"}[mode]
    return sep.join(rendered)


def with_marks(rich: Sequence[dict[str, Any]] | None, **marks: bool) -> list[dict[str, Any]]:
    """A copy of the rich text with extra annotations switched on (e.g. captions in italics)."""
    out = []
    for item in rich or ():
        ann = dict(item.get("annotations") or {})
        ann.update(marks)
        out.append({**item, "annotations": ann})
    return out


# --- inline HTML (for <summary> lines, which Markdown does not parse) ---------------------------


def _html_leaf(seg: _Seg, links: LinkResolver, in_link: bool) -> str:
    if seg.kind == "code":
        return f"<code>{html.escape(seg.text)}</code>"
    if seg.kind == "equation":
        return html.escape(f"${seg.text}$")
    escaped = html.escape(seg.text)
    mention = seg.item.get("mention")
    if seg.kind == "mention" and not in_link and isinstance(mention, dict):
        target = mention_target(mention, links)
        if target:
            return f'<a href="{html.escape(target)}">{escaped}</a>'
    return escaped


def _html_nodes(nodes: list[_Node], links: LinkResolver, in_link: bool = False) -> str:
    out = ""
    for node in nodes:
        if node.seg is not None:
            out += _html_leaf(node.seg, links, in_link)
            continue
        assert node.mark is not None
        name, value = node.mark
        inner = _html_nodes(node.children, links, in_link or name == "link")
        if name == "link":
            out += f'<a href="{html.escape(value)}">{inner}</a>'
        elif name == "color":
            out += f'<span style="{value}">{inner}</span>'
        else:
            out += f"<{_HTML_TAGS[name]}>{inner}</{_HTML_TAGS[name]}>"
    return out


_UNMARKED = (*_MARK_ORDER[2:], "code")  # annotations that must all be off for `_unmarked_text`


def _unmarked_text(rich: Sequence[dict[str, Any]], links: LinkResolver) -> str | None:
    """The text of rich text that is only unmarked, unlinked text runs (most of it); else None."""
    parts = []
    for item in rich:
        if not isinstance(item, dict):
            continue
        if item.get("type") != "text" or _link_url(item, links) is not None:
            return None
        ann = item.get("annotations")
        if isinstance(ann, dict) and (
            any(map(ann.get, _UNMARKED)) or color_css(str(ann.get("color") or "default"))
        ):
            return None
        parts.append(item_text(item).replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(parts)


def rich_to_html(rich: Sequence[dict[str, Any]] | None, links: LinkResolver) -> str:
    text = _unmarked_text(rich or (), links)
    if text is None:
        return "<br>".join(_html_nodes(_tree(line), links) for line in _segments(rich or (), links))
    # what `_segments` makes of unmarked text: its lines, without blank ones at either end
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "<br>".join(html.escape(line) for line in lines)


__all__ = [
    "code_span",
    "color_css",
    "escape_md",
    "format_date",
    "item_text",
    "link_dest",
    "math_safe",
    "md_link",
    "plain_text",
    "rich_to_html",
    "rich_to_md",
    "with_marks",
]
