"""Downloading Notion-hosted and external files into the export, refreshing expired URLs.

Notion-hosted file URLs are signed and expire after about an hour. When the storage host answers
403, the block or page that holds the file is read again (one API request) for a fresh URL, and the
download is tried once more. A file that still cannot be had keeps its original URL in the output
and is listed in problems.jsonl.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import yarl

from notion_sync.convert.names import safe_name
from notion_sync.exporter.context import StepContext
from notion_sync.models import ManifestFile
from notion_sync.notion.errors import ObjectProblem, ObjectUnavailable
from notion_sync.notion.transport import env_proxy

JSON = dict[str, Any]
FILE_BLOCKS = ("image", "video", "pdf", "file", "audio")
_CHUNK = 256 * 1024
_PREPARING_RETRIES = 3
# C0 controls, DEL and C1 controls: never sent in a request line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FileRef:
    """One file object found in a page: where it sits, so its URL can be refreshed."""

    url: str
    hosted: bool
    owner_id: str
    slot: str  # "block", "icon", "cover" or "property:<id>:<n>"
    name: str

    @property
    def path(self) -> str:
        prefix = "" if self.slot == "block" else f"{safe_name(self.slot.replace(':', '-'), 40)}-"
        return f"files/{self.owner_id}/{prefix}{safe_name(self.name, 100)}"


@dataclass(frozen=True)
class DownloadPolicy:
    enabled: bool = True
    external: bool = True
    max_bytes: int = 100 * 1024 * 1024


class DownloadFailed(Exception):
    pass


def find_files(page: JSON, blocks: list[JSON]) -> list[FileRef]:
    """Every file object of a page: icon, cover, `files` properties, file blocks and callout icons."""
    refs: list[FileRef] = []
    page_id = page["id"]
    for slot in ("icon", "cover"):
        ref = _ref(page.get(slot), page_id, slot)
        if ref:
            refs.append(ref)
    for prop in page.get("properties", {}).values():
        if prop.get("type") == "files":
            for n, item in enumerate(prop.get("files") or []):
                ref = _ref(item, page_id, f"property:{prop.get('id', '')}:{n}", item.get("name"))
                if ref:
                    refs.append(ref)
    stack = list(blocks)
    while stack:
        block = stack.pop()
        kind = block.get("type", "")
        body = block.get(kind) or {}
        if kind in FILE_BLOCKS:
            ref = _ref(body, block["id"], "block", body.get("name"))
            if ref:
                refs.append(ref)
        elif kind == "callout":
            ref = _ref(body.get("icon"), block["id"], "icon")
            if ref:
                refs.append(ref)
        stack.extend(block.get("children", []))
    return refs


@dataclass
class Downloads:
    """A page's files: the manifest entries, the local copy of each URL, and what to record.

    `records` (file, the URLs it was had from) go into the index with the page, in one commit; a
    page cut short downloads them again on retry.
    """

    written: list[ManifestFile] = field(default_factory=list)
    local: dict[str, str] = field(default_factory=dict)
    records: list[tuple[ManifestFile, set[str]]] = field(default_factory=list)
    failed: int = 0


async def download_all(
    ctx: StepContext,
    http: aiohttp.ClientSession,
    refs: list[FileRef],
    policy: DownloadPolicy,
    previous: Path | None = None,
) -> Downloads:
    """Downloads what the policy allows: every file the page refers to, and the failures.

    A file shared by several pages (through synced blocks) is downloaded once and listed by each.
    With `previous` (the snapshot of an unchanged page), files are taken from it, not downloaded.
    """
    result = Downloads()
    wanted = [ref for ref in refs if policy.enabled and (ref.hosted or policy.external)]
    known = ctx.index.downloads([ref.path for ref in wanted])
    fetched: dict[str, tuple[ManifestFile, set[str]]] = {}
    for ref in wanted:
        if ref.path in fetched:
            fetched[ref.path][1].add(ref.url)
        elif ref.path in known:
            fetched[ref.path] = (known[ref.path], {ref.url})
        elif previous is not None and (previous / ref.path).is_file():
            fetched[ref.path] = (
                ctx.destination.adopt(ctx.staging_id, ref.path, previous / ref.path),
                {ref.url},
            )
        else:
            try:
                file, url = await _download(ctx, http, ref, policy)
            except DownloadFailed as error:
                result.failed += 1
                reason = ctx.gateway.redact(f"{ref.name}: {error}")
                ctx.index.add_problem(ref.owner_id, f"file:{ref.slot}", reason)
                continue
            fetched[ref.path] = (file, {ref.url, url})
        result.local[ref.url] = ref.path
        result.written.append(fetched[ref.path][0])
    result.records = list(fetched.values())
    return result


async def _download(
    ctx: StepContext, http: aiohttp.ClientSession, ref: FileRef, policy: DownloadPolicy
) -> tuple[ManifestFile, str]:
    """The file written into staging, and the URL it came from (a fresh one if the first failed)."""
    url = ref.url
    for attempt in range(2):
        try:
            written = await _stream(ctx, http, url, ref.path, policy.max_bytes)
        except (_Expired, DownloadFailed) as error:
            # A Notion-hosted URL that fails in any way may simply be old: one fresh URL, one more try.
            if attempt or not ref.hosted or isinstance(error, _OverCap):
                raise DownloadFailed(str(error) or "the storage host refused the URL (403)") from None
            url = await _fresh_url(ctx, ref)
            continue
        return written, url
    raise DownloadFailed("no fresh URL")


class _Expired(Exception):
    pass


class _OverCap(DownloadFailed):
    pass


def _target(url: str) -> yarl.URL:
    """The URL to request, exactly as Notion gave it (`encoded`: a signed URL must not change), but
    never one that would put control characters on the wire or is not plain http(s)."""
    url = url.strip().replace(" ", "%20")
    if _CONTROL.search(url):
        raise DownloadFailed("the URL contains control characters")
    try:
        target = yarl.URL(url, encoded=True)
    except ValueError as error:
        raise DownloadFailed(f"the URL is not valid ({error})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise DownloadFailed("the URL is not an http(s) URL")
    return target


async def _stream(
    ctx: StepContext, http: aiohttp.ClientSession, url: str, relpath: str, max_bytes: int
) -> ManifestFile:
    target = _target(url)
    for attempt in range(_PREPARING_RETRIES):
        try:
            async with http.get(target, proxy=env_proxy(target)) as response:
                if response.status == 403:
                    raise _Expired()
                if response.status == 202:
                    # Notion is still preparing the file: wait and ask again.
                    await asyncio.sleep(1.0 + attempt)
                    continue
                if response.status != 200:
                    raise DownloadFailed(f"HTTP {response.status}")
                declared = response.content_length or 0
                if declared > max_bytes:
                    raise _OverCap(f"{declared} bytes, over the {max_bytes}-byte cap")
                return await _save(ctx, response, relpath, max_bytes)
        except aiohttp.ClientConnectorError:
            # Nobody listens there (any more): waiting will not help, a fresh URL might.
            raise DownloadFailed("cannot connect to the file's host") from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as error:
            raise DownloadFailed(f"the URL is not usable ({type(error).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            if attempt == _PREPARING_RETRIES - 1:
                raise DownloadFailed(f"network error: {type(error).__name__}") from None
            await asyncio.sleep(0.5 * (attempt + 1))
        except ValueError as error:
            # aiohttp refuses some URLs only when it writes the request (header injection, ...).
            raise DownloadFailed(f"the URL is not usable ({type(error).__name__}: {error})") from None
    raise DownloadFailed("the file was never ready (202)")


async def _save(
    ctx: StepContext, response: aiohttp.ClientResponse, relpath: str, max_bytes: int
) -> ManifestFile:
    digest = hashlib.sha256()
    size = 0
    with ctx.destination.open_stream(ctx.staging_id, relpath) as sink:
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise _OverCap(f"over the {max_bytes}-byte cap")
            digest.update(chunk)
            sink.write(chunk)
    return ManifestFile(path=relpath, sha256=digest.hexdigest(), size=size)


async def _fresh_url(ctx: StepContext, ref: FileRef) -> str:
    """Reads the file's holder again: Notion signs a new URL on every read."""
    holder = ctx.index.get(ref.owner_id)
    kind = holder.kind if holder is not None else None
    try:
        if ref.slot == "block":
            block = await ctx.gateway.block(ref.owner_id)
            obj = block.get(block.get("type", "")) or {}
        elif kind == "database":
            obj = _slot_of(await ctx.gateway.database(ref.owner_id), ref.slot)
        elif ref.slot == "icon" and kind != "page":
            block = await ctx.gateway.block(ref.owner_id)
            obj = (block.get("callout") or {}).get("icon") or {}
        else:
            page = await ctx.gateway.page(ref.owner_id)
            obj = _slot_of(page, ref.slot)
    except ObjectUnavailable as error:
        raise DownloadFailed(f"its holder is gone ({error.status})") from None
    except ObjectProblem as error:
        raise DownloadFailed(f"its holder could not be read again ({error.reason})") from None
    url = _url_of(obj)
    if not url:
        raise DownloadFailed("the file is no longer there")
    return url


def _slot_of(page: JSON, slot: str) -> JSON:
    if slot in ("icon", "cover"):
        return page.get(slot) or {}
    _, prop_id, n = slot.split(":", 2)
    for prop in page.get("properties", {}).values():
        if prop.get("id") == prop_id:
            items = prop.get("files") or []
            return items[int(n)] if int(n) < len(items) else {}
    return {}


def _ref(obj: Any, owner_id: str, slot: str, name: str | None = None) -> FileRef | None:
    if not isinstance(obj, dict) or obj.get("type") not in ("file", "external"):
        return None
    url = _url_of(obj)
    if not url:
        return None
    return FileRef(
        url=url,
        hosted=obj["type"] == "file",
        owner_id=owner_id,
        slot=slot,
        name=name or _name_from_url(url),
    )


def _url_of(obj: JSON) -> str | None:
    inner = obj.get(obj.get("type", "")) or {}
    url = inner.get("url") if isinstance(inner, dict) else None
    return url if isinstance(url, str) and url else None


def _name_from_url(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:  # not a URL at all: downloading it fails later, as a problem of that file
        return "file"
    return unquote(posixpath.basename(path)) or "file"
