"""Where an export is assembled: the destination folder itself for a local destination, a working
mirror under the state folder for an S3 destination (`s3://bucket/prefix`, see `storage/s3.py`)."""

from __future__ import annotations

from notion_sync.settings import Settings
from notion_sync.storage.local import LocalDestination
from notion_sync.storage.s3 import S3Destination, is_s3, mirror_path, parse_s3_url


def open_destination(destination: str, settings: Settings) -> LocalDestination:
    """The local folder in which a run stages, publishes and keeps its snapshots."""
    if is_s3(destination):
        return LocalDestination(mirror_path(parse_s3_url(destination), settings))
    return LocalDestination(destination)


def remote_destination(destination: str, settings: Settings) -> S3Destination | None:
    """Where a published snapshot is uploaded to, if the destination is not a local folder."""
    if is_s3(destination):
        return S3Destination(parse_s3_url(destination), settings)
    return None
