"""Data source schemas and row property values: every property type Notion has."""

import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from notion_sync.emulator.content import JSON, View, date_value, rich, text
from notion_sync.emulator.files import iso_ms
from notion_sync.emulator.ids import Kind

PAGE_REFERENCE_CAP = 25  # page objects carry at most 25 relation/people/title/rich_text items
PAGED_TYPES = frozenset({"title", "rich_text", "relation", "people"})

# (name, type): one property of every type; formulas and rollups in each result type
SCHEMA: tuple[tuple[str, str], ...] = (
    ("Name", "title"),
    ("Notes", "rich_text"),
    ("Estimate", "number"),
    ("Priority", "select"),
    ("Tags", "multi_select"),
    ("Status", "status"),
    ("Due", "date"),
    ("Owners", "people"),
    ("Attachments", "files"),
    ("Done", "checkbox"),
    ("Link", "url"),
    ("Contact", "email"),
    ("Phone", "phone_number"),
    ("Label", "formula"),
    ("Double", "formula"),
    ("Is done", "formula"),
    ("Due copy", "formula"),
    ("Related", "relation"),
    ("Related count", "rollup"),
    ("Latest related edit", "rollup"),
    ("Related names", "rollup"),
    ("Created", "created_time"),
    ("Creator", "created_by"),
    ("Edited", "last_edited_time"),
    ("Editor", "last_edited_by"),
    ("Ticket", "unique_id"),
    ("Verification", "verification"),
)
SELECT_OPTIONS = (("Urgent", "red"), ("High", "orange"), ("Low", "gray"), ("Someday", "default"))
TAG_OPTIONS = (
    ("ops", "blue"),
    ("design", "pink"),
    ("backend", "green"),
    ("docs", "yellow"),
    ("*md* | tag", "brown"),
)
STATUS_OPTIONS = (
    ("Not started", "default", "To-do"),
    ("In progress", "blue", "In progress"),
    ("Done", "green", "Complete"),
)
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:;<>?@[]^_`{|}~"


def property_ids(seed: int) -> dict[str, str]:
    """Notion-style short ids: "title" for the title, 4 URL-quoted characters for the rest."""
    rng = random.Random(f"props-{seed}")
    ids = {}
    for name, kind in SCHEMA:
        ids[name] = "title" if kind == "title" else quote("".join(rng.choices(_ID_CHARS, k=4)), safe="")
    return ids


@dataclass(frozen=True)
class SourceInfo:
    """What a row needs to know about its data source and its relation target."""

    index: int
    row_start: int
    target_id: str  # the data source the "Related" relation points at
    target_database_id: str
    target_row_start: int
    target_row_count: int


class Schemas:
    """Schema and row values for one workspace."""

    def __init__(self, view: View, seed: int) -> None:
        self.view = view
        self.ids = property_ids(seed)
        self.by_id = {pid: name for name, pid in self.ids.items()}
        self._options: dict[tuple[int, int, str, str], JSON] = {}

    def _option(self, group: int, n: int, name: str, color: str) -> JSON:
        """Shared and read-only, as every row holds a few of the same dozen options."""
        key = (group, n, name, color)
        option = self._options.get(key)
        if option is None:
            option = {"id": self.view.codec.encode(Kind.OPTION, group, n), "name": name, "color": color}
            self._options[key] = option
        return option

    def _config(self, name: str, kind: str, source: SourceInfo) -> JSON:
        ids = self.ids
        if kind == "number":
            return {"format": "number"}
        if kind in ("select", "multi_select"):
            group, options = (1, SELECT_OPTIONS) if kind == "select" else (2, TAG_OPTIONS)
            return {
                "options": [
                    self._option(group, n, o, c) | {"description": None} for n, (o, c) in enumerate(options)
                ]
            }
        if kind == "status":
            statuses = [
                self._option(3, n, o, c) | {"description": None} for n, (o, c, _) in enumerate(STATUS_OPTIONS)
            ]
            groups = [
                {
                    "id": self.view.codec.encode(Kind.OPTION, 4, n),
                    "name": g,
                    "color": c,
                    "option_ids": [statuses[n]["id"]],
                }
                for n, (_, c, g) in enumerate(STATUS_OPTIONS)
            ]
            return {"options": statuses, "groups": groups}
        if kind == "formula":
            expression = {
                "Label": 'prop("Name") + " (" + prop("Status") + ")"',
                "Double": 'prop("Estimate") * 2',
            }
            return {"expression": expression.get(name, f'prop("{name}")')}
        if kind == "relation":
            return {
                "database_id": source.target_database_id,
                "data_source_id": source.target_id,
                "type": "single_property",
                "single_property": {},
            }
        if kind == "rollup":
            function = {"Related count": "count", "Latest related edit": "latest_date"}.get(
                name, "show_original"
            )
            return {
                "rollup_property_name": "Name",
                "relation_property_name": "Related",
                "rollup_property_id": "title",
                "relation_property_id": ids["Related"],
                "function": function,
            }
        if kind == "unique_id":
            return {"prefix": "TASK"}
        return {}

    def schema(self, source: SourceInfo) -> JSON:
        return {
            name: {
                "id": self.ids[name],
                "name": name,
                "description": None,
                "type": kind,
                kind: self._config(name, kind, source),
            }
            for name, kind in SCHEMA
        }

    def values(self, row: int, source: SourceInfo, meta: "RowMeta", capped: bool) -> JSON:
        """Property values of row page `row` (global page index); `capped` as on a page object."""
        rng = random.Random(f"row-{row}-{meta.version}")
        local = row - source.row_start
        relations = self._relations(rng, local, source)
        people = self._people(rng, local)
        title = self.view.page_title(row)
        status = STATUS_OPTIONS[rng.randrange(3)]
        estimate = rng.randint(0, 100) + meta.version
        due = date_value(rng)
        done = rng.random() < 0.4
        priority = rng.randrange(4)
        raw: dict[str, Any] = {
            "Name": rich(title),
            "Notes": ([text(f"edited v{meta.version} ")] if meta.version else [])
            + [text("<b>note</b> *md*", "bold")],
            "Estimate": estimate if rng.random() < 0.9 else None,
            "Priority": self._option(1, priority, *SELECT_OPTIONS[priority]) if rng.random() < 0.8 else None,
            "Tags": [
                self._option(2, n, *TAG_OPTIONS[n]) for n in sorted(rng.sample(range(5), rng.randint(0, 3)))
            ],
            "Status": self._option(3, STATUS_OPTIONS.index(status), status[0], status[1]),
            "Due": due if rng.random() < 0.8 else None,
            "Owners": people,
            "Attachments": self._files(row, rng),
            "Done": done,
            "Link": f"https://example.com/rows/{local}" if rng.random() < 0.7 else None,
            "Contact": f"row{local}@example.com" if rng.random() < 0.7 else None,
            "Phone": f"+1-555-{local % 10000:04d}" if rng.random() < 0.7 else None,
            "Label": {"type": "string", "string": f"{title} ({status[0]})"},
            "Double": {"type": "number", "number": estimate * 2},
            "Is done": {"type": "boolean", "boolean": done},
            "Due copy": {"type": "date", "date": due},
            "Related": [{"id": rid} for rid in relations],
            "Related count": {"type": "number", "number": len(relations), "function": "count"},
            "Latest related edit": {"type": "date", "date": None, "function": "latest_date"},
            "Related names": {"type": "array", "array": [], "function": "show_original"},
            "Created": meta.created,
            "Creator": meta.creator,
            "Edited": meta.edited,
            "Editor": meta.editor,
            "Ticket": {"prefix": "TASK", "number": local + 1},
            "Verification": self._verification(rng),
        }
        out = {}
        for name, kind in SCHEMA:
            value = raw[name]
            prop: JSON = {"id": self.ids[name], "type": kind, kind: value}
            if kind == "relation":
                prop["has_more"] = capped and len(value) > PAGE_REFERENCE_CAP
            if capped and kind in PAGED_TYPES:
                prop[kind] = value[:PAGE_REFERENCE_CAP]
            if capped and name == "Related count":
                prop[kind] = value | {"number": min(len(relations), PAGE_REFERENCE_CAP)}
            out[name] = prop
        return out

    def _relations(self, rng: random.Random, local: int, source: SourceInfo) -> list[str]:
        size = source.target_row_count
        count = rng.randint(30, 60) if local % 9 == 0 else rng.randint(0, 3)
        picks = rng.sample(range(size), min(count, size))
        return [self.view.page_id(source.target_row_start + p) for p in picks]

    def _people(self, rng: random.Random, local: int) -> list[JSON]:
        users = self.view.user_count()
        count = rng.randint(PAGE_REFERENCE_CAP + 3, users) if local % 11 == 0 else rng.randint(0, 2)
        return [self.view.user_object(u) for u in sorted(rng.sample(range(users), count))]

    def _files(self, row: int, rng: random.Random) -> list[JSON]:
        files: list[JSON] = []
        for n in range(rng.randint(0, 2)):
            name = f"attachment-{n}.png" if n == 0 else f"attachment-{n}.pdf"
            files.append(
                {"name": name} | self.view.file_object(self.view.file_key(f"r{row}f{n}", name), n == 1)
            )
        return files

    def _verification(self, rng: random.Random) -> JSON:
        if rng.random() < 0.5:
            return {"state": "unverified", "verified_by": None, "date": None}
        user = self.view.user_object(rng.randrange(self.view.user_count()))
        return {
            "state": "verified",
            "verified_by": user,
            "date": {"start": iso_ms(1.7e9), "end": None, "time_zone": None},
        }


@dataclass(frozen=True)
class RowMeta:
    """A row's own timestamps and authors (they are property values too)."""

    version: int
    created: str
    edited: str
    creator: JSON
    editor: JSON


def property_item(prop: JSON) -> JSON | list[JSON]:
    """The `GET /v1/pages/{id}/properties/{pid}` form of one (uncapped) property value."""
    kind = prop["type"]
    base = {"object": "property_item", "id": prop["id"], "type": kind}
    if kind in PAGED_TYPES:
        return [base | {kind: item} for item in prop[kind]]
    return base | {kind: prop[kind]}
