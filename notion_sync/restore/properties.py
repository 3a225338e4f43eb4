"""Data source schemas and page property values, turned into what Notion accepts to create them.

Pure functions over saved JSON, like `restore.blocks`. A schema is created in two steps: first every
property the API can create without another object (relations and rollups need their target data
source to exist), then `relations` once all data sources of the restored set exist. Values the API
computes or sets itself (formulas, rollups, created/edited times and authors, unique ids) are not
sent; each is reported once per property as a `Loss`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notion_sync.restore.blocks import JSON, Loss, Targets, file_object, rich_text

# Property types whose values Notion computes: never sent, reported.
COMPUTED = (
    "formula",
    "rollup",
    "created_time",
    "created_by",
    "last_edited_time",
    "last_edited_by",
    "unique_id",
    "verification",
    "button",
)
# Schema configurations created as read (options keep name and colour; their ids are Notion's).
_PLAIN_SCHEMA = ("title", "rich_text", "checkbox", "url", "email", "phone_number", "date", "people", "files")
_NEEDS_TARGET = ("relation", "rollup")
# The options of a status property the API creates (it cannot create others).
DEFAULT_STATUSES = ("Not started", "In progress", "Done")


@dataclass
class Schema:
    """A data source's properties as create requests: `now` at creation, `later` once every data
    source of the restore exists (relations, then rollups over them)."""

    now: JSON = field(default_factory=dict)
    later: JSON = field(default_factory=dict)
    losses: list[Loss] = field(default_factory=list)
    # Sides of two-way relations that Notion makes with their other side: not created, no values.
    mirrored: list[str] = field(default_factory=list)


def creatable_schema(data_source: JSON, targets: Targets) -> Schema:
    """The create body of a data source's properties (read shape: name -> {id, name, type, ...})."""
    schema = Schema()
    source_id = str(data_source.get("id", ""))
    for name, prop in (data_source.get("properties") or {}).items():
        kind = str(prop.get("type", ""))
        config = prop.get(kind) if isinstance(prop.get(kind), dict) else {}
        if kind in _PLAIN_SCHEMA:
            schema.now[name] = {kind: {}}
        elif kind == "number":
            schema.now[name] = {"number": {"format": config.get("format", "number")}}
        elif kind in ("select", "multi_select"):
            schema.now[name] = {kind: {"options": _options(config)}}
        elif kind == "status":
            # The API creates a status property with Notion's default groups only.
            schema.now[name] = {"status": {}}
            lost = "status options and groups are Notion's defaults"
            schema.losses.append(Loss(source_id, f"property {name}", lost))
        elif kind == "formula":
            schema.now[name] = {"formula": {"expression": str(config.get("expression", ""))}}
        elif kind == "unique_id":
            schema.now[name] = {"unique_id": {"prefix": config.get("prefix")}}
        elif kind in ("created_time", "created_by", "last_edited_time", "last_edited_by"):
            schema.now[name] = {kind: {}}
        elif kind == "relation":
            target = config.get("data_source_id") or config.get("database_id")
            if not target:
                schema.losses.append(Loss(source_id, f"property {name}", "a relation without a target"))
                continue
            relation: JSON = {"data_source_id": targets.new_id(str(target))}
            if config.get("type") == "dual_property":
                # Created from one side only, the lower (id, name): the other side comes with it.
                other = (str(target), str((config.get("dual_property") or {}).get("synced_property_name")))
                if str(target) in targets.ids and other < (source_id, name):
                    schema.mirrored.append(name)
                    continue
                relation["dual_property"] = {}
            else:
                relation["single_property"] = {}
            schema.later[name] = {"relation": relation}
        elif kind == "rollup":
            schema.later[name] = {
                "rollup": {
                    "relation_property_name": config.get("relation_property_name"),
                    "rollup_property_name": config.get("rollup_property_name"),
                    "function": config.get("function", "show_original"),
                }
            }
        else:
            lost = f"the API cannot create a {kind} property"
            schema.losses.append(Loss(source_id, f"property {name}", lost))
    return schema


