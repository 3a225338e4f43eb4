"""Fixtures over `EmulatorProcess`: one emulator per session, knobs and counters reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notion_client import AsyncClient, Client
from notion_client.helpers import collect_paginated_api

from notion_sync.emulator.process import EmulatorProcess

# Real API responses, kept in the repository with their licences (see its README.md)
RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures/notion-api-recordings"
SDK_CASSETTES = RECORDINGS / "notion-sdk-py/tests/cassettes"
# Small but complete: every block and property type, a 1,200-block page, and one data source
# past the 10,000-row query cap.
SHAPE: dict[str, Any] = {"large_data_source_rows": 10_050, "huge_page_blocks": 1_200}
NOT_INLINED = {"child_page", "child_database"}  # pages and databases of their own
PAGES = 120
SEED = 7
DEFAULT_KNOBS: dict[str, Any] = {
    "latency_ms": 0,
    "jitter_ms": 0,
    "rate": None,
    "burst": None,
    **{f"fault_{kind}": 0.0 for kind in ("500", "502", "503", "504", "529", "slow", "reset", "truncate")},
    "slow_seconds": 30.0,
    "fault_seed": 0,
    "file_expiry": 3600,
}


@pytest.fixture(scope="session")
def emulator_args() -> dict[str, Any]:
    """How the session emulator was started, for tests that start a twin."""
    return {"pages": PAGES, "seed": SEED, "shape": SHAPE}


@pytest.fixture(scope="session")
def sdk_cassettes() -> Path:
    """Real API 2025-09-03 recordings (vcrpy cassettes of notion-sdk-py)."""
    assert SDK_CASSETTES.is_dir(), f"missing {SDK_CASSETTES}"
    return SDK_CASSETTES


@pytest.fixture(scope="session")
def emulator_process(emulator_args: dict[str, Any]) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(**emulator_args) as process:
        yield process


@pytest.fixture(scope="session")
def searched_pages(emulator_process: EmulatorProcess) -> list[dict[str, Any]]:
    """Every shared page, found once per session through search (10,000+ rows make it slow)."""
    with Client(auth=emulator_process.token, base_url=emulator_process.base_url, retry=False) as notion:
        return collect_paginated_api(notion.search, filter={"property": "object", "value": "page"})


@pytest.fixture(scope="session")
def tree_pages(searched_pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shared pages that are not data source rows: they hold the varied content."""
    return [p for p in searched_pages if p["parent"]["type"] != "data_source_id"]


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session emulator with default knobs and zeroed counters; knobs restored afterwards, so
    session fixtures computed later never run under a test's latency or faults."""
    emulator_process.configure(**DEFAULT_KNOBS)
    emulator_process.reset()
    yield emulator_process
    emulator_process.configure(**DEFAULT_KNOBS)


@pytest.fixture
def client(emulator: EmulatorProcess) -> Iterator[Client]:
    with Client(auth=emulator.token, base_url=emulator.base_url, retry=False) as notion:
        yield notion


@pytest.fixture
async def async_client(emulator: EmulatorProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(auth=emulator.token, base_url=emulator.base_url, retry=False) as notion:
        yield notion


def walk(client: Client, block_id: str) -> list[dict[str, Any]]:
    """Every block under `block_id`, depth first, as an exporter reads them."""
    blocks: list[dict[str, Any]] = []
    for block in collect_paginated_api(client.blocks.children.list, block_id=block_id):
        blocks.append(block)
        if block["has_children"] and block["type"] not in NOT_INLINED:
            blocks += walk(client, block["id"])
    return blocks


@pytest.fixture
def block_walker() -> Callable[[Client, str], list[dict[str, Any]]]:
    return walk
