"""`notion-sync verify`: an export folder or an archive checked against its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notion_sync.verify import NotAnExport, verify


def verify_command(
    path: Annotated[Path, typer.Argument(help="A snapshot, a destination (its current one) or an archive.")],
) -> None:
    """Check every file of an export or archive against its manifest; non-zero exit on any problem."""
    try:
        report = verify(path)
    except NotAnExport as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)
