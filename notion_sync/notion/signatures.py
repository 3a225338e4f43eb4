"""What changes in Notion's answers on every read without the content changing: file URLs.

Notion signs the URL of every file it hosts anew on each read (a query string and an
`expiry_time` about an hour later), so two reads of an unedited page differ in those alone.
"""

from __future__ import annotations


def without_signatures(value: object) -> object:
    """A JSON value with every URL's query string (in keys too: the saved `files` map is keyed by
    URL) and every `expiry_time` dropped."""
    if isinstance(value, dict):
        return {
            without_signatures(key): without_signatures(item)
            for key, item in value.items()
            if key != "expiry_time"
        }
    if isinstance(value, list):
        return [without_signatures(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value.partition("?")[0]
    return value
