"""Notion pages, databases and data sources to a static HTML site (Jinja2, autoescape on).

Decisions: the templates walk the block tree (`templates/blocks.html`) as views built here in one
pass, whose attributes hold what a block shows (a call in a Jinja template costs far more than
reading an attribute, and a page has hundreds of values to show); inline rich text reuses
`richtext.rich_to_html` (it escapes text and drops unsafe link schemes) and property values reuse
`properties.property_value`. Every `href`/`src` goes through `safe_url`, so `javascript:` and `data:`
never reach the page. Internal links come from the same LinkResolver as the Markdown, wrapped in
`HtmlLinks`, which maps the `.md`/`.csv` paths to the `.html` files mirroring them. Colours of blocks
are CSS classes (`color-red`, `bg-blue`); inline colours keep richtext's palette styles. Equations
are shown as their TeX source in `<code>` (no MathML, no script). One shared `style.css`, no fonts or
CDNs: the site works offline from file://.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import chain
from typing import Any
from urllib.parse import unquote

from jinja2 import Environment, FunctionLoader, Template
from markupsafe import Markup, escape

from .csvfmt import csv_header
from .links import (
    LinkResolver,
    NoLinks,
    encode_path,
    file_target,
    is_safe_url,
    notion_url,
    page_target,
    relative_path,
)
from .markdown import page_title
from .properties import property_value, value_text
from .richtext import format_date, plain_text, rich_to_html

JSON = dict[str, Any]
_LIST_TYPES = {"bulleted_list_item": "ul", "numbered_list_item": "ol", "to_do": "ul"}
_HEADING = re.compile(r"heading_(\d)")
_COLORS = {"gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red"}
_EXTENSION = re.compile(r"\.(md|csv)$")
_NOT_IN_ANCHOR = re.compile(r"[^0-9a-zA-Z-]")
# The site's folder inside a snapshot: `A/B.md` has its twin at `html/A/B.html`.
SITE = "html"


class HtmlLinks:
    """Adapts a Markdown-export resolver to the HTML mirror: `X.md` and `X.csv` become `X.html`.

    `asset_prefix` leads from the HTML file's folder back to its Markdown file's folder, for local
    files (downloaded media), which stay where the Markdown export put them.
    """

    def __init__(self, inner: LinkResolver, asset_prefix: str = "") -> None:
        self._inner = inner
        self._asset_prefix = asset_prefix

    def page_link(self, page_id: str) -> str | None:
        local = self._inner.page_link(page_id)
        return html_path(local) if local is not None else None

    def file_link(self, url: str) -> str | None:
        local = self._inner.file_link(url)
        return posixpath.normpath(self._asset_prefix + local) if local is not None else None

    def page_title(self, page_id: str) -> str | None:
        return self._inner.page_title(page_id)


def html_path(path: str) -> str:
    """The HTML twin of an export path: `a/B.md` and `a/B.csv` -> `a/B.html`."""
    return _EXTENSION.sub(".html", path)


@dataclass(frozen=True)
class Nav:
    """Where a page sits in the site: `root` leads back to the site root ("", "../", ...)."""

    root: str = ""
    crumbs: tuple[tuple[str, str], ...] = ()  # (title, href) of the ancestors, outermost first


def site_nav(folder: str, owner: Callable[[str], tuple[str, str] | None]) -> Nav:
    """The Nav of a site file whose export twin is in `folder`.

    `owner(f)` is the (title, export path) of the object whose children live in folder `f`, if any.
    """
    parts = folder.split("/") if folder else []
    crumbs = []
    for n in range(1, len(parts) + 1):
        found = owner("/".join(parts[:n]))
        if found is not None:
            title, path = found
            crumbs.append((title or "Untitled", encode_path(relative_path(html_path(path), folder))))
    return Nav(root="../" * len(parts), crumbs=tuple(crumbs))


def site_asset_prefix(folder: str) -> str:
    """From `html/<folder>/` back to `<folder>/` in the same snapshot, where downloads are."""
    depth = len(folder.split("/")) if folder else 0
    return "../" * (depth + 1) + (f"{folder}/" if folder else "")


@dataclass
class TreeNode:
    """One entry of the workspace tree on the index page; `href` is relative to the site root.

    `children` may be lazy (read from a catalogue while the index is written): it is iterated once.
    """

    title: str
    href: str | None
    kind: str = "page"
    children: Iterable[TreeNode] = ()


# --- helpers the templates call --------------------------------------------------------------


def safe_url(url: object) -> str:
    """The URL if a browser cannot execute it, else `#` (javascript:, data:, vbscript:, ...)."""
    return url if isinstance(url, str) and url and is_safe_url(url) else "#"


def body(block: JSON) -> JSON:
    value = block.get(str(block.get("type")))
    return value if isinstance(value, dict) else {}


def children(block: JSON) -> list[JSON]:
    kids = block.get("children")
    return [k for k in kids if isinstance(k, dict)] if isinstance(kids, list) else []


def color_class(color: object) -> str:
    """`color-red` / `bg-red` for Notion's colour names, "" for default and anything unknown."""
    name = str(color or "")
    if name.endswith("_background"):
        base = name.removesuffix("_background")
        return f"bg-{base}" if base in _COLORS else ""
    return f"color-{name}" if name in _COLORS else ""


