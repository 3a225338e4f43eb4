"""How the gateway classifies what a server answers, against a stand-in scripted per test: what fails
at once, what skips one object, what waits, what backs off and then fails, and how many requests each
costs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from notion_sync.notion import gateway as gateway_module
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.errors import (
    NotionRejected,
    NotionUnauthorized,
    NotionUnavailable,
    ObjectMalformed,
    ObjectRejected,
    ObjectUnavailable,
    ObjectUnreachable,
)
from notion_sync.notion.gateway import Limits, NotionGateway
from notion_sync.notion.transport import open_session
from tests.notion.server import (
    ScriptedNotion,
    answer,
    error,
    listed,
    not_json,
    page,
    reset,
    scripted_notion,
    silence,
)

PAGE_ID = "59833787-2cf9-4fdf-8782-e53db20768a5"
PAGE_PATH = f"/v1/pages/{PAGE_ID}"
ME_PATH = "/v1/users/me"
SEARCH_PATH = "/v1/search"
TIMEOUT_S = 0.2


class RecordingBudget(RequestBudget):
    """An unlimited budget that keeps what a 429 asked of every sharer."""

    def __init__(self) -> None:
        super().__init__(None, 0, 1)
        self.blocks: list[float] = []

    def block_for(self, seconds: float) -> None:
        self.blocks.append(seconds)


class Scene:
    """A gateway in front of a scripted server, with what it told its activity and its index."""

    def __init__(
        self, notion: ScriptedNotion, budget: RecordingBudget, limits: Limits, step_attempt: int
    ) -> None:
        self.notion = notion
        self.budget = budget
        self.heartbeats: list[tuple[Any, ...]] = []
        self.problems: list[tuple[str, str, str]] = []
        self.session = open_session(TIMEOUT_S)
        self.gateway = NotionGateway(
            "secret-test-token",
            notion.base_url,
            budget,
            self.session,
            timeout_s=TIMEOUT_S,
            heartbeat=lambda *details: self.heartbeats.append(details),
            limits=limits,
            step_attempt=step_attempt,
        )
        self.gateway.on_problem = lambda *problem: self.problems.append(problem)

    def notices(self) -> list[dict[str, Any]]:
        return [details[0] for details in self.heartbeats if details]


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts the gateway backed off after, each wait shrunk to a millisecond."""
    attempts: list[int] = []

    def tiny(attempt: int) -> float:
        attempts.append(attempt)
        return 0.001

    monkeypatch.setattr(gateway_module, "_backoff", tiny)
    return attempts


@asynccontextmanager
async def scene(limits: Limits | None = None, step_attempt: int = 1) -> AsyncIterator[Scene]:
    """A gateway whose waits on rate limits are cut to 10 ms unless `limits` say otherwise."""
    async with scripted_notion() as notion:
        s = Scene(notion, RecordingBudget(), limits or Limits(max_retry_after_s=0.01), step_attempt)
        try:
            yield s
        finally:
            await s.gateway.aclose()
            await s.session.close()


async def test_an_answer_is_returned_without_its_request_id() -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, answer({"object": "page", "id": PAGE_ID, "request_id": "r-1"}))
        assert await s.gateway.page(PAGE_ID) == {"object": "page", "id": PAGE_ID}
        assert s.gateway.requests == 1


async def test_401_fails_at_once_and_is_not_retried(backoff: list[int]) -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, error(401, "unauthorized"))
        with pytest.raises(NotionUnauthorized, match="401"):
            await s.gateway.page(PAGE_ID)
        assert s.notion.hits(PAGE_PATH) == 1 and backoff == []


@pytest.mark.parametrize(("status", "code"), [(403, "restricted_resource"), (404, "object_not_found")])
async def test_403_and_404_skip_that_object_with_the_reason(status: int, code: str) -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, error(status, code))
        with pytest.raises(ObjectUnavailable) as raised:
            await s.gateway.page(PAGE_ID)
        assert s.notion.hits(PAGE_PATH) == 1
    skipped = raised.value
    assert (skipped.object_id, skipped.status, skipped.code) == (PAGE_ID, status, code)
    assert skipped.reason == f"{status} {code}" and skipped.outcome == "skipped"


