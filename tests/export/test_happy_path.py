"""A whole workspace exported through real Temporal and the emulator over HTTP."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from temporalio.client import Client

from notion_sync.control import start_export
from notion_sync.models import ExportInput, ExportOptions
from tests.export.harness import EmulatorAndWorker, export_and_wait


async def test_every_object_is_exported(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=60, seed=11) as (emulator, settings):
        handle = await start_export(
            temporal_client,
            settings,
            ExportInput(destination=str(destination), options=ExportOptions(batch_size=10)),
        )
        report = await handle.result()
        description = await handle.describe()
        metadata = await handle.query("__temporal_workflow_metadata")
        summary = emulator.workspace_summary()
        served = emulator.stats()
    # Every Notion request the export sent is in its count, but the question who the token is.
    notion_requests = sum(n for endpoint, n in served["by_endpoint"].items() if " /v1/" in endpoint)
    assert report.counters.api_requests == notion_requests - served["by_endpoint"]["GET /v1/users/me"]
    # What the Web UI shows: a static summary naming the destination, and readable current details.
    assert str(destination) in (await description.static_summary() or "")
    assert "**done**" in metadata.current_details
    assert "exported" in metadata.current_details
    assert report.status == "completed"
    current = destination / "current"
    assert current.is_symlink()
    assert (current / "html" / "index.html").is_file(), "the HTML site is published with the snapshot"
    lines = (current / "manifest.jsonl").read_text().splitlines()
    objects = [json.loads(line) for line in lines[1:]]
    pages = [o for o in objects if o["type"] == "page" and o["status"] == "exported"]
    data_sources = [o for o in objects if o["type"] == "data_source" and o["status"] == "exported"]
    assert len(pages) == summary["pages"] - summary["private_pages"]
    assert len(data_sources) == summary["data_sources"]
    for entry in objects:
        for file in entry["files"]:
            assert (current / file["path"]).is_file(), file
    assert not (destination / ".notion-sync" / "staging").exists() or not any(
        (destination / ".notion-sync" / "staging").iterdir()
    )


async def test_no_dead_internal_link_in_markdown(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=80, seed=12) as (_, settings):
        await export_and_wait(temporal_client, settings, destination)
    current = (destination / "current").resolve()
    parser = MarkdownIt("commonmark").enable("table")
    walked = 0
    for markdown in current.rglob("*.md"):
        for target in _relative_targets(parser.parse(markdown.read_text())):
            resolved = (markdown.parent / unquote(target.split("#", 1)[0])).resolve()
            assert resolved.is_relative_to(current), (markdown, target)
            assert resolved.exists(), f"dead link {target} in {markdown.relative_to(current)}"
            walked += 1
    assert walked > 200


def _relative_targets(tokens: list[Token]) -> list[str]:
    """Hrefs of links and srcs of images that point inside the export (no scheme, not an anchor)."""
    found: list[str] = []
    stack = list(tokens)
    while stack:
        token = stack.pop()
        stack.extend(token.children or [])
        value = token.attrGet("href") if token.type == "link_open" else token.attrGet("src")
        if isinstance(value, str) and value and not urlsplit(value).scheme and not value.startswith("#"):
            found.append(value)
    return found


async def test_notion_layout_names_files_like_notion(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=40, seed=13) as (_, settings):
        await export_and_wait(temporal_client, settings, destination, layout="notion")
    current = (destination / "current").resolve()
    named = [p for p in current.rglob("*.md") if p.parent.name != "json"]
    assert named and all(re.search(r" [0-9a-f]{32}\.md$", p.name) for p in named)
    tables = list(current.rglob("*.csv"))
    every = [t for t in tables if t.name.endswith("_all.csv")]
    assert every and len(every) * 2 == len(tables)
    assert all(t.read_bytes().startswith(codecs.BOM_UTF8) for t in every)
    parser = MarkdownIt("commonmark").enable("table")
    for markdown in named:
        for target in _relative_targets(parser.parse(markdown.read_text())):
            assert (markdown.parent / unquote(target.split("#", 1)[0])).exists(), (markdown, target)
