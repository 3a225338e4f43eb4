"""Against the emulator: what a create whose answer was lost made is found, titles and comments with
mentions too (Notion shows a mention as its target's name, which the restore cannot know); a row
with a value Notion refuses is still created."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.exporter.context import open_gateway
from notion_sync.notion.gateway import JSON
from notion_sync.notion.writes import NotionWrites
from notion_sync.restore import recover
from notion_sync.restore.engine import Restorer
from notion_sync.restore.index import Intent, RestoreIndex
from notion_sync.restore.source import SnapshotSource
from tests.export.harness import worker_settings


def _with_mention(before: str, page: str, after: str) -> list[JSON]:
    return [
        {"type": "text", "text": {"content": before}},
        {"type": "mention", "mention": {"type": "page", "page": {"id": page}}},
        {"type": "text", "text": {"content": after}},
    ]


async def test_a_lost_page_or_comment_with_a_mention_is_found(tmp_path: Path) -> None:
    with EmulatorProcess(pages=0, seed=3) as emulator:
        root = emulator.workspace_summary()["root_page_id"]
        async with open_gateway(worker_settings(emulator, tmp_path)) as (gateway, _http):
            writes = NotionWrites(gateway)
            title = _with_mention("See ", root, " now")
            made = await writes.create_page(
                {"parent": {"type": "page_id", "page_id": root}, "properties": {"title": {"title": title}}}
            )
            comment = await writes.create_comment(made["id"], _with_mention("About ", root, "."))
            earlier = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            with RestoreIndex(tmp_path / "restore.sqlite") as index:
                intent = Intent("k", root, None, 1, earlier)
                found = await recover.find_child(writes, index, intent, "child_page", recover.shown_as(title))
                other = recover.shown_as(_with_mention("See ", root, " later"))
                missing = await recover.find_child(writes, index, intent, "child_page", other)
            listed = await gateway.comments(made["id"])
    assert found == made["id"] and missing is None
    shown = recover.shown_as(_with_mention("About ", root, "."))
    assert [c["id"] for c in listed if shown.fullmatch(recover.plain(c["rich_text"]))] == [comment["id"]]


async def test_a_row_notion_refuses_a_value_of_is_created_with_its_title(tmp_path: Path) -> None:
    row_old, source_old = "a0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"
    properties = {
        "Name": {"id": "title", "type": "title", "title": [{"type": "text", "text": {"content": "Kept"}}]},
        # Notion refuses a number that is not one: only this value is lost, not the row.
        "Score": {"id": "s", "type": "number", "number": "lots"},
    }
    saved = {"page": {"id": row_old, "parent": {"data_source_id": source_old}, "properties": properties}}
    (tmp_path / "snap" / "json" / "pages").mkdir(parents=True)
    (tmp_path / "snap" / "json" / "pages" / f"{row_old}.json").write_text(json.dumps(saved))
    with EmulatorProcess(pages=0, seed=3) as emulator:
        root = emulator.workspace_summary()["root_page_id"]
        async with open_gateway(worker_settings(emulator, tmp_path)) as (gateway, _http):
            writes = NotionWrites(gateway)
            database = await writes.create_database(
                {
                    "parent": {"type": "page_id", "page_id": root},
                    "title": [{"type": "text", "text": {"content": "DB"}}],
                    "initial_data_source": {"properties": {"Name": {"title": {}}, "Score": {"number": {}}}},
                }
            )
            source_new = database["data_sources"][0]["id"]
            with RestoreIndex(tmp_path / "restore.sqlite") as index:
                index.add_objects([(1, source_old, "data_source", None, "DB", None)])
                index.add_objects([(2, row_old, "page", source_old, "Kept", None)])
                index.map_id(source_old, source_new, "data_source")
                restorer = Restorer(writes, index, SnapshotSource(tmp_path / "snap"), root)
                (row,) = [o for o in index.objects() if o.id == row_old]
                await restorer.create(row)
                made = index.new_id(row_old)
                losses = [(loss.block_id, loss.kind) for loss in index.losses()]
            rows = (await writes.query_data_source(source_new, {}))["results"]
    assert made is not None and [r["id"] for r in rows] == [made]
    assert recover.plain(rows[0]["properties"]["Name"]["title"]) == "Kept"
    assert losses == [(row_old, "properties")]
