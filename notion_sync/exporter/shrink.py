"""The shrink guard: a backup never silently shrinks.

Before a run publishes, it counts what it would lose: objects that the previous snapshot holds, or
that this run's listing returned, which answered 403/404, failed or were never reached (`lost`), and
objects of the previous snapshot that a full listing no longer returns or finds in the trash
(`removed`: real deletions, or pages the integration can no longer see). More than the limit (by
default 5 % of the objects or 50, whichever is smaller) and the run does not publish, unless the
user allowed it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from notion_sync.models import ExportOptions, PreviousSnapshot, ShrinkCheck
from notion_sync.snapshot import ManifestUnreadable, read_manifest
from notion_sync.storage.index import ExportIndex

EXAMPLES = 3
_TITLE_CHARS = 60


def measure_shrink(
    index: ExportIndex,
    previous: PreviousSnapshot | None,
    options: ExportOptions,
    heartbeat: Callable[[], None] = lambda: None,
) -> ShrinkCheck:
    lost, examples = index.lost(EXAMPLES)
    removed = index.removed()
    if removed and len(examples) < EXAMPLES and previous is not None:
        examples += _removed_titles(index, Path(previous.path), EXAMPLES - len(examples), heartbeat)
    base = index.measured()
    limit = min(math.floor(base * options.shrink_limit_percent / 100), options.shrink_limit_pages)
    tripped = lost + removed > limit
    return ShrinkCheck(
        lost=lost,
        removed=removed,
        base=base,
        limit=limit,
        examples=[_short(title) for title in examples],
        tripped=tripped,
        allowed=tripped and options.allow_shrink,
    )


def _removed_titles(
    index: ExportIndex, snapshot: Path, wanted: int, heartbeat: Callable[[], None]
) -> list[str]:
    """Titles of previous objects this run did not find, read from the previous manifest."""
    titles: list[str] = []
    try:
        with read_manifest(snapshot) as (_header, entries):
            for n, entry in enumerate(entries):
                if n % 1000 == 0:
                    heartbeat()
                if entry.status == "exported" and not index.contains(entry.id):
                    titles.append(entry.title or entry.id)
                    if len(titles) >= wanted:
                        break
    except ManifestUnreadable:
        pass  # examples only: the counts come from the index
    return titles


def _short(title: str) -> str:
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"
