"""Layout on its own, over an export index: the folder tree mirrors the page tree, siblings never
collide, and objects too deep or in a parent cycle still land somewhere, reported."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notion_sync.exporter.layout import MAX_PATH_BYTES, place_objects
from notion_sync.storage.index import ExportIndex


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExportIndex]:
    with ExportIndex(tmp_path / "index.sqlite") as opened:
        yield opened


class Tree:
    """Objects added to the index in creation order, as discovery records them."""

    def __init__(self, index: ExportIndex) -> None:
        self.index = index
        self._created = 0

    def add(
        self, title: str, parent: str | None = None, kind: str = "page", object_id: str | None = None
    ) -> str:
        object_id = object_id or str(uuid.uuid4())
        self._created += 1
        raw: dict[str, Any] = {
            "object": kind,
            "id": object_id,
            "created_time": f"2026-01-01T00:00:{self._created:02d}.000Z",
        }
        assert self.index.add(object_id, kind, parent, title, raw)
        return object_id

    def path(self, object_id: str) -> str | None:
        placed = self.index.get(object_id)
        assert placed is not None
        return placed.path

    def problems(self) -> dict[str, str]:
        return {object_id: reason for object_id, _, reason in self.index.problems()}


def test_a_small_tree_is_laid_out_as_folders(index: ExportIndex) -> None:
    tree = Tree(index)
    home = tree.add("Home")
    notes = tree.add("Notes", home)
    draft = tree.add("Draft: v2?", notes)
    tasks = tree.add("Tasks", home, kind="database")
    source = tree.add("All tasks", tasks, kind="data_source")
    row = tree.add("Write tests", source)
    assert place_objects(index) == 6
    assert {object_id: tree.path(object_id) for object_id in (home, notes, draft, tasks, source, row)} == {
        home: "Home.md",
        notes: "Home/Notes.md",
        draft: "Home/Notes/Draft_ v2_.md",
        tasks: "Home/Tasks.md",
        source: "Home/Tasks/All tasks.csv",
        row: "Home/Tasks/All tasks/Write tests.md",
    }
    assert tree.problems() == {}
    # Placed once: a second pass has nothing to do.
    assert place_objects(index) == 0


def test_sibling_clashes_are_settled_by_a_suffix_from_the_objects_own_id(index: ExportIndex) -> None:
    tree = Tree(index)
    home = tree.add("Home")
    first = tree.add("Notes", home, object_id="11111111-1111-4111-8111-aaaaaaaaaaaa")
    second = tree.add("notes", home, object_id="22222222-2222-4222-8222-bbbbbbbbbbbb")
    third = tree.add("Notes", home, object_id="33333333-3333-4333-8333-cccccccccccc")
    elsewhere = tree.add("Notes")
    place_objects(index)
    # The oldest keeps the bare name; the others' names depend on nothing but their own ids.
    assert tree.path(first) == "Home/Notes.md"
    assert tree.path(second) == "Home/notes bbbbbbbb.md"
    assert tree.path(third) == "Home/Notes cccccccc.md"
    assert tree.path(elsewhere) == "Notes.md", "a clash is only among siblings"


def test_the_notion_layout_names_every_object_with_its_id(index: ExportIndex) -> None:
    tree = Tree(index)
    home = tree.add("Home", object_id="44444444-4444-4444-8444-dddddddddddd")
    child = tree.add("Home", home, object_id="55555555-5555-4555-8555-eeeeeeeeeeee")
    place_objects(index, layout="notion")
    assert tree.path(home) == "Home 44444444444444448444dddddddddddd.md"
    assert (
        tree.path(child) == "Home 44444444444444448444dddddddddddd/Home 55555555555545558555eeeeeeeeeeee.md"
    )


def test_a_path_too_deep_goes_to_the_top_level_with_its_children_and_a_problem(index: ExportIndex) -> None:
    tree = Tree(index)
    # 80-byte names and a slash each: the last level of this chain is past MAX_PATH_BYTES.
    depth = MAX_PATH_BYTES // 81 + 1
    chain = [tree.add("L" * 80)]
    while len(chain) < depth:
        chain.append(tree.add("L" * 80, chain[-1]))
    moved = chain[-1]
    below = tree.add("Below", moved)
    place_objects(index)
    assert tree.path(chain[-2]) == "/".join(["L" * 80] * (depth - 1)) + ".md"
    top = f"{'L' * 50} {moved.replace('-', '')}"
    assert tree.path(moved) == f"{top}.md"
    assert tree.path(below) == f"{top}/Below.md"
    assert tree.problems() == {
        moved: f"placed at the top level: its path would be longer than {MAX_PATH_BYTES} bytes"
    }


def test_a_parent_cycle_is_broken_at_the_top_level_and_reported(index: ExportIndex) -> None:
    tree = Tree(index)
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    tree.add("A", c, object_id=a)
    tree.add("B", a, object_id=b)
    tree.add("C", b, object_id=c)
    outside = tree.add("Outside", str(uuid.uuid4()))
    stub = str(uuid.uuid4())
    index.add(stub, "page", outside, "", None)
    assert place_objects(index) == 4
    problems = tree.problems()
    [breaker] = problems
    assert problems[breaker] == "placed at the top level: its parent chain is a cycle"
    top = tree.path(breaker)
    assert top is not None and "/" not in top and breaker.replace("-", "") in top
    # The rest of the loop hangs below the one placed at the top.
    holds = {a: b, b: c, c: a}
    titles = {a: "A", b: "B", c: "C"}
    child = holds[breaker]
    grandchild = holds[child]
    folder = top.removesuffix(".md")
    assert tree.path(child) == f"{folder}/{titles[child]}.md"
    assert tree.path(grandchild) == f"{folder}/{titles[child]}/{titles[grandchild]}.md"
    # A parent outside the export is the top level; a stub without content waits to be fetched.
    assert tree.path(outside) == "Outside.md"
    assert tree.path(stub) is None
