"""Exporting pages: block trees fetched recursively, raw JSON, Markdown and HTML written to staging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from notion_sync.convert.markdown import database_to_markdown, page_to_markdown
from notion_sync.convert.properties import with_property_items
from notion_sync.exporter.context import StepContext, throttled
from notion_sync.exporter.files import DownloadPolicy, download_all, find_files
from notion_sync.exporter.links import IndexLinks
from notion_sync.exporter.site import SitePages
from notion_sync.models import Counters, ExportOptions, PreviousSnapshot
from notion_sync.notion.errors import ObjectProblem, ObjectUnavailable
from notion_sync.notion.signatures import without_signatures
from notion_sync.snapshot import saved_json
from notion_sync.storage.index import IndexedObject

JSON = dict[str, Any]
# Notion returns at most 25 items of these in a page object; the rest needs the property endpoint.
_CAPPED_PROPERTIES = {"relation", "people", "title", "rich_text"}
_PROPERTY_CAP = 25
# Child pages and databases are objects of their own, exported separately.
_SEPARATE_OBJECTS = {"child_page": "page", "child_database": "database"}


async def export_range(
    ctx: StepContext,
    seq_from: int,
    seq_to: int,
    options: ExportOptions,
    previous: PreviousSnapshot | None,
    concurrency: int,
    heartbeat: Callable[[], None],
) -> Counters:
    """Exports every pending object in `[seq_from, seq_to]`; done objects are skipped on retry."""
    counters = Counters()
    limit = asyncio.Semaphore(concurrency)
    heartbeat = throttled(heartbeat)
    site = SitePages(ctx) if options.html else None

    async def one(obj: IndexedObject) -> None:
        async with limit:
            try:
                await _export_object(ctx, obj, options, previous, counters, site)
            except ObjectProblem as error:
                # This object only (gone, malformed, rejected, unreachable): recorded, the batch goes on.
                ctx.index.skip(obj.id, error.reason, status=error.outcome)
            heartbeat()

    await asyncio.gather(*(one(obj) for obj in ctx.index.batch(seq_from, seq_to)))
    # A retried or resumed range skips what an earlier attempt settled: count from the index, or the
    # report says fewer were exported (skipped, failed) than the snapshot holds.
    outcomes = ctx.index.outcomes_between(seq_from, seq_to)
    counters.exported = outcomes.get("exported", 0)
    counters.skipped = outcomes.get("skipped", 0)
    counters.failed = outcomes.get("failed", 0)
    return counters


async def _export_object(
    ctx: StepContext,
    obj: IndexedObject,
    options: ExportOptions,
    previous: PreviousSnapshot | None,
    counters: Counters,
    site: SitePages | None,
) -> None:
    assert obj.raw is not None and obj.path is not None
    if obj.kind == "page":
        before = Path(previous.path) if previous is not None else None
        await _export_page(ctx, obj, options, _unchanged(ctx, obj, previous), counters, site, before)
    elif obj.kind == "database":
        await _export_database(ctx, obj, options, previous, counters)
    else:
        written = _write_json(ctx, saved_json("data_source", obj.id), obj.raw)
        ctx.index.finish(obj.id, [written])


async def _export_page(
    ctx: StepContext,
    obj: IndexedObject,
    options: ExportOptions,
    saved: _SavedPage | None,
    counters: Counters,
    site: SitePages | None,
    previous: Path | None,
) -> None:
    """Exports a page: from Notion, or from the previous snapshot when it has not changed since."""
    assert obj.raw is not None and obj.path is not None
    page = obj.raw
    if saved is not None:
        blocks, property_items, comments = saved.blocks, saved.property_items, saved.comments
        counters.reused += 1
    else:
        blocks = await fetch_tree(ctx, obj.id)
        property_items = await _complete_properties(ctx, page)
        comments = await ctx.gateway.comments(obj.id) if options.include_comments else []
    complete = with_property_items(page, property_items)
    if property_items:
        ctx.index.add_complete(obj.id, complete)
    policy = _download_policy(options)
    refs = find_files(complete, blocks)
    downloads = await download_all(ctx, ctx.http, refs, policy, previous=saved.snapshot if saved else None)
    counters.files_downloaded += len(downloads.written)
    counters.files_failed += downloads.failed
    raw = {
        "page": page,
        "blocks": blocks,
        "comments": comments,
        "property_items": property_items,
        "files": downloads.local,
    }
    markdown = page_to_markdown(complete, blocks, IndexLinks(ctx.index, obj.path, downloads.local), comments)
    if site is not None:
        site.write(obj.path, complete, blocks, comments, downloads.local)
    files = [
        _write_page_json(ctx, obj.id, raw, previous),
        ctx.destination.write(ctx.staging_id, obj.path, markdown.encode()),
        *downloads.written,
    ]
    ctx.index.finish(obj.id, files, downloads.records)


@dataclass(frozen=True)
class _SavedPage:
    snapshot: Path
    blocks: list[JSON]
    property_items: dict[str, list[JSON]]
    comments: list[JSON]


def _unchanged(ctx: StepContext, obj: IndexedObject, previous: PreviousSnapshot | None) -> _SavedPage | None:
    """The page as the previous snapshot holds it, if Notion says it has not been edited since."""
    if previous is None or obj.raw is None:
        return None
    edited = obj.raw.get("last_edited_time")
    if not edited or edited >= previous.reuse_before or ctx.index.previous_edit(obj.id) != edited:
        return None
    snapshot = Path(previous.path)
    try:
        saved = orjson.loads((snapshot / saved_json("page", obj.id)).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    blocks: list[JSON] = saved["blocks"]
    # A child page created, moved, trashed or deleted changes this page's blocks; do not trust
    # Notion to have moved its edit time for that.
    current = {
        child.id: child.raw
        for child in ctx.index.children(obj.id)
        if child.kind != "data_source" and child.status != "skipped"
    }
    embedded = _separate_objects(blocks)
    if {block["id"] for block in embedded} != set(current):
        return None
    for block in embedded:
        raw = current[block["id"]]
        if block["type"] == "child_page" and raw is not None:
            # Renaming a child does not edit this page, but its child_page block shows the new title.
            block["child_page"]["title"] = _raw_title(raw)
    return _SavedPage(snapshot, blocks, saved.get("property_items", {}), saved.get("comments", []))


def _raw_title(page: JSON) -> str:
    """A page's title exactly as Notion shows it in a child_page block (spaces kept)."""
    for prop in page.get("properties", {}).values():
        if prop.get("type") == "title":
            return "".join(part.get("plain_text", "") for part in prop.get("title", []))
    return ""


