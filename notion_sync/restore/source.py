"""The snapshot a restore reads: its saved JSON, its users' names and its local copies of files."""

from __future__ import annotations

from pathlib import Path

import orjson

from notion_sync.notion.gateway import JSON
from notion_sync.snapshot import saved_json


class SnapshotSource:
    """The snapshot being restored, as a folder tree (`restore_files` output or a snapshot folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._users: dict[str, str] | None = None

    def saved(self, kind: str, object_id: str) -> JSON | None:
        try:
            data = orjson.loads((self.root / saved_json(kind, object_id)).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def user_name(self, user_id: str) -> str | None:
        """A user's name as the snapshot's `json/users.json` has it (read once: one entry per member)."""
        if self._users is None:
            try:
                listed = orjson.loads((self.root / "json" / "users.json").read_bytes()).get("users") or []
            except (OSError, orjson.JSONDecodeError, AttributeError):
                listed = []
            self._users = {str(u.get("id")): str(u.get("name")) for u in listed if u.get("name")}
        return self._users.get(user_id)

    def local_file(self, relpath: str) -> Path | None:
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return None
        return path
