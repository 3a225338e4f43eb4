"""One CSV per data source, streamed row by row from the index."""

from __future__ import annotations

import io
from collections.abc import Callable

from notion_sync.convert.csvfmt import write_csv
from notion_sync.exporter.links import IndexLinks
from notion_sync.models import TablesResult
from notion_sync.storage.index import ExportIndex
from notion_sync.storage.local import LocalDestination


def write_tables(
    index: ExportIndex,
    destination: LocalDestination,
    staging_id: str,
    seq_from: int,
    limit: int,
    heartbeat: Callable[[], None] = lambda: None,
) -> TablesResult:
    """Writes the tables of up to `limit` data sources from `seq_from` on; returns where to go on."""
    data_sources = index.by_kind("data_source", seq_from, limit + 1)
    written = 0
    for data_source in data_sources[:limit]:
        heartbeat()
        if data_source.raw is None or data_source.path is None or data_source.status == "skipped":
            continue
        buffer = io.StringIO()
        rows = index.rows(data_source.id)
        write_csv(buffer, data_source.raw, rows, IndexLinks(index, data_source.path), bom=False)
        table = destination.write(staging_id, data_source.path, buffer.getvalue().encode())
        index.add_file(data_source.id, table)
        written += 1
    next_seq = data_sources[limit].seq if len(data_sources) > limit else None
    return TablesResult(written=written, next_seq=next_seq)
