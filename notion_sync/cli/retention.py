"""`notion-sync prune`: old snapshots of a folder or an S3 prefix deleted, as the --keep* flags do on
publish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from notion_sync.cli.options import (
    KeepDailyOption,
    KeepMonthlyOption,
    KeepOption,
    KeepWeeklyOption,
    retention_policy,
)
from notion_sync.models import RetentionPolicy
from notion_sync.retention import RetentionPlan, last_run_refused, prune_snapshots
from notion_sync.settings import Settings
from notion_sync.snapshot import SNAPSHOTS
from notion_sync.storage.destination import open_destination, remote_destination
from notion_sync.storage.s3 import S3DeleteFailed, S3UrlError


def prune_command(
    # A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
    dest: Annotated[
        str,
        typer.Argument(help="A destination folder (holding current and snapshots/), or s3://bucket/prefix."),
    ],
    keep: KeepOption = None,
    keep_daily: KeepDailyOption = None,
    keep_weekly: KeepWeeklyOption = None,
    keep_monthly: KeepMonthlyOption = None,
) -> None:
    """Delete the snapshots of DEST that no --keep* flag keeps; the current one and the newest that
    passed the shrink guard always stay. Prints what was removed and what each rule kept.

    For s3://bucket/prefix: every object under the removed `snapshots/<name>/` prefixes is deleted and
    their unfinished multipart uploads aborted (credentials and endpoint from boto3's chain).
    """
    policy = retention_policy(keep, keep_daily, keep_weekly, keep_monthly)
    if policy.is_empty():
        raise typer.BadParameter(
            "give at least one of --keep, --keep-daily, --keep-weekly, --keep-monthly", param_hint="--keep"
        )
    settings = Settings()
    try:
        remote = remote_destination(dest, settings)
    except S3UrlError as error:
        raise typer.BadParameter(str(error), param_hint="DEST") from None
    # The snapshots before a refused run may hold the only copy of what that run lost.
    refused = last_run_refused(open_destination(dest, settings).reports())
    if refused is not None:
        typer.echo(
            f"error: not pruning {dest}: its last run was refused by the shrink guard ({refused}). "
            "Keep every snapshot until a run passes, or publish one with --allow-shrink.",
            err=True,
        )
        raise typer.Exit(1)
    if remote is None:
        plan = prune_snapshots(dest, policy)
        removed = [str(Path(dest) / SNAPSHOTS / name) for name in plan.removed]
    else:
        try:
            plan = remote.prune(policy)
        except (ClientError, BotoCoreError, S3DeleteFailed) as error:
            typer.echo(f"error: {remote.location.url}: {error}", err=True)
            raise typer.Exit(1) from None
        location = remote.location
        removed = [f"s3://{location.bucket}/{location.snapshot_prefix(name)}" for name in plan.removed]
    for path in removed:
        typer.echo(f"removed {path}")
    for line in _kept_lines(plan, policy):
        typer.echo(line)


def _kept_lines(plan: RetentionPlan, policy: RetentionPolicy) -> list[str]:
    """One line per rule that kept something: the rule, then the snapshots it kept, newest first."""
    rules = {
        "last": f"--keep {policy.keep_last}",
        "daily": f"--keep-daily {policy.keep_daily}",
        "weekly": f"--keep-weekly {policy.keep_weekly}",
        "monthly": f"--keep-monthly {policy.keep_monthly}",
        "undated": "no time in the name",
        "current": "current",
        "guarded": "newest that passed the shrink guard",
    }
    return [f"kept ({rules[rule]}): {', '.join(names)}" for rule, names in plan.kept_by.items()]