def _separate_objects(blocks: list[JSON]) -> list[JSON]:
    """The child_page and child_database blocks anywhere in a tree (synced copies excluded)."""
    found: list[JSON] = []
    stack = list(blocks)
    while stack:
        block = stack.pop()
        if block.get("type") in _SEPARATE_OBJECTS:
            found.append(block)
        elif not (
            block.get("type") == "synced_block" and (block.get("synced_block") or {}).get("synced_from")
        ):
            stack.extend(block.get("children", []))
    return found


def _download_policy(options: ExportOptions) -> DownloadPolicy:
    return DownloadPolicy(
        enabled=options.download_files,
        external=options.download_external_files,
        max_bytes=int(options.max_file_mb * 1024 * 1024),
    )


async def _export_database(
    ctx: StepContext,
    obj: IndexedObject,
    options: ExportOptions,
    previous: PreviousSnapshot | None,
    counters: Counters,
) -> None:
    """A database: its JSON, its index file, and its icon and cover (Notion's URLs expire)."""
    assert obj.raw is not None and obj.path is not None
    unchanged = previous is not None and ctx.index.previous_edit(obj.id) == obj.raw.get("last_edited_time")
    downloads = await download_all(
        ctx,
        ctx.http,
        find_files(obj.raw, []),
        _download_policy(options),
        previous=Path(previous.path) if previous is not None and unchanged else None,
    )
    counters.files_downloaded += len(downloads.written)
    counters.files_failed += downloads.failed
    markdown = database_to_markdown(obj.raw, IndexLinks(ctx.index, obj.path, downloads.local))
    files = [
        _write_json(ctx, saved_json("database", obj.id), obj.raw),
        ctx.destination.write(ctx.staging_id, obj.path, markdown.encode()),
        *downloads.written,
    ]
    ctx.index.finish(obj.id, files, downloads.records)


