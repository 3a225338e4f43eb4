"""Starts an export and returns: `python starter.py DESTINATION [WORKSPACE]` (settings from the
environment; the workspace by name, default NOTION_SYNC_WORKSPACE, served by workers holding it)."""

from __future__ import annotations

import asyncio
import sys

from notion_sync.control import connect, start_export
from notion_sync.models import ExportInput
from notion_sync.settings import Settings


async def main(destination: str, workspace: str | None) -> None:
    settings = Settings()
    client = await connect(settings)
    request = ExportInput(destination=destination, workspace=workspace or settings.workspace)
    handle = await start_export(client, settings, request)
    print(f"Started export {handle.id} of workspace {request.workspace} on task queue {settings.task_queue}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python starter.py DESTINATION [WORKSPACE]")
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))
