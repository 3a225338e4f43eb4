"""Where an export is assembled: the destination folder itself, for a local destination."""

from __future__ import annotations

from notion_sync.settings import Settings
from notion_sync.storage.local import LocalDestination


def open_destination(destination: str, settings: Settings) -> LocalDestination:
    """The local folder in which a run stages, publishes and keeps its snapshots."""
    return LocalDestination(destination)
