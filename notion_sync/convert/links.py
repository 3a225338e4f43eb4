"""How converters turn Notion ids and file URLs into links inside the export."""

from __future__ import annotations

import html
import posixpath
import re
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


# What a browser or Markdown renderer ignores inside a URL, or may drop before reading its scheme:
# ASCII whitespace and control characters (browsers strip them at the ends and remove tabs and
# newlines anywhere), Unicode spaces and invisible format characters. Removed only to judge a URL.
_IGNORED_IN_URL = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]+"
)
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark backslash escape of ASCII punctuation
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_TWO_SLASHES = re.compile(r"[/\\]{2}")
_MAX_DECODES = 8  # entity encodings nested deeper than this are not a URL anyone means


def url_as_read(url: str, markdown: bool = True) -> str | None:
    """The URL as a renderer finally reads it: character references decoded (again and again, as
    a Markdown renderer and then the browser each decode once), CommonMark backslash escapes
    undone (unless `markdown` is False: a browser keeps them), whitespace and control characters
    removed. None if the decoding never settles.
    """
    for _ in range(_MAX_DECODES):
        decoded = html.unescape(url)
        if markdown:
            decoded = _MD_ESCAPE.sub(r"\1", decoded)
        if decoded == url:
            return _IGNORED_IN_URL.sub("", url)
        url = decoded
    return None


def is_safe_url(url: str) -> bool:
    """False for schemes a viewer could execute (javascript:, data:, vbscript:, ...).

    Judged on the URL as a Markdown renderer or a browser reads it (`url_as_read`):
    `&#106;avascript:`, `javascript&colon;` and `jav&#x09;ascript:` are all `javascript:` there.
    Relative references are safe except protocol-relative ones (`//host`, or with backslashes,
    which browsers read as slashes): they leave the export.
    """
    try:
        urlsplit(url)
    except ValueError:
        return False
    read = url_as_read(url)
    if read is None:
        return False
    scheme = _SCHEME.match(read)
    if scheme is not None:
        return scheme.group(1).lower() in _SAFE_SCHEMES
    as_browser = url_as_read(url, markdown=False) or ""
    return not (_TWO_SLASHES.match(read) or _TWO_SLASHES.match(as_browser))


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