def heading_level(block: JSON) -> int:
    m = _HEADING.fullmatch(str(block.get("type")))
    return min(int(m.group(1)), 6) if m else 0


def anchor(block: JSON) -> str:
    return "b-" + _NOT_IN_ANCHOR.sub("", str(block.get("id") or ""))


# --- what the templates read -----------------------------------------------------------------
# Every call in a template goes through Jinja's `Context.call` (1-2 µs each, over a hundred per
# page), while reading an attribute is cheap: so the block tree is walked once here, and the
# templates get views whose attributes hold, or render when shown, all they need.


@dataclass(slots=True)
class _Block:
    """One block as the templates read it: rich text, links and media are rendered when shown."""

    block: JSON
    kind: object  # the block's `type`, as is
    data: JSON  # its body: `block[type]`, {} if that is not an object
    anchor: str
    color_class: str
    level: int  # 1-6 for a heading, else 0
    children: list[_Block]
    groups: list[_Group]  # the children, grouped
    h: _Helpers

    def rich(self, rich: object) -> Markup:
        return self.h.rich(rich)

    @property
    def text(self) -> Markup:
        return self.h.rich(self.data.get("rich_text"))

    @property
    def plain_text(self) -> str:
        return plain_text(self.data.get("rich_text"))

    @property
    def caption(self) -> Markup:
        return self.h.rich(self.data.get("caption"))

    @property
    def caption_text(self) -> str:
        return plain_text(self.data.get("caption"))

    @property
    def language(self) -> str:
        return str(self.data.get("language") or "plain text")

    @property
    def url(self) -> object:
        return self.data.get("url") or ""

    @property
    def href(self) -> str:
        return safe_url(self.url)

    @property
    def cells(self) -> list[Markup]:
        return [self.h.rich(cell) for cell in self.data.get("cells") or []]

    @property
    def icon(self) -> Markup:
        return self.h.icon(self.data.get("icon"))

    @property
    def src(self) -> str:
        return self.h.media_src(self.data)

    @property
    def file_name(self) -> str:
        return self.h.file_name(self.block)

    @property
    def link(self) -> tuple[str, str]:
        return self.h.link_title(self.block)


@dataclass(slots=True)
class _Group:
    tag: str | None  # "ul"/"ol" for a run of list items, None for one block
    kind: str
    blocks: list[_Block]
    start: int = 1


def group(blocks: list[_Block]) -> list[_Group]:
    """Consecutive list items of one kind become one list; every other block stands alone."""
    groups = []
    i = 0
    while i < len(blocks):
        kind = str(blocks[i].kind)
        if kind not in _LIST_TYPES:
            groups.append(_Group(None, kind, [blocks[i]]))
            i += 1
            continue
        j = i
        while j < len(blocks) and blocks[j].kind == kind:
            j += 1
        start = blocks[i].data.get("list_start_index")
        groups.append(_Group(_LIST_TYPES[kind], kind, blocks[i:j], start if isinstance(start, int) else 1))
        i = j
    return groups


Toc = list[tuple[int, str, str]]  # (level, text, anchor) of every heading, in document order


def block_views(blocks: Iterable[JSON], h: _Helpers, toc: Toc) -> list[_Block]:
    """Views of `blocks` and all their descendants; headings are added to `toc` on the way."""
    views = []
    for block in blocks:
        data = body(block)
        level = heading_level(block)
        block_anchor = anchor(block)
        if level:
            text = plain_text(data.get("rich_text")).replace("\n", " ").strip()
            toc.append((level, text or "Untitled", block_anchor))
        kids = block_views(children(block), h, toc)
        color = color_class(data.get("color"))
        views.append(_Block(block, block.get("type"), data, block_anchor, color, level, kids, group(kids), h))
    return views


