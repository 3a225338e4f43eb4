"""Export a workspace, restore it into an empty one, export that: the two exports agree (after the
normaliser in `roundtrip.py`), every page exists exactly once, and a subtree restores alone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from notion_sync.models import RestoreInput, RestoreReport
from notion_sync.settings import Settings
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.restore.roundtrip import Normaliser, Survival, compare_blocks, load_losses, load_mapping
from workflows.restore import RestoreWorkflow

SEED = 11
# Every block type the API can create, and that the generated workspace holds.
CREATABLE_BLOCKS = {
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "quote",
    "to_do",
    "toggle",
    "callout",
    "code",
    "equation",
    "divider",
    "breadcrumb",
    "table_of_contents",
    "bookmark",
    "embed",
    "image",
    "video",
    "pdf",
    "file",
    "audio",
    "table",
    "table_row",
    "column_list",
    "column",
    "synced_block",
    "child_page",
    "child_database",
}


async def restore_and_wait(client: Client, settings: Settings, **fields: Any) -> RestoreReport:
    request = RestoreInput(workspace=settings.workspace, **fields)
    handle = await client.start_workflow(
        RestoreWorkflow.run, request, id=f"restore-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
    )
    return await handle.result()


def _saved(snapshot: Path, kind: str, object_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((snapshot / f"json/{kind}/{object_id}.json").read_bytes())
    return data


def _manifest(snapshot: Path) -> list[dict[str, Any]]:
    lines = (snapshot / "manifest.jsonl").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]


async def test_round_trip_through_an_empty_workspace(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=60, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    async with emulator_and_worker(pages=0, seed=SEED, state_dir=tmp_path / "state-b") as (target, settings):
        root = target.workspace_summary()["root_page_id"]
        report = await restore_and_wait(temporal_client, settings, source=str(tmp_path / "a"), target=root)
        created = target.workspace_summary()["created"]
        await export_and_wait(temporal_client, settings, tmp_path / "b")
    assert report.status == "completed" and report.mapping_path and report.report_path
    before, after = (tmp_path / "a" / "current").resolve(), (tmp_path / "b" / "current").resolve()
    mapping = load_mapping(Path(report.mapping_path))
    losses = load_losses(Path(report.report_path).parent / "losses.jsonl")
    norm = Normaliser(mapping)
    blocks, props = Survival(), Survival()
    old_pages = [e for e in _manifest(before) if e["type"] == "page" and e["status"] == "exported"]

    # Exactly once: one page created per page of the snapshot, nothing created twice and trashed.
    assert created["pages"] == len(old_pages) == report.counts.pages
    assert created["databases"] == report.counts.databases and created["trashed"] == 0
    assert created["live_blocks"] == created["blocks"]

    for entry in old_pages:
        old = _saved(before, "pages", entry["id"])
        new = _saved(after, "pages", mapping[entry["id"]])
        for name, value in norm.properties(old["page"], mapped=False).items():
            kind = name.rsplit("(", 1)[-1].rstrip(")")
            props.seen[kind] += 1
            got = norm.properties(new["page"], mapped=True).get(name)
            if got == value:
                props.exact[kind] += 1
            else:
                props.unexplained.append((kind, entry["id"], f"{name}: {value} != {got}"))
        compare_blocks(norm, old["blocks"], new["blocks"], losses, blocks)
        texts = ["".join(r["plain_text"] for r in c["rich_text"]) for c in new["comments"]]
        for comment in old["comments"]:
            original = "".join(r["plain_text"] for r in comment["rich_text"])
            assert any(text.startswith("Originally by") and original in text for text in texts)

    print("\nblock types restored exactly:", ", ".join(blocks.survived()))
    print("block types with reported losses (exact/seen):", blocks.describe(blocks.degraded()))
    print("property types restored exactly:", ", ".join(props.survived()))
    print("property types degraded:", props.describe(props.degraded()))
    # Every block that differs had its loss reported (an API limit: a link preview, an unsupported
    # block, a link to a page outside the snapshot), and every creatable type came back.
    assert not blocks.unexplained, blocks.unexplained[:5]
    assert CREATABLE_BLOCKS & set(blocks.seen) <= {kind for kind in blocks.seen if blocks.exact[kind]}
    assert CREATABLE_BLOCKS - {"link_to_page", "paragraph"} & set(blocks.seen) <= set(blocks.survived())
    # People survive (same users), statuses by name; only what the API computes is left out.
    assert not props.unexplained, props.unexplained[:5]


async def test_restore_of_one_page_subtree(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    snapshot = (tmp_path / "a" / "current").resolve()
    entries = _manifest(snapshot)
    children: dict[str, list[str]] = {}
    for e in entries:
        children.setdefault(e["parent"], []).append(e["id"])
    # A page with child pages, and everything below it.
    root = next(e for e in entries if e["type"] == "page" and children.get(e["id"]))
    below, todo = set(), [root["id"]]
    while todo:
        current = todo.pop()
        below.add(current)
        todo.extend(children.get(current, []))
    async with emulator_and_worker(pages=0, seed=SEED, state_dir=tmp_path / "state-b") as (target, settings):
        parent = target.workspace_summary()["root_page_id"]
        report = await restore_and_wait(
            temporal_client, settings, source=str(tmp_path / "a"), target=parent, pages=[root["path"]]
        )
        created = target.workspace_summary()["created"]
    assert report.status == "completed" and report.mapping_path
    mapping = load_mapping(Path(report.mapping_path))
    restored = {old for old in mapping if old in {e["id"] for e in entries}}
    assert restored == {e["id"] for e in entries if e["id"] in below and e["status"] == "exported"}
    assert created["pages"] == sum(1 for e in entries if e["id"] in below and e["type"] == "page")


async def test_restore_into_a_workspace_with_other_users(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    async with emulator_and_worker(pages=0, seed=SEED + 1, state_dir=tmp_path / "state-b") as (
        target,
        settings,
    ):
        root = target.workspace_summary()["root_page_id"]
        report = await restore_and_wait(temporal_client, settings, source=str(tmp_path / "a"), target=root)
        await export_and_wait(temporal_client, settings, tmp_path / "b")
    assert report.status == "completed" and report.report_path and report.mapping_path
    losses = [json.loads(line) for line in (Path(report.report_path).parent / "losses.jsonl").open()]
    people = [loss for loss in losses if loss["what"].startswith("people not in this workspace")]
    assert people
    mapping = load_mapping(Path(report.mapping_path))
    after = (tmp_path / "b" / "current").resolve()
    for loss in people:
        row = _saved(after, "pages", mapping[loss["id"]])
        comments = ["".join(r["plain_text"] for r in c["rich_text"]) for c in row["comments"]]
        # The names stay readable, in a comment on the row; no person is set who was not there.
        assert any("people not in this workspace" in text for text in comments)
        for prop in row["page"]["properties"].values():
            assert prop["type"] != "people" or not prop["people"]
    # Comment authors are named from the snapshot's users, not by id.
    before = (tmp_path / "a" / "current").resolve()
    users = {u["name"] for u in json.loads((before / "json" / "users.json").read_bytes())["users"]}
    texts = [
        "".join(r["plain_text"] for r in c["rich_text"])
        for entry in _manifest(after)
        if entry["type"] == "page"
        for c in _saved(after, "pages", entry["id"])["comments"]
    ]
    assert any(text.startswith(f"Originally by {name} at ") for text in texts for name in users)
