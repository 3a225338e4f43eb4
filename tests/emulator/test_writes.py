"""The emulator's write side, driven by the unmodified notion-client: what is created reads back in
the read shapes, Notion's limits answer 400 `validation_error` and change nothing, writes are rate
limited and counted like reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from notion_client import APIResponseError, AsyncClient
from notion_client.helpers import async_collect_paginated_api

from notion_sync.emulator.process import EmulatorProcess

JSON = dict[str, Any]


def text(content: str) -> list[JSON]:
    return [{"type": "text", "text": {"content": content}}]


def paragraph(content: str, children: list[JSON] | None = None) -> JSON:
    body: JSON = {"rich_text": text(content)}
    if children:
        body["children"] = children
    return {"object": "block", "type": "paragraph", "paragraph": body}


def plain(block: JSON) -> str:
    return "".join(part["plain_text"] for part in block[block["type"]]["rich_text"])


@pytest.fixture(scope="module")
def empty_emulator() -> Iterator[EmulatorProcess]:
    """An empty workspace: one root page the integration can edit, nothing else."""
    with EmulatorProcess(pages=0) as process:
        yield process


@pytest.fixture
async def notion(empty_emulator: EmulatorProcess) -> AsyncIterator[AsyncClient]:
    empty_emulator.configure(rate=None, burst=None)
    async with AsyncClient(
        auth=empty_emulator.token, base_url=empty_emulator.base_url, retry=False
    ) as client:
        yield client


@pytest.fixture
async def page(notion: AsyncClient, empty_emulator: EmulatorProcess) -> JSON:
    """A fresh page under the root, for one test."""
    root = empty_emulator.workspace_summary()["root_page_id"]
    created: JSON = await notion.pages.create(
        parent={"page_id": root}, properties={"title": {"title": text("Scratch")}}
    )
    return created


async def children(notion: AsyncClient, block_id: str) -> list[JSON]:
    return await async_collect_paginated_api(notion.blocks.children.list, block_id=block_id)


async def rejected(call: Any, **kwargs: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as caught:
        await call(**kwargs)
    return caught.value


def test_empty_workspace_holds_only_its_root(empty_emulator: EmulatorProcess) -> None:
    summary = empty_emulator.workspace_summary()
    with httpx.Client(base_url=empty_emulator.base_url, headers=empty_emulator.headers) as http:
        found = http.post("/v1/search", json={"filter": {"property": "object", "value": "page"}}).json()
    root_ids = [result["id"] for result in found["results"]]
    assert summary["root_page_id"] in root_ids
    assert all(result["properties"]["title"]["title"][0]["plain_text"] for result in found["results"])


async def test_page_with_icon_cover_and_nested_children_reads_back(
    notion: AsyncClient, empty_emulator: EmulatorProcess
) -> None:
    root = empty_emulator.workspace_summary()["root_page_id"]
    tree = [
        {
            "type": "toggle",
            "toggle": {
                "rich_text": text("Toggle"),
                "children": [paragraph("Inside", [paragraph("Deepest")])],
            },
        },
        {"type": "heading_2", "heading_2": {"rich_text": text("Heading"), "is_toggleable": False}},
        {"type": "code", "code": {"rich_text": text("print(1)"), "language": "python", "caption": text("c")}},
    ]
    created = await notion.pages.create(
        parent={"page_id": root},
        properties={"title": {"title": text("Restored page")}},
        icon={"type": "emoji", "emoji": "🚀"},
        cover={"type": "external", "external": {"url": "https://example.com/cover.png"}},
        children=tree,
    )
    read = await notion.pages.retrieve(page_id=created["id"])
    assert read == {**created, "request_id": read["request_id"]}
    assert read["parent"] == {"type": "page_id", "page_id": root}
    assert read["icon"] == {"type": "emoji", "emoji": "🚀"}
    assert read["cover"]["external"]["url"] == "https://example.com/cover.png"
    assert read["properties"]["title"]["title"][0]["plain_text"] == "Restored page"
    assert read["created_by"]["id"] == (await notion.users.me())["id"]

    top = await children(notion, created["id"])
    assert [block["type"] for block in top] == ["toggle", "heading_2", "code"]
    assert [block["has_children"] for block in top] == [True, False, False]
    assert top[2]["code"]["language"] == "python"
    inside = await children(notion, top[0]["id"])
    assert [plain(block) for block in inside] == ["Inside"]
    assert inside[0]["parent"] == {"type": "block_id", "block_id": top[0]["id"]}
    deepest = await children(notion, inside[0]["id"])
    assert [plain(block) for block in deepest] == ["Deepest"]
    assert (await notion.blocks.retrieve(block_id=deepest[0]["id"]))["id"] == deepest[0]["id"]
    in_root = await children(notion, root)
    assert {"type": "child_page", "title": "Restored page"} in [
        {"type": block["type"], "title": block["child_page"]["title"]} for block in in_root
    ]


async def test_append_at_start_after_a_block_and_at_the_end(notion: AsyncClient, page: JSON) -> None:
    first = await notion.blocks.children.append(
        block_id=page["id"], children=[paragraph("b"), paragraph("d")]
    )
    assert [plain(block) for block in first["results"]] == ["b", "d"]
    assert first["results"][0]["has_children"] is False
    await notion.blocks.children.append(
        block_id=page["id"], children=[paragraph("a")], position={"type": "start"}
    )
    after_b = {"type": "after_block", "after_block": {"id": first["results"][0]["id"]}}
    await notion.blocks.children.append(block_id=page["id"], children=[paragraph("c")], position=after_b)
    await notion.blocks.children.append(
        block_id=page["id"], children=[paragraph("e")], position={"type": "end"}
    )
    await notion.blocks.children.append(
        block_id=page["id"], children=[paragraph("d2")], after=first["results"][1]["id"]
    )  # the pre-2025-09-03 parameter
    assert [plain(block) for block in await children(notion, page["id"])] == ["a", "b", "c", "d", "d2", "e"]


async def test_appended_children_come_back_nested_with_only_the_first_level_echoed(
    notion: AsyncClient, page: JSON
) -> None:
    answer = await notion.blocks.children.append(
        block_id=page["id"],
        children=[
            {"type": "bulleted_list_item", "bulleted_list_item": {"rich_text": text("1"), "children": [
                {"type": "bulleted_list_item", "bulleted_list_item": {"rich_text": text("1.1"), "children": [
                    {"type": "bulleted_list_item", "bulleted_list_item": {"rich_text": text("1.1.1")}},
                ]}},
            ]}},
        ],
    )  # fmt: skip
    assert [plain(block) for block in answer["results"]] == ["1"]
    assert answer["results"][0]["has_children"] is True
    assert "children" not in answer["results"][0]["bulleted_list_item"]


async def test_synced_blocks_tables_columns_and_mentions(notion: AsyncClient, page: JSON) -> None:
    [original] = (
        await notion.blocks.children.append(
            block_id=page["id"],
            children=[
                {"type": "synced_block", "synced_block": {"synced_from": None, "children": [paragraph("S")]}}
            ],
        )
    )["results"]
    reference = {"type": "synced_block", "synced_block": {"synced_from": {"block_id": original["id"]}}}
    [duplicate] = (await notion.blocks.children.append(block_id=page["id"], children=[reference]))["results"]
    assert duplicate["has_children"] is True
    assert [plain(b) for b in await children(notion, duplicate["id"])] == ["S"]
    error = await rejected(
        notion.blocks.children.append,
        block_id=page["id"],
        children=[{"type": "synced_block", "synced_block": {"synced_from": {"block_id": duplicate["id"]}}}],
    )
    assert error.code == "validation_error"  # a duplicate of a duplicate
    row = {"type": "table_row", "table_row": {"cells": [text("a"), text("b")]}}
    mention = {"type": "mention", "mention": {"type": "page", "page": {"id": page["id"]}}}
    await notion.blocks.children.append(
        block_id=page["id"],
        children=[
            {"type": "table", "table": {"table_width": 2, "has_column_header": True, "children": [row, row]}},
            {
                "type": "column_list",
                "column_list": {
                    "children": [
                        {"type": "column", "column": {"children": [paragraph("left")]}},
                        {"type": "column", "column": {"children": [paragraph("right")]}},
                    ]
                },
            },
            {"type": "paragraph", "paragraph": {"rich_text": [mention]}},
        ],
    )
    blocks = await children(notion, page["id"])
    assert [b["type"] for b in blocks] == [
        "synced_block",
        "synced_block",
        "table",
        "column_list",
        "paragraph",
    ]
    rows = await children(notion, blocks[2]["id"])
    assert [r["table_row"]["cells"][1][0]["plain_text"] for r in rows] == ["b", "b"]
    columns = await children(notion, blocks[3]["id"])
    assert [plain((await children(notion, c["id"]))[0]) for c in columns] == ["left", "right"]
    assert blocks[4]["paragraph"]["rich_text"][0]["plain_text"] == "Scratch"


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            [paragraph(str(n)) for n in range(101)],
            "body failed validation: body.children.length should be ≤ `100`, instead was `101`.",
        ),
        (
            [paragraph("1", [paragraph("2", [paragraph("3", [paragraph("4")])])])],
            "body failed validation: body.children[0].paragraph.children[0].paragraph.children[0]"
            '.paragraph.children should be not present, instead was `[{"object":"block","type":'
            '"paragraph","paragraph":{"ric...`.',
        ),
        (
            [paragraph("ok"), paragraph("x" * 2001)],
            "body failed validation: body.children[1].paragraph.rich_text[0].text.content.length "
            "should be ≤ `2000`, instead was `2001`.",
        ),
        (
            [{"type": "paragraph", "paragraph": {"rich_text": text("x") * 101}}],
            "body failed validation: body.children[0].paragraph.rich_text.length should be ≤ `100`, "
            "instead was `101`.",
        ),
    ],
    ids=["101 children", "three levels", "2001 characters", "101 rich text items"],
)
async def test_limits_answer_notions_validation_error_and_create_nothing(
    notion: AsyncClient, page: JSON, empty_emulator: EmulatorProcess, blocks: list[JSON], message: str
) -> None:
    before = empty_emulator.workspace_summary()["created"]["blocks"]
    error = await rejected(notion.blocks.children.append, block_id=page["id"], children=blocks)
    assert (error.status, error.code, str(error)) == (400, "validation_error", message)
    error = await rejected(
        notion.pages.create,
        parent={"page_id": page["id"]},
        properties={"title": {"title": text("never")}},
        children=blocks,
    )
    assert (error.status, error.code, str(error)) == (400, "validation_error", message)
    assert empty_emulator.workspace_summary()["created"]["blocks"] == before
    assert await children(notion, page["id"]) == []


async def test_error_bodies_have_notions_fields(empty_emulator: EmulatorProcess, page: JSON) -> None:
    async with httpx.AsyncClient(base_url=empty_emulator.base_url, headers=empty_emulator.headers) as http:
        unknown_type = await http.patch(
            f"/v1/blocks/{page['id']}/children", json={"children": [{"type": "hologram", "hologram": {}}]}
        )
        missing = await http.post(
            "/v1/pages", json={"parent": {"page_id": str(uuid.uuid4())}, "properties": {}}
        )
    body = unknown_type.json()
    assert unknown_type.status_code == 400
    assert set(body) == {"object", "status", "code", "message", "request_id"}
    assert body["code"] == "validation_error" and "body.children[0].type" in body["message"]
    assert missing.status_code == 404 and missing.json()["code"] == "object_not_found"
    assert "Make sure the relevant pages and databases are shared" in missing.json()["message"]


async def test_database_schema_rows_relations_and_query(notion: AsyncClient, page: JSON) -> None:
    projects = await notion.databases.create(
        parent={"type": "page_id", "page_id": page["id"]},
        title=text("Projects"),
        initial_data_source={"properties": {"Name": {"title": {}}, "Budget": {"number": {"format": "euro"}}}},
    )
    projects_source = projects["data_sources"][0]["id"]
    tasks = await notion.databases.create(
        parent={"type": "page_id", "page_id": page["id"]},
        title=text("Tasks"),
        initial_data_source={
            "properties": {
                "Task": {"title": {}},
                "Tags": {"multi_select": {"options": [{"name": "urgent", "color": "red"}]}},
                "Done": {"checkbox": {}},
            }
        },
    )
    tasks_source = tasks["data_sources"][0]["id"]
    project = await notion.pages.create(
        parent={"data_source_id": projects_source},
        properties={"Name": {"title": text("Apollo")}, "Budget": {"number": 12}},
    )
    # the relation and the rollup over it, added once their target exists
    schema = await notion.data_sources.update(
        data_source_id=tasks_source,
        properties={
            "Project": {"relation": {"data_source_id": projects_source, "single_property": {}}},
            "Budget total": {
                "rollup": {
                    "relation_property_name": "Project",
                    "rollup_property_name": "Budget",
                    "function": "sum",
                }
            },
        },
    )
    assert schema["properties"]["Project"]["relation"]["data_source_id"] == projects_source
    assert schema["properties"]["Budget total"]["rollup"]["function"] == "sum"
    row = await notion.pages.create(
        parent={"data_source_id": tasks_source},
        properties={
            "Task": {"title": text("Launch")},
            "Tags": {"multi_select": [{"name": "urgent"}, {"name": "new tag"}]},
            "Done": {"checkbox": True},
            "Project": {"relation": [{"id": project["id"]}]},
        },
    )
    rows = await async_collect_paginated_api(notion.data_sources.query, data_source_id=tasks_source)
    assert [r["id"] for r in rows] == [row["id"]]
    props = rows[0]["properties"]
    assert props["Task"]["title"][0]["plain_text"] == "Launch"
    assert [o["name"] for o in props["Tags"]["multi_select"]] == ["urgent", "new tag"]
    assert props["Done"]["checkbox"] is True
    assert props["Project"]["relation"] == [{"id": project["id"]}]
    assert rows[0]["parent"] == {
        "type": "data_source_id",
        "data_source_id": tasks_source,
        "database_id": tasks["id"],
    }
    source = await notion.data_sources.retrieve(data_source_id=tasks_source)
    assert {o["name"] for o in source["properties"]["Tags"]["multi_select"]["options"]} == {
        "urgent",
        "new tag",
    }
    found = await notion.search(filter={"property": "object", "value": "data_source"})
    assert {projects_source, tasks_source} <= {result["id"] for result in found["results"]}
    in_page = [block["type"] for block in await children(notion, page["id"])]
    assert in_page == ["child_database", "child_database"]

    nowhere = str(uuid.uuid4())
    error = await rejected(
        notion.pages.create,
        parent={"data_source_id": tasks_source},
        properties={"Task": {"title": text("x")}, "Project": {"relation": [{"id": nowhere}]}},
    )
    assert (error.status, error.code) == (400, "validation_error") and nowhere in str(error)
    error = await rejected(
        notion.pages.create, parent={"data_source_id": tasks_source}, properties={"Owner": {"rich_text": []}}
    )
    assert str(error) == "Owner is not a property that exists."
    error = await rejected(
        notion.pages.create, parent={"data_source_id": tasks_source}, properties={"Done": {"number": 1}}
    )
    assert str(error) == "Done is expected to be checkbox."
    error = await rejected(
        notion.data_sources.update,
        data_source_id=tasks_source,
        properties={"Bad": {"relation": {"data_source_id": nowhere, "single_property": {}}}},
    )
    assert error.code == "validation_error" and nowhere in str(error)
    rows = await async_collect_paginated_api(notion.data_sources.query, data_source_id=tasks_source)
    assert len(rows) == 1


async def test_file_upload_then_image_block_serves_the_bytes(
    notion: AsyncClient, page: JSON, empty_emulator: EmulatorProcess
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    upload = await notion.file_uploads.create(
        mode="single_part", filename="chart.png", content_type="image/png"
    )
    assert upload["status"] == "pending"
    error = await rejected(
        notion.blocks.children.append,
        block_id=page["id"],
        children=[{"type": "image", "image": {"type": "file_upload", "file_upload": {"id": upload["id"]}}}],
    )
    assert error.code == "validation_error"  # not sent yet
    sent = await notion.file_uploads.send(file_upload_id=upload["id"], file=("chart.png", data, "image/png"))
    assert (sent["status"], sent["content_length"]) == ("uploaded", len(data))
    await notion.blocks.children.append(
        block_id=page["id"],
        children=[{"type": "image", "image": {"type": "file_upload", "file_upload": {"id": upload["id"]}}}],
    )
    await notion.pages.update(
        page_id=page["id"], icon={"type": "file_upload", "file_upload": {"id": upload["id"]}}
    )
    [image] = await children(notion, page["id"])
    assert image["image"]["type"] == "file"
    icon = (await notion.pages.retrieve(page_id=page["id"]))["icon"]
    async with httpx.AsyncClient() as http:
        for url in (image["image"]["file"]["url"], icon["file"]["url"]):
            response = await http.get(url)
            assert response.status_code == 200
            assert response.content == data
            assert response.headers["content-type"] == "image/png"
        forged = await http.get(image["image"]["file"]["url"].replace("sig=", "sig=0"))
        assert forged.status_code == 403


async def test_second_data_source_with_a_files_property(notion: AsyncClient, page: JSON) -> None:
    database = await notion.databases.create(
        parent={"page_id": page["id"]}, title=text("Library"), initial_data_source={"properties": {}}
    )
    first_source = database["data_sources"][0]["id"]
    second = await notion.data_sources.create(
        parent={"type": "database_id", "database_id": database["id"]},
        title=text("Scans"),
        properties={"Title": {"title": {}}, "Scan": {"files": {}}},
    )
    listed = await notion.databases.retrieve(database_id=database["id"])
    assert [s["id"] for s in listed["data_sources"]] == [first_source, second["id"]]
    assert [s["name"] for s in listed["data_sources"]] == ["Library", "Scans"]
    first = await notion.data_sources.retrieve(data_source_id=first_source)
    assert first["properties"]["Name"]["type"] == "title"  # a schema without a title gets "Name"
    error = await rejected(notion.pages.create, parent={"database_id": database["id"]}, properties={})
    assert error.code == "validation_error"  # which of the two sources? Notion asks for data_source_id
    upload = await notion.file_uploads.create(filename="scan.pdf")
    await notion.file_uploads.send(file_upload_id=upload["id"], file=("scan.pdf", b"%PDF-1.4 scan"))
    row = await notion.pages.create(
        parent={"data_source_id": second["id"]},
        properties={
            "Title": {"title": text("Scan 1")},
            "Scan": {
                "files": [{"name": "scan.pdf", "type": "file_upload", "file_upload": {"id": upload["id"]}}]
            },
        },
    )
    [scan] = (await notion.pages.retrieve(page_id=row["id"]))["properties"]["Scan"]["files"]
    assert (scan["name"], scan["type"]) == ("scan.pdf", "file")
    async with httpx.AsyncClient() as http:
        assert (await http.get(scan["file"]["url"])).content == b"%PDF-1.4 scan"


async def test_comments_are_created_then_listed(notion: AsyncClient, page: JSON) -> None:
    first = await notion.comments.create(parent={"page_id": page["id"]}, rich_text=text("First"))
    reply = await notion.comments.create(discussion_id=first["discussion_id"], rich_text=text("Reply"))
    assert reply["discussion_id"] == first["discussion_id"]
    listed = await async_collect_paginated_api(notion.comments.list, block_id=page["id"])
    assert [c["rich_text"][0]["plain_text"] for c in listed] == ["First", "Reply"]
    assert listed[0]["parent"] == {"type": "page_id", "page_id": page["id"]}


async def test_trash_and_untrash_a_page_and_trash_a_block(notion: AsyncClient, page: JSON) -> None:
    child = await notion.pages.create(
        parent={"page_id": page["id"]}, properties={"title": {"title": text("Child")}}
    )
    [block] = (await notion.blocks.children.append(block_id=page["id"], children=[paragraph("gone")]))[
        "results"
    ]
    trashed = await notion.pages.update(page_id=child["id"], in_trash=True)
    assert trashed["in_trash"] is True
    deleted = await notion.blocks.delete(block_id=block["id"])
    assert deleted["in_trash"] is True
    assert await children(notion, page["id"]) == []
    searched = await async_collect_paginated_api(notion.search, query="Child")
    assert child["id"] not in {result["id"] for result in searched}
    error = await rejected(notion.blocks.children.append, block_id=child["id"], children=[paragraph("x")])
    assert error.code == "validation_error" and "archived" in str(error)
    await notion.pages.update(page_id=child["id"], in_trash=False)  # undo
    assert [b["id"] for b in await children(notion, page["id"])] == [child["id"]]
    searched = await async_collect_paginated_api(notion.search, query="Child")
    assert child["id"] in {result["id"] for result in searched}


async def test_writes_are_rate_limited_and_counted(
    notion: AsyncClient, empty_emulator: EmulatorProcess
) -> None:
    root = empty_emulator.workspace_summary()["root_page_id"]
    before = empty_emulator.workspace_summary()["created"]
    empty_emulator.reset()
    empty_emulator.configure(rate=0.5, burst=2)
    try:
        statuses = []
        async with httpx.AsyncClient(
            base_url=empty_emulator.base_url, headers=empty_emulator.headers
        ) as http:
            for n in range(3):
                response = await http.patch(
                    f"/v1/blocks/{root}/children", json={"children": [paragraph(f"limited {n}")]}
                )
                statuses.append(response.status_code)
        assert statuses == [200, 200, 429]
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["code"] == "rate_limited"
    finally:
        empty_emulator.configure(rate=None, burst=None)
    stats = empty_emulator.stats()
    assert stats["by_endpoint_status"]["PATCH /v1/blocks/{id}/children"] == {"200": 2, "429": 1}
    assert stats["rate_limited_total"] == 1
    after = empty_emulator.workspace_summary()["created"]
    assert after["blocks"] == before["blocks"] + 2
    assert after["blocks_by_type"]["paragraph"] == before["blocks_by_type"].get("paragraph", 0) + 2


async def test_writes_pass_fault_injection_and_a_failed_write_creates_nothing(
    notion: AsyncClient, page: JSON, empty_emulator: EmulatorProcess
) -> None:
    before = empty_emulator.workspace_summary()["created"]
    empty_emulator.configure(fault_500=1.0)
    try:
        error = await rejected(
            notion.pages.create, parent={"page_id": page["id"]}, properties={"title": [text("short form")[0]]}
        )
    finally:
        empty_emulator.configure(fault_500=0.0)
    assert (error.status, error.code) == (500, "internal_server_error")
    assert empty_emulator.workspace_summary()["created"] == before
    created = await notion.pages.create(
        parent={"page_id": page["id"]}, properties={"title": text("short form")}
    )
    assert created["properties"]["title"]["title"][0]["plain_text"] == "short form"


def test_writes_reach_a_generated_workspace_and_its_reads() -> None:
    """Into a generated page: the new page sits after the generated children, search finds it."""
    with (
        EmulatorProcess(pages=40) as emulator,
        httpx.Client(base_url=emulator.base_url, headers=emulator.headers) as http,
    ):
        pages = http.post("/v1/search", json={"filter": {"property": "object", "value": "page"}}).json()
        host = next(p for p in pages["results"] if p["parent"]["type"] == "workspace")
        before = http.get(f"/v1/blocks/{host['id']}/children").json()["results"]
        summary_before = emulator.workspace_summary()
        body = {"parent": {"page_id": host["id"]}, "properties": {"title": {"title": text("Added")}}}
        added = http.post("/v1/pages", json=body).json()
        block = http.patch(
            f"/v1/blocks/{host['id']}/children",
            json={"children": [paragraph("first")], "position": {"type": "start"}},
        ).json()["results"][0]
        after = http.get(f"/v1/blocks/{host['id']}/children?page_size=100").json()["results"]
        generated_block = next(b for b in before if not b["has_children"] and b["type"] == "paragraph")
        http.patch(f"/v1/blocks/{generated_block['id']}/children", json={"children": [paragraph("under")]})
        assert http.get(f"/v1/blocks/{generated_block['id']}").json()["has_children"] is True
        nested = http.get(f"/v1/blocks/{generated_block['id']}/children").json()["results"]
        assert [b["paragraph"]["rich_text"][0]["plain_text"] for b in nested] == ["under"]
        assert [b["id"] for b in after] == [block["id"], *[b["id"] for b in before], added["id"]]
        newest = http.post("/v1/search", json={"page_size": 2}).json()["results"]
        assert [p["id"] for p in newest] == [added["id"], host["id"]]  # the host was edited too
        assert emulator.workspace_summary()["pages"] == summary_before["pages"] + 1
        assert emulator.workspace_summary()["created"]["pages"] == 1
