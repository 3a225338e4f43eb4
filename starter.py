"""Starts an export and returns: `python starter.py DESTINATION` (settings from the environment)."""

from __future__ import annotations

import asyncio
import sys

from notion_sync.control import start_export
from notion_sync.models import ExportInput
from notion_sync.settings import Settings
from worker import connect


async def main(destination: str) -> None:
    settings = Settings()
    client = await connect(settings)
    handle = await start_export(client, settings, ExportInput(destination=destination))
    print(f"Started export {handle.id} on task queue {settings.task_queue}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python starter.py DESTINATION")
    asyncio.run(main(sys.argv[1]))
