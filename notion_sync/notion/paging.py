"""Paging, written once: every cursor-paged Notion listing walks its cursors through `Listing`.

Like notion-client's `async_iterate_paginated_api`, it asks for a page of results, hands it over,
and reads `has_more` / `next_cursor` once the caller asks for the next one; it is an async iterator
rather than a generator, so a caller may leave it early with nothing left to close. It also keeps our
guards: a cursor Notion gives twice, or more than `max_requests` requests, ends the listing, and the
reason is recorded as a problem of the object listed. (A `next_cursor` that is not a string never
gets here: the gateway treats that answer as malformed.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

JSON = dict[str, Any]


class Listing:
    """The pages of one listing, from `next_cursor` on.

    `fetch` asks Notion for the page at a cursor (None: the first page). A listing may be walked in
    parts: `pages(limit)` stops after `limit` pages, and once it has ended by itself `next_cursor`
    says where to continue (None when the listing is over or stopped). `seen` (digests of the
    cursors given, oldest first) and `requests` let a listing continue across activities with its
    guards intact (the search, see `exporter/discover.py`).
    """

    def __init__(
        self,
        fetch: Callable[[str | None], Awaitable[JSON]],
        what: str,
        max_requests: int,
        on_stop: Callable[[str], None],
        start_cursor: str | None = None,
        seen: tuple[str, ...] = (),
        requests: int = 0,
    ) -> None:
        self._fetch = fetch
        self._what = what
        self._max_requests = max_requests
        self._on_stop = on_stop
        self.next_cursor = start_cursor
        self.seen = list(seen)
        self._known = set(seen)
        self.requests = requests
        self._over = False
        self.stopped: str | None = None
        self._left: int | None = None
        # The answer handed out last, whose cursor is read when the next one is asked for.
        self._handed: JSON | None = None

    def pages(self, limit: int | None = None) -> Listing:
        """Iterates over Notion's answers from `next_cursor` on, one per request, at most `limit`."""
        self._left = limit
        return self

    def __aiter__(self) -> Listing:
        return self

    async def __anext__(self) -> JSON:
        if self._handed is not None:
            # Read only now that the caller is done with that answer, as notion-client reads it after
            # its `yield`: a caller that leaves early has not asked for more, so nothing is checked.
            self.next_cursor = self._cursor_after(self._handed)
            self._handed = None
            self._over = self.next_cursor is None
        if self._over or self._left == 0:
            raise StopAsyncIteration
        answer = await self._fetch(self.next_cursor)
        if self._left is not None:
            self._left -= 1
        self._handed = answer
        return answer

    def _cursor_after(self, answer: JSON) -> str | None:
        """The cursor to ask for next, or None when the listing is over (or must stop)."""
        self.requests += 1
        cursor = answer.get("next_cursor")
        if not answer.get("has_more") or not cursor:
            return None
        digest = hashlib.sha256(str(cursor).encode()).hexdigest()[:12]
        if digest in self._known:
            self._stop(
                f"Notion gave the same cursor twice while listing {self._what} ({self.requests} requests): "
                "the listing stopped there, later items are missing"
            )
            return None
        if self.requests >= self._max_requests:
            self._stop(
                f"listing {self._what} reached {self._max_requests} requests "
                "(NOTION_SYNC_MAX_LISTING_REQUESTS): the listing stopped there, later items are missing"
            )
            return None
        self._known.add(digest)
        self.seen.append(digest)
        return str(cursor)

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        self._on_stop(reason)


def from_cursor(cursor: str | None) -> JSON:
    """The `start_cursor` parameter of a request, absent for the first page."""
    return {"start_cursor": cursor} if cursor else {}
