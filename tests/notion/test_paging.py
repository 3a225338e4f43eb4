"""The one cursor loop: walked whole or in parts, continued elsewhere with its guards intact."""

from __future__ import annotations

from typing import Any

from notion_sync.notion.paging import Listing

JSON = dict[str, Any]


class Pages:
    """A listing's answers by cursor (None: the first page), and the cursors asked for."""

    def __init__(self, answers: dict[str | None, JSON]) -> None:
        self.answers = answers
        self.asked: list[str | None] = []
        self.stops: list[str] = []

    async def fetch(self, cursor: str | None) -> JSON:
        self.asked.append(cursor)
        return self.answers[cursor]

    def listing(self, max_requests: int = 100, **resume: Any) -> Listing:
        return Listing(self.fetch, "the things", max_requests, self.stops.append, **resume)


def _answer(items: list[str], next_cursor: str | None) -> JSON:
    return {"results": items, "next_cursor": next_cursor, "has_more": next_cursor is not None}


CHAIN = {
    None: _answer(["a"], "c1"),
    "c1": _answer(["b"], "c2"),
    "c2": _answer(["c"], "c3"),
    "c3": _answer(["d"], None),
}


async def test_a_listing_walked_whole_reads_every_page_once() -> None:
    pages = Pages(CHAIN)
    listing = pages.listing()
    items = [item async for answer in listing.pages() for item in answer["results"]]
    assert items == ["a", "b", "c", "d"]
    assert pages.asked == [None, "c1", "c2", "c3"]
    assert listing.next_cursor is None and listing.requests == 4 and pages.stops == []


async def test_a_listing_walked_in_parts_continues_where_it_stopped() -> None:
    pages = Pages(CHAIN)
    first = pages.listing()
    assert [answer["results"] async for answer in first.pages(2)] == [["a"], ["b"]]
    assert first.next_cursor == "c2"
    # The next activity: a new listing from the cursor, with what the first one saw.
    second = pages.listing(start_cursor=first.next_cursor, seen=tuple(first.seen), requests=first.requests)
    assert [answer["results"] async for answer in second.pages(2)] == [["c"], ["d"]]
    assert second.next_cursor is None and second.requests == 4
    assert pages.asked == [None, "c1", "c2", "c3"]


async def test_a_limit_of_zero_asks_nothing_and_keeps_the_cursor() -> None:
    pages = Pages(CHAIN)
    listing = pages.listing(start_cursor="c1")
    assert [answer async for answer in listing.pages(0)] == []
    assert pages.asked == [] and listing.next_cursor == "c1"


async def test_a_cursor_seen_by_an_earlier_part_stops_the_listing() -> None:
    looping = {**CHAIN, "c2": _answer(["b again"], "c1")}
    pages = Pages(looping)
    first = pages.listing()
    [answer async for answer in first.pages(2)]
    second = pages.listing(start_cursor=first.next_cursor, seen=tuple(first.seen), requests=first.requests)
    assert [answer["results"] async for answer in second.pages()] == [["b again"]]
    assert second.next_cursor is None and second.stopped is not None
    assert pages.stops == [second.stopped] and "same cursor twice" in second.stopped


async def test_the_request_cap_counts_the_requests_of_earlier_parts() -> None:
    pages = Pages(CHAIN)
    first = pages.listing(max_requests=3)
    [answer async for answer in first.pages(2)]
    second = pages.listing(3, start_cursor=first.next_cursor, seen=tuple(first.seen), requests=first.requests)
    assert [answer["results"] async for answer in second.pages()] == [["c"]]
    assert pages.asked == [None, "c1", "c2"]
    assert pages.stops and "reached 3 requests" in pages.stops[0]


async def test_a_caller_that_leaves_early_checks_no_cursor() -> None:
    pages = Pages({None: _answer(["a"], "same"), "same": _answer(["b"], "same")})
    listing = pages.listing()
    async for _ in listing.pages():
        break
    assert pages.asked == [None] and listing.requests == 0 and pages.stops == []


async def test_an_answer_without_more_ends_the_listing_whatever_its_cursor_says() -> None:
    pages = Pages({None: {"results": ["a"], "next_cursor": "c1", "has_more": False}})
    listing = pages.listing()
    assert [answer["results"] async for answer in listing.pages()] == [["a"]]
    assert listing.next_cursor is None and pages.stops == []
