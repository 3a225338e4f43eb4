"""`notion-sync log` and `notion-sync diff`: a destination's snapshots (folder or S3), and what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from notion_sync.history import (
    HistoryError,
    diff_destination,
    render_diff_html,
    render_diff_json,
    render_diff_text,
    render_log_json,
    render_log_text,
    snapshot_log,
)

# A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
Destination = Annotated[
    str,
    typer.Argument(help="A destination folder (holding current and snapshots/), or s3://bucket/prefix."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def log_command(dest: Destination, as_json: AsJson = False) -> None:
    """List DEST's snapshots, newest first: time, outcome, pages, rows, changes since the one before.

    For s3://bucket/prefix each snapshot's manifest is downloaded to a temporary folder in turn
    (credentials and endpoint from boto3's chain)."""
    try:
        summaries = snapshot_log(dest)
    except HistoryError as error:
        _fail(error)
    typer.echo(render_log_json(summaries) if as_json else render_log_text(summaries))


def diff_command(
    dest: Destination,
    old: Annotated[
        str | None, typer.Argument(help="The older snapshot's name (default: the one before NEW).")
    ] = None,
    new: Annotated[
        str | None, typer.Argument(help="The newer snapshot's name (default: the newest).")
    ] = None,
    as_json: AsJson = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML change report to FILE.")
    ] = None,
) -> None:
    """Pages and rows added, removed, moved, renamed and edited between two snapshots of DEST.

    For s3://bucket/prefix both manifests are downloaded to a temporary folder, and only the files
    compared (edited pages' Markdown, some pages' JSON) are fetched from the object store."""
    try:
        diff = diff_destination(dest, old, new)
    except HistoryError as error:
        _fail(error)
    if html is not None:
        try:
            html.write_text(render_diff_html(diff), encoding="utf-8")
        except OSError as error:
            _fail(f"cannot write {html}: {error.strerror or error}")
    typer.echo(render_diff_json(diff) if as_json else render_diff_text(diff))


def _fail(error: HistoryError | str) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2) from None
