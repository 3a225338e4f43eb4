"""Column lists and tables nested inside a column (deeper than one request may go) restored whole,
counted in the emulator's store, also when a retry runs again; and a restored database's views
reported lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.exporter.context import open_gateway
from notion_sync.models import RestoreCounts, RestoreReport, RestoreStep
from notion_sync.notion.gateway import JSON, NotionGateway
from notion_sync.notion.writes import NotionWrites
from notion_sync.restore import run
from notion_sync.restore.blocks import FILLER, Targets, creatable_blocks, split_for_append
from notion_sync.restore.engine import Restorer
from notion_sync.restore.index import RestoreIndex
from notion_sync.restore.source import SnapshotSource
from tests.convert.convert_helpers import block, para
from tests.export.harness import worker_settings

PAGE, DATABASE, SOURCE = (f"a0000000-0000-4000-8000-00000000000{n}" for n in (4, 5, 6))


def _table(*rows: str) -> JSON:
    cells = [
        block("table_row", {"cells": [[{"type": "text", "text": {"content": r}, "plain_text": r}]]})
        for r in rows
    ]
    return block("table", {"table_width": 1, "has_column_header": False, "has_row_header": False}, cells)


def _columns(*columns: list[JSON]) -> JSON:
    return block("column_list", {}, [block("column", {}, list(content)) for content in columns])


def _nested_page() -> list[JSON]:
    """column_list > column > (column_list > column > paragraph), and column > (paragraph, table)."""
    inner = _columns([para("inner left")], [para("inner right"), _table("deep row")])
    return [para("before"), _columns([inner, para("after inner")], [para("beside"), _table("r1", "r2")])]


def _shape(blocks: list[JSON]) -> list[Any]:
    """Types and texts of a tree, the ids and everything Notion sets left out."""
    shaped: list[Any] = []
    for b in blocks:
        body = b[b["type"]]
        texts = body.get("rich_text") or [c for cell in body.get("cells") or [] for c in cell]
        shaped.append(
            (b["type"], "".join(t.get("plain_text", "") for t in texts), _shape(b.get("children") or []))
        )
    return shaped


async def _tree(gateway: NotionGateway, parent: str) -> list[JSON]:
    tree = [b async for b in gateway.children(parent)]
    for b in tree:
        if b.get("has_children"):
            b["children"] = await _tree(gateway, b["id"])
    return tree


def test_a_column_starting_with_a_column_list_goes_with_a_filler() -> None:
    (request,) = split_for_append(creatable_blocks(_nested_page(), Targets()).blocks)
    outer = request.blocks[1]["column_list"]["children"]
    # The first column starts with a column list (too deep): a filler, its content appended after.
    assert outer[0]["column"]["children"] == [FILLER] and request.fillers == {(1, 0)}
    assert [b["type"] for b in request.deferred[(1, 0)]] == ["column_list", "paragraph"]
    # The second keeps the paragraph before its table; the table follows it.
    assert [b["type"] for b in outer[1]["column"]["children"]] == ["paragraph"]
    assert request.sent[(1, 1)] == 1 and [b["type"] for b in request.deferred[(1, 1)]] == ["table"]


async def test_columns_and_tables_nested_in_columns_are_restored_whole(tmp_path: Path) -> None:
    blocks = _nested_page()
    title = {"id": "title", "type": "title", "title": [{"type": "text", "text": {"content": "Nested"}}]}
    saved = {
        "page": {"id": PAGE, "parent": {"type": "workspace"}, "properties": {"title": title}},
        "blocks": blocks,
    }
    (tmp_path / "snap" / "json" / "pages").mkdir(parents=True)
    (tmp_path / "snap" / "json" / "pages" / f"{PAGE}.json").write_text(json.dumps(saved))
    with EmulatorProcess(pages=0, seed=7) as emulator:
        root = emulator.workspace_summary()["root_page_id"]
        async with open_gateway(worker_settings(emulator, tmp_path / "state")) as (gateway, _http):
            with RestoreIndex(tmp_path / "restore.sqlite") as index:
                index.add_objects([(1, PAGE, "page", None, "Nested", None)])
                restorer = Restorer(NotionWrites(gateway), index, SnapshotSource(tmp_path / "snap"), root)
                (planned,) = index.objects()
                await restorer.create(planned)
                (planned,) = index.objects()
                await restorer.fill(planned)
                new = index.new_id(PAGE)
                losses = list(index.losses())
            # The worker killed after the filler was trashed, before that was recorded: the retry
            # trashes the filler again, no other block (the filler is no longer listed).
            with sqlite3.connect(tmp_path / "restore.sqlite") as db:
                db.execute("DELETE FROM steps WHERE key LIKE '%:filler trashed'")
                db.execute("UPDATE objects SET state = 'created'")
            with RestoreIndex(tmp_path / "restore.sqlite") as index:
                restorer = Restorer(NotionWrites(gateway), index, SnapshotSource(tmp_path / "snap"), root)
                (planned,) = index.objects()
                await restorer.fill(planned)
            assert new is not None
            restored = await _tree(gateway, new)
        created = emulator.workspace_summary()["created"]
    assert losses == [] and _shape(restored) == _shape(blocks)
    # Exactly the page's 16 blocks, and the one filler paragraph, trashed once the content was there.
    assert created["blocks_by_type"] == {
        "column": 4,
        "column_list": 2,
        "paragraph": 6,
        "table": 2,
        "table_row": 3,
    }
    assert created["live_blocks"] == 16 and created["trashed"] == 1


async def test_a_restored_database_reports_its_views_lost(tmp_path: Path) -> None:
    name = [{"type": "text", "text": {"content": "Tasks"}, "plain_text": "Tasks"}]
    database = {"id": DATABASE, "title": name, "data_sources": [{"id": SOURCE, "name": "Tasks"}]}
    source = {
        "id": SOURCE,
        "title": name,
        "properties": {"Name": {"id": "title", "type": "title", "title": {}}},
    }
    for folder, saved in (("databases", database), ("data_sources", source)):
        (tmp_path / "snap" / "json" / folder).mkdir(parents=True)
        (tmp_path / "snap" / "json" / folder / f"{saved['id']}.json").write_text(json.dumps(saved))
    with EmulatorProcess(pages=0, seed=7) as emulator:
        root = emulator.workspace_summary()["root_page_id"]
        settings = worker_settings(emulator, tmp_path / "state")
        step = RestoreStep(restore_id="r", source=str(tmp_path / "snap"), target=root)
        async with open_gateway(settings) as (gateway, _http):
            with RestoreIndex(run.restore_dir(settings, "r") / "restore.sqlite") as index:
                index.add_objects([(1, DATABASE, "database", None, "Tasks", None)])
                restorer = Restorer(NotionWrites(gateway), index, SnapshotSource(tmp_path / "snap"), root)
                (planned,) = index.objects()
                await restorer.create(planned)
    report = run.write_report(
        settings, step, RestoreReport(restore_id="r", status="completed", target=root, counts=RestoreCounts())
    )
    assert report.report_path is not None
    losses = [json.loads(line) for line in (Path(report.report_path).parent / "losses.jsonl").open()]
    assert [(loss["id"], loss["kind"]) for loss in losses] == [(DATABASE, "views")]
    assert "cannot create views" in losses[0]["what"]
