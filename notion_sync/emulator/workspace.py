"""`Workspace`: the emulator's generated workspace, read through the API read model and changed
through the mutation API (POST /_emulator/mutations).

The layers, each over the one before: `GeneratedWorkspace` (generate.py: the compact arrays, names,
users, files), `Overlay` (overlay.py: the edits and what the integration can read), `ReadModel`
(reads.py: the API objects, search and query, with filters.py), and here the mutations.
"""

import time
from collections.abc import Callable

from notion_sync.emulator.content import JSON
from notion_sync.emulator.generate import BASE, DELETED, TOP, TRASHED, minutes_iso
from notion_sync.emulator.ids import Kind
from notion_sync.emulator.shape import WorkspaceShape
from notion_sync.emulator.writes import WriteModel


class Workspace(WriteModel):
    """A deterministic Notion workspace; see docs/emulator.md for the contract with the server."""

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        super().__init__(seed, pages, shape)
        self.clock: Callable[[], float] = time.time  # only mutations read it (tests may replace it)

    def _now(self) -> int:
        """Minutes since BASE, now: Notion stamps edits rounded down to the minute."""
        return int(self.clock() - BASE) // 60

    def _touch(self, index: int) -> None:
        self.etime[index] = max(self._now(), self.etime[index])

    def _target(self, op: JSON, key: str = "page_id") -> int:
        """A live page: people edit pages whether the integration can read them or not."""
        index = self._page_index(str(op.get(key, "")))
        if index is None or not self._live(index):
            raise ValueError(f"unknown {key}: {op.get(key)!r}")
        return index

    def _host(self, index: int) -> int:
        """The page whose tree shows page `index` as a child_page block (or the page itself)."""
        parent = self.parent[index]
        return parent if parent >= 0 else index

    def mutate(self, op: JSON) -> JSON:
        name = op.get("op")
        handler = getattr(self, f"_op_{name}", None) if isinstance(name, str) else None
        if handler is None:
            raise ValueError(f"unknown op: {name!r}")
        result: JSON = handler(op)
        return {"ok": True, **result}

    def _op_edit_page(self, op: JSON) -> JSON:
        index = self._target(op)
        self._versions[index] = self._versions.get(index, 0) + 1
        self._touch(index)
        self._forget(index)
        return {"version": self._versions[index]}

    def _op_rename_page(self, op: JSON) -> JSON:
        index = self._target(op)
        self._titles[index] = str(op.get("title", ""))
        self._touch(index)
        self._forget(index, self._host(index))
        return {}

    def _op_append_blocks(self, op: JSON) -> JSON:
        index = self._target(op)
        count = int(op.get("count", 1))
        if not 0 < count <= 10_000:
            raise ValueError("count must be 1..10000")
        self._touch(index)
        stamp = minutes_iso(self.etime[index])
        self._appended.setdefault(index, []).extend([stamp] * count)
        self._forget(index)
        return {}

    def _op_delete_block(self, op: JSON) -> JSON:
        decoded = self.codec.decode(str(op.get("block_id", "")))
        if decoded is None or decoded.kind != Kind.BLOCK or self._locate(str(op["block_id"]), False) is None:
            raise ValueError(f"unknown block_id: {op.get('block_id')!r}")
        self._deleted_blocks.setdefault(decoded.a, set()).add(decoded.b)
        self._touch(decoded.a)
        self._forget(decoded.a)
        return {}

    def _op_move_page(self, op: JSON) -> JSON:
        index, new_parent = self._target(op), self._target(op, "new_parent_id")
        if self.parent[index] < TOP or index in self._ancestors(new_parent):
            raise ValueError("rows cannot move, and a page cannot move under itself")
        old_parent = self.parent[index]
        if old_parent >= 0:
            self._child_override[old_parent] = [c for c in self.child_pages(old_parent) if c != index]
        self._child_override[new_parent] = [*self.child_pages(new_parent), index]
        self.parent[index] = new_parent
        self._touch(index)
        self._forget(old_parent, new_parent)
        return {}

    def _set_flag(self, index: int, bit: int, on: bool) -> None:
        self.flags[index] = self.flags[index] | bit if on else self.flags[index] & ~bit
        self._flagged.add(index)
        self._touch(index)
        self._forget(index, self._host(index))

    def _op_trash_page(self, op: JSON) -> JSON:
        self._set_flag(self._target(op), TRASHED, True)
        return {}

    def _op_restore_page(self, op: JSON) -> JSON:
        self._set_flag(self._target(op), TRASHED, False)
        return {}

    def _op_delete_page(self, op: JSON) -> JSON:
        self._set_flag(self._target(op), DELETED, True)
        return {}

    def _targets(self, op: JSON) -> list[int]:
        """`{page_id}` or `{page_ids: [...]}`; every id is checked before anything changes."""
        if "page_ids" not in op:
            return [self._target(op)]
        ids = op["page_ids"]
        if "page_id" in op or not isinstance(ids, list) or not ids:
            raise ValueError("give page_id or a non-empty list page_ids, not both")
        return [self._target({"page_id": page_id}) for page_id in ids]

    def _op_unshare_page(self, op: JSON) -> JSON:
        """The integration loses the pages and everything under them; nothing is edited (no
        last_edited_time changes, no content rebuilt): only the overlay and derived orders change."""
        targets = self._targets(op)
        for index in targets:
            self._access[index] = False
        unshared = set(targets)
        for index in [i for i, shared in self._access.items() if shared]:
            if not unshared.isdisjoint(self._ancestors(index)):
                del self._access[index]  # shared again earlier, now under an unshared page
        self._forget()
        return {"count": len(targets)}

    def _op_share_page(self, op: JSON) -> JSON:
        """Undo unshare_page; a page under a still-unshared page is shared on its own (with what is
        under it), as when an integration is added to that page."""
        targets = self._targets(op)
        for index in targets:
            self._access.pop(index, None)
        for index in targets:
            if not self._shared(index):
                self._access[index] = True
        self._forget()
        return {"count": len(targets)}

    def _op_create_page(self, op: JSON) -> JSON:
        parent = self._target(op, "parent_id")
        if self.parent[parent] < TOP:
            raise ValueError("new pages go under ordinary pages")
        index = self.n_pages
        self.n_pages += 1
        now = self._now()
        for column, value in (
            (self.parent, parent),
            (self.flags, 0),
            (self.depth, min(255, self.depth[parent] + 1)),
        ):
            column.append(value)
        self.ctime.append(now)
        self.etime.append(now)
        self._titles[index] = str(op.get("title", ""))
        self._child_override[parent] = [*self.child_pages(parent), index]
        self._forget(parent)
        return {"id": self.page_id(index)}
