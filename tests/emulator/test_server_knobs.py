"""Knobs, counters, files, determinism and replay of the emulator, over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from notion_client import Client

from notion_sync.emulator.process import EmulatorProcess

JSON = dict[str, Any]
FILE_BLOCKS = ("image", "file", "pdf", "video", "audio")


async def burst(emulator: EmulatorProcess, count: int, path: str = "/v1/users/me") -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=emulator.headers) as http:
        return list(await asyncio.gather(*(http.get(path) for _ in range(count))))


async def test_rate_limit_answers_429_with_retry_after(emulator: EmulatorProcess) -> None:
    """A burst of 20 against `--rate 2 --burst 5`: exactly the bucket's 5 pass (the burst takes
    far less than the 0.5 s one more token needs), then 2 tokens come back per second."""
    emulator.configure(rate=2, burst=5)
    responses = await burst(emulator, 20)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 15
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["code"] == "rate_limited"
    assert limited.json()["message"] == "You have been rate limited. Please try again in a few minutes."
    assert emulator.stats()["rate_limited_total"] == 15
    await asyncio.sleep(1.1)
    assert sorted(r.status_code for r in await burst(emulator, 4)) == [200, 200, 429, 429]


def test_admin_api_is_never_limited_faulted_or_counted(emulator: EmulatorProcess) -> None:
    emulator.configure(rate=1, burst=1, fault_500=1.0)
    for _ in range(5):
        assert emulator.stats()["requests_total"] == 0
    assert emulator.workspace_summary()["pages"] > 0


def test_fault_rates_are_seeded_and_counted(emulator: EmulatorProcess) -> None:
    def run() -> list[int]:
        emulator.configure(fault_500=0.2, fault_503=0.1, fault_seed=42)
        emulator.reset()
        with httpx.Client(base_url=emulator.base_url, headers=emulator.headers) as http:
            return [http.get("/v1/users/me").status_code for _ in range(500)]

    first = run()
    assert 70 <= first.count(500) <= 130 and 25 <= first.count(503) <= 75
    assert first.count(200) == 500 - first.count(500) - first.count(503)
    stats = emulator.stats()
    assert stats["faults_injected"] == {"500": first.count(500), "503": first.count(503)}
    assert stats["by_status"] == {str(s): first.count(s) for s in set(first)}
    assert run() == first  # same seed, same faults


def test_transport_faults(emulator: EmulatorProcess) -> None:
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=0.5) as http:
        emulator.configure(fault_reset=1.0)
        with pytest.raises(httpx.TransportError):
            http.get("/v1/users/me")
        emulator.configure(fault_reset=0.0, fault_truncate=1.0)
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/v1/users")
        emulator.configure(fault_truncate=0.0, fault_slow=1.0, slow_seconds=1)
        with pytest.raises(httpx.ReadTimeout):
            http.get("/v1/users/me")
        emulator.configure(fault_slow=0.0, fault_529=1.0)
        overloaded = http.get("/v1/users/me")
    assert overloaded.status_code == 529 and overloaded.json()["code"] == "service_overload"
    assert overloaded.headers["Retry-After"] == "1"
    faults = emulator.stats()["faults_injected"]
    assert faults == {"reset": 1, "truncate": 1, "slow": 1, "529": 1}
    deadline = time.monotonic() + 3
    while emulator.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow request is still sleeping server-side
    assert emulator.stats()["by_status"] == {"reset": 1, "truncated": 1, "200": 1, "529": 1}


def test_latency_is_applied(emulator: EmulatorProcess) -> None:
    emulator.configure(latency_ms=150, jitter_ms=50)
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers) as http:
        start = time.monotonic()
        http.get("/v1/users/me")
        elapsed = time.monotonic() - start
        start = time.monotonic()
        http.get("/_emulator/stats")
        admin = time.monotonic() - start
    assert 0.15 <= elapsed < 1.0 and admin < 0.15


async def test_counters_are_exact(emulator: EmulatorProcess, client: Client) -> None:
    page_id = client.search(filter={"property": "object", "value": "page"}, page_size=1)["results"][0]["id"]
    emulator.reset()
    sizes = 0
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers) as http:
        for path in (f"/v1/pages/{page_id}",) * 3 + (f"/v1/blocks/{page_id}/children",) * 2:
            sizes += len(http.get(path).content)
        sizes += len(http.get("/v1/pages/00000000-0000-4000-8000-000000000000").content)
    stats = emulator.stats()
    assert stats["requests_total"] == 6
    assert stats["by_endpoint"] == {"GET /v1/pages/{id}": 4, "GET /v1/blocks/{id}/children": 2}
    assert stats["by_status"] == {"200": 5, "404": 1}
    assert stats["bytes_sent"] == sizes
    assert stats["fetches_by_id"]["pages"][page_id] == 3
    assert stats["fetches_by_id"]["block_children"] == {page_id: 2}
    emulator.configure(latency_ms=300)
    emulator.reset()
    await burst(emulator, 12)
    stats = emulator.stats()
    assert stats["concurrent_peak"] == 12 and stats["requests_total"] == 12 and stats["in_flight"] == 0


Walker = Callable[[Client, str], list[JSON]]


def media_block(client: Client, walker: Walker, pages: list[JSON], hosting: str) -> JSON:
    """The first image/file/pdf/video/audio block whose file is `hosting` ("file" or "external")."""
    for page in pages:
        for block in walker(client, page["id"]):
            if block["type"] in FILE_BLOCKS and block[block["type"]]["type"] == hosting:
                return block
    raise LookupError(f"no {hosting} media block")


def test_expired_file_url_then_fresh_url(
    emulator: EmulatorProcess, client: Client, block_walker: Walker, tree_pages: list[JSON]
) -> None:
    emulator.configure(file_expiry=2)  # whole-second expiries: valid for more than 1 s
    block = media_block(client, block_walker, tree_pages, "file")
    block = client.blocks.retrieve(block_id=block["id"])  # signed with the short expiry
    url = block[block["type"]]["file"]["url"]
    assert url.startswith(emulator.base_url + "/_files/")
    assert httpx.get(url).status_code == 200
    assert httpx.get(url.replace("sig=", "sig=0")).status_code == 403
    time.sleep(2.1)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.text
    fresh = client.blocks.retrieve(block_id=block["id"])[block["type"]]["file"]
    assert fresh["url"] != url
    download = httpx.get(fresh["url"])
    assert download.status_code == 200 and download.content
    assert download.headers["Content-Type"] != "application/json"


def test_external_files_are_served_locally(
    client: Client, emulator: EmulatorProcess, block_walker: Walker, tree_pages: list[JSON]
) -> None:
    block = media_block(client, block_walker, tree_pages, "external")
    url = block[block["type"]]["external"]["url"]
    assert url.startswith(emulator.base_url + "/_external/")
    assert httpx.get(url).status_code == 200


UNSTABLE = re.compile(rb"(expires=\d+&sig=[0-9a-f]+|\"expiry_time\":\"[^\"]+\")")


def fetch_all(emulator: EmulatorProcess) -> list[bytes]:
    """A fixed sequence of reads; the port and the clock-based URL expiries are masked."""
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers) as http:
        search = http.post("/v1/search", json={"page_size": 100})
        bodies = [search.content]
        for result in search.json()["results"][:15]:
            kind = "pages" if result["object"] == "page" else "data_sources"
            bodies.append(http.get(f"/v1/{kind}/{result['id']}").content)
            if kind == "pages":
                bodies.append(http.get(f"/v1/blocks/{result['id']}/children").content)
        bodies.append(http.get("/v1/users").content)
    return [UNSTABLE.sub(b"", body.replace(emulator.base_url.encode(), b"")) for body in bodies]


def test_same_seed_same_bytes(emulator_args: dict[str, Any]) -> None:
    """Fresh twins: request ids come from the seed too, so even they match."""
    with EmulatorProcess(**emulator_args) as first, EmulatorProcess(**emulator_args) as second:
        reads = fetch_all(first)
        assert fetch_all(second) == reads
    with EmulatorProcess(**{**emulator_args, "seed": emulator_args["seed"] + 1}) as other:
        assert fetch_all(other) != reads


def test_replay_serves_recorded_responses(sdk_cassettes: Path) -> None:
    with EmulatorProcess(replay=sdk_cassettes) as replay:
        with Client(auth=replay.token, base_url=replay.base_url, retry=False) as notion:
            block_id = "393abc1e-edcd-814b-aee5-cf69471e5a43"
            first = notion.blocks.children.list(block_id=block_id, page_size=2)
            assert first["next_cursor"] == "393abc1e-edcd-817b-900d-c75ec8d2f272"
            assert first["request_id"]
            rest = notion.blocks.children.list(
                block_id=block_id, page_size=2, start_cursor=first["next_cursor"]
            )
            assert [b["paragraph"]["rich_text"][0]["plain_text"] for b in rest["results"]] == [
                "paragraph 2",
                "paragraph 3",
            ]
        with httpx.Client(base_url=replay.base_url, headers=replay.headers) as http:
            assert http.get("/v1/invalid").json()["code"] == "invalid_request_url"
            assert http.get("/v1/pages/00000000-0000-4000-8000-000000000000").status_code == 404
        assert replay.stats()["requests_total"] == 4


def test_mutation_api_rejects_bad_ops(emulator: EmulatorProcess, emulator_args: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        emulator.mutate({"op": "no-such-op"})
    assert emulator.workspace_summary()["seed"] == emulator_args["seed"]


def test_mutation_bumps_last_edited_time(
    emulator: EmulatorProcess, client: Client, tree_pages: list[JSON]
) -> None:
    page = tree_pages[len(tree_pages) // 2]
    assert emulator.mutate({"op": "edit_page", "page_id": page["id"]})["ok"] is True
    fresh = client.pages.retrieve(page_id=page["id"])
    assert fresh["last_edited_time"] > page["last_edited_time"]
    newest = client.search(filter={"property": "object", "value": "page"}, page_size=1)["results"][0]
    assert newest["id"] == page["id"]
