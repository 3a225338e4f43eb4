"""`notion-sync prune`: old snapshots of a folder or an S3 prefix deleted, as `--keep` does on publish."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from notion_sync.retention import prune_refused, prune_snapshots
from notion_sync.settings import Settings
from notion_sync.storage.destination import remote_destination
from notion_sync.storage.s3 import S3DeleteFailed, S3UrlError


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
    refused = prune_refused(dest, settings)
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
