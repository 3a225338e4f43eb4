"""What changes in Notion's answers on every read without the content changing: file URLs.

Notion signs the URL of every file it hosts anew on each read (a query string and an
`expiry_time` about an hour later), so two reads of an unedited page differ in those alone.
"""

from __future__ import annotations


def without_signatures(value: object) -> object:
    """A JSON value without what signing changes: every `expiry_time`, and the query string of each
    signed file URL (a `url` beside an `expiry_time`, wherever else it appears: the saved `files` map
    is keyed by it). Every other URL stays whole: a link's query is content."""
    signed: set[str] = set()
    _collect_signed(value, signed)
    return _masked(value, signed)


def _collect_signed(value: object, signed: set[str]) -> None:
    if isinstance(value, dict):
        url = value.get("url")
        if "expiry_time" in value and isinstance(url, str):
            signed.add(url)
        for item in value.values():
            _collect_signed(item, signed)
    elif isinstance(value, list):
        for item in value:
            _collect_signed(item, signed)


def _masked(value: object, signed: set[str]) -> object:
    if isinstance(value, dict):
        return {
            _masked(key, signed): _masked(item, signed) for key, item in value.items() if key != "expiry_time"
        }
    if isinstance(value, list):
        return [_masked(item, signed) for item in value]
    if isinstance(value, str) and value in signed:
        return value.partition("?")[0]
    return value
