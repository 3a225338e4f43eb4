"""Saved blocks turned into create requests: pure functions, no Notion, no Temporal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notion_sync.restore.blocks import (
    MAX_CHILDREN,
    MAX_TEXT,
    Targets,
    creatable_blocks,
    split_for_append,
)
from tests.convert.convert_helpers import (
    RECORDINGS,
    block,
    block_trees,
    cassette_paths,
    mention,
    para,
    text,
)

JSON = dict[str, Any]
# ("id" stays legitimately in mentions, links and uploads; blocks must not carry one, see _ids.)
READ_ONLY = {"object", "created_time", "last_edited_time", "created_by", "last_edited_by", "parent"}
READ_ONLY |= {"has_children", "archived", "in_trash", "plain_text", "href", "request_id"}


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def _ids(blocks: list[JSON]) -> list[str]:
    return [b["id"] for b in blocks if "id" in b] + [
        i for b in blocks for i in _ids(b[b["type"]].get("children", []))
    ]


def _depth(blocks: list[JSON]) -> int:
    return max((1 + _depth(b[b["type"]].get("children", [])) for b in blocks), default=0)


def test_text_blocks_keep_style_and_drop_what_notion_sets() -> None:
    styled = [text("bold", bold=True), text("link", href="https://example.com")]
    saved = [para(*styled, kind="to_do", checked=True)]
    converted = creatable_blocks(saved, Targets())
    assert converted.losses == []
    (created,) = converted.blocks
    assert created["type"] == "to_do" and created["to_do"]["checked"] is True
    first, second = created["to_do"]["rich_text"]
    assert first["annotations"]["bold"] is True and first["text"]["content"] == "bold"
    assert second["text"]["link"] == {"url": "https://example.com"}
    assert not _keys(converted.blocks) & READ_ONLY


def test_long_text_is_split_into_items_of_2000_characters() -> None:
    content = "x" * (2 * MAX_TEXT + 500)
    (created,) = creatable_blocks([para(text(content, italic=True))], Targets()).blocks
    items = created["paragraph"]["rich_text"]
    assert [len(i["text"]["content"]) for i in items] == [MAX_TEXT, MAX_TEXT, 500]
    assert all(i["annotations"]["italic"] for i in items)
    assert "".join(i["text"]["content"] for i in items) == content


def test_more_than_100_rich_text_items_are_joined_and_reported() -> None:
    converted = creatable_blocks([para(*[text(f"{n} ") for n in range(150)])], Targets())
    items = converted.blocks[0]["paragraph"]["rich_text"]
    assert len(items) == 100
    assert "".join(i["text"]["content"] for i in items) == "".join(f"{n} " for n in range(150))
    assert [loss.kind for loss in converted.losses] == ["rich_text"]


def test_blocks_the_api_cannot_create_leave_a_visible_callout_and_a_loss() -> None:
    saved = [
        block("unsupported", {"block_type": "ai_block"}, block_id="b1"),
        block("link_preview", {"url": "https://github.com/x"}, block_id="b2"),
        block("image", {"type": "file", "file": {"url": "https://files/expired.png"}}, block_id="b3"),
    ]
    converted = creatable_blocks(saved, Targets())
    assert [b["type"] for b in converted.blocks] == ["callout"] * 3
    assert "ai_block" in converted.blocks[0]["callout"]["rich_text"][0]["text"]["content"]
    assert [(loss.block_id, loss.kind) for loss in converted.losses] == [
        ("b1", "ai_block"),
        ("b2", "link_preview"),
        ("b3", "image"),
    ]


def test_files_are_restored_from_their_uploads_and_external_ones_stay_external() -> None:
    saved = [
        block("image", {"type": "file", "file": {"url": "https://files/a.png"}, "caption": [text("A")]}),
        block("pdf", {"type": "external", "external": {"url": "https://example.com/b.pdf"}}),
    ]
    converted = creatable_blocks(saved, Targets(uploads={"https://files/a.png": "upload-1"}))
    image, pdf = converted.blocks
    assert image["image"]["type"] == "file_upload" and image["image"]["file_upload"] == {"id": "upload-1"}
    assert image["image"]["caption"][0]["text"]["content"] == "A"
    assert pdf["pdf"] == {"type": "external", "external": {"url": "https://example.com/b.pdf"}, "caption": []}


def test_ids_inside_the_restored_set_are_remapped_and_unknown_users_become_text() -> None:
    old_page, new_page = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    saved = [
        para(
            mention("page", {"id": old_page}, "Target"),
            mention("user", {"id": "u-gone"}, "@Ada"),
            text("link", href=f"https://www.notion.so/Target-{old_page.replace('-', '')}"),
        ),
        block("link_to_page", {"type": "page_id", "page_id": old_page}),
        block("synced_block", {"synced_from": {"block_id": "orig-old"}}),
    ]
    targets = Targets(ids={old_page: new_page, "orig-old": "orig-new"}, users=frozenset({"u-here"}))
    paragraph, link, synced = creatable_blocks(saved, targets).blocks
    page_mention, user, href = paragraph["paragraph"]["rich_text"]
    assert page_mention["mention"] == {"type": "page", "page": {"id": new_page}}
    assert user["type"] == "text" and user["text"]["content"] == "@Ada"
    assert href["text"]["link"]["url"] == f"/{new_page.replace('-', '')}"
    assert link["link_to_page"] == {"type": "page_id", "page_id": new_page}
    assert synced["synced_block"] == {"synced_from": {"block_id": "orig-new"}}


def test_children_pages_and_databases_are_left_to_be_created_as_objects() -> None:
    saved = [para("a"), block("child_page", {"title": "Sub"}), block("child_database", {"title": "DB"})]
    assert [b["type"] for b in creatable_blocks(saved, Targets()).blocks] == ["paragraph"]


def test_appends_hold_100_blocks_and_two_levels_and_defer_the_rest_whole() -> None:
    deep = para("1", children=[para("2", children=[para("3", children=[para("4")])])])
    wide = para("w", children=[para(f"c{n}") for n in range(MAX_CHILDREN + 1)])
    halves = [block("column", {}, [para("left")]), block("column", {}, [para("right")])]
    columns = block("column_list", {}, halves)
    in_toggle = para("t", kind="toggle", children=[columns])
    saved = [deep, wide, in_toggle] + [para(str(n)) for n in range(2 * MAX_CHILDREN)]
    created = creatable_blocks(saved, Targets()).blocks
    requests = split_for_append(created)
    assert [len(r.blocks) for r in requests] == [100, 100, 3]
    first = requests[0]
    assert _depth(first.blocks) == 3  # the request's blocks and two levels of children
    assert first.deferred[(0, 0, 0)][0]["paragraph"]["rich_text"][0]["text"]["content"] == "4"
    assert len(first.deferred[(1,)]) == MAX_CHILDREN + 1  # a list over 100 goes whole, in order
    # A column list needs two levels of its own: under a toggle it is appended once the toggle exists.
    assert first.deferred[(2,)][0]["type"] == "column_list"
    top_columns = split_for_append(creatable_blocks([columns], Targets()).blocks)[0]
    assert top_columns.deferred == {} and _depth(top_columns.blocks) == 3


def _recorded_trees() -> list[tuple[str, list[JSON]]]:
    return [
        (f"{path.relative_to(RECORDINGS)}:{parent}", blocks)
        for path in cassette_paths()
        for parent, blocks in block_trees(path).items()
    ]


@pytest.mark.parametrize("name, blocks", _recorded_trees(), ids=lambda v: v if isinstance(v, str) else "")
def test_recorded_blocks_convert_to_valid_requests(name: str, blocks: list[JSON]) -> None:
    converted = creatable_blocks(blocks, Targets())
    assert not _keys(converted.blocks) & READ_ONLY and not _ids(converted.blocks), name
    for request in split_for_append(converted.blocks):
        assert len(request.blocks) <= MAX_CHILDREN and _depth(request.blocks) <= 3
    # Mentions the API cannot create (link previews, users of another workspace) stay as text.
    lost = {loss.kind for loss in converted.losses if not loss.kind.endswith(" mention")}
    # Only what the API cannot create, files whose copy was not uploaded, or synced references whose
    # original is not restored (no targets here), is lost.
    assert lost <= {"unsupported", "link_preview", "template", "image", "file", "pdf", "video", "audio"} | {
        "synced_block",
        "ai_block",
        "button",
        "transcription",
        "meeting_notes",
        "tab",
        "child_tab",
        "rich_text",
    }, (name, lost)


def test_recordings_hold_block_trees() -> None:
    assert len(_recorded_trees()) > 10 and Path(RECORDINGS).is_dir()


def test_tables_and_columns_go_with_their_first_hundred_children() -> None:
    rows = [block("table_row", {"cells": [[text(str(n))]]}) for n in range(MAX_CHILDREN + 50)]
    table = block("table", {"table_width": 1}, rows)
    tall = [
        block("column", {}, [para(f"c{n}") for n in range(MAX_CHILDREN + 1)]),
        block("column", {}, [para("r")]),
    ]
    columns = block("column_list", {}, tall)
    (request,) = split_for_append(creatable_blocks([table, columns], Targets()).blocks)
    sent_table, sent_columns = request.blocks
    # Notion refuses a table without its rows: the first hundred go with it, the rest after them.
    assert len(sent_table["table"]["children"]) == MAX_CHILDREN and request.sent[(0,)] == MAX_CHILDREN
    assert request.deferred[(0,)][0]["table_row"]["cells"][0][0]["text"]["content"] == "100"
    assert len(request.deferred[(0,)]) == 50
    left, right = sent_columns["column_list"]["children"]
    assert len(left["column"]["children"]) == MAX_CHILDREN and len(request.deferred[(1, 0)]) == 1
    assert request.sent[(1, 0)] == MAX_CHILDREN and len(right["column"]["children"]) == 1


def test_a_child_page_inside_a_toggle_is_reported_as_moved_to_the_end_of_its_page() -> None:
    inner = block("child_page", {"title": "Inside"}, block_id="inner-page")
    converted = creatable_blocks([para("t", kind="toggle", children=[para("kept"), inner])], Targets())
    (toggle,) = converted.blocks
    assert [b["type"] for b in toggle["toggle"]["children"]] == ["paragraph"]
    assert [(loss.block_id, loss.kind) for loss in converted.losses] == [("inner-page", "child_page")]
    assert "end of its parent page" in converted.losses[0].what