@dataclass
class _Walk:
    """One block tree being read: the blocks seen (a block listed twice is a cycle or a repeated
    listing, read once), how many, and the caps (NOTION_SYNC_MAX_BLOCK_DEPTH, _MAX_PAGE_BLOCKS).

    `owner` is the object whose problems.jsonl entry says what was cut; `synced` the synced-block
    originals this read is nested in (a chain that loops back is cut, never awaited).
    """

    owner: str
    max_depth: int
    max_blocks: int
    seen: set[str] = field(default_factory=set)
    blocks: int = 0
    synced: frozenset[str] = frozenset()

    @classmethod
    def of(cls, ctx: StepContext, root: str, synced: frozenset[str] = frozenset()) -> _Walk:
        settings = ctx.settings
        return cls(root, settings.max_block_depth, settings.max_page_blocks, {root}, synced=synced)

    def cut(self, ctx: StepContext, kind: str, reason: str) -> None:
        ctx.index.add_problem(self.owner, kind, reason)


async def fetch_tree(ctx: StepContext, block_id: str) -> list[JSON]:
    """The children of a page or block, recursively, each with an added `children` list.

    Nested subtrees are read side by side, so a page takes as long as its deepest chain of
    requests, not their sum; synced blocks read their originals one after another (once each).
    A cycle, a block listed twice, nesting past the depth cap or more blocks than the page cap
    end that part of the read, with a problem recorded for the page; the rest is exported.
    """
    return await _read_level(ctx, block_id, _Walk.of(ctx, block_id), depth=1)


async def _read_level(ctx: StepContext, block_id: str, walk: _Walk, depth: int) -> list[JSON]:
    blocks: list[JSON] = []
    async with aclosing(ctx.gateway.children(block_id, problem_of=walk.owner)) as listing:
        async for block in listing:
            if walk.blocks >= walk.max_blocks:
                walk.cut(
                    ctx,
                    "blocks:cap",
                    f"more than {walk.max_blocks} blocks (NOTION_SYNC_MAX_PAGE_BLOCKS): "
                    "the rest of the page was not read",
                )
                break
            if block["id"] in walk.seen:
                walk.cut(
                    ctx,
                    "blocks:cycle",
                    f"block {block['id']} was listed again under {block_id} (a cycle or a repeated "
                    "listing): read once",
                )
                continue
            walk.seen.add(block["id"])
            walk.blocks += 1
            blocks.append(block)
    nested: list[JSON] = []
    synced: list[tuple[JSON, str]] = []
    for block in blocks:
        kind = block.get("type", "")
        if kind in _SEPARATE_OBJECTS:
            _note_reference(ctx, block, _SEPARATE_OBJECTS[kind], parent_id=_page_of(block, block_id))
        elif kind == "synced_block" and (block.get("synced_block") or {}).get("synced_from"):
            original = block["synced_block"]["synced_from"].get("block_id")
            if original:
                synced.append((block, original))
        elif block.get("has_children"):
            nested.append(block)
    if nested and depth >= walk.max_depth:
        walk.cut(
            ctx,
            "blocks:depth",
            f"blocks nested deeper than {walk.max_depth} levels (NOTION_SYNC_MAX_BLOCK_DEPTH) were not read",
        )
        for block in nested:
            block["children"] = []
        nested = []
    subtrees = await _all(_read_level(ctx, b["id"], walk, depth + 1) for b in nested)
    for block, subtree in zip(nested, subtrees, strict=True):
        block["children"] = subtree
    for block, original in synced:
        block["children"] = await _synced_children(ctx, original, walk)
    return blocks


