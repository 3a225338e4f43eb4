"""The emulator over real HTTP, read by the unmodified notion-client (sync and async)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml
from notion_client import APIResponseError, AsyncClient, Client
from notion_client.helpers import async_collect_paginated_api, collect_paginated_api, iterate_paginated_api

from notion_sync.emulator.process import EmulatorProcess

JSON = dict[str, Any]
Walker = Callable[[Client, str], list[dict[str, Any]]]


def search_all(client: Client, value: str) -> list[JSON]:
    return collect_paginated_api(client.search, filter={"property": "object", "value": value})


def recorded_error(cassettes: Path, status: int) -> JSON:
    cassette = yaml.safe_load((cassettes / "test_api_response_error.yaml").read_text())
    for interaction in cassette["interactions"]:
        if interaction["response"]["status"]["code"] == status:
            body: JSON = json.loads(interaction["response"]["body"]["string"])
            return body
    raise LookupError(status)


def test_sync_client_reads_every_object(
    client: Client,
    emulator: EmulatorProcess,
    block_walker: Walker,
    searched_pages: list[JSON],
    tree_pages: list[JSON],
) -> None:
    data_sources = search_all(client, "data_source")
    assert len({p["id"] for p in searched_pages}) == len(searched_pages)
    assert {p["object"] for p in searched_pages} == {"page"}
    assert {d["object"] for d in data_sources} == {"data_source"}
    for page in tree_pages + searched_pages[:50]:
        assert client.pages.retrieve(page_id=page["id"])["id"] == page["id"]
    types: set[str] = set()
    for page in tree_pages[:10]:
        types |= {block["type"] for block in block_walker(client, page["id"])}
        collect_paginated_api(client.comments.list, block_id=page["id"])
    assert {"paragraph", "image", "table", "synced_block"} <= types
    for ds in data_sources:
        full = client.data_sources.retrieve(data_source_id=ds["id"])
        database = client.databases.retrieve(database_id=full["parent"]["database_id"])
        assert ds["id"] in {d["id"] for d in database["data_sources"]}
        rows = islice(iterate_paginated_api(client.data_sources.query, data_source_id=ds["id"]), 500)
        assert all(row["object"] == "page" for row in rows)
    users = collect_paginated_api(client.users.list, page_size=7)
    assert len(users) == len({u["id"] for u in users}) == emulator.workspace_summary()["users"]
    assert client.users.me()["type"] == "bot"
    assert emulator.workspace_summary()["data_sources"] == len(data_sources)


async def test_async_client_reads_pages_and_blocks(async_client: AsyncClient, tree_pages: list[JSON]) -> None:
    found = await async_collect_paginated_api(
        async_client.search, filter={"property": "object", "value": "data_source"}, page_size=3
    )
    assert found
    sample = tree_pages[:40]
    fetched = await asyncio.gather(*(async_client.pages.retrieve(page_id=p["id"]) for p in sample))
    assert [p["id"] for p in fetched] == [p["id"] for p in sample]
    children = await asyncio.gather(
        *(async_collect_paginated_api(async_client.blocks.children.list, block_id=p["id"]) for p in sample)
    )
    assert all(block["object"] == "block" for blocks in children for block in blocks)
    assert (await async_client.users.me())["object"] == "user"


def huge_page(client: Client, tree_pages: list[JSON]) -> str:
    for page in tree_pages:
        if client.blocks.children.list(block_id=page["id"])["has_more"]:
            return str(page["id"])
    raise LookupError("no page with more than 100 top-level blocks")


def test_block_children_paging_uses_next_item_id(client: Client, tree_pages: list[JSON]) -> None:
    page_id = huge_page(client, tree_pages)
    everything = collect_paginated_api(client.blocks.children.list, block_id=page_id)
    assert len(everything) >= 1_000
    first = client.blocks.children.list(block_id=page_id, page_size=2)
    assert first["has_more"] is True and len(first["results"]) == 2
    assert first["next_cursor"] == everything[2]["id"]
    assert set(first) == {"object", "results", "next_cursor", "has_more", "type", "block", "request_id"}
    paged = collect_paginated_api(client.blocks.children.list, block_id=page_id, page_size=37)
    assert [b["id"] for b in paged] == [b["id"] for b in everything]
    with pytest.raises(APIResponseError) as too_big:
        client.blocks.children.list(block_id=page_id, page_size=101)
    assert too_big.value.code == "validation_error"


def test_search_sort_and_page_size(client: Client, searched_pages: list[JSON]) -> None:
    descending = [p["last_edited_time"] for p in searched_pages]
    assert descending == sorted(descending, reverse=True)
    ascending = client.search(
        filter={"property": "object", "value": "page"},
        sort={"timestamp": "last_edited_time", "direction": "ascending"},
    )
    times = [p["last_edited_time"] for p in ascending["results"]]
    assert len(times) == 100 and times == sorted(times) and times[0] == descending[-1]
    first = client.search(page_size=5)
    assert len(first["results"]) == 5 and first["has_more"] and first["type"] == "page_or_data_source"
    with pytest.raises(APIResponseError) as bad:
        client.search(filter={"property": "object", "value": "database"})
    assert bad.value.code == "validation_error"


def test_relation_past_25_pages_through_property_endpoint(client: Client, searched_pages: list[JSON]) -> None:
    row, prop = next(
        (page, prop)
        for page in searched_pages
        for prop in page["properties"].values()
        if prop["type"] == "relation" and prop.get("has_more")
    )
    assert len(prop["relation"]) == 25
    first = client.pages.properties.retrieve(page_id=row["id"], property_id=prop["id"], page_size=10)
    assert first["type"] == "property_item" and first["property_item"]["type"] == "relation"
    assert first["has_more"] and first["property_item"]["next_url"]
    items = collect_paginated_api(
        client.pages.properties.retrieve, page_id=row["id"], property_id=prop["id"], page_size=10
    )
    assert len(items) > 25 and {i["type"] for i in items} == {"relation"}
    assert [i["relation"] for i in items[:25]] == prop["relation"]


def test_query_stops_at_10000_rows(client: Client) -> None:
    """Every data source, paged to the end: only the one past 10,000 rows is cut, and says so."""
    capped = []
    for ds in search_all(client, "data_source"):
        rows, cursor = 0, None
        while True:
            response = client.data_sources.query(data_source_id=ds["id"], start_cursor=cursor)
            rows += len(response["results"])
            if not response["has_more"]:
                break
            assert "request_status" not in response
            cursor = response["next_cursor"]
        if "request_status" in response:
            capped.append(rows)
            assert response["next_cursor"] is None
            assert response["request_status"] == {
                "type": "incomplete",
                "incomplete_reason": "query_result_limit_reached",
            }
    assert capped == [10_000]


def test_error_bodies_match_recordings(emulator: EmulatorProcess, sdk_cassettes: Path) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        unauthorized = http.get("/v1/users", headers={**emulator.headers, "Authorization": "Bearer nope"})
        bad_url = http.get("/v1/invalid", headers=emulator.headers)
        no_version = http.get("/v1/users", headers={"Authorization": f"Bearer {emulator.token}"})
        missing = http.get("/v1/pages/00000000-0000-4000-8000-000000000000", headers=emulator.headers)
        bad_json = http.post("/v1/search", content=b"{nope", headers=emulator.headers)
    for response, status in ((unauthorized, 401), (bad_url, 400)):
        recorded = recorded_error(sdk_cassettes, status)
        body = response.json()
        assert response.status_code == status
        assert list(body) == list(recorded)
        assert {k: body[k] for k in ("object", "status", "code", "message")} == {
            k: recorded[k] for k in ("object", "status", "code", "message")
        }
    assert no_version.status_code == 400 and no_version.json()["code"] == "missing_version"
    assert missing.status_code == 404
    assert missing.json()["message"] == (
        "Could not find page with ID: 00000000-0000-4000-8000-000000000000. "
        "Make sure the relevant pages and databases are shared with your integration."
    )
    assert list(missing.json()) == list(recorded_error(sdk_cassettes, 401))
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"


def test_unshared_pages_are_not_found(
    client: Client, tree_pages: list[JSON], emulator: EmulatorProcess
) -> None:
    """Shared pages link to private ones; reading those answers 404 as Notion does."""
    linked = (
        block["link_to_page"]["page_id"]
        for page in tree_pages
        for block in collect_paginated_api(client.blocks.children.list, block_id=page["id"])
        if block["type"] == "link_to_page" and block["link_to_page"]["type"] == "page_id"
    )
    for page_id in linked:
        emulator.reset()
        try:
            client.pages.retrieve(page_id=page_id)
        except APIResponseError as missing:
            assert missing.code == "object_not_found" and page_id in str(missing)
            assert emulator.stats()["by_status"] == {"404": 1}
            return
    pytest.fail("no link to an unshared page")


def test_property_ids_with_braces_and_brackets_resolve() -> None:
    """Notion property ids are arbitrary short strings such as `U]{}`, sent URL-encoded in the path."""
    seen = 0
    with EmulatorProcess(pages=20, seed=8) as emulator:
        client = Client(auth=emulator.token, base_url=emulator.base_url, retry=False)
        pages = collect_paginated_api(client.search, filter={"property": "object", "value": "page"})
        for page in pages:
            for prop in page["properties"].values():
                client.pages.properties.retrieve(page_id=page["id"], property_id=prop["id"])
                seen += any(c in unquote(prop["id"]) for c in "{}")
    assert seen > 0
