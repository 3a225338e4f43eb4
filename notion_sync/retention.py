"""Retention: keep the last N snapshots of a destination, never the one `current` points to, never
the newest one that passed the shrink guard, and nothing at all while the last run failed the guard."""

from __future__ import annotations

import shutil
from pathlib import Path

from notion_sync.exporter.publish import last_run_refused, newest_guarded, read_report
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.local import CURRENT, SNAPSHOTS


def prune_snapshots(dest: str | Path, keep: int) -> list[Path]:
    """Removes all but the `keep` newest snapshots (names sort by time); returns what was removed.

    The snapshot `current` points to is always kept, even if it is not among the newest, and so is
    the newest snapshot that passed the shrink guard (a run published with --allow-shrink may have
    lost pages that only the snapshot before it still holds).
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    root = Path(dest).expanduser().resolve()
    link = root / CURRENT
    current = link.resolve() if link.is_symlink() else None
    snapshots = sorted(p for p in (root / SNAPSHOTS).glob("*") if p.is_dir() and not p.is_symlink())
    by_name = {p.name: p for p in snapshots}
    guarded = newest_guarded((p.name for p in reversed(snapshots)), lambda name: read_report(by_name[name]))
    removed = [p for p in snapshots[:-keep] if p.resolve() != current and p.name != guarded]
    for snapshot in removed:
        shutil.rmtree(snapshot)
    return removed


def prune_refused(dest: str, settings: Settings) -> str | None:
    """Why no snapshot of `dest` may be pruned now: the shrink guard refused its last run (the
    snapshots before it may hold the only copy of what that run lost); None when pruning is safe."""
    return last_run_refused(open_destination(dest, settings).reports())
