"""The one way activities talk to Notion: budgeted, counted, retried, classified.

`notion-client` is built with `retry=False`: retries of single requests live here (so one 429
does not throw away a whole batch) and Temporal retries the activity when these give up. The two
never stack.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import httpx
from notion_client import AsyncClient
from notion_client.client import ClientOptions
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from notion_sync import observability
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.errors import (
    NotionRejected,
    NotionUnauthorized,
    NotionUnavailable,
    ObjectUnavailable,
)
from notion_sync.notion.transport import NotionHttpClient

NOTION_VERSION = "2025-09-03"
PAGE_SIZE = 100
# Notion stops a data source query at 10,000 rows; the rest is read in created_time windows.
QUERY_ROW_CAP = 10_000
_TRANSIENT_STATUS = {409, 500, 502, 503, 504}
_RATE_LIMIT_STATUS = {429, 529}
_MAX_TRANSIENT_ATTEMPTS = 6
_MAX_RATE_LIMIT_WAITS = 8
# Longer waits are handed to Temporal as the activity's next retry delay.
_MAX_IN_ACTIVITY_WAIT_S = 60.0

JSON = dict[str, Any]


class NotionGateway:
    """Budgeted access to the Notion endpoints an export needs."""

    def __init__(
        self,
        token: str,
        base_url: str,
        budget: RequestBudget,
        session: aiohttp.ClientSession,
        timeout_s: float = 30.0,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        options = ClientOptions(
            auth=token,
            base_url=base_url,
            timeout_ms=int(timeout_s * 1000),
            notion_version=NOTION_VERSION,
            retry=False,
        )
        self._client = AsyncClient(options, client=NotionHttpClient(session))
        self._budget = budget
        self._on_request = on_request or (lambda: None)
        self.requests = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, object_id: str, request: Callable[[], Awaitable[Any]]) -> JSON:
        """Runs one API request under the budget, retrying what is worth retrying."""
        # One span and the metrics of every attempt (observability.notion_request); behaviour unchanged.
        with observability.notion_request(object_id) as seen:
            return await self._call(object_id, request, seen)

    async def _call(
        self, object_id: str, request: Callable[[], Awaitable[Any]], seen: observability.NotionRequest
    ) -> JSON:
        transient = 0
        rate_limited = 0
        while True:
            waiting_since = time.monotonic()
            await self._budget.acquire(self._on_request)
            seen.budget_waited(time.monotonic() - waiting_since)
            self._on_request()
            self.requests += 1
            try:
                result: JSON = await request()
                seen.answered(200)
                # Per-response metadata, not part of the object: it would make every export differ.
                result.pop("request_id", None)
                return result
            except HTTPResponseError as error:
                status = error.status
                seen.answered(status)
                if status == 401:
                    raise NotionUnauthorized(
                        "Notion rejected the integration token (401 unauthorized): check NOTION_TOKEN "
                        "and that the integration still exists."
                    ) from None
                if status in (403, 404):
                    raise ObjectUnavailable(object_id, status, str(error.code), str(error)) from None
                if status in _RATE_LIMIT_STATUS:
                    rate_limited += 1
                    wait = _retry_after(error.headers)
                    self._budget.block_for(wait)
                    if rate_limited > _MAX_RATE_LIMIT_WAITS or wait > _MAX_IN_ACTIVITY_WAIT_S:
                        raise NotionUnavailable(f"rate limited ({status})", retry_after_s=wait) from None
                    seen.retry_after(wait)
                    await asyncio.sleep(wait)
                    continue
                if status in _TRANSIENT_STATUS or status >= 500:
                    transient += 1
                    if transient >= _MAX_TRANSIENT_ATTEMPTS:
                        raise NotionUnavailable(f"Notion answered {status} {error.code}") from None
                    await asyncio.sleep(_backoff(transient))
                    continue
                raise NotionRejected(f"Notion rejected a request for {object_id}: {status} {error}") from None
            except (RequestTimeoutError, httpx.TransportError) as error:
                seen.answered(type(error).__name__)
                transient += 1
                if transient >= _MAX_TRANSIENT_ATTEMPTS:
                    raise NotionUnavailable(f"network error: {type(error).__name__}") from None
                await asyncio.sleep(_backoff(transient))

    async def search(self, kind: str, cursor: str | None, newest_first: bool = False) -> JSON:
        body: JSON = {
            "filter": {"property": "object", "value": kind},
            "sort": {
                "timestamp": "last_edited_time",
                "direction": "descending" if newest_first else "ascending",
            },
            "page_size": PAGE_SIZE,
        }
        if cursor:
            body["start_cursor"] = cursor
        return await self.call("search", lambda: self._client.search(**body))

    async def me(self) -> JSON:
        """The token's bot user: who this credential is, and in which workspace."""
        return await self.call("users/me", self._client.users.me)

    async def page(self, page_id: str) -> JSON:
        return await self.call(page_id, lambda: self._client.pages.retrieve(page_id=page_id))

    async def block(self, block_id: str) -> JSON:
        return await self.call(block_id, lambda: self._client.blocks.retrieve(block_id=block_id))

    async def database(self, database_id: str) -> JSON:
        return await self.call(database_id, lambda: self._client.databases.retrieve(database_id=database_id))

    async def data_source(self, data_source_id: str) -> JSON:
        return await self.call(
            data_source_id, lambda: self._client.data_sources.retrieve(data_source_id=data_source_id)
        )

    async def children(self, block_id: str) -> AsyncIterator[JSON]:
        """Every direct child of a page or block, across cursor pages."""
        cursor: str | None = None
        while True:
            params: JSON = {"block_id": block_id, "page_size": PAGE_SIZE}
            if cursor:
                params["start_cursor"] = cursor
            page = await self.call(block_id, partial(self._client.blocks.children.list, **params))
            for block in page["results"]:
                yield block
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return

    async def query_rows(
        self, data_source_id: str, edited_since: str | None = None
    ) -> AsyncIterator[list[JSON]]:
        """Every row of a data source (edited at or after `edited_since`), past the 10,000-row cap of one
        query, a response's rows at a time."""
        edited: JSON | None = None
        if edited_since:
            edited = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": edited_since}}
        window_start: str | None = None
        while True:
            seen = 0
            last_created: str | None = None
            cursor: str | None = None
            while True:
                body: JSON = {
                    "data_source_id": data_source_id,
                    "page_size": PAGE_SIZE,
                    "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
                }
                window: JSON | None = None
                if window_start:
                    window = {"timestamp": "created_time", "created_time": {"on_or_after": window_start}}
                if window and edited:
                    body["filter"] = {"and": [window, edited]}
                elif window or edited:
                    body["filter"] = window or edited
                if cursor:
                    body["start_cursor"] = cursor
                page = await self.call(data_source_id, partial(self._client.data_sources.query, **body))
                rows: list[JSON] = page["results"]
                if rows:
                    seen += len(rows)
                    last_created = rows[-1].get("created_time")
                    yield rows
                cursor = page.get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
            capped = seen >= QUERY_ROW_CAP
            if not capped or last_created is None or last_created == window_start:
                return
            # Rows created in the same minute as the window start repeat; callers dedupe by id.
            window_start = last_created

    async def property_items(self, page_id: str, property_id: str) -> list[JSON]:
        """All items of a paginated property (relation, people, title, rich_text)."""
        items: list[JSON] = []
        cursor: str | None = None
        while True:
            params: JSON = {"page_id": page_id, "property_id": property_id, "page_size": PAGE_SIZE}
            if cursor:
                params["start_cursor"] = cursor
            page = await self.call(page_id, partial(self._client.pages.properties.retrieve, **params))
            if page.get("object") != "list":
                return [page]
            items.extend(page["results"])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return items

    async def comments(self, block_id: str) -> list[JSON]:
        return await self._collect(block_id, lambda p: self._client.comments.list(block_id=block_id, **p))

    async def users(self) -> list[JSON]:
        return await self._collect("users", lambda p: self._client.users.list(**p))

    async def _collect(self, object_id: str, fetch: Callable[[JSON], Awaitable[Any]]) -> list[JSON]:
        results: list[JSON] = []
        cursor: str | None = None
        while True:
            params: JSON = {"page_size": PAGE_SIZE}
            if cursor:
                params["start_cursor"] = cursor
            page = await self.call(object_id, partial(fetch, params))
            results.extend(page["results"])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return results


def _retry_after(headers: httpx.Headers) -> float:
    try:
        return max(1.0, float(headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _backoff(attempt: int) -> float:
    return float(min(10.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))
