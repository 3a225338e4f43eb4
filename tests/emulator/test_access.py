"""Workspace identity per seed, losing access (unshare_page / share_page) and the 401 counter, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notion_sync.emulator.process import EmulatorProcess

JSON = dict[str, Any]
PAGES = 60
SEED = 11
NAME = "Acme Corp (emulated)"
SHAPE: JSON = {"top_level_pages": 2, "fan_out": 3, "huge_page_blocks": 0}  # pages of pages of pages


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(pages=PAGES, seed=SEED, shape=SHAPE, workspace_name=NAME) as process:
        yield process


@pytest.fixture
def http(emu: EmulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=emu.headers, timeout=30.0) as client:
        yield client


def me(emu: EmulatorProcess) -> JSON:
    response = httpx.get(f"{emu.base_url}/v1/users/me", headers=emu.headers)
    assert response.status_code == 200
    body: JSON = response.json()
    del body["request_id"]
    return body


def search(http: httpx.Client, kind: str | None = None) -> list[JSON]:
    results: list[JSON] = []
    body: JSON = {"page_size": 100}
    if kind:
        body["filter"] = {"property": "object", "value": kind}
    while True:
        response = http.post("/v1/search", json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        results += data["results"]
        if not data["has_more"]:
            return results
        body["start_cursor"] = data["next_cursor"]


def children(http: httpx.Client, block_id: str) -> list[JSON]:
    response = http.get(f"/v1/blocks/{block_id}/children", params={"page_size": 100})
    assert response.status_code == 200, response.text
    results: list[JSON] = response.json()["results"]
    return results


def edit_times(pages: list[JSON]) -> dict[str, str]:
    return {page["id"]: page["last_edited_time"] for page in pages}


def under(results: list[JSON], root: str) -> set[str]:
    """Ids of the search results at or below `root` (rows through their data source)."""
    up: dict[str, str | None] = {}
    for r in results:
        parent = r["database_parent"] if r["object"] == "data_source" else r["parent"]
        up[r["id"]] = parent.get("page_id") or parent.get("data_source_id")
    found = set()
    for start in up:
        node: str | None = start
        while node is not None and node != root:
            node = up.get(node)
        if node == root:
            found.add(start)
    return found


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "object_not_found"


def page_with_children(http: httpx.Client) -> tuple[JSON, list[str], JSON, JSON]:
    """A shared page under another page with child pages and other blocks: (page, child page ids,
    a block that is not a child page, the parent's child_page block of it)."""
    for page in search(http, "page"):
        if page["parent"]["type"] != "page_id":
            continue
        blocks = children(http, page["id"])
        kids = [b["id"] for b in blocks if b["type"] == "child_page"]
        other = next((b for b in blocks if b["type"] not in ("child_page", "child_database")), None)
        if kids and other is not None:
            parent_blocks = children(http, page["parent"]["page_id"])
            reference = next(b for b in parent_blocks if b["id"] == page["id"])
            return page, kids, other, reference
    raise LookupError("no page with child pages under a page")


def test_users_me_is_an_internal_integration_bot(emu: EmulatorProcess) -> None:
    bot = me(emu)
    assert set(bot) == {"object", "id", "name", "avatar_url", "type", "bot"}
    assert bot["object"] == "user" and bot["type"] == "bot" and bot["avatar_url"] is None
    assert bot["bot"]["owner"] == {"type": "workspace", "workspace": True}
    assert bot["bot"]["workspace_name"] == NAME
    assert bot["bot"]["workspace_limits"] == {"max_file_upload_size_in_bytes": 5368709120}
    assert set(bot["bot"]) == {"owner", "workspace_name", "workspace_id", "workspace_limits"}
    users = httpx.get(f"{emu.base_url}/v1/users", headers=emu.headers).json()["results"]
    assert bot in users  # also listed, as before
    assert httpx.get(f"{emu.base_url}/v1/users/{bot['id']}", headers=emu.headers).json()["id"] == bot["id"]


def test_identity_depends_on_the_seed_only(emu: EmulatorProcess) -> None:
    ours = me(emu)
    with (
        EmulatorProcess(pages=PAGES, seed=SEED) as twin,
        EmulatorProcess(pages=PAGES, seed=SEED + 1) as other,
    ):
        same, different = me(twin), me(other)
    assert same["id"] == ours["id"] and same["bot"]["workspace_id"] == ours["bot"]["workspace_id"]
    assert same["bot"]["workspace_name"] == "Emulated Workspace"  # the default
    assert different["id"] != ours["id"]
    assert different["bot"]["workspace_id"] != ours["bot"]["workspace_id"]
    assert me(emu) == ours  # stable


def test_unshare_page_hides_it_and_everything_under_it(emu: EmulatorProcess, http: httpx.Client) -> None:
    before = search(http)
    page, kids, block, reference = page_with_children(http)
    parent_id = page["parent"]["page_id"]
    parent_children = children(http, parent_id)
    child_blocks = children(http, kids[0])
    hidden = {page["id"], *kids}
    assert http.get("/v1/comments", params={"block_id": page["id"]}).status_code == 200

    assert emu.mutate({"op": "unshare_page", "page_id": page["id"]}) == {"ok": True, "count": 1}
    try:
        for path in (
            f"/v1/pages/{page['id']}",
            f"/v1/pages/{page['id']}/properties/title",
            f"/v1/pages/{kids[0]}",
            f"/v1/blocks/{page['id']}",
            f"/v1/blocks/{page['id']}/children",
            f"/v1/blocks/{block['id']}",
            f"/v1/blocks/{kids[0]}/children",
        ):
            assert_not_found(http.get(path))
        if child_blocks:
            assert_not_found(http.get(f"/v1/blocks/{child_blocks[0]['id']}"))
        assert_not_found(http.get("/v1/comments", params={"block_id": page["id"]}))
        assert_not_found(http.get("/v1/comments", params={"block_id": block["id"]}))
        during = search(http)
        assert hidden <= under(before, page["id"])
        assert [r["id"] for r in during] == [
            r["id"] for r in before if r["id"] not in under(before, page["id"])
        ]
        # everything else: still there, unchanged; the parent still shows the child_page block
        times = edit_times(before)
        assert edit_times(during) == {i: t for i, t in times.items() if i in edit_times(during)}
        assert http.get(f"/v1/pages/{parent_id}").json()["last_edited_time"] == times[parent_id]
        assert [b["id"] for b in children(http, parent_id)] == [b["id"] for b in parent_children]
        assert reference["id"] in {b["id"] for b in children(http, parent_id)}
    finally:
        assert emu.mutate({"op": "share_page", "page_id": page["id"]}) == {"ok": True, "count": 1}

    after = search(http)
    assert edit_times(after) == edit_times(before)  # nothing was edited by unsharing
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert http.get(f"/v1/pages/{kids[0]}").status_code == 200
    assert http.get(f"/v1/blocks/{block['id']}").json()["id"] == block["id"]
    assert [b["id"] for b in children(http, kids[0])] == [b["id"] for b in child_blocks]
    assert http.get("/v1/comments", params={"block_id": page["id"]}).status_code == 200


def test_unshare_hides_databases_data_sources_and_rows(emu: EmulatorProcess, http: httpx.Client) -> None:
    sources = search(http, "data_source")
    assert sources
    source = sources[0]
    database_id = source["parent"]["database_id"]
    home = source["database_parent"]["page_id"]
    rows = http.post(f"/v1/data_sources/{source['id']}/query", json={}).json()["results"]
    assert rows
    emu.mutate({"op": "unshare_page", "page_id": home})
    try:
        assert_not_found(http.get(f"/v1/databases/{database_id}"))
        assert_not_found(http.get(f"/v1/blocks/{database_id}"))
        assert_not_found(http.get(f"/v1/data_sources/{source['id']}"))
        assert_not_found(http.post(f"/v1/data_sources/{source['id']}/query", json={}))
        assert_not_found(http.get(f"/v1/pages/{rows[0]['id']}"))
        assert_not_found(http.get(f"/v1/blocks/{rows[0]['id']}/children"))
        assert source["id"] not in {s["id"] for s in search(http, "data_source")}
        assert not {r["id"] for r in rows} & {p["id"] for p in search(http, "page")}
    finally:
        emu.mutate({"op": "share_page", "page_id": home})
    assert http.get(f"/v1/databases/{database_id}").status_code == 200
    again = http.post(f"/v1/data_sources/{source['id']}/query", json={}).json()["results"]
    assert [r["id"] for r in again] == [r["id"] for r in rows]


def test_unshared_rows_leave_queries_of_shared_sources(emu: EmulatorProcess, http: httpx.Client) -> None:
    source = search(http, "data_source")[0]
    query = f"/v1/data_sources/{source['id']}/query"
    rows = [r["id"] for r in http.post(query, json={}).json()["results"]]
    gone = rows[::3]
    emu.mutate({"op": "unshare_page", "page_ids": gone})
    try:
        assert [r["id"] for r in http.post(query, json={}).json()["results"]] == [
            r for r in rows if r not in gone
        ]
    finally:
        emu.mutate({"op": "share_page", "page_ids": gone})
    assert [r["id"] for r in http.post(query, json={}).json()["results"]] == rows


def test_many_pages_in_one_call(emu: EmulatorProcess, http: httpx.Client) -> None:
    before = search(http)
    pages = [r["id"] for r in before if r["object"] == "page"]
    gone = pages[: int(len(pages) * 0.3)]
    summary = emu.workspace_summary()
    assert emu.mutate({"op": "unshare_page", "page_ids": gone}) == {"ok": True, "count": len(gone)}
    try:
        assert emu.workspace_summary()["unshared_pages"] == len(gone)
        during = {r["id"] for r in search(http)}
        assert not during & set(gone)
        for page_id in gone[:10]:
            assert_not_found(http.get(f"/v1/pages/{page_id}"))
    finally:
        assert emu.mutate({"op": "share_page", "page_ids": gone}) == {"ok": True, "count": len(gone)}
    assert emu.workspace_summary() == summary
    after = search(http)
    assert edit_times(after) == edit_times(before)


def test_access_mutations_check_every_id_first(emu: EmulatorProcess, http: httpx.Client) -> None:
    before = [r["id"] for r in search(http)]
    page_id = before[0]
    unknown = "00000000-0000-4000-8000-000000000000"
    for bad in (
        {"op": "unshare_page", "page_ids": [page_id, unknown]},
        {"op": "unshare_page", "page_ids": []},
        {"op": "unshare_page", "page_id": page_id, "page_ids": [page_id]},
        {"op": "share_page", "page_id": unknown},
    ):
        with pytest.raises(ValueError):
            emu.mutate(bad)
    assert [r["id"] for r in search(http)] == before


def test_share_a_page_under_an_unshared_page(emu: EmulatorProcess, http: httpx.Client) -> None:
    page, kids, _, _ = page_with_children(http)
    emu.mutate({"op": "unshare_page", "page_id": page["id"]})
    try:
        emu.mutate({"op": "share_page", "page_id": kids[0]})
        assert http.get(f"/v1/pages/{kids[0]}").status_code == 200
        assert_not_found(http.get(f"/v1/pages/{page['id']}"))
        emu.mutate({"op": "unshare_page", "page_id": page["id"]})  # drops the re-share below it
        assert_not_found(http.get(f"/v1/pages/{kids[0]}"))
    finally:
        emu.mutate({"op": "share_page", "page_id": page["id"]})
    assert http.get(f"/v1/pages/{kids[0]}").status_code == 200


def test_unauthorized_total_counts_wrong_and_missing_tokens(emu: EmulatorProcess, http: httpx.Client) -> None:
    emu.reset()
    for _ in range(3):
        assert http.get("/v1/users/me").status_code == 200
    assert http.post("/v1/search", json={"page_size": 1}).status_code == 200
    assert emu.stats()["unauthorized_total"] == 0
    wrong = {**emu.headers, "Authorization": "Bearer secret_another_workspace"}
    missing = {"Notion-Version": emu.headers["Notion-Version"]}
    for headers in (wrong, missing, wrong):
        response = httpx.get(f"{emu.base_url}/v1/users/me", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    assert httpx.post(f"{emu.base_url}/v1/search", headers=wrong, json={}).status_code == 401
    stats = emu.stats()
    assert stats["unauthorized_total"] == 4
    assert stats["by_status"]["401"] == 4 and stats["by_status"]["200"] == 4
    emu.reset()
    assert emu.stats()["unauthorized_total"] == 0
