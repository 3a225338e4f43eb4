"""Retention: keep the last N snapshots of a destination, never the one `current` points to."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from notion_sync.storage.local import CURRENT, SNAPSHOTS


def prune_snapshots(dest: str | Path, keep: int) -> list[Path]:
    """Removes all but the `keep` newest snapshots (names sort by time); returns what was removed.

    The snapshot `current` points to is always kept, even if it is not among the newest.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    root = Path(dest).expanduser().resolve()
    link = root / CURRENT
    current = link.resolve() if link.is_symlink() else None
    snapshots = sorted(p for p in (root / SNAPSHOTS).glob("*") if p.is_dir() and not p.is_symlink())
    removed = [p for p in snapshots[:-keep] if p.resolve() != current]
    for snapshot in removed:
        shutil.rmtree(snapshot)
    return removed


def prune_command(
    dest: Annotated[Path, typer.Argument(help="A destination folder (holding current and snapshots/).")],
    keep: Annotated[int, typer.Option("--keep", min=1, help="Snapshots to keep, newest first.")],
) -> None:
    """Delete old snapshots of DEST, keeping the newest KEEP and the current one."""
    for snapshot in prune_snapshots(dest, keep):
        typer.echo(f"removed {snapshot}")
