"""Discovery: search, data source queries and references followed, all recorded in the index."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from notion_sync.convert.markdown import page_title
from notion_sync.exporter.context import StepContext
from notion_sync.models import DiscoverResult
from notion_sync.notion.errors import ObjectProblem
from notion_sync.notion.paging import Listing

JSON = dict[str, Any]
SEARCH_LAG = timedelta(hours=1)
# Databases discovered at once: each is a chain of requests that mostly waits on latency.
_DATABASES_AT_ONCE = 8
# Pages nested in blocks (toggles, columns) name a block as parent; climb at most this far.
_MAX_BLOCK_CLIMB = 12


async def discover_page_batch(ctx: StepContext, cursor: str | None, max_requests: int) -> DiscoverResult:
    """Reads up to `max_requests` pages of search results; returns where to continue."""
    listing = _search(ctx, "page", cursor)
    found = 0
    async for answer in listing.pages(max_requests):
        found += await _add_pages(ctx, answer["results"])
    return _discovered(ctx, listing, found)


async def discover_data_source_batch(ctx: StepContext, cursor: str | None) -> DiscoverResult:
    """Reads one page of data sources from search, with their databases and every row."""
    listing = _search(ctx, "data_source", cursor)
    found = 0
    async for answer in listing.pages(1):
        found += await _per_database(ctx, answer["results"], lambda source: _add_data_source(ctx, source))
    return _discovered(ctx, listing, found)


# The workflow keeps the search cursor between activities; the cursor it is handed carries how many
# requests the listing took and digests of its last cursors, so a cursor repeated across activities
# or a listing without end is caught there too: `ns1:<requests>:<digest>.<digest>...:<Notion's cursor>`.
_CURSOR_TAG = "ns1"
_CURSORS_CARRIED = 16


def _search(ctx: StepContext, kind: str, carried: str | None, newest_first: bool = False) -> Listing:
    """The search for `kind`, continued from the cursor the workflow carried (None: from the start)."""
    what = "the workspace's pages (search)" if kind == "page" else "the workspace's data sources (search)"
    requests, cursor = 0, carried
    seen: tuple[str, ...] = ()
    if carried and carried.startswith(_CURSOR_TAG + ":"):
        _, count, digests, cursor = carried.split(":", 3)
        requests, seen = int(count), tuple(d for d in digests.split(".") if d)
    search = partial(ctx.gateway.search, kind, newest_first=newest_first)
    return ctx.gateway.listing(f"search/{kind}", what, search, cursor or None, seen, requests)


def _discovered(ctx: StepContext, search: Listing, found: int) -> DiscoverResult:
    """What a batch found, and the cursor the workflow carries to the next batch."""
    next_cursor = None
    if search.next_cursor is not None:
        digests = ".".join(search.seen[-_CURSORS_CARRIED:])
        next_cursor = f"{_CURSOR_TAG}:{search.requests}:{digests}:{search.next_cursor}"
    return DiscoverResult(next_cursor=next_cursor, discovered=found, api_requests=ctx.gateway.requests)


async def _per_database(
    ctx: StepContext, data_sources: list[JSON], visit: Callable[[JSON], Awaitable[int]]
) -> int:
    """Visits data sources, then makes sure their database is known.

    Databases are handled a few at a time, the data sources of one database one after another, so no
    database is read twice.
    """
    by_database: dict[str | None, list[JSON]] = {}
    for data_source in data_sources:
        by_database.setdefault(data_source.get("parent", {}).get("database_id"), []).append(data_source)
    limit = asyncio.Semaphore(_DATABASES_AT_ONCE)

    async def one_database(database_id: str | None, sources: list[JSON]) -> int:
        found = 0
        async with limit:
            for data_source in sources:
                found += await visit(data_source)
            if database_id:
                try:
                    found += await _ensure_database(ctx, database_id)
                except ObjectProblem as error:
                    ctx.index.add(database_id, "database", None, "", None)
                    ctx.index.skip(database_id, error.reason, status=error.outcome)
        return found

    return sum(await asyncio.gather(*(one_database(d, sources) for d, sources in by_database.items())))


async def discover_changed_page_batch(
    ctx: StepContext, cursor: str | None, max_requests: int, edited_since: str
) -> DiscoverResult:
    """Reads search results newest first, up to the first page last edited well before `edited_since`."""
    edited_since = _with_lag(edited_since)
    listing = _search(ctx, "page", cursor, newest_first=True)
    found = 0
    async for answer in listing.pages(max_requests):
        pages: list[JSON] = answer["results"]
        recent = [page for page in pages if page.get("last_edited_time", "") >= edited_since]
        found += await _add_pages(ctx, recent, replace=True)
        if len(recent) < len(pages):
            # Sorted newest first: the rest was edited before too.
            return DiscoverResult(next_cursor=None, discovered=found, api_requests=ctx.gateway.requests)
    return _discovered(ctx, listing, found)


async def discover_changed_data_source_batch(
    ctx: StepContext, cursor: str | None, edited_since: str
) -> DiscoverResult:
    """Reads one page of data sources; queries the rows edited since, or all rows of a new or
    changed data source (Notion's search may lag behind, a query does not)."""
    listing = _search(ctx, "data_source", cursor)
    edited_since = _with_lag(edited_since)

    async def visit(data_source: JSON) -> int:
        known = ctx.index.get(data_source["id"])
        edited = data_source.get("last_edited_time", "")
        changed = known is None or known.raw is None or edited >= edited_since
        database_id = _database_of(data_source)
        title = page_title(data_source)
        found = int(ctx.index.refresh(data_source["id"], "data_source", database_id, title, data_source))
        try:
            async for rows in ctx.gateway.query_rows(data_source["id"], None if changed else edited_since):
                found += await _add_pages(ctx, rows, parent_hint=data_source["id"], replace=True)
        except ObjectProblem as error:
            ctx.index.skip(data_source["id"], f"its rows: {error.reason}", status=error.outcome)
        return found

    found = 0
    async for answer in listing.pages(1):
        found += await _per_database(ctx, answer["results"], visit)
    return _discovered(ctx, listing, found)


def _with_lag(edited_since: str) -> str:
    """An hour earlier: Notion's search can show an edit late, and one missed here stays missed
    until the next full listing. Pages listed but unchanged are still reused, so it costs little."""
    instant = datetime.strptime(edited_since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (instant - SEARCH_LAG).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def resolve_stubs(ctx: StepContext, limit: int) -> DiscoverResult:
    """Fetches objects known only by reference (child pages and databases missing from search)."""
    found = 0
    for object_id, kind, parent_id in ctx.index.stubs(limit):
        try:
            if kind == "database":
                found += await _ensure_database(ctx, object_id, parent_hint=parent_id)
            else:
                page = await ctx.gateway.page(object_id)
                found += await _add_pages(ctx, [page], parent_hint=parent_id)
        except ObjectProblem as error:
            ctx.index.skip(object_id, error.reason, status=error.outcome)
            continue
        still = ctx.index.get(object_id)
        if still is not None and still.raw is None and still.status == "pending":
            # The answer named another object (or none this index accepts): never ask again.
            ctx.index.skip(object_id, "Notion's answer for it named another object", status="failed")
    remaining = len(ctx.index.stubs(1))
    return DiscoverResult(
        next_cursor=None, discovered=found, api_requests=ctx.gateway.requests, remaining=remaining
    )


async def write_users(ctx: StepContext) -> int:
    """Lists the workspace's users into `json/users.json`; returns how many there are."""
    ctx.index.add("users", "users", None, "Users", None)
    try:
        users = await ctx.gateway.users()
    except ObjectProblem as error:
        ctx.index.skip("users", error.reason, status=error.outcome)
        return 0
    data = json.dumps({"users": users}, ensure_ascii=False, indent=2, sort_keys=True).encode()
    written = ctx.destination.write(ctx.staging_id, "json/users.json", data)
    ctx.index.place("users", written.path, "")
    ctx.index.finish("users", [written])
    return len(users)


async def _add_pages(
    ctx: StepContext, pages: list[JSON], parent_hint: str | None = None, replace: bool = False
) -> int:
    """Listed pages, recorded in one commit once their parents are known (no transaction is held
    across a request); `replace` (a changes-only listing) overwrites what the previous snapshot
    said. Returns how many were new."""
    entries = []
    for page in pages:
        if not _trashed(ctx, page):
            parent = await _parent_id(ctx, page.get("parent") or {}) or parent_hint
            entries.append((page["id"], "page", parent, page_title(page), page))
    return ctx.index.add_all(entries, replace=replace)


def _trashed(ctx: StepContext, page: JSON) -> bool:
    trashed = bool(page.get("in_trash") or page.get("archived"))
    if trashed and ctx.index.contains(page["id"]):
        ctx.index.skip(page["id"], "in trash")
    return trashed


async def _add_data_source(ctx: StepContext, data_source: JSON) -> int:
    parent = _database_of(data_source)
    added = int(ctx.index.add(data_source["id"], "data_source", parent, page_title(data_source), data_source))
    if not added:
        return 0
    try:
        async for rows in ctx.gateway.query_rows(data_source["id"]):
            added += await _add_pages(ctx, rows, parent_hint=data_source["id"])
    except ObjectProblem as error:
        # The rows listed so far stay; the table of this data source would be incomplete.
        ctx.index.skip(data_source["id"], f"its rows: {error.reason}", status=error.outcome)
    return added


def _database_of(data_source: JSON) -> str | None:
    parent = data_source.get("parent") or {}
    database_id = parent.get("database_id") if isinstance(parent, dict) else None
    return str(database_id) if database_id else None


async def _ensure_database(ctx: StepContext, database_id: str, parent_hint: str | None = None) -> int:
    known = ctx.index.get(database_id)
    if known is not None and known.raw is not None:
        return 0
    database = await ctx.gateway.database(database_id)
    parent = await _parent_id(ctx, database.get("parent") or {}) or parent_hint
    added = int(ctx.index.add(database_id, "database", parent, page_title(database), database))
    for ref in database.get("data_sources") or []:
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
            continue
        existing = ctx.index.get(ref["id"])
        if existing is None or existing.raw is None:
            try:
                data_source = await ctx.gateway.data_source(ref["id"])
            except ObjectProblem as error:
                ctx.index.add(ref["id"], "data_source", database_id, ref.get("name", ""), None)
                ctx.index.skip(ref["id"], error.reason, status=error.outcome)
                continue
            added += await _add_data_source(ctx, data_source)
    return added


async def _parent_id(ctx: StepContext, parent: JSON) -> str | None:
    """The page, database or data source an object lives under; None at the workspace root."""
    for _ in range(_MAX_BLOCK_CLIMB):
        if not isinstance(parent, dict):
            return None
        kind = parent.get("type")
        if kind in ("page_id", "database_id", "data_source_id"):
            return str(parent[kind])
        if kind != "block_id":
            return None
        try:
            block = await ctx.gateway.block(parent["block_id"])
        except ObjectProblem:
            return None
        parent = block.get("parent") or {}
    return None