async def test_400_about_one_object_fails_that_object_and_400_to_search_fails_the_listing() -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, error(400, "validation_error"))
        s.notion.script(SEARCH_PATH, error(400, "validation_error"))
        with pytest.raises(ObjectRejected) as one_object:
            await s.gateway.page(PAGE_ID)
        with pytest.raises(NotionRejected):
            await s.gateway.search("page", None)
        assert s.notion.hits(PAGE_PATH) == 1 and s.notion.hits(SEARCH_PATH) == 1
    assert one_object.value.outcome == "failed" and "400 validation_error" in one_object.value.reason


@pytest.mark.parametrize("status", [429, 529])
async def test_a_rate_limit_waits_retry_after_capped_blocks_the_budget_and_says_so(status: int) -> None:
    async with scene(Limits(max_retry_after_s=0.05)) as s:
        s.notion.script(PAGE_PATH, error(status, "rate_limited", {"Retry-After": "30"}), page(PAGE_ID))
        assert (await s.gateway.page(PAGE_ID))["id"] == PAGE_ID
        assert s.notion.hits(PAGE_PATH) == 2
    # Every process sharing the budget waits too, for the capped time.
    assert s.budget.blocks == [0.05]
    assert any(
        notice.get("waiting") == "rate limit" and notice.get("status") == status for notice in s.notices()
    )


async def test_a_wait_longer_than_an_activity_holds_goes_to_temporal() -> None:
    async with scene(Limits(max_retry_after_s=90)) as s:
        s.notion.script(PAGE_PATH, error(429, "rate_limited", {"Retry-After": "999999"}))
        with pytest.raises(NotionUnavailable) as raised:
            await s.gateway.page(PAGE_ID)
        assert s.notion.hits(PAGE_PATH) == 1
    # Not slept here: handed to Temporal as the next retry delay, cut to the configured cap.
    assert raised.value.retry_after_s == 90
    assert "asked to wait 999999 s, cut to 90 s" in str(raised.value)
    assert s.budget.blocks == [90]


async def test_rate_limits_without_end_fail_the_step_after_a_bounded_number_of_waits() -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, error(429, "rate_limited", {"Retry-After": "1"}))
        with pytest.raises(NotionUnavailable, match="rate limited"):
            await s.gateway.page(PAGE_ID)
        waits = s.notion.hits(PAGE_PATH)
    assert waits == gateway_module._MAX_RATE_LIMIT_WAITS + 1


async def test_server_errors_back_off_then_succeed(backoff: list[int]) -> None:
    async with scene() as s:
        s.notion.script(
            PAGE_PATH, error(503, "service_unavailable"), error(500, "internal_server_error"), page(PAGE_ID)
        )
        assert (await s.gateway.page(PAGE_ID))["id"] == PAGE_ID
        assert s.notion.hits(PAGE_PATH) == 3
    assert backoff == [1, 2]
    retries = [notice for notice in s.notices() if "retrying" in notice]
    assert retries and retries[0]["attempt"] == 2 and "503 service_unavailable" in retries[0]["retrying"]


@pytest.mark.parametrize("step_attempt", [1, 3])
async def test_a_server_error_storm_fails_the_step_until_its_third_attempt(
    backoff: list[int], step_attempt: int
) -> None:
    async with scene(step_attempt=step_attempt) as s:
        s.notion.script(PAGE_PATH, error(502, "bad_gateway"))
        s.notion.script(ME_PATH, answer({"object": "user", "id": "bot"}))
        with pytest.raises((NotionUnavailable, ObjectUnreachable)) as raised:
            await s.gateway.page(PAGE_ID)
        attempts = s.notion.hits(PAGE_PATH)
    assert attempts == gateway_module._MAX_TRANSIENT_ATTEMPTS
    assert backoff == list(range(1, attempts))
    if step_attempt < 3:
        # Temporal retries the whole step first: a storm is usually Notion's, and passes.
        assert type(raised.value) is NotionUnavailable
    else:
        # Notion answers other requests (the probe): this one object fails alone.
        assert type(raised.value) is ObjectUnreachable
        assert "502" in raised.value.reason


async def test_timeouts_fail_one_object_when_notion_answers_others(backoff: list[int]) -> None:
    async with scene(Limits(object_attempts=2)) as s:
        s.notion.script(PAGE_PATH, silence(TIMEOUT_S * 2))
        s.notion.script(ME_PATH, answer({"object": "user", "id": "bot"}))
        with pytest.raises(ObjectUnreachable) as raised:
            await s.gateway.page(PAGE_ID)
        # Its attempts, then one more once Notion was seen answering (a probe), then it is blamed
        # (a second probe: still answering while this object is not).
        assert s.notion.hits(PAGE_PATH) == 3 and s.notion.hits(ME_PATH) == 2
    assert f"no answer within {TIMEOUT_S:g} s (3 attempts)" in raised.value.reason


