"""Creating in Notion, through the gateway's budget, client, redaction and rate-limit handling.

A create is not idempotent: sending it twice makes two copies. So a write is retried only when
Notion certainly did nothing: a 429/529 (rate limited), or a connection that never opened. A
timeout, a reset or a 5xx after the request went out may have landed or not: `WriteUnknown` says
so, and the caller looks at what is there (its recorded intent) before it sends again. A 400 is the
object's (`WriteRejected`): recorded as a loss, the restore carries on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from notion_sync import observability
from notion_sync.notion.errors import (
    NotionUnauthorized,
    NotionUnavailable,
    ObjectProblem,
    ObjectUnavailable,
)
from notion_sync.notion.gateway import JSON, NotionGateway

_RATE_LIMIT_STATUS = {429, 529}
_MAX_RATE_LIMIT_WAITS = 8
_MAX_IN_ACTIVITY_WAIT_S = 60.0
# A connection that could not be opened sent nothing: tried again this many times.
_MAX_CONNECT_ATTEMPTS = 4


class WriteUnknown(Exception):
    """A write was sent and its outcome is unknown (timeout, reset, 5xx): look before sending again."""

    def __init__(self, object_id: str, cause: str) -> None:
        super().__init__(f"{object_id}: {cause}; it may or may not have been applied")
        self.object_id = object_id


class WriteRejected(ObjectProblem):
    """A 400 to a write: Notion refused this object or block as sent (nothing was created)."""


class NotionWrites:
    """The write endpoints a restore needs, over a gateway's budget and client."""

    def __init__(self, gateway: NotionGateway) -> None:
        self.gateway = gateway
        # The gateway's own client and budget: one connection pool and one request budget per step.
        self._client = gateway._client
        self._budget = gateway._budget

    async def write(self, object_id: str, request: Callable[[], Awaitable[Any]]) -> JSON:
        """Sends one write under the budget; retries only what certainly did nothing."""
        with observability.notion_request(object_id) as seen:
            rate_limited = 0
            unopened = 0
            while True:
                waiting_since = time.monotonic()
                await self._budget.acquire(self.gateway._budget_waits)
                seen.budget_waited(time.monotonic() - waiting_since)
                self.gateway.beat()
                self.gateway.requests += 1
                try:
                    result = await request()
                except HTTPResponseError as error:
                    seen.answered(error.status)
                    rate_limited += 1
                    wait = self._classify(object_id, error, rate_limited)
                    seen.retry_after(wait)
                    await self.gateway._wait(wait, {"waiting": "rate limit", "status": error.status})
                    continue
                except (RequestTimeoutError, httpx.TimeoutException) as error:
                    seen.answered(type(error).__name__)
                    if isinstance(error, httpx.ConnectTimeout) and unopened < _MAX_CONNECT_ATTEMPTS:
                        unopened += 1
                        await asyncio.sleep(0.5 * unopened)
                        continue
                    raise WriteUnknown(object_id, f"no answer within {self.gateway.timeout_s:g} s") from None
                except httpx.TransportError as error:
                    seen.answered(type(error).__name__)
                    if isinstance(error, httpx.ConnectError) and unopened < _MAX_CONNECT_ATTEMPTS:
                        unopened += 1
                        await asyncio.sleep(0.5 * unopened)
                        continue
                    raise WriteUnknown(object_id, f"network error: {type(error).__name__}") from None
                if not isinstance(result, dict) or not isinstance(result.get("object"), str):
                    # Something answered 2xx: the write happened, but its answer is unusable.
                    raise WriteUnknown(object_id, "a malformed answer")
                seen.answered(200)
                result.pop("request_id", None)
                return result

    def _classify(self, object_id: str, error: HTTPResponseError, rate_limited: int) -> float:
        """The wait before sending again (a rate limit), or the error that ends this write."""
        status = error.status
        said = self.gateway.redact(str(error))
        if status == 401:
            raise NotionUnauthorized(
                "Notion rejected the integration token (401 unauthorized): check NOTION_TOKEN."
            ) from None
        if status in _RATE_LIMIT_STATUS:
            asked = _retry_after(error.headers)
            wait = min(asked, self.gateway.limits.max_retry_after_s)
            self._budget.block_for(wait)
            if rate_limited > _MAX_RATE_LIMIT_WAITS or wait > _MAX_IN_ACTIVITY_WAIT_S:
                raise NotionUnavailable(f"rate limited ({status}) writing", retry_after_s=wait) from None
            return wait
        if status in (403, 404):
            raise ObjectUnavailable(object_id, status, str(error.code), said) from None
        if status >= 500 or status == 409:
            raise WriteUnknown(object_id, f"Notion answered {status}") from None
        raise WriteRejected(object_id, f"Notion rejected it ({status}: {said})") from None

    # --- endpoints ------------------------------------------------------------------------------

    async def create_page(self, body: JSON) -> JSON:
        return await self.write(_parent_of(body), lambda: self._client.pages.create(**body))

    async def update_page(self, page_id: str, body: JSON) -> JSON:
        return await self.write(page_id, lambda: self._client.pages.update(page_id=page_id, **body))

    async def append_children(self, block_id: str, children: list[JSON], after: str | None) -> JSON:
        """Appends under `block_id`, after block `after` (None: at the start)."""
        position: JSON = {"type": "start"}
        if after is not None:
            position = {"type": "after_block", "after_block": {"id": after}}
        try:
            return await self.write(
                block_id,
                lambda: self._client.blocks.children.append(
                    block_id=block_id, children=children, position=position
                ),
            )
        except ObjectUnavailable as missing:
            if block_id in missing.message or block_id.replace("-", "") in missing.message:
                raise
            # Not the parent: a page or database the blocks name (a mention, a link) is not there.
            raise WriteRejected(
                block_id, f"it names an object Notion cannot find ({missing.message})"
            ) from None

    async def trash_block(self, block_id: str) -> JSON:
        """Moves a block, page or database to the trash (the undo of a restore)."""
        return await self.write(block_id, lambda: self._client.blocks.delete(block_id=block_id))

    async def create_database(self, body: JSON) -> JSON:
        return await self.write(_parent_of(body), lambda: self._client.databases.create(**body))

    async def create_data_source(self, body: JSON) -> JSON:
        return await self.write(_parent_of(body), lambda: self._client.data_sources.create(**body))

    async def update_data_source(self, data_source_id: str, body: JSON) -> JSON:
        return await self.write(
            data_source_id,
            lambda: self._client.data_sources.update(data_source_id=data_source_id, **body),
        )

    async def create_comment(self, page_id: str, rich_text: list[JSON]) -> JSON:
        return await self.write(
            page_id, lambda: self._client.comments.create(parent={"page_id": page_id}, rich_text=rich_text)
        )

    async def upload_file(self, path: Path, name: str, object_id: str) -> str:
        """Uploads one local file (single part) for `object_id` (the page it belongs to: a file's
        name never names the write in traces or history); returns the upload's id. An upload lost in
        flight only leaves an unattached upload, which Notion expires: safe to send again."""
        created = await self.write(object_id, lambda: self._client.file_uploads.create(filename=name))
        upload_id = str(created["id"])
        data = path.read_bytes()
        await self.write(
            object_id, lambda: self._client.file_uploads.send(file_upload_id=upload_id, file=(name, data))
        )
        return upload_id

    async def query_data_source(self, data_source_id: str, body: JSON) -> JSON:
        """One page of a data source query (a read, for finding what a lost create made)."""
        return await self.gateway.call(
            data_source_id,
            lambda: self._client.data_sources.query(data_source_id=data_source_id, **body),
            expect="listed_objects",
        )


def _parent_of(body: JSON) -> str:
    parent = body.get("parent") or {}
    for key in ("page_id", "data_source_id", "database_id", "block_id"):
        if parent.get(key):
            return str(parent[key])
    return "workspace"


def _retry_after(headers: httpx.Headers) -> float:
    try:
        value = float(headers.get("retry-after", "1"))
    except ValueError:
        return 1.0
    return value if value >= 1.0 else 1.0
