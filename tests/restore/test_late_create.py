"""A create that lands after its client timed out (the emulator's late creates): the restore's
request times out, Notion makes the page anyway, and the retry adopts it instead of making another."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.exporter.context import open_gateway
from notion_sync.notion.writes import NotionWrites, WriteUnknown
from notion_sync.restore.engine import Restorer
from notion_sync.restore.index import RestoreIndex
from notion_sync.restore.source import SnapshotSource
from tests.export.harness import worker_settings

PAGE = "a0000000-0000-4000-8000-000000000003"
TITLE = "Landed late"


def _late_creates(emulator: EmulatorProcess, seconds: float, count: int) -> None:
    answer = httpx.post(
        f"{emulator.base_url}/_emulator/late_creates", json={"seconds": seconds, "count": count}
    )
    answer.raise_for_status()


async def _all_landed(emulator: EmulatorProcess) -> None:
    """Waits until no late create is still to land (the store is final)."""
    while httpx.get(f"{emulator.base_url}/_emulator/late_creates").json()["landing"]:
        await asyncio.sleep(0.2)


async def test_a_create_that_lands_after_its_timeout_is_adopted_once(tmp_path: Path) -> None:
    title = {"id": "title", "type": "title", "title": [{"type": "text", "text": {"content": TITLE}}]}
    blocks = [{"id": "b0000000-0000-4000-8000-000000000001", "type": "divider", "divider": {}}]
    saved = {
        "page": {"id": PAGE, "parent": {"type": "workspace"}, "properties": {"title": title}},
        "blocks": blocks,
    }
    (tmp_path / "snap" / "json" / "pages").mkdir(parents=True)
    (tmp_path / "snap" / "json" / "pages" / f"{PAGE}.json").write_text(json.dumps(saved))
    with EmulatorProcess(pages=0, seed=5) as emulator:
        root = emulator.workspace_summary()["root_page_id"]
        # The request gives up after 1 s; the page lands at 2 s; the retry looks after waiting 2 s more.
        settings = worker_settings(emulator, tmp_path / "state", request_timeout_s=1.0)
        _late_creates(emulator, seconds=2.0, count=1)
        async with open_gateway(settings) as (gateway, _http):
            with RestoreIndex(tmp_path / "restore.sqlite") as index:
                index.add_objects([(1, PAGE, "page", None, TITLE, None)])
                restorer = Restorer(NotionWrites(gateway), index, SnapshotSource(tmp_path / "snap"), root)
                (planned,) = index.objects()
                with pytest.raises(WriteUnknown, match="no answer within 1 s"):
                    await restorer.create(planned)
                assert emulator.workspace_summary()["created"]["pages"] == 0  # not landed yet
                # Temporal's retry of the range: the same step, which looks before it sends.
                await restorer.create(planned)
                (planned,) = index.objects()
                await restorer.fill(planned)
                adopted = index.new_id(PAGE)
            await _all_landed(emulator)
            children = [b async for b in gateway.children(root)]
        created = emulator.workspace_summary()["created"]
    assert [c["id"] for c in children if c["type"] == "child_page"] == [adopted]
    assert created["pages"] == 1 and created["blocks_by_type"] == {"divider": 1}