async def test_timeouts_while_notion_answers_nothing_fail_the_step_not_the_object(backoff: list[int]) -> None:
    """Every attempt, and the probe, time out: an outage, which Temporal retries as a whole step; no
    page is blamed for it, even if Notion answers again just after the probe."""
    async with scene(Limits(object_attempts=2)) as s:
        s.notion.script(PAGE_PATH, silence(TIMEOUT_S * 2))
        s.notion.script(ME_PATH, silence(TIMEOUT_S * 2), answer({"object": "user", "id": "bot"}))
        with pytest.raises(NotionUnavailable):
            await s.gateway.page(PAGE_ID)
        assert s.notion.hits(PAGE_PATH) == 2 and s.notion.hits(ME_PATH) == 1


async def test_an_object_whose_attempts_all_fell_in_an_outage_is_tried_again_not_blamed(
    backoff: list[int],
) -> None:
    """Every attempt timed out while Notion answered nothing; it answers again just as they run out
    (the probe): the object gets one more attempt, which the recovered Notion answers."""
    async with scene(Limits(object_attempts=2)) as s:
        page_answer = answer({"object": "page", "id": PAGE_ID})
        s.notion.script(PAGE_PATH, silence(TIMEOUT_S * 2), silence(TIMEOUT_S * 2), page_answer)
        s.notion.script(ME_PATH, answer({"object": "user", "id": "bot"}))
        page = await s.gateway.page(PAGE_ID)
        assert s.notion.hits(PAGE_PATH) == 3
    assert page["id"] == PAGE_ID


async def test_timeouts_on_a_listing_of_the_workspace_fail_the_step(backoff: list[int]) -> None:
    async with scene(Limits(object_attempts=2)) as s:
        s.notion.script(SEARCH_PATH, silence(TIMEOUT_S * 2))
        with pytest.raises(NotionUnavailable, match="no answer within"):
            await s.gateway.search("page", None)
        # No probe: a listing of the workspace is not one object.
        assert s.notion.hits(SEARCH_PATH) == 2 and s.notion.hits(ME_PATH) == 0


async def test_a_reset_connection_is_retried(backoff: list[int]) -> None:
    # A POST: aiohttp itself resends an idempotent request once on a dropped connection.
    async with scene() as s:
        s.notion.script(SEARCH_PATH, reset(), listed(["a"]))
        assert [item["id"] for item in (await s.gateway.search("page", None))["results"]] == ["a"]
        assert s.notion.hits(SEARCH_PATH) == 2
    assert backoff == [1]


def _malformed_listings() -> list[Any]:
    children = {"object": "list", "has_more": False, "next_cursor": None}
    return [
        pytest.param(not_json(), "not JSON (text/html", id="html"),
        pytest.param(answer([1, 2]), "not an object (list)", id="array"),
        pytest.param(answer({**children, "results": None}), '"results" is null', id="no-results"),
        pytest.param(
            answer({**children, "results": [{"id": "x"}, 3]}), "other than objects", id="not-objects"
        ),
        pytest.param(answer({**children, "results": [{"type": "paragraph"}]}), 'has no "id"', id="no-id"),
        pytest.param(
            answer({**children, "results": [], "has_more": True, "next_cursor": 42}),
            '"next_cursor" is not a string',
            id="cursor",
        ),
    ]


@pytest.mark.parametrize(("reply", "said"), _malformed_listings())
async def test_answers_that_stay_malformed_fail_that_object(
    backoff: list[int], reply: Any, said: str
) -> None:
    path = f"/v1/blocks/{PAGE_ID}/children"
    async with scene(Limits(object_attempts=3)) as s:
        s.notion.script(path, reply)
        s.notion.script(ME_PATH, answer({"object": "user", "id": "bot"}))
        with pytest.raises(ObjectMalformed) as raised:
            [block async for block in s.gateway.children(PAGE_ID)]
        assert s.notion.hits(path) == 3
    assert said in raised.value.reason and "(3 attempts)" in raised.value.reason


