"""A restore's plan, read from a snapshot's manifest: parents first, rows in order, gaps reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from notion_sync.models import ManifestHeader, ManifestObject
from notion_sync.restore.index import RestoreIndex
from notion_sync.restore.plan import PlanError, plan_restore
from notion_sync.snapshot import write_manifest_line


def _manifest(path: Path, objects: list[tuple[str, str, str | None, str | None, str]]) -> Path:
    """(id, type, parent, created_time, status) rows, written sorted by id as the exporter does."""
    with path.open("wb") as stream:
        write_manifest_line(stream, ManifestHeader(objects=len(objects)))
        for object_id, kind, parent, created, status in sorted(objects):
            entry = ManifestObject(
                id=object_id,
                type=kind,
                title=object_id.upper(),
                created_time=created,
                last_edited_time=None,
                parent=parent,
                path=f"{object_id}.md",
                status=status,
                reason="restricted" if status != "exported" else None,
            )
            write_manifest_line(stream, entry)
    return path


WORKSPACE = [
    ("root", "page", None, "2026-01-01", "exported"),
    ("child", "page", "root", "2026-01-02", "exported"),
    ("grandchild", "page", "child", "2026-01-03", "exported"),
    ("db", "database", "root", "2026-01-02", "exported"),
    ("ds", "data_source", "db", "2026-01-02", "exported"),
    ("row-b", "page", "ds", "2026-01-05", "exported"),
    ("row-a", "page", "ds", "2026-01-04", "exported"),
    ("hidden", "page", "root", "2026-01-02", "skipped"),
    ("other", "page", None, "2026-01-01", "exported"),
    ("loop-1", "page", "loop-2", None, "exported"),
    ("loop-2", "page", "loop-1", None, "exported"),
]


def test_parents_come_before_children_and_rows_keep_their_order(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "manifest.jsonl", WORKSPACE)
    with RestoreIndex(tmp_path / "restore.sqlite") as index:
        counts = plan_restore(manifest, (), index)
        order = [o.id for o in index.objects()]
        losses = list(index.losses())
    assert order.index("root") < order.index("child") < order.index("grandchild")
    assert order.index("db") < order.index("ds") < order.index("row-a") < order.index("row-b")
    assert "other" in order and "hidden" not in order
    # A parent loop has no root: nothing of it is planned, and nothing loops.
    assert "loop-1" not in order
    assert [(loss.block_id, loss.kind) for loss in losses] == [("hidden", "page")]
    assert (counts.pages, counts.databases, counts.data_sources, counts.unrestorable) == (6, 1, 1, 1)


def test_a_page_and_its_subtree_by_id_or_path(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "manifest.jsonl", WORKSPACE)
    with RestoreIndex(tmp_path / "a.sqlite") as index:
        plan_restore(manifest, ["child"], index)
        assert [o.id for o in index.objects()] == ["child", "grandchild"]
    with RestoreIndex(tmp_path / "b.sqlite") as index:
        plan_restore(manifest, ["db.md"], index)
        assert [o.id for o in index.objects()] == ["db", "ds", "row-a", "row-b"]
    with RestoreIndex(tmp_path / "c.sqlite") as index, pytest.raises(PlanError, match="no page 'nope'"):
        plan_restore(manifest, ["nope"], index)


def test_planning_again_keeps_progress(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "manifest.jsonl", WORKSPACE)
    with RestoreIndex(tmp_path / "restore.sqlite") as index:
        plan_restore(manifest, (), index)
        index.set_state("root", "done")
        plan_restore(manifest, (), index)
        assert index.count("done") == 1 and index.count() == 8


def test_an_unreadable_manifest_is_a_plan_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text("not json\n")
    with RestoreIndex(tmp_path / "restore.sqlite") as index, pytest.raises(PlanError, match="unreadable"):
        plan_restore(tmp_path / "manifest.jsonl", (), index)


def test_pages_given_child_first_are_planned_parent_first(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "manifest.jsonl", WORKSPACE)
    with RestoreIndex(tmp_path / "restore.sqlite") as index:
        counts = plan_restore(manifest, ["grandchild", "child", "db"], index)
        order = [o.id for o in index.objects()]
    assert order.index("child") < order.index("grandchild")
    assert sorted(order) == ["child", "db", "ds", "grandchild", "row-a", "row-b"]
    assert (counts.pages, counts.databases, counts.data_sources) == (4, 1, 1)
