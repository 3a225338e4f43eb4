"""`notion-sync render`: Markdown, CSV and an HTML site rebuilt from a snapshot, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notion_sync.render import render_snapshot


def render_command(
    snapshot: Annotated[
        Path, typer.Argument(help="A snapshot folder (e.g. BACKUP/current)", exists=True, file_okay=False)
    ],
    formats: Annotated[
        str | None,
        typer.Option(help="Comma-separated: md,csv,html. Default: html, or all three with --out."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead (HTML goes to OUT/html).")
    ] = None,
) -> None:
    """Rebuild Markdown, CSV and an HTML site from a snapshot, offline."""
    chosen = [f.strip() for f in (formats or ("md,csv,html" if out else "html")).split(",") if f.strip()]
    try:
        result = render_snapshot(snapshot.resolve(), chosen, out.resolve() if out else None)
    except (ValueError, OSError) as error:
        typer.echo(f"render: {error}", err=True)
        raise typer.Exit(2) from None
    counts = ", ".join(f"{n} {fmt}" for fmt, n in result.written.items() if fmt in chosen)
    typer.echo(f"Rendered {counts}" + (f"; open {result.index}" if result.index else ""))
