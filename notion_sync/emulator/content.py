"""Block trees and rich text, derived on demand from `(seed, page index, version)`."""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from notion_sync.emulator.files import BIG_FILE_NAME
from notion_sync.emulator.ids import IdCodec, Kind

JSON = dict[str, Any]

TEXT_COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
COLORS = TEXT_COLORS + tuple(f"{c}_background" for c in TEXT_COLORS[1:])
LANGUAGES = ("python", "javascript", "rust", "sql", "bash", "go", "markdown", "plain text", "c++", "json")
EMOJIS = ("💡", "⚠️", "📌", "🚀", "✅", "🔥", "📝", "🧪")
_WORD_TEXT = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu roadmap budget launch review "
    "meeting notes design spec retro backlog sprint research hiring onboarding metrics"
)
WORDS = tuple(_WORD_TEXT.split())
HOSTILE_TEXT = (
    "<script>alert('xss')</script> & <b>bold?</b> <!-- comment -->",
    "Markdown specials: *star* _under_ # hash [link](x) | pipe | `tick` ~tilde~ > quote \\ backslash {}+-.!",
    "1. not a list\n- not a bullet\n```\nnot code\n```",
    "Zero\u200bwidth, RTL \u202eevil\u202c, NUL-free tab\tand newline\nend",
)


class View(Protocol):
    """What content generation needs to know about the rest of the workspace."""

    codec: IdCodec

    def page_id(self, index: int) -> str: ...
    def page_title(self, index: int) -> str: ...
    def database_id(self, index: int) -> str: ...
    def database_title(self, index: int) -> str: ...
    def user_object(self, index: int) -> JSON: ...
    def user_count(self) -> int: ...
    def random_page(self, rng: random.Random) -> int: ...
    def random_database(self, rng: random.Random) -> int | None: ...
    def private_page(self, rng: random.Random) -> int | None: ...
    def file_key(self, tag: str, name: str) -> str: ...
    def file_object(self, key: str, external: bool) -> JSON: ...


# --- rich text ---------------------------------------------------------------------------------


@cache  # one shared, read-only dict per styling: rich text is most of a page's dicts
def annotations(color: str = "default", *flags: str) -> JSON:
    return {
        "bold": "bold" in flags,
        "italic": "italic" in flags,
        "strikethrough": "strikethrough" in flags,
        "underline": "underline" in flags,
        "code": "code" in flags,
        "color": color,
    }


def text(content: str, *flags: str, color: str = "default", link: str | None = None) -> JSON:
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link else None},
        "annotations": annotations(color, *flags),
        "plain_text": content,
        "href": link,
    }


def rich(content: str) -> list[JSON]:
    """Plain rich text; empty text is an empty array, as Notion sends it."""
    return [text(content)] if content else []


def equation_text(expression: str) -> JSON:
    return {
        "type": "equation",
        "equation": {"expression": expression},
        "annotations": annotations(),
        "plain_text": expression,
        "href": None,
    }


def mention(payload_type: str, payload: JSON, plain: str, href: str | None = None) -> JSON:
    return {
        "type": "mention",
        "mention": {"type": payload_type, payload_type: payload},
        "annotations": annotations(),
        "plain_text": plain,
        "href": href,
    }


def notion_url(object_id: str) -> str:
    return "https://www.notion.so/" + object_id.replace("-", "")


def date_value(rng: random.Random) -> JSON:
    """A date, a date-time with zone, or a range."""
    day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    style = rng.randrange(3)
    if style == 0:
        return {"start": day, "end": None, "time_zone": None}
    if style == 1:
        return {"start": f"{day}T09:30:00.000+02:00", "end": None, "time_zone": None}
    return {"start": day, "end": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "time_zone": None}


def mentions(view: View, rng: random.Random) -> list[JSON]:
    """One mention of every kind."""
    page = view.random_page(rng)
    out = [mention("page", {"id": view.page_id(page)}, view.page_title(page), notion_url(view.page_id(page)))]
    private = view.private_page(rng)
    if private is not None:
        # Notion shows unshared pages as "Untitled" to the integration
        out.append(
            mention("page", {"id": view.page_id(private)}, "Untitled", notion_url(view.page_id(private)))
        )
    db = view.random_database(rng)
    if db is not None:
        db_id = view.database_id(db)
        out.append(mention("database", {"id": db_id}, view.database_title(db), notion_url(db_id)))
    user = view.user_object(rng.randrange(view.user_count()))
    out.append(mention("user", user, "@" + str(user["name"])))
    for _ in range(2):
        date = date_value(rng)
        plain = date["start"] + (f" → {date['end']}" if date["end"] else "")
        out.append(mention("date", date, plain))
    url = f"https://example.com/preview/{rng.randrange(1000)}"
    out.append(mention("link_preview", {"url": url}, url, url))
    link = {"href": "https://example.com/", "title": "Example Domain", "description": "An example page."}
    out.append(mention("link_mention", link, link["href"], link["href"]))
    out.append(
        mention(
            "template_mention", {"type": "template_mention_date", "template_mention_date": "today"}, "@Today"
        )
    )
    out.append(
        mention("template_mention", {"type": "template_mention_user", "template_mention_user": "me"}, "@Me")
    )
    emoji = {
        "id": view.codec.encode(Kind.OPTION, 9, 1),
        "name": "party",
        "url": "https://example.com/party.png",
    }
    out.append(mention("custom_emoji", emoji, ":party:"))
    return out


