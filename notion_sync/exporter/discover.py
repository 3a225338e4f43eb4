"""Discovery: search, data source queries and references followed, all recorded in the index."""

from __future__ import annotations

import json
from typing import Any

from notion_sync.convert.markdown import page_title
from notion_sync.exporter.context import StepContext
from notion_sync.models import DiscoverResult
from notion_sync.notion.errors import ObjectUnavailable

JSON = dict[str, Any]
# Pages nested in blocks (toggles, columns) name a block as parent; climb at most this far.
_MAX_BLOCK_CLIMB = 12


async def discover_pages(ctx: StepContext, cursor: str | None, max_requests: int) -> DiscoverResult:
    """Reads up to `max_requests` pages of search results; returns where to continue."""
    found = 0
    for _ in range(max_requests):
        result = await ctx.gateway.search("page", cursor)
        for page in result["results"]:
            found += await _add_page(ctx, page)
        cursor = result.get("next_cursor")
        if not result.get("has_more") or not cursor:
            return DiscoverResult(next_cursor=None, discovered=found, api_requests=ctx.gateway.requests)
    return DiscoverResult(next_cursor=cursor, discovered=found, api_requests=ctx.gateway.requests)


async def discover_data_sources(ctx: StepContext, cursor: str | None) -> DiscoverResult:
    """Reads one page of data sources from search, with their databases and every row."""
    result = await ctx.gateway.search("data_source", cursor)
    found = 0
    for data_source in result["results"]:
        found += await _add_data_source(ctx, data_source)
        database_id = data_source.get("parent", {}).get("database_id")
        if database_id:
            found += await _ensure_database(ctx, database_id)
    next_cursor = result.get("next_cursor") if result.get("has_more") else None
    return DiscoverResult(next_cursor=next_cursor, discovered=found, api_requests=ctx.gateway.requests)


async def resolve_stubs(ctx: StepContext, limit: int) -> DiscoverResult:
    """Fetches objects known only by reference (child pages and databases missing from search)."""
    found = 0
    for object_id, kind, parent_id in ctx.index.stubs(limit):
        try:
            if kind == "database":
                found += await _ensure_database(ctx, object_id, parent_hint=parent_id)
            else:
                page = await ctx.gateway.page(object_id)
                found += await _add_page(ctx, page, parent_hint=parent_id)
        except ObjectUnavailable as error:
            ctx.index.skip(object_id, f"{error.status} {error.code}")
    remaining = len(ctx.index.stubs(1))
    return DiscoverResult(
        next_cursor=None, discovered=found, api_requests=ctx.gateway.requests, remaining=remaining
    )


async def export_users(ctx: StepContext) -> int:
    users = await ctx.gateway.users()
    data = json.dumps({"users": users}, ensure_ascii=False, indent=2, sort_keys=True).encode()
    written = ctx.destination.write(ctx.staging_id, "json/users.json", data)
    ctx.index.add("users", "users", None, "Users", None)
    ctx.index.place("users", written.path, "")
    ctx.index.finish("users", [written])
    return len(users)


async def _add_page(ctx: StepContext, page: JSON, parent_hint: str | None = None) -> int:
    if page.get("in_trash") or page.get("archived"):
        if ctx.index.contains(page["id"]):
            ctx.index.skip(page["id"], "in trash")
        return 0
    parent = await _parent_id(ctx, page.get("parent", {})) or parent_hint
    return int(ctx.index.add(page["id"], "page", parent, page_title(page), page))


async def _add_data_source(ctx: StepContext, data_source: JSON) -> int:
    parent = data_source.get("parent", {}).get("database_id")
    added = int(ctx.index.add(data_source["id"], "data_source", parent, page_title(data_source), data_source))
    if not added:
        return 0
    async for row in ctx.gateway.query_rows(data_source["id"]):
        added += await _add_page(ctx, row, parent_hint=data_source["id"])
    return added


async def _ensure_database(ctx: StepContext, database_id: str, parent_hint: str | None = None) -> int:
    known = ctx.index.get(database_id)
    if known is not None and known.raw is not None:
        return 0
    database = await ctx.gateway.database(database_id)
    parent = await _parent_id(ctx, database.get("parent", {})) or parent_hint
    added = int(ctx.index.add(database_id, "database", parent, page_title(database), database))
    for ref in database.get("data_sources", []):
        existing = ctx.index.get(ref["id"])
        if existing is None or existing.raw is None:
            try:
                data_source = await ctx.gateway.data_source(ref["id"])
            except ObjectUnavailable as error:
                ctx.index.add(ref["id"], "data_source", database_id, ref.get("name", ""), None)
                ctx.index.skip(ref["id"], f"{error.status} {error.code}")
                continue
            added += await _add_data_source(ctx, data_source)
    return added


async def _parent_id(ctx: StepContext, parent: JSON) -> str | None:
    """The page, database or data source an object lives under; None at the workspace root."""
    for _ in range(_MAX_BLOCK_CLIMB):
        kind = parent.get("type")
        if kind in ("page_id", "database_id", "data_source_id"):
            return str(parent[kind])
        if kind != "block_id":
            return None
        try:
            block = await ctx.gateway.block(parent["block_id"])
        except ObjectUnavailable:
            return None
        parent = block.get("parent", {})
    return None
