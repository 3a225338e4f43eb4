"""Finding what a create whose answer was lost made, so it is adopted instead of made twice.

Each create is recorded as an `Intent` before it is sent (where, after which block, how many, when).
When its answer never arrived (the worker was killed, a timeout, a 5xx), the restore looks:
- a page or database under a page: the `child_page` / `child_database` block (its id is the object's)
  with the expected title that no restored object already maps (`RestoreIndex.is_adopted`);
- a row: the data source's rows created since the minute before the intent, with the expected title;
- a data source: the database's data sources, by title;
- an append: the `count` blocks right after the recorded `after` block, if they are there with the
  expected types. Notion applies an append whole or not at all;
- a comment: the page's comment with the expected text.
None means nothing landed: the create is sent again. How to look is a `Lookup`, recorded with the
intent, so an undo settles open intents exactly as a retry would (`find`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from notion_sync.notion.gateway import JSON
from notion_sync.notion.writes import NotionWrites
from notion_sync.restore.index import Intent, RestoreIndex

# How many rows created since the intent's minute are looked at (a lost row is among the newest).
_ROW_PAGES = 5


class RestoreConflict(Exception):
    """The block a lost append went after is gone: the restore cannot tell where it would be."""


@dataclass(frozen=True)
class Lookup:
    """How to find what one create made: `what` it made (`child_page`, `child_database`, `row`,
    `data_source`, `appended`, `comment`), the pattern its title or text is shown as, the block
    types of an append, and the old ids (with their kinds) the found ids stand for, in order."""

    what: str
    title: str = ""
    kinds: tuple[str, ...] = ()
    olds: tuple[tuple[str, str], ...] = ()

    def dumps(self) -> str:
        return json.dumps([self.what, self.title, list(self.kinds), [list(o) for o in self.olds]])

    @classmethod
    def loads(cls, text: str) -> Lookup:
        what, title, kinds, olds = json.loads(text)
        return cls(str(what), str(title), tuple(kinds), tuple((str(o), str(k)) for o, k in olds))

    def pairs(self, made: list[str]) -> list[tuple[str, str, str]]:
        """(old, new, kind) of the ids `made` (the answer, or what was found)."""
        return [(old, new, kind) for (old, kind), new in zip(self.olds, made, strict=False) if old]


async def find(writes: NotionWrites, index: RestoreIndex, intent: Intent, lookup: Lookup) -> list[str] | None:
    """The ids a create whose answer was lost made (None: nothing landed)."""
    title = re.compile(lookup.title, re.DOTALL)
    if lookup.what in ("child_page", "child_database"):
        found = await find_child(writes, index, intent, lookup.what, title)
        if found is None or lookup.what == "child_page":
            return [found] if found else None
        database = await writes.gateway.database(found)
        return [found, *[str(s["id"]) for s in database.get("data_sources") or []][:1]]
    if lookup.what == "row":
        found = await find_row(writes, index, intent, title)
    elif lookup.what == "data_source":
        found = await find_data_source(writes, index, intent, title)
    elif lookup.what == "comment":
        found = await find_comment(writes, intent, title)
    else:
        return await find_appended(writes, intent, list(lookup.kinds))
    return [found] if found else None


def plain(items: list[JSON]) -> str:
    """The plain text of create-shaped (or read-shaped) rich text."""
    text = []
    for item in items:
        if "plain_text" in item:
            text.append(str(item["plain_text"]))
        elif item.get("type") == "text":
            text.append(str(item["text"]["content"]))
    return "".join(text)


def shown_as(items: list[JSON]) -> re.Pattern[str]:
    """What the plain text of create-shaped rich text will look like once Notion has it: its text
    and equations as sent, each mention as whatever Notion names it (a page's title, a user's name,
    "Untitled"), which the restore cannot know."""
    parts: list[str] = []
    for item in items:
        if item.get("type") == "text":
            parts.append(re.escape(str((item.get("text") or {}).get("content", ""))))
        elif item.get("type") == "equation":
            parts.append(re.escape(str((item.get("equation") or {}).get("expression", ""))))
        else:
            parts.append(".*?")
    return re.compile("".join(parts), re.DOTALL)


async def find_child(
    writes: NotionWrites, index: RestoreIndex, intent: Intent, kind: str, title: re.Pattern[str]
) -> str | None:
    """The `child_page` / `child_database` under the intent's parent page whose title is shown as
    `title`, created since the intent's minute (not an older copy), not adopted."""
    minute = _minute(intent)
    async for block in writes.gateway.children(intent.parent):
        if block.get("type") != kind or block.get("in_trash") or str(block.get("created_time")) < minute:
            continue
        shown = str((block.get(kind) or {}).get("title", ""))
        if title.fullmatch(shown) and not index.is_adopted(block["id"]):
            return str(block["id"])
    return None


async def find_row(
    writes: NotionWrites, index: RestoreIndex, intent: Intent, title: re.Pattern[str]
) -> str | None:
    """A row of the intent's data source created since its minute, titled `title`, not adopted."""
    minute = _minute(intent)
    body: JSON = {
        "filter": {"timestamp": "created_time", "created_time": {"on_or_after": minute}},
        "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
        "page_size": 100,
    }
    for _ in range(_ROW_PAGES):
        answer = await writes.query_data_source(intent.parent, body)
        for row in answer["results"]:
            if title.fullmatch(_title_of(row)) and not index.is_adopted(str(row["id"])):
                return str(row["id"])
        if not answer.get("next_cursor"):
            return None
        body["start_cursor"] = answer["next_cursor"]
    return None


async def find_data_source(
    writes: NotionWrites, index: RestoreIndex, intent: Intent, title: re.Pattern[str]
) -> str | None:
    database = await writes.gateway.database(intent.parent)
    for source in database.get("data_sources") or []:
        if title.fullmatch(str(source.get("name", ""))) and not index.is_adopted(str(source["id"])):
            return str(source["id"])
    return None


async def find_comment(writes: NotionWrites, intent: Intent, text: re.Pattern[str]) -> str | None:
    """The comment on the intent's page whose text is shown as `text`."""
    for listed in await writes.gateway.comments(intent.parent):
        if text.fullmatch(plain(listed.get("rich_text") or [])):
            return str(listed["id"])
    return None


async def find_appended(writes: NotionWrites, intent: Intent, kinds: list[str]) -> list[str] | None:
    """The ids of the blocks a lost append made (after `intent.after`), or None if none landed."""
    following: list[JSON] = []
    seen_after = intent.after is None
    async for block in writes.gateway.children(intent.parent):
        if not seen_after:
            seen_after = block["id"] == intent.after
            continue
        following.append(block)
        if len(following) == len(kinds):
            break
    if not seen_after:
        raise RestoreConflict(f"block {intent.after} is no longer under {intent.parent}")
    # Notion creates exactly what was sent: other blocks there (a child page, nothing) mean it did not land.
    if [b.get("type") for b in following] != kinds:
        return None
    return [str(b["id"]) for b in following]


def _minute(intent: Intent) -> str:
    """A minute before the intent was first sent, rounded down to the minute as Notion rounds
    `created_time` (a server clock a little behind ours must not hide what it made)."""
    sent = datetime.strptime(intent.sent_at[:16], "%Y-%m-%dT%H:%M") - timedelta(minutes=1)
    return sent.strftime("%Y-%m-%dT%H:%M") + ":00.000Z"


def _title_of(page: JSON) -> str:
    for prop in (page.get("properties") or {}).values():
        if prop.get("type") == "title":
            return plain(prop.get("title") or [])
    return ""
