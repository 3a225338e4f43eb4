"""`notion-sync archive`: a zip or tar.gz of a snapshot, in parts if asked, with its checksums."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from notion_sync.archive import ArchiveError, write_archive


class ArchiveFormat(StrEnum):
    zip = "zip"
    tar_gz = "tar.gz"


def archive_command(
    source: Annotated[Path, typer.Argument(help="A snapshot, or a destination (its current snapshot).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the archive parts are written to.")],
    fmt: Annotated[ArchiveFormat, typer.Option("--format", help="Archive format.")] = ArchiveFormat.zip,
    split_mb: Annotated[
        int | None, typer.Option("--split-mb", min=1, help="Cut into standalone parts of at most N MiB.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Archive name (default notion-sync-<snapshot>).")] = None,
) -> None:
    """Write a zip or tar.gz archive of an export, with a sha256 checksum file."""
    split = split_mb * 1024 * 1024 if split_mb is not None else None
    try:
        result = write_archive(source, out, "zip" if fmt is ArchiveFormat.zip else "tar.gz", split, name)
    except (ArchiveError, ValueError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for part in result.parts:
        typer.echo(f"{out / part.name}  {part.size} bytes, {part.files} files")
    typer.echo(f"{out / result.checksums}  (check with `notion-sync verify` or `sha256sum -c`)")
