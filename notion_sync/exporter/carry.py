"""Carry-over: a changes-only sync starts from every object of the previous snapshot.

The listing that follows reads only what Notion says was edited since, and replaces those objects;
the rest keeps the JSON the previous snapshot saved of it, and the export step reuses its files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from notion_sync.snapshot import JSON_DIRS, ManifestUnreadable, read_manifest, saved_json
from notion_sync.storage.index import ExportIndex

JSON = dict[str, Any]


class CarryOverError(Exception):
    """The previous snapshot cannot stand in for a listing (its manifest or a file is missing or
    unreadable)."""


def carry_previous_objects(
    index: ExportIndex, snapshot: Path, heartbeat: Callable[[], None] = lambda: None
) -> int:
    """Adds every exported page, database and data source of `snapshot` to the index, streamed.

    Objects the run has already listed are left as they are. Returns how many were added.
    """
    try:
        return index.seed(_saved_objects(snapshot, heartbeat))
    except ManifestUnreadable as error:
        raise CarryOverError(str(error)) from error


def _saved_objects(
    snapshot: Path, heartbeat: Callable[[], None]
) -> Iterator[tuple[str, str, str | None, str, JSON]]:
    with read_manifest(snapshot) as (_header, entries):
        for n, entry in enumerate(entries):
            if n % 1000 == 0:
                heartbeat()
            if entry.type not in JSON_DIRS or entry.status != "exported":
                continue
            saved = snapshot / saved_json(entry.type, entry.id)
            try:
                data = orjson.loads(saved.read_bytes())
            except (OSError, orjson.JSONDecodeError) as error:
                raise CarryOverError(f"{saved}: {error}") from error
            raw = data["page"] if entry.type == "page" else data
            yield entry.id, entry.type, entry.parent, entry.title, raw
