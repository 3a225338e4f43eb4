"""How converters turn Notion ids and file URLs into links inside the export."""

from __future__ import annotations

import posixpath
from typing import Protocol
from urllib.parse import quote, urlsplit


class LinkResolver(Protocol):
    """Maps Notion objects and files to paths inside the export.

    Both methods return a plain (not percent-encoded) POSIX path relative to the file being
    written, or None when the target is not part of the export.
    """

    def page_link(self, page_id: str) -> str | None: ...

    def file_link(self, url: str) -> str | None: ...

    def page_title(self, page_id: str) -> str | None:
        """The title of an exported page or database, for text that names it (relation cells)."""
        ...


class NoLinks:
    """Resolver for conversions outside an export: every link keeps its Notion or original URL."""

    def page_link(self, page_id: str) -> str | None:
        return None

    def file_link(self, url: str) -> str | None:
        return None

    def page_title(self, page_id: str) -> str | None:
        return None


_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "ftp", "notion"})


def notion_url(object_id: str) -> str:
    return "https://www.notion.so/" + object_id.replace("-", "")


def encode_path(path: str) -> str:
    """Percent-encode a local relative path so Markdown viewers follow it despite spaces or '#'."""
    return quote(path, safe="/")


def is_safe_url(url: str) -> bool:
    """False for schemes a viewer could execute (javascript:, data:, vbscript:, ...)."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme in _SAFE_SCHEMES or (scheme == "" and not url.strip().lower().startswith("//"))


def relative_path(path: str, folder: str) -> str:
    """`posixpath.relpath(path, folder)` for two paths relative to the same export root.

    relpath makes both absolute first, calling os.getcwd() twice per link; paths that already
    share their root need only the common prefix of their components.
    """
    target, start = _parts(path), _parts(folder)
    common = 0
    for a, b in zip(start, target, strict=False):
        if a != b:
            break
        common += 1
    return "/".join([".."] * (len(start) - common) + target[common:]) or "."


def _parts(path: str) -> list[str]:
    return [part for part in posixpath.normpath(path).split("/") if part != "."]


def page_target(object_id: str, links: LinkResolver) -> str:
    """Link to an exported page/database, or its notion.so URL when it is outside the export."""
    local = links.page_link(object_id)
    return encode_path(local) if local is not None else notion_url(object_id)


def file_target(url: str, links: LinkResolver) -> str:
    local = links.file_link(url)
    return encode_path(local) if local is not None else url


_NOTION_HOSTS = ("www.notion.so", "notion.so", "app.notion.com", "www.notion.com", "notion.com")


def notion_id_from_url(url: str) -> str | None:
    """The object id inside a notion.so URL (as in rich-text links to other pages), if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.hostname not in _NOTION_HOSTS and not (parts.scheme == "" and url.startswith("/")):
        return None
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    tail = last.rsplit("-", 1)[-1].replace("-", "")
    if len(tail) == 32 and all(c in "0123456789abcdefABCDEF" for c in tail):
        return dashed_id(tail)
    return None


def dashed_id(object_id: str) -> str:
    """A Notion id in its dashed, lower-case form (ids arrive with or without dashes)."""
    raw = object_id.replace("-", "").lower()
    if len(raw) != 32:
        return object_id
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