def fancy_text(view: View, rng: random.Random, with_mentions: bool) -> list[JSON]:
    """Every annotation, a coloured span, overlapping annotations (adjacent spans), a link, an equation."""
    color = rng.choice(COLORS[1:])
    out = [
        text(f"{rng.choice(WORDS).capitalize()} "),
        text("bold", "bold"),
        text(" and "),
        text("bold italic", "bold", "italic"),
        text(" italic only", "italic"),
        text(" struck", "strikethrough"),
        text(" underlined", "underline"),
        text(" code()", "code"),
        text(f" {color} text", color=color),
        text(" all at once", "bold", "italic", "strikethrough", "underline", "code", color="red_background"),
        text(" a link", link=f"https://example.com/{rng.choice(WORDS)}"),
        text(" then "),
        equation_text("e^{i\\pi} + 1 = 0"),
        text(". "),
    ]
    if with_mentions:
        out += mentions(view, rng)
    return out


def sentence(rng: random.Random, words: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


# --- block trees -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSlot:
    """A file object signed at read time: merged into the dict found at `path` inside the block."""

    path: tuple[str, ...]
    key: str
    external: bool


@dataclass
class PageTree:
    """A page's blocks; index 0 stands for the page itself."""

    blocks: list[JSON] = field(default_factory=lambda: [{}])
    children: dict[int, list[int]] = field(default_factory=dict)
    files: dict[int, FileSlot] = field(default_factory=dict)
    alias: dict[int, int] = field(default_factory=dict)  # duplicate synced block -> original


class TreeBuilder:
    """Appends blocks to a `PageTree` with consistent ids, parents and timestamps."""

    def __init__(self, view: View, page: int, times: tuple[str, str], author: JSON) -> None:
        self.view = view
        self.page = page
        self.page_id = view.page_id(page)
        self.created, self.edited = times
        self.author = author
        self.page_parent: JSON = {"type": "page_id", "page_id": self.page_id}  # shared by top blocks
        self.tree = PageTree()

    def add(self, parent: int, block_type: str, payload: JSON, object_id: str | None = None) -> int:
        index = len(self.tree.blocks)
        if parent == 0:
            parent_ref = self.page_parent
        else:
            parent_ref = {"type": "block_id", "block_id": self.tree.blocks[parent]["id"]}
            self.tree.blocks[parent]["has_children"] = True
        self.tree.blocks.append(
            {
                "object": "block",
                "id": object_id or self.view.codec.encode(Kind.BLOCK, self.page, index),
                "parent": parent_ref,
                "created_time": self.created,
                "last_edited_time": self.edited,
                "created_by": self.author,
                "last_edited_by": self.author,
                "has_children": False,
                "archived": False,
                "in_trash": False,
                "type": block_type,
                block_type: payload,
            }
        )
        self.tree.children.setdefault(parent, []).append(index)
        return index

    def file(self, index: int, path: tuple[str, ...], name: str, external: bool) -> None:
        self.tree.files[index] = FileSlot(path, self.view.file_key(f"p{self.page}b{index}", name), external)

    # text-like blocks
    def paragraph(self, parent: int, rich_text: list[JSON], color: str = "default") -> int:
        return self.add(parent, "paragraph", {"rich_text": rich_text, "icon": None, "color": color})

    def texty(self, parent: int, block_type: str, rich_text: list[JSON], **extra: Any) -> int:
        return self.add(parent, block_type, {"rich_text": rich_text, **extra, "color": "default"})


Section = Callable[[TreeBuilder, random.Random, int], None]


def sec_text(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    b.texty(parent, "heading_1", rich(sentence(rng, 3)), is_toggleable=False)
    b.paragraph(parent, fancy_text(b.view, rng, with_mentions=True))
    b.texty(parent, "heading_2", rich(sentence(rng, 3)), is_toggleable=False)
    b.paragraph(parent, rich(sentence(rng, 20)), color=rng.choice(COLORS))
    b.texty(parent, "heading_3", rich(sentence(rng, 3)), is_toggleable=False)
    b.paragraph(parent, [])


def sec_colors(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    b.paragraph(parent, [text(f"{c} ", color=c) for c in COLORS])


def sec_toggle_headings(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    for level in (1, 2, 3):
        head = b.texty(parent, f"heading_{level}", rich(f"Toggle heading {level}"), is_toggleable=True)
        b.paragraph(head, rich(sentence(rng)))


def nested_list(b: TreeBuilder, rng: random.Random, parent: int, block_type: str, depth: int) -> None:
    for level in range(depth):
        b.texty(parent, block_type, rich(f"Level {level + 1}: {sentence(rng, 3)}"))
        parent = b.texty(parent, block_type, rich(f"Level {level + 1} parent"))


def sec_lists(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    nested_list(b, rng, parent, "bulleted_list_item", rng.randint(1, 3))
    nested_list(b, rng, parent, "numbered_list_item", rng.randint(1, 3))
    for checked in (False, True):
        todo = b.texty(parent, "to_do", rich(sentence(rng, 4)), checked=checked)
        b.texty(todo, "to_do", rich("sub task"), checked=not checked)


def sec_deep_lists(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    nested_list(b, rng, parent, "bulleted_list_item", 20)
    nested_list(b, rng, parent, "numbered_list_item", 20)


def sec_toggle_quote_callout(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    toggle = b.texty(parent, "toggle", rich("Click to expand"))
    b.paragraph(toggle, rich(sentence(rng)))
    quote = b.texty(parent, "quote", rich(sentence(rng) + "\nsecond line"))
    b.paragraph(quote, rich("inside the quote"))
    emoji = {"type": "emoji", "emoji": rng.choice(EMOJIS)}
    b.add(parent, "callout", {"rich_text": rich(sentence(rng)), "icon": emoji, "color": "gray_background"})
    for external in (False, True):
        callout = b.add(parent, "callout", {"rich_text": rich("file icon"), "icon": {}, "color": "default"})
        b.file(callout, ("callout", "icon"), "icon.png", external)


def sec_code_equation(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    language = rng.choice(LANGUAGES)
    code = f"# {language}\nprint('hello')  # <script> *not* _md_\n"
    b.add(
        parent,
        "code",
        {"caption": rich(f"{language} example"), "rich_text": rich(code), "language": language},
    )
    b.add(parent, "code", {"caption": [], "rich_text": rich("SELECT 1;"), "language": "sql"})
    b.add(parent, "equation", {"expression": "\\int_0^1 x^2\\,dx = \\frac{1}{3}"})


def sec_table(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    width = rng.randint(2, 4)
    header = rng.random() < 0.7
    table = b.add(
        parent, "table", {"table_width": width, "has_column_header": header, "has_row_header": not header}
    )
    for row in range(rng.randint(2, 5)):
        cells = [rich(f"r{row}c{col} | {rng.choice(WORDS)}") for col in range(width)]
        cells[0] = [text(f"cell {row}", "bold")]
        b.add(table, "table_row", {"cells": cells})


def sec_columns(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    columns = b.add(parent, "column_list", {})
    for _ in range(rng.randint(2, 3)):
        column = b.add(columns, "column", {})
        b.paragraph(column, rich(sentence(rng)))
        b.texty(column, "bulleted_list_item", rich(sentence(rng, 3)))


def sec_structure(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    b.add(parent, "divider", {})
    b.add(parent, "table_of_contents", {"color": "default"})
    b.add(parent, "breadcrumb", {})


def sec_synced(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    original = b.add(parent, "synced_block", {"synced_from": None})
    b.paragraph(original, rich("synced content: " + sentence(rng)))
    b.texty(original, "bulleted_list_item", rich("synced bullet"))
    original_id = b.tree.blocks[original]["id"]
    duplicate = b.add(parent, "synced_block", {"synced_from": {"type": "block_id", "block_id": original_id}})
    b.tree.blocks[duplicate]["has_children"] = True
    b.tree.alias[duplicate] = original


def sec_links(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    b.add(parent, "link_to_page", {"type": "page_id", "page_id": b.view.page_id(b.view.random_page(rng))})
    db = b.view.random_database(rng)
    if db is not None:
        b.add(parent, "link_to_page", {"type": "database_id", "database_id": b.view.database_id(db)})
    private = b.view.private_page(rng)
    if private is not None:
        b.add(parent, "link_to_page", {"type": "page_id", "page_id": b.view.page_id(private)})
    b.paragraph(parent, mentions(b.view, rng))


def sec_web(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    word = rng.choice(WORDS)
    b.add(parent, "bookmark", {"caption": rich("a bookmark"), "url": f"https://example.com/bookmark/{word}"})
    b.add(parent, "embed", {"caption": [], "url": f"https://example.com/embed/{word}"})
    b.add(parent, "link_preview", {"url": f"https://example.com/preview/{word}"})


MEDIA = (
    ("image", "photo.png"),
    ("video", "clip.mp4"),
    ("pdf", "paper.pdf"),
    ("file", "notes.txt"),
    ("audio", "a.mp3"),
)


def sec_media(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    for block_type, name in MEDIA:
        for external in (False, True):
            payload: JSON = {"caption": rich(f"{block_type} caption") if external else []}
            if block_type == "file":
                payload["name"] = name
            index = b.add(parent, block_type, payload)
            b.file(index, (block_type,), name, external)


def sec_big_file(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    index = b.add(parent, "file", {"caption": rich("a large file"), "name": BIG_FILE_NAME})
    b.file(index, ("file",), BIG_FILE_NAME, external=False)


def sec_unsupported(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    for block_type in ("button", "ai_block"):
        b.add(parent, "unsupported", {"block_type": block_type})


def sec_hostile(b: TreeBuilder, rng: random.Random, parent: int) -> None:
    for line in HOSTILE_TEXT:
        b.paragraph(parent, rich(line))
    b.texty(
        parent,
        "heading_2",
        [text("# <h1>not a heading</h1> ", "bold"), text("[x](y)", "code")],
        is_toggleable=False,
    )


SHOWCASE: tuple[Section, ...] = (
    sec_text,
    sec_colors,
    sec_toggle_headings,
    sec_deep_lists,
    sec_lists,
    sec_toggle_quote_callout,
    sec_code_equation,
    sec_table,
    sec_columns,
    sec_structure,
    sec_synced,
    sec_links,
    sec_web,
    sec_media,
    sec_big_file,
    sec_unsupported,
    sec_hostile,
)
ORDINARY: tuple[Section, ...] = (
    sec_text,
    sec_lists,
    sec_toggle_quote_callout,
    sec_code_equation,
    sec_table,
    sec_columns,
    sec_structure,
    sec_synced,
    sec_links,
    sec_web,
    sec_media,
    sec_hostile,
)


def huge_sections(count: int) -> Section:
    """`count` top-level blocks of cheap, varied types."""

    def build(b: TreeBuilder, rng: random.Random, parent: int) -> None:
        for i in range(count):
            if i % 10 == 9:
                b.texty(parent, "bulleted_list_item", rich(f"item {i}"))
            else:
                b.paragraph(parent, rich(f"{i}: {sentence(rng, 6)}"))

    return build


@dataclass(frozen=True)
class PagePlan:
    """Everything besides the seed that decides one page's blocks."""

    sections: tuple[Section, ...]
    child_refs: tuple[tuple[str, str, str], ...]  # (block type, object id, title) for child pages/dbs
    version: int = 0
    edited: str | None = None  # time of the last edit, when version > 0
    appended: tuple[str, ...] = ()  # creation time of each appended block
    deleted: frozenset[int] = frozenset()


def build_tree(b: TreeBuilder, rng: random.Random, plan: PagePlan) -> PageTree:
    """Sections first, child pages and databases interleaved after the first section."""
    for i, section in enumerate(plan.sections):
        section(b, rng, 0)
        if i == 0:
            for block_type, object_id, title in plan.child_refs:
                b.add(0, block_type, {"title": title}, object_id=object_id)
    if not plan.sections:
        for block_type, object_id, title in plan.child_refs:
            b.add(0, block_type, {"title": title}, object_id=object_id)
    for block in b.tree.blocks[1:]:
        if block["type"] == "child_page":
            block["has_children"] = True
    if plan.version and plan.edited:
        note = b.paragraph(0, rich(f"Edited: version {plan.version}"))
        b.tree.blocks[note]["last_edited_time"] = plan.edited
        top = b.tree.children[0]
        top.insert(0, top.pop())
    for stamp in plan.appended:
        index = b.paragraph(0, rich(f"Appended block {len(b.tree.blocks)}"))
        b.tree.blocks[index]["created_time"] = b.tree.blocks[index]["last_edited_time"] = stamp
    _drop(b.tree, plan.deleted)
    return b.tree


def _drop(tree: PageTree, deleted: frozenset[int]) -> None:
    """Deleted blocks leave their parent's children (and are unreachable by id)."""
    for index in deleted:
        if index >= len(tree.blocks) or not tree.blocks[index]:
            continue
        for key, kids in tree.children.items():
            if index in kids:
                kids.remove(index)
                if key and not kids:
                    tree.blocks[key]["has_children"] = False
        _erase(tree, index)


def _erase(tree: PageTree, index: int) -> None:
    tree.blocks[index] = {}
    for child in tree.children.pop(index, []):
        _erase(tree, child)
