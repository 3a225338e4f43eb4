"""One CSV per data source, streamed row by row from the index."""

from __future__ import annotations

import io
from collections.abc import Callable

from notion_sync.convert.csvfmt import write_csv
from notion_sync.exporter.links import IndexLinks
from notion_sync.models import TablesResult
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


def write_table_files(
    index: ExportIndex,
    destination: LocalDestination,
    staging_id: str,
    seq_from: int,
    limit: int,
    heartbeat: Callable[[], None] = lambda: None,
    notion_layout: bool = False,
    bom: bool = False,
) -> TablesResult:
    """Writes the tables of up to `limit` data sources from `seq_from` on; returns where to go on.

    With the Notion layout, each table also gets Notion's `<name>_all.csv` twin (BOM included)."""
    data_sources = index.by_kind("data_source", seq_from, limit + 1)
    written = 0
    for data_source in data_sources[:limit]:
        heartbeat()
        if data_source.raw is None or data_source.path is None or data_source.status == "skipped":
            continue
        paths = [(data_source.path, bom)]
        if notion_layout:
            paths.append((data_source.path.removesuffix(".csv") + "_all.csv", True))
        for path, with_bom in paths:
            links = IndexLinks(index, path)
            # Streamed from the index to the file: a 10,000-row table never sits in memory.
            with destination.open_stream(staging_id, path) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                write_csv(text, data_source.raw, index.rows(data_source.id), links, bom=with_bom)
                text.flush()
                text.detach()
            index.add_file(data_source.id, destination.describe(staging_id, path))
        written += 1
    next_seq = data_sources[limit].seq if len(data_sources) > limit else None
    return TablesResult(written=written, next_seq=next_seq)
