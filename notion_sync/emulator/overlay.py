"""`Overlay`: what mutations changed on top of the generated workspace, and what the integration
can read because of it (deleted, trashed, private and unshared pages)."""

from collections.abc import Callable, Iterator

from notion_sync.emulator.generate import DELETED, PRIVATE, TOP, TRASHED, GeneratedWorkspace
from notion_sync.emulator.shape import WorkspaceShape


class Overlay(GeneratedWorkspace):
    """The edits kept beside the generated arrays, and the visibility rules that read them."""

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        super().__init__(seed, pages, shape)
        self._versions: dict[int, int] = {}
        self._appended: dict[int, list[str]] = {}
        self._deleted_blocks: dict[int, set[int]] = {}
        self._child_override: dict[int, list[int]] = {}
        self._flagged: set[int] = set()  # pages ever trashed or deleted
        # sharing overlay (unshare_page / share_page): the nearest override at or above a page
        # decides, False = unshared with the integration, True = shared again below an unshared page
        self._access: dict[int, bool] = {}

    def _ancestors(self, index: int) -> Iterator[int]:
        """The page itself, then its parent pages up to the workspace (rows continue via the database)."""
        seen = 0
        while index != TOP and seen < 10_000:
            yield index
            seen += 1
            parent = self.parent[index]
            index = parent if parent >= TOP else self.db_parent[self.ds_db[-parent - 2]]

    def _flag_up(self, index: int, bit: int) -> bool:
        return any(self.flags[i] & bit for i in self._ancestors(index))

    def _live(self, index: int) -> bool:
        """Not private and not deleted (trashed pages stay readable); unshare_page does not count."""
        if self.flags[index] & (PRIVATE | DELETED):
            return False
        return not self._deleted_any or not self._flag_up(index, DELETED)

    def _visible(self, index: int) -> bool:
        """What the integration can read: live, and not under a page unshared by unshare_page."""
        if self.flags[index] & (PRIVATE | DELETED):  # _live, inlined: this runs for every object read
            return False
        if self._deleted_any and self._flag_up(index, DELETED):
            return False
        return not self._access or self._shared(index)

    def _shared(self, index: int) -> bool:
        access = self._access
        for i in self._ancestors(index):
            found = access.get(i)
            if found is not None:
                return found
        return True

    def _in_trash(self, index: int) -> bool:
        return bool(self.flags[index] & TRASHED) or (self._trashed_any and self._flag_up(index, TRASHED))

    @property
    def _deleted_any(self) -> bool:
        return bool(self._flagged) and any(self.flags[i] & DELETED for i in self._flagged)

    @property
    def _trashed_any(self) -> bool:
        return bool(self._flagged) and any(self.flags[i] & TRASHED for i in self._flagged)

    def child_pages(self, index: int) -> list[int]:
        if index in self._child_override:
            return self._child_override[index]
        if index >= self.n_tree:
            return []
        return list(self.child_list[self.child_start[index] : self.child_start[index + 1]])

    def _db_visible(self, db: int, live: Callable[[int], bool] | None = None) -> bool:
        return db < len(self.db_sources) and (live or self._visible)(self.db_parent[db])