class _Helpers:
    """The functions the templates need, bound to one resolver."""

    def __init__(self, links: LinkResolver) -> None:
        self.links = links

    def rich(self, rich: object) -> Markup:
        # rich_to_html escapes all text and keeps only safe link targets (see richtext.py)
        return Markup(rich_to_html(rich if isinstance(rich, list) else [], self.links))  # nosec B704 # rich_to_html escapes every text and keeps only safe link targets

    def media_src(self, source: JSON) -> str:
        """Local path or URL of a file object (`{"type": "file"|"external", ...}`), or "#"."""
        inner = source.get(str(source.get("type")))
        url = inner.get("url") if isinstance(inner, dict) else None
        if not isinstance(url, str) or not is_safe_url(url):
            return "#"
        return file_target(url, self.links)

    def file_name(self, block: JSON) -> str:
        data = body(block)
        caption = plain_text(data.get("caption")).strip()
        src = self.media_src(data)
        tail = unquote(src.split("?")[0].rstrip("/").rsplit("/", 1)[-1]) if src != "#" else ""
        return caption or str(data.get("name") or "") or tail or str(block.get("type"))

    def page_href(self, object_id: str) -> str:
        return safe_url(page_target(object_id, self.links))

    def link_title(self, block: JSON) -> tuple[str, str]:
        """(title, href) of a child_page, child_database or link_to_page block."""
        data = body(block)
        if block.get("type") in ("child_page", "child_database"):
            target = str(block.get("id") or "")
            title = str(data.get("title") or "") or "Untitled"
        else:
            target = str(data.get(str(data.get("type"))) or "")
            local = self.links.page_link(target) if target else None
            title = posixpath.basename(local).rsplit(".", 1)[0] if local else "Linked page"
        return title, self.page_href(target) if target else "#"

    def icon(self, icon: object) -> Markup:
        if not isinstance(icon, dict):
            return Markup("")
        kind = icon.get("type")
        if kind == "emoji":
            return Markup('<span class="icon">{}</span>').format(str(icon.get("emoji") or ""))
        if kind == "custom_emoji" and isinstance(icon.get("custom_emoji"), dict):
            return Markup('<span class="icon">{}</span>').format(f":{icon['custom_emoji'].get('name')}:")
        if kind in ("file", "external"):
            src = self.media_src(icon)
            if src != "#":
                return Markup('<img class="icon" alt="" src="{}">').format(src)
        return Markup("")

    def property_html(self, prop: object) -> Markup:
        """A property value: relations and URLs as links, files as links, the rest as text."""
        if not isinstance(prop, dict):
            return Markup("")
        kind = prop.get("type")
        data = prop.get(str(kind))
        if kind == "relation" and isinstance(data, list):
            ids = [str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")]
            return Markup(", ").join(self._page_anchor(i) for i in ids)
        if kind == "files" and isinstance(data, list):
            items = [f for f in data if isinstance(f, dict)]
            return Markup(", ").join(_link(self.media_src(f), f.get("name") or "file") for f in items)
        if kind in ("url", "email", "phone_number") and isinstance(data, str) and data:
            scheme = {"url": "", "email": "mailto:", "phone_number": "tel:"}[kind]
            return _link(safe_url(scheme + data), data)
        if kind == "date":
            return escape(format_date(data if isinstance(data, dict) else None))
        return escape(value_text(property_value(prop, self.links)))

    def _page_anchor(self, object_id: str) -> Markup:
        local = self.links.page_link(object_id)
        if local is None:
            return _link(safe_url(notion_url(object_id)), object_id)
        return _link(safe_url(encode_path(local)), posixpath.basename(local).rsplit(".", 1)[0])

    def row_link(self, row: JSON) -> Markup:
        """The title cell of a data source row, linking to the row's page."""
        title = page_title(row)
        return _link(self.page_href(str(row.get("id") or "")), title)


def _link(href: str, text: object) -> Markup:
    """`Markup('<a href="{}">{}</a>').format(href, text)` without string.Formatter's per-call cost."""
    return Markup(f'<a href="{escape(href)}">{escape(text)}</a>')  # nosec B704 # href and text are both escaped


# --- templates -------------------------------------------------------------------------------


def _load_template(name: str) -> str:
    return (files(__package__) / "templates" / name).read_text(encoding="utf-8")


_ENV = Environment(
    loader=FunctionLoader(_load_template),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # templates ship with the package: compile each once, never re-check it (also for extends/import)
    auto_reload=False,
)
_ENV.globals.update(safe_url=safe_url)


def stylesheet() -> str:
    """The site's one CSS file (written as `style.css` at the site root)."""
    return _load_template("style.css")


@cache
def compiled_template(name: str) -> Template:
    """A template shipped with the package, compiled once (the site's, and the change report's)."""
    return _ENV.get_template(name)


def _render(template: str, links: LinkResolver, **context: Any) -> str:
    helpers = _Helpers(links)
    return compiled_template(template).render(h=helpers, **context)


def page_to_html(
    page: JSON,
    blocks: list[JSON],
    links: LinkResolver,
    comments: Sequence[JSON] = (),
    nav: Nav = Nav(),
) -> str:
    """One Notion page: title, properties, body (every block type) and comments."""
    props = page.get("properties") if isinstance(page.get("properties"), dict) else {}
    assert isinstance(props, dict)
    shown = {name: p for name, p in props.items() if isinstance(p, dict) and p.get("type") != "title"}
    h = _Helpers(links)
    toc: Toc = []
    views = block_views(blocks, h, toc)
    return compiled_template("page.html").render(
        h=h,
        title=page_title(page),
        page=page,
        notion=str(page.get("url") or notion_url(str(page.get("id") or ""))),
        properties=[(name, h.property_html(p)) for name, p in shown.items()],
        groups=group(views),
        toc=toc,
        comments=list(comments),
        nav=nav,
    )


def data_source_to_html(
    data_source: JSON,
    rows: Iterable[JSON],
    links: LinkResolver,
    nav: Nav = Nav(),
) -> Iterator[str]:
    """A data source as a table: columns in schema order (title first), one row per page.

    In pieces, a row at a time as `rows` are read: a table of any length is never held whole.
    """
    columns = csv_header(data_source)
    h = _Helpers(links)
    return compiled_template("data_source.html").generate(
        h=h,
        title=page_title(data_source),
        description=data_source.get("description"),
        columns=columns,
        rows=(_row_cells(row, columns, h) for row in rows),
        nav=nav,
    )


def _row_cells(row: JSON, columns: list[str], h: _Helpers) -> list[Markup]:
    """The cells of one table row: the title links to the row's page, the rest are its properties."""
    if not columns:
        return []
    props = row.get("properties")
    if not isinstance(props, dict):
        props = {}
    return [h.row_link(row), *(h.property_html(props.get(name)) for name in columns[1:])]


def database_to_html(
    database: JSON,
    links: LinkResolver,
    nav: Nav = Nav(),
) -> str:
    """A database: its title, description and links to its data sources' tables."""
    sources = [s for s in database.get("data_sources") or [] if isinstance(s, dict)]
    return _render(
        "database.html",
        links,
        title=page_title(database),
        database=database,
        sources=sources,
        nav=nav,
    )


def index_html(tree: Iterable[TreeNode], title: str = "Notion export") -> Iterator[str]:
    """The site's front page, in pieces: the workspace tree as nested lists of relative links.

    The tree is walked as the pieces are taken, so a workspace of any size is never held whole,
    as nodes or as one string.
    """
    template = compiled_template("index.html")
    return template.generate(h=_Helpers(NoLinks()), title=title, tree=_tree_list(tree), nav=Nav())


def _tree_list(nodes: Iterable[TreeNode]) -> Iterator[Markup] | None:
    """A `<ul>` of the nodes, or None when there are none (an empty folder shows no list)."""
    remaining = iter(nodes)
    first = next(remaining, None)
    return None if first is None else _tree_items(first, remaining)


def _tree_items(first: TreeNode, remaining: Iterator[TreeNode]) -> Iterator[Markup]:
    yield Markup('<ul class="tree">\n')
    for node in chain((first,), remaining):
        if node.href:
            label = Markup('<a href="{}">{}</a>').format(safe_url(node.href), node.title)
        else:
            label = Markup("<span>{}</span>").format(node.title)
        yield Markup('<li class="{}">{}').format(node.kind, label)
        children = _tree_list(node.children)
        if children is not None:
            yield from children
        yield Markup("</li>\n")
    yield Markup("</ul>")


__all__ = [
    "SITE",
    "HtmlLinks",
    "Nav",
    "TreeNode",
    "data_source_to_html",
    "database_to_html",
    "html_path",
    "index_html",
    "page_to_html",
    "safe_url",
    "site_asset_prefix",
    "site_nav",
    "stylesheet",
]
