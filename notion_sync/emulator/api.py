"""What every Notion route of the emulator shares: error bodies, id and page-size validation,
cursors and list bodies, as api.notion.com answers them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import orjson

from notion_sync.emulator.backend import JSON

MAX_PAGE_SIZE = 100
NOT_SHARED = "Make sure the relevant pages and databases are shared with your integration."
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ApiError(Exception):
    """An error answered with Notion's JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(kind: str, object_id: str) -> ApiError:
    return ApiError(404, "object_not_found", f"Could not find {kind} with ID: {object_id}. {NOT_SHARED}")


def validation_error(message: str) -> ApiError:
    return ApiError(400, "validation_error", message)


def parse_uuid(raw: str, where: str) -> str:
    """Dashed lowercase UUID, or Notion's validation error for a malformed id."""
    if CANONICAL_UUID.fullmatch(raw):  # what clients send; parsing it would give it back unchanged
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise validation_error(
            f"{where} should be a valid uuid, instead was `{orjson.dumps(raw).decode()}`."
        ) from None


def parse_page_size(value: Any, source: Literal["body", "query"]) -> int:
    if value is None:
        return MAX_PAGE_SIZE
    where = f"{source} failed validation: {source}.page_size"
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise validation_error(f"{where} should be a number, instead was `{value}`.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise validation_error(f"{where} should be ≤ `{MAX_PAGE_SIZE}`, instead was `{size}`.")
    return size


def encode_offset(offset: int) -> str:
    return f"{offset:08x}-0000-4000-8000-000000000000"


def decode_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(cursor.split("-", 1)[0], 16)
    except ValueError:
        raise validation_error(f"start_cursor provided is invalid: {cursor}") from None


def list_body(results: list[JSON], next_cursor: str | None, kind: str) -> JSON:
    return {
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
        "type": kind,
        kind: {},
    }


def page_by_id(items: list[JSON], cursor: str | None, size: int) -> tuple[list[JSON], str | None]:
    """Block-children paging: the cursor is the id of the first item of the next page, as Notion's."""
    start = 0
    if cursor:
        wanted = parse_uuid(cursor, "query failed validation: query.start_cursor")
        start = next((i for i, item in enumerate(items) if item["id"] == wanted), -1)
        if start < 0:
            raise validation_error(f"start_cursor provided is invalid: {cursor}")
    end = start + size
    return items[start:end], (items[end]["id"] if end < len(items) else None)


def page_by_offset(items: Sequence[Any], cursor: str | None, size: int) -> tuple[list[Any], str | None]:
    start = decode_offset(cursor)
    end = start + size
    return list(items[start:end]), (encode_offset(end) if end < len(items) else None)
