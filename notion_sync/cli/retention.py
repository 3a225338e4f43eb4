"""`notion-sync prune`: old snapshots of a folder or an S3 prefix deleted, as the --keep* flags do on
publish; `notion-sync gc`: the objects no kept snapshot references deleted from the object store."""

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
from notion_sync.models import GarbageReport, RetentionPolicy
from notion_sync.retention import RetentionPlan, last_run_refused, prune_snapshots
from notion_sync.settings import Settings
from notion_sync.snapshot import INTERNAL, SNAPSHOTS, ManifestUnreadable
from notion_sync.storage.destination import open_destination, remote_destination
from notion_sync.storage.local import LocalDestination, UnsafePath
from notion_sync.storage.objects import ObjectStore, StoreBusy
from notion_sync.storage.s3 import (
    GC_GRACE_SECONDS,
    S3DeleteFailed,
    S3Destination,
    S3UrlError,
    is_s3,
    parse_s3_url,
)

DestArgument = Annotated[
    # A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
    str,
    typer.Argument(help="A destination folder (holding current and snapshots/), or s3://bucket/prefix."),
]


def prune_command(
    dest: DestArgument,
    keep: KeepOption = None,
    keep_daily: KeepDailyOption = None,
    keep_weekly: KeepWeeklyOption = None,
    keep_monthly: KeepMonthlyOption = None,
) -> None:
    """Delete the snapshots of DEST that no --keep* flag keeps; the current one and the newest that
    passed the shrink guard always stay. Prints what was removed and what each rule kept.

    For a folder, the objects of its store that no kept snapshot links any more are then deleted too
    (as `notion-sync gc` does), so the disk space is actually freed.

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
        try:
            with ObjectStore(dest).try_lock():
                plan = prune_snapshots(dest, policy)
        except StoreBusy as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
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
    if remote is None:
        try:
            typer.echo(_garbage_line(_collect_folder(dest, dry_run=False)))
        except StoreBusy as error:
            typer.echo(f"note: {error}; the space is freed by `notion-sync gc {dest}` then", err=True)


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


def gc_command(
    dest: DestArgument,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted; change nothing.")
    ] = False,
) -> None:
    """Delete the objects of DEST's object store that no kept snapshot references, and print what was
    found and freed. Safe to interrupt; a run publishing to DEST is never disturbed (a folder's gc
    refuses to start while one does).

    A folder written before the object store is adopted first: every snapshot file whose bytes match
    its manifest becomes a link into the store (no Notion request), so identical files are stored once;
    then the snapshots older than the NOTION_SYNC_BROWSABLE_SNAPSHOTS newest (default 1: current) are
    packed to their manifest (`restore-files --snapshot NAME` writes one out as a tree).

    For s3://bucket/prefix: objects under `objects/` that no snapshot's manifest names are deleted,
    unless younger than six hours (a run still uploading may be about to reference them); credentials
    and endpoint from boto3's chain.
    """
    if is_s3(dest):
        try:
            remote = S3Destination(parse_s3_url(dest), Settings())
        except S3UrlError as error:
            raise typer.BadParameter(str(error), param_hint="DEST") from None
        try:
            report = remote.collect_garbage(
                heartbeat=lambda: None, dry_run=dry_run, grace_seconds=GC_GRACE_SECONDS
            )
        # S3DeleteFailed covers a collection refused: a manifest unreadable, a run publishing.
        except (ClientError, BotoCoreError, S3DeleteFailed, ManifestUnreadable, ValueError) as error:
            typer.echo(f"error: {remote.location.url}: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(_garbage_line(report))
        return
    root = Path(dest).expanduser()
    if not (root / SNAPSHOTS).is_dir() and not (root / INTERNAL).is_dir():
        typer.echo(f"error: {dest} is not a notion-sync destination (no {SNAPSHOTS}/ there)", err=True)
        raise typer.Exit(1)
    try:
        report = _collect_folder(dest, dry_run)
    except StoreBusy as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_garbage_line(report))


def _collect_folder(dest: str, dry_run: bool) -> GarbageReport:
    """A folder destination's garbage collection, refused (StoreBusy) while a run publishes there."""
    try:
        LocalDestination(dest).check_links()
        store = ObjectStore(dest)
        with store.try_lock():
            report = store.collect_garbage(dry_run=dry_run)
            if not dry_run:
                store.pack_old_snapshots(Settings().browsable_snapshots)
            return report
    except ManifestUnreadable as error:
        typer.echo(
            f"error: {dest}: nothing deleted, a packed snapshot's manifest is unreadable: {error}", err=True
        )
        raise typer.Exit(1) from None
    except (OSError, UnsafePath) as error:
        typer.echo(f"error: {dest}: {error}", err=True)
        raise typer.Exit(1) from None


def _garbage_line(report: GarbageReport) -> str:
    deleted = "would delete" if report.dry_run else "deleted"
    line = (
        f"object store: {report.objects} objects, {report.referenced} referenced, {deleted} "
        f"{report.deleted} ({report.freed_bytes / 1_000_000:.1f} MB freed)"
    )
    if report.young:
        line += f", {report.young} unreferenced but too young to delete"
    if report.adopted:
        line += f"; {report.adopted} files of older snapshots adopted into the store"
    return line
