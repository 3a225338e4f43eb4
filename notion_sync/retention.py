"""Retention: keep the last N snapshots of a destination, never the one `current` points to, never
the newest one that passed the shrink guard, and nothing at all while the last run failed the guard."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from notion_sync.exporter.publish import last_run_refused, newest_guarded, read_report
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination, remote_destination
from notion_sync.storage.local import CURRENT, SNAPSHOTS
from notion_sync.storage.s3 import S3DeleteFailed, S3UrlError


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


def prune_command(
    # A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
    dest: Annotated[
        str,
        typer.Argument(help="A destination folder (holding current and snapshots/), or s3://bucket/prefix."),
    ],
    keep: Annotated[int, typer.Option("--keep", min=1, help="Snapshots to keep, newest first.")],
) -> None:
    """Delete old snapshots of DEST, keeping the newest KEEP and the current one.

    For s3://bucket/prefix: every object under the other `snapshots/<name>/` prefixes is deleted and
    their unfinished multipart uploads aborted (credentials and endpoint from boto3's chain).
    """
    settings = Settings()
    try:
        remote = remote_destination(dest, settings)
    except S3UrlError as error:
        raise typer.BadParameter(str(error), param_hint="DEST") from None
    refused = last_run_refused(open_destination(dest, settings).reports())
    if refused is not None:
        typer.echo(
            f"error: not pruning {dest}: its last run was refused by the shrink guard ({refused}). "
            "Keep every snapshot until a run passes, or publish one with --allow-shrink.",
            err=True,
        )
        raise typer.Exit(1)
    if remote is None:
        for snapshot in prune_snapshots(dest, keep):
            typer.echo(f"removed {snapshot}")
        return
    try:
        removed = remote.prune(keep)
    except (ClientError, BotoCoreError, S3DeleteFailed) as error:
        typer.echo(f"error: {remote.location.url}: {error}", err=True)
        raise typer.Exit(1) from None
    for name in removed:
        typer.echo(f"removed s3://{remote.location.bucket}/{remote.location.snapshot_prefix(name)}")
