"""`notion-sync restore-files`: a snapshot, or one page's subtree, written out as the ordinary tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError

from notion_sync.restore_files import RestoreError, restore_files
from notion_sync.settings import Settings


def restore_files_command(
    # A string, not a Path: Path would fold the `//` of an `s3://bucket/prefix` destination.
    dest: Annotated[
        str,
        typer.Argument(help="A destination folder (holding current and snapshots/), or s3://bucket/prefix."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The folder to write into: new or empty.")],
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="The snapshot's name (default: the current one).")
    ] = None,
    page: Annotated[
        str | None,
        typer.Option("--page", help="Only this page and everything below it: its id or its Markdown path."),
    ] = None,
) -> None:
    """Write a snapshot of DEST (or one page's subtree) into --out as the ordinary tree, every file
    checked against the manifest; on any mismatch nothing is left in --out.

    From s3://bucket/prefix each listed file is read from the object store (objects/<sha[:2]>/<sha>),
    or from its path in a snapshot published before the store (credentials from boto3's chain)."""
    try:
        result = restore_files(dest, out, Settings(), snapshot=snapshot, page=page)
    except RestoreError as error:
        _fail(str(error))
    except (BotoCoreError, ClientError) as error:
        _fail(f"cannot read {dest}: {error}")
    except OSError as error:
        _fail(f"cannot write {error.filename or out}: {error.strerror or error}")
    typer.echo(
        f"restored {result.objects} objects ({result.files} files, {result.bytes} bytes) "
        f"of snapshot {result.snapshot} into {out}"
    )


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2) from None
