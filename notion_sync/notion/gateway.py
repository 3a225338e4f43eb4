"""The one way activities talk to Notion: budgeted, counted, retried, classified, bounded.

`notion-client` is built with `retry=False`: retries of single requests live here (so one 429
does not throw away a whole batch) and Temporal retries the activity when these give up. The two
never stack.

Whatever a server says is untrusted: every text taken from an answer is redacted (the token this
gateway holds, registered secrets, token shapes) before it becomes an exception message, and so
before it reaches a problem entry, a report, a log line or Temporal's history. Every retry is
bounded, every listing ends (a repeated cursor or `max_listing_requests` stops it, recorded as a
problem of the object listed), and what the gateway is waiting for is sent with the activity's
heartbeats (`control.activity_status` reads it back).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, Literal

import aiohttp
import httpx
from notion_client import AsyncClient
from notion_client.client import ClientOptions
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from notion_sync import observability
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.errors import (
    MalformedAnswer,
    NotionRejected,
    NotionUnauthorized,
    NotionUnavailable,
    ObjectMalformed,
    ObjectRejected,
    ObjectUnavailable,
    ObjectUnreachable,
)
from notion_sync.notion.paging import Listing, from_cursor
from notion_sync.notion.transport import NotionHttpClient

NOTION_VERSION = "2025-09-03"
PAGE_SIZE = 100
# Notion stops a data source query at 10,000 rows; the rest is read in created_time windows.
QUERY_ROW_CAP = 10_000
_TRANSIENT_STATUS = {409, 500, 502, 503, 504}
_RATE_LIMIT_STATUS = {429, 529}
_MAX_TRANSIENT_ATTEMPTS = 6
_MAX_RATE_LIMIT_WAITS = 8
_STEP_ATTEMPTS_BEFORE_OBJECT_FAILS = 3
# Longer waits are handed to Temporal as the activity's next retry delay.
_MAX_IN_ACTIVITY_WAIT_S = 60.0
# Heartbeats carry the gateway's notices; Temporal throttles them further (every 2 s at most).
_BEAT_INTERVAL_S = 0.5
_WAIT_SLICE_S = 5.0
# Longer than Temporal's heartbeat throttle (2 s in worker.py), so the newest heartbeat still has it.
_NOTICE_LINGERS_S = 5.0
# A wait for the shared budget this long is shown as a wait on the rate limit.
_NOTABLE_BUDGET_WAIT_S = 2.0

JSON = dict[str, Any]
Expect = Literal["object", "list", "listed_objects", "property"]
log = logging.getLogger(__name__)

# notion-client logs each failed request at WARNING with the server's message (which may echo the
# token): it gets a logger of its own that stays quiet below ERROR, and masks secrets regardless.
_SDK_LOG = logging.getLogger("notion_sync.notion.sdk")
_SDK_LOG.addFilter(observability.RedactingFilter())
logging.getLogger("notion_client").addFilter(observability.RedactingFilter())


@dataclass(frozen=True)
class Limits:
    """The bounds a gateway keeps (from settings: NOTION_SYNC_MAX_LISTING_REQUESTS, ...)."""

    max_listing_requests: int = 100_000
    max_retry_after_s: float = 300.0
    object_attempts: int = 3


class NotionGateway:
    """Budgeted access to the Notion endpoints an export needs."""

    def __init__(
        self,
        token: str,
        base_url: str,
        budget: RequestBudget,
        session: aiohttp.ClientSession,
        timeout_s: float = 30.0,
        heartbeat: Callable[..., None] | None = None,
        limits: Limits | None = None,
        step_attempt: int = 1,
    ) -> None:
        options = ClientOptions(
            auth=token,
            base_url=base_url,
            timeout_ms=int(timeout_s * 1000),
            notion_version=NOTION_VERSION,
            retry=False,
            logger=_SDK_LOG,
            log_level=logging.ERROR,
        )
        self._client = AsyncClient(options, client=NotionHttpClient(session))
        self._budget = budget
        self._token = token
        observability.register_secret(token)
        self._heartbeat: Callable[..., None] = heartbeat or (lambda *details: None)
        self._last_beat = -math.inf
        self._notices: dict[int, JSON] = {}
        self._notice_ids = itertools.count()
        self._recent: tuple[JSON | None, float] = (None, 0.0)
        self.timeout_s = timeout_s
        # Temporal's attempt at the step this gateway serves (5xx for one object fail it from the third).
        self.step_attempt = step_attempt
        self.limits = limits or Limits()
        self.requests = 0
        # Answers that show Notion is serving this token (any usable answer, 403/404 included).
        self._answers = 0
        # Where problems of listings go (the step's index); a warning when there is none.
        self.on_problem: Callable[[str, str, str], None] = _log_problem

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- what the activity is doing, for its heartbeats ---------------------------------------

    def beat(self, force: bool = False) -> None:
        """Heartbeats (at most every half second unless forced) with the current notice, if any."""
        now = time.monotonic()
        if not force and now - self._last_beat < _BEAT_INTERVAL_S:
            return
        self._last_beat = now
        notice = self.notice()
        if notice is None:
            self._heartbeat()
        else:
            self._heartbeat(notice)

    def notice(self) -> JSON | None:
        """What holds the activity up now: the latest rate-limit wait, else the most-tried retry.

        A notice stays a few seconds after its wait ends: Temporal sends the newest heartbeat of
        each 2-second window, and a bare heartbeat right after the wait would hide it. Readers
        ignore a notice whose `until` has passed.
        """
        if not self._notices:
            recent, expires = self._recent
            return recent if recent is not None and time.monotonic() < expires else None
        waits = [n for n in self._notices.values() if "waiting" in n]
        if waits:
            return max(waits, key=lambda n: n["until"])
        return max(self._notices.values(), key=lambda n: n["attempt"])

    async def _wait(self, seconds: float, notice: JSON) -> None:
        key = next(self._notice_ids)
        self._notices[key] = shown = {**notice, "until": round(time.time() + seconds, 1)}
        self.beat(force=True)
        try:
            # In slices, heartbeating: a wait may outlast the activity's heartbeat timeout (30 s).
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(left, _WAIT_SLICE_S))
                self.beat(force=True)
        finally:
            del self._notices[key]
            self._recent = (shown, time.monotonic() + _NOTICE_LINGERS_S)

    def _budget_waits(self, seconds: float) -> None:
        if seconds >= _NOTABLE_BUDGET_WAIT_S:
            shown = {"waiting": "rate limit", "until": round(time.time() + seconds, 1)}
            self._recent = (shown, time.monotonic() + _NOTICE_LINGERS_S)
            self.beat(force=True)
        else:
            self.beat()

    # --- problems and secrets -----------------------------------------------------------------

    def problem(self, object_id: str, kind: str, reason: str) -> None:
        self.on_problem(object_id, kind, self.redact(reason))

    def redact(self, text: str) -> str:
        """Server text made safe to keep: the token (in any form) and token shapes masked."""
        return observability.redact(text.replace(self._token, observability.REDACTED))

    # --- requests -------------------------------------------------------------------------------

    async def call(
        self,
        object_id: str,
        request: Callable[[], Awaitable[Any]],
        expect: Expect = "object",
        per_object: bool = True,
    ) -> JSON:
        """Runs one API request under the budget, retrying what is worth retrying.

        `per_object`: the request reads one object (a page, a block's children...), so an answer
        that stays malformed, a 400, or a request that keeps failing while Notion answers others,
        fails that object only (an `ObjectProblem`). Listings of the workspace (search) are not:
        those failures fail the step, retried by Temporal.
        """
        # One span and the metrics of every attempt (observability.notion_request).
        with observability.notion_request(object_id) as seen:
            return await self._call(object_id, request, seen, expect, per_object)

    async def _call(
        self,
        object_id: str,
        request: Callable[[], Awaitable[Any]],
        seen: observability.NotionRequest,
        expect: Expect,
        per_object: bool,
    ) -> JSON:
        transient = 0
        slow = 0
        malformed = 0
        rate_limited = 0
        answers_before = self._answers
        # Once Notion is seen answering others during its last attempt (or a probe), an object whose
        # attempts ran out gets one more: they may all have fallen in an outage that ended meanwhile.
        confirming = 0
        while True:
            waiting_since = time.monotonic()
            await self._budget.acquire(self._budget_waits)
            seen.budget_waited(time.monotonic() - waiting_since)
            self.beat()
            attempt_answers = self._answers
            self.requests += 1
            try:
                result = await request()
                _check(result, expect)
                seen.answered(200)
                self._answers += 1
                # Per-response metadata, not part of the object: it would make every export differ.
                result.pop("request_id", None)
                return result  # type: ignore[no-any-return]
            except HTTPResponseError as error:
                status = error.status
                seen.answered(status)
                code = self.redact(_code(error))
                if status == 401:
                    raise NotionUnauthorized(
                        "Notion rejected the integration token (401 unauthorized): check NOTION_TOKEN "
                        "and that the integration still exists."
                    ) from None
                if status in (403, 404):
                    self._answers += 1
                    raise ObjectUnavailable(object_id, status, code, self.redact(str(error))) from None
                if status in _RATE_LIMIT_STATUS:
                    rate_limited += 1
                    asked = _retry_after(error.headers)
                    wait = min(asked, self.limits.max_retry_after_s)
                    self._budget.block_for(wait)
                    if rate_limited > _MAX_RATE_LIMIT_WAITS or wait > _MAX_IN_ACTIVITY_WAIT_S:
                        raise NotionUnavailable(
                            f"rate limited ({status}): Notion asked to wait {asked:.0f} s{_cut(asked, wait)}",
                            retry_after_s=wait,
                        ) from None
                    seen.retry_after(wait)
                    await self._wait(wait, {"waiting": "rate limit", "status": status})
                    continue
                if status not in _TRANSIENT_STATUS and status < 500:
                    what = f"{status} {code}: {self.redact(str(error))}"
                    if per_object:
                        self._answers += 1
                        raise ObjectRejected(object_id, f"Notion rejected the request ({what})") from None
                    raise NotionRejected(f"Notion rejected a request for {object_id}: {what}") from None
                transient += 1
                cause = f"Notion answered {status} {code}"
            except (RequestTimeoutError, httpx.TimeoutException) as error:
                seen.answered(type(error).__name__)
                slow += 1
                cause = f"no answer within {self.timeout_s:g} s"
            except httpx.TransportError as error:
                seen.answered(type(error).__name__)
                transient += 1
                cause = f"network error: {type(error).__name__}"
            except MalformedAnswer as error:
                seen.answered("malformed")
                malformed += 1
                cause = f"malformed answer: {self.redact(str(error))}"
            attempts = transient + slow + malformed
            if malformed >= self.limits.object_attempts:
                raise await self._give_up(
                    object_id, cause, attempts, per_object, answers_before, ObjectMalformed
                )
            if slow >= self.limits.object_attempts + confirming:
                # Answers counted from the last attempt's start: ones from before an outage began
                # say nothing about this object.
                # Asked once: a second probe could catch the end of an outage the first one saw.
                answering = per_object and await self._answering(attempt_answers)
                if answering and not confirming:
                    confirming = 1
                else:
                    raise await self._give_up(
                        object_id, cause, attempts, answering, attempt_answers, ObjectUnreachable
                    )
            if transient >= _MAX_TRANSIENT_ATTEMPTS:
                # A 5xx storm is usually Notion's, and passes: the step is retried by Temporal (with
                # backoff) first; from its third attempt one object that still fails fails alone.
                alone = per_object and self.step_attempt >= _STEP_ATTEMPTS_BEFORE_OBJECT_FAILS
                raise await self._give_up(
                    object_id, cause, attempts, alone, answers_before, ObjectUnreachable
                )
            await self._wait(
                _backoff(attempts), {"retrying": cause, "attempt": attempts + 1, "object": object_id}
            )

    async def _give_up(
        self,
        object_id: str,
        cause: str,
        attempts: int,
        per_object: bool,
        answers_before: int,
        failure: type[ObjectMalformed] | type[ObjectUnreachable],
    ) -> Exception:
        """The error that ends a request whose retries ran out: that object's failure when Notion
        serves other requests meanwhile (or answers a probe), else a failure of the whole step."""
        if per_object and (self._answers > answers_before or await self._answers_probe()):
            if failure is ObjectMalformed:
                return ObjectMalformed(object_id, f"{cause} ({attempts} attempts)")
            return ObjectUnreachable(
                object_id, f"{cause} ({attempts} attempts) while Notion answered other requests"
            )
        return NotionUnavailable(f"{cause} ({attempts} attempts, reading {object_id})")

    async def _answering(self, answers_before: int) -> bool:
        """Whether Notion answered other requests since `answers_before`, or answers a probe now."""
        return self._answers > answers_before or await self._answers_probe()

    async def _answers_probe(self) -> bool:
        """One cheap request (the token's own user): does Notion answer at all right now?"""
        await self._budget.acquire(self._budget_waits)
        self.requests += 1
        try:
            _check(await self._client.users.me(), "object")
        except Exception:  # any failure at all means "not answering"
            return False
        self._answers += 1
        return True

    # --- endpoints ------------------------------------------------------------------------------

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
        return await self.call(
            "search", lambda: self._client.search(**body), expect="listed_objects", per_object=False
        )

    async def me(self) -> JSON:
        """The token's bot user: who this credential is, and in which workspace."""
        return await self.call("users/me", self._client.users.me, per_object=False)

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

    def listing(
        self,
        object_id: str,
        what: str,
        fetch: Callable[[str | None], Awaitable[JSON]],
        start_cursor: str | None = None,
        seen: tuple[str, ...] = (),
        requests: int = 0,
    ) -> Listing:
        """A listing of `what` whose early stop (a repeated cursor, the request cap) is recorded as a
        problem of `object_id`."""
        return Listing(
            fetch,
            what,
            self.limits.max_listing_requests,
            partial(self.problem, object_id, "listing"),
            start_cursor,
            seen,
            requests,
        )

    async def children(self, block_id: str, problem_of: str | None = None) -> AsyncGenerator[JSON, None]:
        """Every direct child of a page or block, across cursor pages (a stopped listing is recorded
        as a problem of `problem_of`, by default the block)."""
        children = partial(self._client.blocks.children.list, block_id=block_id, page_size=PAGE_SIZE)
        listing = self.listing(
            problem_of or block_id,
            f"the children of block {block_id}",
            self._pager(block_id, children, "listed_objects"),
        )
        async for answer in listing.pages():
            for block in answer["results"]:
                yield block

    async def query_rows(
        self, data_source_id: str, edited_since: str | None = None
    ) -> AsyncIterator[list[JSON]]:
        """Every row of a data source (edited at or after `edited_since`), past the 10,000-row cap of one
        query, a response's rows at a time."""
        edited: JSON | None = None
        if edited_since:
            edited = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": edited_since}}
        window_start: str | None = None
        # One listing across windows: its request cap counts them all.
        requests = 0
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
            query = partial(self._client.data_sources.query, **body)
            listing = self.listing(
                data_source_id,
                f"the rows of data source {data_source_id}",
                self._pager(data_source_id, query, "listed_objects"),
                requests=requests,
            )
            seen = 0
            last_created: str | None = None
            async for answer in listing.pages():
                rows: list[JSON] = answer["results"]
                if rows:
                    seen += len(rows)
                    last_created = rows[-1].get("created_time")
                    yield rows
            requests = listing.requests
            if listing.stopped:
                return
            capped = seen >= QUERY_ROW_CAP
            if not capped or last_created is None or last_created == window_start:
                return
            # Rows created in the same minute as the window start repeat; callers dedupe by id.
            window_start = last_created

    async def property_items(self, page_id: str, property_id: str) -> list[JSON]:
        """All items of a paginated property (relation, people, title, rich_text)."""
        retrieve = partial(
            self._client.pages.properties.retrieve,
            page_id=page_id,
            property_id=property_id,
            page_size=PAGE_SIZE,
        )
        listing = self.listing(
            page_id,
            f"the items of property {property_id!r} of page {page_id}",
            self._pager(page_id, retrieve, "property"),
        )
        items: list[JSON] = []
        async for answer in listing.pages():
            if answer.get("object") != "list":
                # A property with one value answers with that value, not a list.
                return [answer]
            items.extend(answer["results"])
        return items

    async def comments(self, block_id: str) -> list[JSON]:
        return await self._collect(
            block_id, f"the comments of {block_id}", partial(self._client.comments.list, block_id=block_id)
        )

    async def users(self) -> list[JSON]:
        return await self._collect("users", "the users", self._client.users.list)

    async def _collect(
        self, object_id: str, what: str, endpoint: Callable[..., Awaitable[Any]]
    ) -> list[JSON]:
        """Every item of a plain listing (no filter, no sort), in one list."""
        listing = self.listing(
            object_id, what, self._pager(object_id, partial(endpoint, page_size=PAGE_SIZE), "list")
        )
        return [item async for answer in listing.pages() for item in answer["results"]]

    def _pager(
        self, object_id: str, endpoint: Callable[..., Awaitable[Any]], expect: Expect
    ) -> Callable[[str | None], Awaitable[JSON]]:
        """Reads the page of a listing about `object_id` at a cursor, from `endpoint` with its other
        parameters bound."""

        async def page_at(cursor: str | None) -> JSON:
            return await self.call(object_id, partial(endpoint, **from_cursor(cursor)), expect=expect)

        return page_at


def _check(answer: Any, expect: Expect) -> None:
    """Raises MalformedAnswer unless `answer` has the shape the code reading it relies on."""
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"the answer is JSON but not an object ({type(answer).__name__})")
    if expect == "object" or (expect == "property" and answer.get("object") != "list"):
        if not isinstance(answer.get("object"), str):
            raise MalformedAnswer('the answer has no "object" field')
        return
    results = answer.get("results")
    if not isinstance(results, list):
        raise MalformedAnswer(f'"results" is {type(results).__name__ if results is not None else "null"}')
    cursor = answer.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedAnswer('"next_cursor" is not a string')
    for item in results:
        if not isinstance(item, dict):
            raise MalformedAnswer('"results" holds something other than objects')
        if expect == "listed_objects" and not isinstance(item.get("id"), str):
            raise MalformedAnswer('an item of "results" has no "id"')


def _code(error: HTTPResponseError) -> str:
    """Notion's error code as it sends it ("object_not_found"), not as the client's enum prints."""
    code = error.code
    return str(code.value) if isinstance(code, Enum) else str(code)


def _log_problem(object_id: str, kind: str, reason: str) -> None:
    log.warning("%s (%s): %s", object_id, kind, reason)


def _cut(asked: float, wait: float) -> str:
    return f", cut to {wait:.0f} s (NOTION_SYNC_MAX_RETRY_AFTER)" if wait < asked else ""


def _retry_after(headers: httpx.Headers) -> float:
    """The server's Retry-After in seconds (at least 1; it may be huge: the caller caps it)."""
    try:
        value = float(headers.get("retry-after", "1"))
    except ValueError:
        return 1.0
    return 1.0 if math.isnan(value) else max(1.0, value)


def _backoff(attempt: int) -> float:
    return float(min(10.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))
