"""Notion property values to readable values, shared by Markdown front matter and CSV cells."""

from __future__ import annotations

import json
from typing import Any

from .links import LinkResolver
from .richtext import format_date, plain_text

Value = str | int | float | bool | list[str] | None


def _user(user: Any) -> str:
    if not isinstance(user, dict):
        return ""
    return str(user.get("name") or user.get("id") or "")


def _file(item: Any, links: LinkResolver) -> str:
    if not isinstance(item, dict):
        return ""
    body = item.get(str(item.get("type")))
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        return str(item.get("name") or "")
    return links.file_link(url) or url


def _relation_item(item: Any, links: LinkResolver) -> str:
    page_id = item.get("id") if isinstance(item, dict) else None
    if not isinstance(page_id, str):
        return ""
    return links.page_title(page_id) or links.page_link(page_id) or page_id


def property_value(prop: dict[str, Any], links: LinkResolver) -> Value:
    """A property as a YAML-friendly value: text, number, bool, a list for multi-valued types, or None.

    Relation items become export paths via the resolver, else the page id (the exporter fills in
    items past the API's 25 before calling). Unknown types fall back to compact JSON: never lost.
    """
    kind = str(prop.get("type"))
    body = prop.get(kind)
    if body is None:
        return None
    if kind in ("title", "rich_text"):
        return plain_text(body)
    if kind in ("number", "checkbox", "url", "email", "phone_number", "created_time", "last_edited_time"):
        return body if isinstance(body, (str, int, float, bool)) else None
    if kind in ("select", "status"):
        return str(body.get("name") or "") if isinstance(body, dict) else None
    if kind == "multi_select":
        return [str(o.get("name") or "") for o in body if isinstance(o, dict)]
    if kind == "date":
        return format_date(body) or None
    if kind in ("people", "files", "relation"):
        conv = {"people": lambda x, _: _user(x), "files": _file, "relation": _relation_item}[kind]
        return [conv(x, links) for x in body] if isinstance(body, list) else None
    if kind in ("created_by", "last_edited_by"):
        return _user(body)
    if kind in ("formula", "rollup"):
        return _computed(body, links)
    if kind == "unique_id" and isinstance(body, dict):
        prefix, number = body.get("prefix"), body.get("number")
        return None if number is None else (f"{prefix}-{number}" if prefix else str(number))
    if kind == "verification" and isinstance(body, dict):
        return str(body.get("state") or "") or None
    if kind == "button":
        return None
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _computed(body: Any, links: LinkResolver) -> Value:
    """Formula and rollup results: a typed value, or an array of property-like items."""
    if not isinstance(body, dict):
        return None
    kind = str(body.get("type"))
    if kind == "array":
        items = [property_value(x, links) for x in body.get("array") or [] if isinstance(x, dict)]
        return [text for item in items if (text := value_text(item))]
    if kind in ("string", "number", "boolean"):
        value = body.get(kind)
        return value if isinstance(value, (str, int, float, bool)) else None
    return property_value(body, links)


def value_text(value: Value) -> str:
    """One line of text for a CSV cell; lists are comma-joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(v for v in value if v)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def property_text(prop: dict[str, Any], links: LinkResolver) -> str:
    return value_text(property_value(prop, links))


def with_property_items(page: dict[str, Any], items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The page with each capped property (25 items at most in a page object) replaced by the
    complete list read from the property endpoint, keyed by property id."""
    if not items or not isinstance(page.get("properties"), dict):
        return page
    # New dicts only where something changes: the page object is shared and must stay as received.
    properties: dict[str, Any] = {}
    for name, prop in page["properties"].items():
        found = items.get(prop.get("id"))
        if found is not None:
            kind = prop["type"]
            prop = {
                **prop,
                kind: [item.get(kind) for item in found if item.get(kind) is not None],
                "has_more": False,
            }
        properties[name] = prop
    complete = {**page, "properties": properties}
    return complete
