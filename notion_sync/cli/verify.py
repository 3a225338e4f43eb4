"""`notion-sync verify`: an export folder, an archive or an S3 destination checked against its manifest."""

from __future__ import annotations

from typing import Annotated

import typer

from notion_sync.verify import NotAnExport, verify


def verify_command(
    # A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
    path: Annotated[
        str,
        typer.Argument(
            help="A snapshot, a destination (its current one), an archive, or s3://bucket/prefix."
        ),
    ],
    snapshot: Annotated[
        str | None,
        typer.Option(
            "--snapshot", help="Verify this snapshot of the destination instead of its current one."
        ),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="Also re-render Markdown and CSV from the JSON and compare them."),
    ] = False,
) -> None:
    """Check every file of a folder, archive or S3 export against its manifest; non-zero on any problem.

    For s3://bucket/prefix: every file the manifest of the snapshot current.json names (or --snapshot)
    lists is downloaded and hashed, from the object store (objects/<sha[:2]>/<sha>) or, for a snapshot
    published before the store, from its path; objects under the snapshot's prefix that it does not
    list are extra (credentials and endpoint from boto3's chain).
    """
    try:
        report = verify(path, deep=deep, snapshot=snapshot)
    except NotAnExport as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)
