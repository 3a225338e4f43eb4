"""Finding what a create whose answer was lost made, against the emulator: titles and comments with
mentions (Notion shows a mention as its target's name, which the restore cannot know) are found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.exporter.context import open_gateway
from notion_sync.notion.gateway import JSON
from notion_sync.notion.writes import NotionWrites
from notion_sync.restore import recover
from notion_sync.restore.index import Intent, RestoreIndex
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
