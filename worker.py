"""Runs a Notion Sync worker: `python worker.py` (settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from notion_sync.observability import configure_logging
from notion_sync.settings import Settings, settings_problem
from notion_sync.workers import run_worker


async def main() -> None:
    """SIGTERM (Kubernetes, docker stop) cancels the run; in-flight activities resume elsewhere from
    their heartbeats, so no graceful drain is needed to lose nothing."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run_worker(Settings())
    except asyncio.CancelledError:
        logging.getLogger("worker").info("SIGTERM: worker stopped")


if __name__ == "__main__":
    try:
        configure_logging()
        asyncio.run(main())
    except ValidationError as error:  # the settings, from the environment
        print(f"error: settings: {settings_problem(error)}", file=sys.stderr)
        sys.exit(2)
