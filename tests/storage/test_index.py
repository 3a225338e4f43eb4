"""The export index on its own: what discovery records, the ranges export reads, done marking, ids it
refuses, and the counts the shrink guard reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notion_sync.models import ManifestFile
from notion_sync.storage.index import ExportIndex

# (id, kind, parent id, title, JSON), as discovery hands listed objects to the index.
Entry = tuple[str, str, str | None, str, dict[str, Any]]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExportIndex]:
    with ExportIndex(tmp_path / "run" / "index.sqlite") as opened:
        yield opened


def _id() -> str:
    return str(uuid.uuid4())


def _page(object_id: str, title: str = "A page", edited: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {
        "object": "page",
        "id": object_id,
        "created_time": "2025-12-01T00:00:00.000Z",
        "last_edited_time": edited,
        "properties": {"title": title},
    }


def test_an_object_is_recorded_once_and_a_stub_is_filled_in(index: ExportIndex) -> None:
    parent, stub = _id(), _id()
    assert index.add(parent, "page", None, "Parent", _page(parent, "Parent"))
    # Seen again (another listing): the first answer stays.
    assert not index.add(parent, "page", None, "Renamed", _page(parent, "Renamed"))
    # Known only by reference first (a child_page block), fetched later.
    assert index.add(stub, "page", parent, "", None)
    assert index.stubs(10) == [(stub, "page", parent)]
    assert index.add(stub, "page", parent, "Child", _page(stub, "Child"))
    assert index.stubs(10) == []
    recorded = index.get(parent)
    assert recorded is not None and recorded.title == "Parent" and recorded.raw == _page(parent, "Parent")
    assert recorded.status == "pending" and recorded.last_edited_time == "2026-01-01T00:00:00.000Z"
    child = index.get(stub)
    assert child is not None and child.raw is not None and child.parent_id == parent
    assert [obj.id for obj in index.children(parent)] == [stub]
    assert index.count() == 2


def test_a_listing_counts_new_objects_and_a_changes_listing_replaces_what_was_carried_over(
    index: ExportIndex,
) -> None:
    carried, fresh = _id(), _id()
    assert index.seed([(carried, "page", None, "Old title", _page(carried, "Old title"))]) == 1
    listed: list[Entry] = [
        (carried, "page", None, "New title", _page(carried, "New title", edited="2026-02-01T00:00:00.000Z")),
        (fresh, "page", None, "Fresh", _page(fresh, "Fresh")),
    ]
    assert index.add_all(listed, replace=True) == 1, "only `fresh` is new to this run"
    refreshed = index.get(carried)
    assert refreshed is not None and refreshed.title == "New title"
    assert refreshed.last_edited_time == "2026-02-01T00:00:00.000Z"
    # A full listing (no replace) never overwrites an object it already holds.
    assert index.add_all([(fresh, "page", None, "Other", _page(fresh, "Other"))], replace=False) == 0
    kept = index.get(fresh)
    assert kept is not None and kept.title == "Fresh"


def test_ids_that_are_not_notions_never_enter_and_are_reported(index: ExportIndex) -> None:
    good = _id()
    hostile = "../../" + "x" * 200
    assert not index.add(hostile, "page", None, "Evil", _page(hostile))
    assert not index.refresh("not-a-uuid", "page", None, "Evil", _page("not-a-uuid"))
    assert (
        index.add_all(
            [("1234", "page", None, "", _page("1234")), (good, "page", None, "", _page(good))], False
        )
        == 1
    )
    # "users" names the users listing, and nothing else.
    assert index.add("users", "users", None, "Users", None)
    assert not index.add("users", "page", None, "Users", None)
    assert {obj_id for obj_id, *_ in index.manifest_rows()} == {good, "users"}
    problems = {object_id: (kind, reason) for object_id, kind, reason in index.problems()}
    assert set(problems) == {hostile[:100], "not-a-uuid", "1234", "users"}
    assert all(reason == "not a Notion id: the object was left out" for _, reason in problems.values())
    assert problems["users"][0] == "page"
    # Compact (dashless) ids are Notion's too.
    compact = uuid.uuid4().hex
    assert index.add(compact, "page", None, "", _page(compact))


def test_export_reads_placed_pending_objects_by_seq_range_and_skips_done_ones(index: ExportIndex) -> None:
    ids = [_id() for _ in range(5)]
    for n, object_id in enumerate(ids):
        index.add(object_id, "page", None, f"Page {n}", _page(object_id))
    assert index.max_seq() == 5
    for object_id in ids[:4]:
        index.place(object_id, f"{object_id}.md", object_id)
    assert [obj.seq for obj in index.batch(2, 5)] == [2, 3, 4], "seq 5 is not placed yet"
    index.skip(ids[2], "404 object_not_found")
    index.finish(ids[1], [ManifestFile(path=f"{ids[1]}.md", sha256="ab" * 32, size=12)])
    # A retried batch: what is done or skipped is not handed out again, but still counts.
    assert [obj.id for obj in index.batch(1, 5)] == [ids[0], ids[3]]
    assert index.outcomes_between(1, 5) == {"exported": 1, "skipped": 1}
    assert index.outcomes_between(4, 5) == {}
    # Discovery's own skips come before layout: an unplaced object is not the range's outcome.
    index.skip(ids[4], "in trash")
    assert index.outcomes_between(5, 5) == {}
    done = index.get(ids[1])
    assert done is not None and done.status == "exported"
    skipped = index.get(ids[2])
    assert skipped is not None and skipped.status == "skipped"
    # Refreshing an object keeps its place in the ranges.
    index.refresh(ids[0], "page", None, "Renamed", _page(ids[0], "Renamed"))
    refreshed = index.get(ids[0])
    assert refreshed is not None and refreshed.seq == 1
    assert [obj.id for obj in index.by_kind("page", 4, 10)] == [ids[3], ids[4]]


def test_finishing_a_page_records_its_downloads_in_the_same_commit(index: ExportIndex) -> None:
    page = _id()
    index.add(page, "page", None, "Page", _page(page))
    image = ManifestFile(path=f"files/{page}/image.png", sha256="cd" * 32, size=2048)
    markdown = ManifestFile(path="Page.md", sha256="ef" * 32, size=10)
    index.finish(page, [markdown, image], downloads=[(image, ["https://s3/image.png?sig=1", "https://s3/b"])])
    assert index.downloads([image.path, "files/other.png"]) == {image.path: image}
    assert index.file_path("https://s3/image.png?sig=1") == image.path == index.file_path("https://s3/b")
    assert index.file_path("https://s3/unknown") is None
    rows = {row[0]: row for row in index.manifest_rows()}
    assert rows[page][7] == "exported" and image.path in rows[page][9]


def test_a_failed_transaction_leaves_nothing_behind(index: ExportIndex) -> None:
    page = _id()
    with pytest.raises(RuntimeError), index.transaction():
        index.add(page, "page", None, "Page", _page(page))
        raise RuntimeError("interrupted")
    assert not index.contains(page)


def test_the_shrink_guard_counts_previous_and_listed_objects_not_exported(index: ExportIndex) -> None:
    exported, forbidden, trashed, vanished, found_now = _id(), _id(), _id(), _id(), _id()
    # The previous snapshot held four objects.
    index.load_previous([(exported, "t1"), (forbidden, "t1"), (trashed, "t1"), (vanished, "t1")])
    listing: list[Entry] = [
        (object_id, "page", None, name, _page(object_id))
        for object_id, name in (
            (exported, "Exported"),
            (forbidden, "Forbidden"),
            (trashed, "Trashed"),
            (found_now, "Found now"),
        )
    ]
    index.add_all(listing, replace=False)
    index.finish(exported, [])
    index.skip(forbidden, "403 restricted_resource")
    index.skip(trashed, "in trash")
    # `found_now` was listed but never reached; `vanished` was not listed at all.
    lost, examples = index.lost(examples=5)
    assert (lost, examples) == (2, ["Forbidden", "Found now"])
    assert index.removed() == 2, "vanished, and the trashed page"
    assert index.measured() == 4
    index.load_previous([(_id(), None) for _ in range(3)])
    assert index.measured() == 7, "the previous snapshot is larger than the listing now"
    assert index.previous_edit(exported) == "t1" and index.previous_edit(found_now) is None