def _options(config: JSON) -> list[JSON]:
    return [
        {"name": o["name"], "color": o.get("color", "default")}
        for o in config.get("options") or []
        if isinstance(o, dict) and o.get("name")
    ]


@dataclass
class Values:
    """A page's property values as create requests: `now` with the page, `relations` once their
    targets exist; `people_text` names people the target workspace does not have."""

    now: JSON = field(default_factory=dict)
    relations: JSON = field(default_factory=dict)
    people_text: dict[str, str] = field(default_factory=dict)
    losses: list[Loss] = field(default_factory=list)


def creatable_values(page: JSON, targets: Targets) -> Values:
    """The create body of a page's property values (read shape, complete: with every item of
    capped properties, as the export saved it)."""
    values = Values()
    page_id = str(page.get("id", ""))
    for name, prop in (page.get("properties") or {}).items():
        kind = str(prop.get("type", ""))
        value = prop.get(kind)
        if kind in COMPUTED:
            continue  # reported once per property by the schema's restore, not once per row
        if kind in ("title", "rich_text"):
            values.now[name] = {kind: rich_text(value, targets, values.losses, page_id)}
        elif kind in ("number", "checkbox", "url", "email", "phone_number"):
            values.now[name] = {kind: value}
        elif kind == "status" and isinstance(value, dict) and value.get("name") not in DEFAULT_STATUSES:
            # The restored property has Notion's default options only: Notion would refuse the row.
            lost = f"status {value.get('name')!r} is not among Notion's default options"
            values.losses.append(Loss(page_id, f"property {name}", lost))
        elif kind in ("select", "status"):
            values.now[name] = {kind: {"name": value["name"]} if isinstance(value, dict) else None}
        elif kind == "multi_select":
            values.now[name] = {kind: [{"name": o["name"]} for o in value or [] if isinstance(o, dict)]}
        elif kind == "date":
            values.now[name] = {kind: _date(value)}
        elif kind == "people":
            known, unknown = _people(value or [], targets)
            values.now[name] = {kind: [{"id": user} for user in known]}
            if unknown:
                values.people_text[name] = ", ".join(unknown)
                lost = f"people not in this workspace: {', '.join(unknown)}"
                values.losses.append(Loss(page_id, f"property {name}", lost))
        elif kind == "files":
            files = [_file(item, targets) for item in value or []]
            kept = [f for f in files if f is not None]
            if len(kept) < len(files):
                values.losses.append(Loss(page_id, f"property {name}", "a file without a local copy"))
            values.now[name] = {kind: kept}
        elif kind == "relation":
            olds = [str(r["id"]) for r in value or [] if r.get("id")]
            related = [{"id": targets.ids[old]} for old in olds if old in targets.ids]
            if len(related) < len(olds):
                lost = f"{len(olds) - len(related)} related pages not in the restore"
                values.losses.append(Loss(page_id, f"property {name}", lost))
            values.relations[name] = {kind: related}
        else:
            values.losses.append(Loss(page_id, f"property {name}", f"the API cannot set a {kind} value"))
    return values


def _date(value: Any) -> JSON | None:
    if not isinstance(value, dict) or not value.get("start"):
        return None
    return {k: value[k] for k in ("start", "end", "time_zone") if value.get(k) is not None}


def _people(users: list[JSON], targets: Targets) -> tuple[list[str], list[str]]:
    known: list[str] = []
    unknown: list[str] = []
    for user in users:
        user_id = str(user.get("id", ""))
        if targets.users is None or user_id in targets.users:
            known.append(user_id)
        else:
            unknown.append(str(user.get("name") or user_id))
    return known, unknown


def _file(item: JSON, targets: Targets) -> JSON | None:
    source = file_object(item, targets)
    if source is None:
        return None
    return {"name": str(item.get("name") or "file"), **source}