async def _all(reads: Iterable[Coroutine[Any, Any, list[JSON]]]) -> list[list[JSON]]:
    """The reads' results, in order; the first failure cancels the others and is raised as is."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


async def _synced_children(ctx: StepContext, original_id: str, walk: _Walk) -> list[JSON]:
    """A synced block's content, read from its original once per export (pages and subtrees read
    side by side wait for the one read in flight)."""
    if original_id in walk.synced:
        walk.cut(ctx, "blocks:cycle", f"synced block {original_id} holds a copy of itself: read once")
        return []
    cached = ctx.index.synced_children(original_id)
    if cached is not None:
        return cached
    if walk.synced:
        # Inside an original (Notion allows no synced block there, a hostile server might): read it
        # in this chain, never wait on another read, which could be waiting on this one.
        return await _read_original(ctx, original_id, walk.synced | {original_id}, remember=False)
    reading = ctx.synced_reads.get(original_id)
    if reading is None:
        reading = ctx.synced_reads[original_id] = asyncio.ensure_future(
            _read_original(ctx, original_id, frozenset({original_id}))
        )
    return await asyncio.shield(reading)


async def _read_original(
    ctx: StepContext, original_id: str, chain: frozenset[str], remember: bool = True
) -> list[JSON]:
    try:
        children = await _read_level(ctx, original_id, _Walk.of(ctx, original_id, chain), depth=1)
    except ObjectUnavailable:
        children = []
    except ObjectProblem as error:
        ctx.index.add_problem(original_id, "synced", f"the original of a synced block: {error.reason}")
        children = []
    if remember:
        ctx.index.remember_synced(original_id, children)
    return children


def _note_reference(ctx: StepContext, block: JSON, kind: str, parent_id: str) -> None:
    if not ctx.index.contains(block["id"]):
        title = (block.get(block["type"]) or {}).get("title", "")
        ctx.index.add(block["id"], kind, parent_id, title, None)


def _page_of(block: JSON, fallback: str) -> str:
    parent = block.get("parent", {})
    return str(parent.get("page_id") or fallback)


async def _complete_properties(ctx: StepContext, page: JSON) -> dict[str, list[JSON]]:
    """Items of capped properties past the first 25, read through the property endpoint."""
    items: dict[str, list[JSON]] = {}
    for prop in page.get("properties", {}).values():
        kind = prop.get("type")
        values = prop.get(kind)
        if kind not in _CAPPED_PROPERTIES or not isinstance(values, list):
            continue
        if prop.get("has_more") or len(values) >= _PROPERTY_CAP:
            items[prop["id"]] = await ctx.gateway.property_items(page["id"], prop["id"])
    return items


def _write_page_json(ctx: StepContext, page_id: str, raw: JSON, previous: Path | None) -> Any:
    """A page's JSON; the previous snapshot's bytes when they differ from it only in file URLs'
    signatures (re-read pages are signed anew: their content, and so their stored object, stays)."""
    relpath = saved_json("page", page_id)
    encoded = orjson.dumps(raw, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if previous is not None:
        try:
            before = (previous / relpath).read_bytes()
            if before != encoded and without_signatures(orjson.loads(before)) == without_signatures(
                orjson.loads(encoded)
            ):
                encoded = before
        except (OSError, orjson.JSONDecodeError):
            pass  # new to the snapshot, or unreadable there: written as read now
    return ctx.destination.write(ctx.staging_id, relpath, encoded)


def _write_json(ctx: StepContext, relpath: str, data: object) -> Any:
    encoded = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return ctx.destination.write(ctx.staging_id, relpath, encoded)
