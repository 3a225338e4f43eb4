"""Data sources to CSV: one column per property in schema order, one row per page."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

from .links import LinkResolver
from .properties import property_text

_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _schema(data_source: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    props = data_source.get("properties")
    items = [(str(k), v) for k, v in props.items() if isinstance(v, dict)] if isinstance(props, dict) else []
    # title first, the rest in schema order (sorted() is stable)
    return sorted(items, key=lambda kv: kv[1].get("type") != "title")


def csv_header(data_source: dict[str, Any]) -> list[str]:
    """The property names in column order, as they are (`write_csv` neutralises them)."""
    return [name for name, _ in _schema(data_source)]


def neutralise(cell: str) -> str:
    """Prefix a quote to cells a spreadsheet would evaluate as a formula; plain numbers stay numbers."""
    if cell.lstrip(" ").startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_row(data_source: dict[str, Any], row_page: dict[str, Any], links: LinkResolver) -> list[str]:
    props = row_page.get("properties") if isinstance(row_page.get("properties"), dict) else {}
    assert isinstance(props, dict)
    cells = []
    for name, _ in _schema(data_source):
        prop = props.get(name)
        cells.append(neutralise(property_text(prop, links)) if isinstance(prop, dict) else "")
    return cells


def write_csv(
    fileobj: TextIO,
    data_source: dict[str, Any],
    rows: Iterable[dict[str, Any]],
    links: LinkResolver,
    bom: bool = False,
) -> None:
    """Stream a data source's rows as RFC 4180 CSV (CRLF). Open `fileobj` with newline=""."""
    if bom:
        fileobj.write("\ufeff")  # Excel needs it to read UTF-8
    writer = csv.writer(fileobj, lineterminator="\r\n")
    # property names are user text too: a column named `=HYPERLINK(...)` is as live as a cell
    writer.writerow([neutralise(name) for name in csv_header(data_source)])
    for row in rows:
        writer.writerow(csv_row(data_source, row, links))