async def test_a_malformed_answer_once_is_retried(backoff: list[int]) -> None:
    async with scene() as s:
        s.notion.script(PAGE_PATH, answer({"id": PAGE_ID}), page(PAGE_ID))
        assert (await s.gateway.page(PAGE_ID))["object"] == "page"
        assert s.notion.hits(PAGE_PATH) == 2
    assert backoff == [1]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        ("2.5", 2.5),
        ("0", 1.0),
        ("-4", 1.0),
        ("0.2", 1.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 1.0),
        ("soon", 1.0),
        ("nan", 1.0),
        (None, 1.0),
        ("1e9", 1e9),
    ],
)
def test_retry_after_is_read_in_seconds_at_least_one(header: str | None, seconds: float) -> None:
    headers = httpx.Headers({"Retry-After": header} if header is not None else {})
    assert gateway_module._retry_after(headers) == seconds


# --- listings ---------------------------------------------------------------------------------


def _children_path(block_id: str) -> str:
    return f"/v1/blocks/{block_id}/children"


def _cursors_asked(notion: ScriptedNotion, path: str) -> list[str | None]:
    asked: list[str | None] = []
    for _, seen, query, _ in notion.requests:
        if seen == path:
            params = dict(item.split("=", 1) for item in query.split("&") if item)
            asked.append(params.get("start_cursor"))
    return asked


async def test_a_listing_follows_cursors_to_the_end() -> None:
    path = _children_path(PAGE_ID)
    async with scene() as s:
        s.notion.script(path, listed(["a", "b"], "c1"), listed(["c"], "c2"), listed(["d"]))
        blocks = [block["id"] async for block in s.gateway.children(PAGE_ID)]
        assert _cursors_asked(s.notion, path) == [None, "c1", "c2"]
    assert blocks == ["a", "b", "c", "d"] and s.problems == []


async def test_a_repeated_cursor_stops_the_listing_as_a_problem_of_the_object_listed() -> None:
    path = _children_path(PAGE_ID)
    async with scene() as s:
        s.notion.script(path, listed(["a"], "c1"), listed(["b"], "c2"), listed(["c"], "c1"))
        blocks = [block["id"] async for block in s.gateway.children(PAGE_ID, problem_of="the-page")]
        assert s.notion.hits(path) == 3
    assert blocks == ["a", "b", "c"]
    [(object_id, kind, reason)] = s.problems
    assert (object_id, kind) == ("the-page", "listing") and "same cursor twice" in reason


async def test_a_listing_stops_at_the_request_cap() -> None:
    async with scene(Limits(max_listing_requests=3)) as s:
        s.notion.script("/v1/users", *(listed([f"u{n}"], f"c{n}") for n in range(10)))
        users = await s.gateway.users()
        assert s.notion.hits("/v1/users") == 3
    assert [user["id"] for user in users] == ["u0", "u1", "u2"]
    [(object_id, kind, reason)] = s.problems
    assert (object_id, kind) == ("users", "listing") and "reached 3 requests" in reason


async def test_rows_past_the_query_cap_are_read_in_created_time_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway_module, "QUERY_ROW_CAP", 2)
    path = "/v1/data_sources/source/query"

    def rows(*created: str, next_cursor: str | None = None) -> Any:
        body = {
            "object": "list",
            "results": [{"object": "page", "id": f"row-{at}", "created_time": at} for at in created],
            "next_cursor": next_cursor,
            "has_more": next_cursor is not None,
        }
        return answer(body)

    async with scene() as s:
        s.notion.script(path, rows("t1", next_cursor="c1"), rows("t2"), rows("t2", "t3"), rows("t3"))
        batches = [[row["id"] for row in batch] async for batch in s.gateway.query_rows("source")]
        bodies = [body for _, seen, _, body in s.notion.requests if seen == path]
    assert batches == [["row-t1"], ["row-t2"], ["row-t2", "row-t3"], ["row-t3"]]
    assert [body and body.get("start_cursor") for body in bodies] == [None, "c1", None, None]
    windows = [body and body.get("filter") for body in bodies]
    assert windows[:2] == [None, None]
    assert windows[2] == {"timestamp": "created_time", "created_time": {"on_or_after": "t2"}}
    assert windows[3] == {"timestamp": "created_time", "created_time": {"on_or_after": "t3"}}


async def test_a_single_value_property_is_its_own_item() -> None:
    path = f"/v1/pages/{PAGE_ID}/properties/title"
    async with scene() as s:
        s.notion.script(path, answer({"object": "property_item", "type": "number", "number": 3}))
        assert await s.gateway.property_items(PAGE_ID, "title") == [
            {"object": "property_item", "type": "number", "number": 3}
        ]
