"""Safe, stable file names from Notion titles (Linux, macOS and Windows)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])", re.IGNORECASE)
_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ/ZWJ: needed by scripts and emoji sequences
_TRAILING_JUNK = " ."
_DANGLING = {"Mn", "Me", "Cf"}  # what a cut can leave without its base character


def _clean_char(c: str) -> str:
    cat = unicodedata.category(c)
    if cat in ("Cc", "Zl", "Zp") or c.isspace():
        return " "
    if cat == "Cs" or (cat == "Cf" and c not in _KEEP_FORMAT):  # bidi overrides, BOM, lone surrogates
        return ""
    return "_" if _FORBIDDEN.match(c) else c


def _trim(name: str) -> str:
    # leading dots would hide the file or form ".."; trailing dots and spaces Windows drops silently
    return name.strip(" ").lstrip(".").rstrip(_TRAILING_JUNK)


def _cap(name: str, max_bytes: int) -> str:
    while len(name.encode("utf-8")) > max_bytes:
        name = name[:-1]
        while name and unicodedata.category(name[-1]) in _DANGLING:
            name = name[:-1]
    return name


def safe_name(title: str, max_len: int = 80) -> str:
    """A file name (without extension) made from a title: no separators, no '..', no control or
    Windows-reserved characters or device names, no trailing dots or spaces, NFC, at most `max_len`
    UTF-8 bytes, never empty ("Untitled")."""
    text = unicodedata.normalize("NFC", title)
    name = _trim(re.sub(r" {2,}", " ", "".join(_clean_char(c) for c in text)))
    name = _trim(_cap(name, max(max_len, 8)))
    stem, dot, rest = name.partition(".")
    if _RESERVED.fullmatch(stem.rstrip(" ")):
        name = _cap(stem.rstrip(" ") + "_" + dot + rest, max(max_len, 8))
    return name or "Untitled"


def unique_name(base: str, object_id: str, taken: Container[str]) -> str:
    """`base`, or `base` plus a short suffix from the object's own id when a sibling has it.

    The suffix depends only on this object's id (no counters), so renaming or adding one sibling never
    changes another's name. `taken` is checked exactly and case-folded (case-insensitive disks).
    Callers should name siblings in a stable order (e.g. by created time) so the bare name stays put.
    """
    hex_id = re.sub(r"[^0-9a-f]", "", object_id.lower()) or "0"
    candidate = base
    for size in (8, 12, 16, 32):
        if candidate not in taken and candidate.casefold() not in taken:
            return candidate
        candidate = f"{base} {hex_id[-size:]}"
    return candidate
