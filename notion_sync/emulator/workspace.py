"""`Workspace`: the generated workspace, its indexes and the mutation overlay.

The tree lives in compact arrays (parent, timestamps, flags); page content is derived on demand from
`(seed, page index, version)` and kept in a bounded LRU, so 100,000 pages fit in little memory.
"""

import hashlib
import hmac
import random
import re
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, overload
from urllib.parse import unquote

from notion_sync.emulator.content import (
    JSON,
    ORDINARY,
    SHOWCASE,
    WORDS,
    PagePlan,
    PageTree,
    TreeBuilder,
    build_tree,
    huge_sections,
    rich,
    text,
)
from notion_sync.emulator.files import FileSigner, content_bytes, iso_ms
from notion_sync.emulator.ids import IdCodec, Kind
from notion_sync.emulator.properties import RowMeta, Schemas, SourceInfo, property_item
from notion_sync.emulator.shape import WorkspaceShape

BASE = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # generated timestamps start here (minutes after it)
SPAN_MINUTES = 540 * 24 * 60
TOP = -1  # parent index of a workspace-level page
HOSTILE_TITLES = (
    "Slash / in / title",
    "..",
    "../../etc/passwd",
    "Control\x00chars\x07and\x1b[31mescape\x7f",
    "Long " + "title " * 60,
    "🚀 Emoji 👩‍👩‍👧 title ✨",
    "<script>alert('title')</script>",
    "*Markdown* _specials_ #[]|`~>",
    "CON",
    "  leading and trailing spaces  ",
    "",
    "Tab\there\nnewline",
)
FIRST_NAMES = ("Ada", "Grace", "Linus", "Zoë", "José", "Mei", "Oluwaseun", "Åsa", "Ravi", "Ingrid")
LAST_NAMES = ("Lovelace", "Hopper", "O'Brien", "Müller", "Nakamura", "<b>Bold</b>")
PRIVATE, ROW, TRASHED, DELETED = 1, 2, 4, 8  # page flag bits
NOT_ALNUM = re.compile(r"[\W_]")  # \w is exactly str.isalnum() plus "_"
DAY = 24 * 60
PAGE_ID_CACHE = 1 << 16  # ~10 MB of ids at most
MAX_FILE_UPLOAD = 5 * 1024**3  # bytes, Notion's paid-plan limit


def _minutes_iso(minutes: int) -> str:
    return iso_ms(BASE + minutes * 60)


class IdSequence(Sequence[str]):
    """Ids computed on access from compact entries (page index >= 0, data source k as -(k + 1))."""

    def __init__(
        self,
        page_id: Callable[[int], str],
        source_id: Callable[[int], str],
        entries: Sequence[int],
        reverse: bool = False,
    ) -> None:
        self._page_id, self._source_id = page_id, source_id
        self._entries, self._reverse = entries, reverse

    def __len__(self) -> int:
        return len(self._entries)

    def _id(self, entry: int) -> str:
        return self._page_id(entry) if entry >= 0 else self._source_id(-entry - 1)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        n = len(self._entries)
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(n))]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        return self._id(self._entries[n - 1 - index if self._reverse else index])

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


class Workspace:
    """A deterministic Notion workspace; see docs/emulator.md for the contract with the server."""

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        if pages < 1:
            raise ValueError("pages must be >= 1")
        self.seed = seed
        self.shape = shape or WorkspaceShape()
        self.codec = IdCodec(seed)
        secret = hashlib.blake2b(b"files", key=str(seed).encode()).digest()
        self.files = FileSigner(secret, self.shape.file_expiry_seconds)
        self.clock: Callable[[], float] = time.time  # only mutations read it (tests may replace it)
        self._rng = random.Random(seed)
        self._titles: dict[int, str] = {}
        self._page_ids: dict[int, str] = {}
        self._plan_users()
        self._plan_tree(pages)
        self._sources = [self._source_info(k) for k in range(len(self.ds_count))]
        self.schemas = Schemas(self, seed)
        self._trees: OrderedDict[int, PageTree] = OrderedDict()
        self._versions: dict[int, int] = {}
        self._appended: dict[int, list[str]] = {}
        self._deleted_blocks: dict[int, set[int]] = {}
        self._child_override: dict[int, list[int]] = {}
        self._flagged: set[int] = set()  # pages ever trashed or deleted
        # sharing overlay (unshare_page / share_page): the nearest override at or above a page
        # decides, False = unshared with the integration, True = shared again below an unshared page
        self._access: dict[int, bool] = {}
        # derived orders, cleared by every mutation
        self._search_cache: dict[str | None, array[int]] = {}
        self._query_cache: OrderedDict[tuple[int, str], list[int]] = OrderedDict()

    # --- generation ---------------------------------------------------------------------------

    def _plan_users(self) -> None:
        self.n_users = self.shape.users
        # shared, read-only: users are nested in most objects, and never change
        self._people = [self._person(u) for u in range(self.n_users)]
        self._authors: list[JSON] = [{"object": "user", "id": p["id"]} for p in self._people]
        self.workspace_id = str(uuid.UUID(bytes=self._seed_bytes(b"workspace", 16), version=4))
        # an internal integration's bot, as GET /v1/users/me answers for it
        self.bot_user: JSON = {
            "object": "user",
            "id": self.codec.encode(Kind.USER, 0),
            "name": "Notion Sync Emulator",
            "avatar_url": None,
            "type": "bot",
            "bot": {
                "owner": {"type": "workspace", "workspace": True},
                "workspace_name": self.shape.workspace_name,
                "workspace_id": self.workspace_id,
                "workspace_limits": {"max_file_upload_size_in_bytes": MAX_FILE_UPLOAD},
            },
        }

    def _seed_bytes(self, label: bytes, size: int) -> bytes:
        return hashlib.blake2b(label, key=str(self.seed).encode(), digest_size=size).digest()

    def _plan_tree(self, pages: int) -> None:
        shape = self.shape
        large = shape.large_data_source_rows  # on top of `pages`
        rows_normal = int(pages * shape.database_share)
        n_private = min(shape.private_pages, (pages - rows_normal) // 10)
        self.n_tree = pages - rows_normal - n_private
        self._plan_sources(rows_normal, large, self.n_tree + n_private)
        pages += large
        self.n_pages = pages
        self.parent = array("i", [TOP]) * pages  # page index, TOP, or -(data source + 2) for rows
        self.flags = array("B", [0]) * pages
        self.depth = array("B", [0]) * pages
        self._plan_parents()
        for i in range(self.n_tree, self.n_tree + n_private):
            self.flags[i] = PRIVATE
        self.private = range(self.n_tree, self.n_tree + n_private)
        for k in range(len(self.ds_start)):
            for i in range(self.ds_start[k], self.ds_start[k] + self.ds_count[k]):
                self.parent[i] = -(k + 2)
                self.flags[i] = ROW
        self._plan_children()
        self._plan_times()
        self.showcase = 0
        self.huge = 1 if self.n_tree > 1 and shape.huge_page_blocks else None
        self._plan_databases()
        self._plan_titles()

    def _plan_sources(self, rows_normal: int, large: int, first_row: int) -> None:
        """At least six data sources when rows allow; the first holds three shares (relation target)."""
        n = max(round(rows_normal / self.shape.rows_per_data_source), min(6, rows_normal // 10))
        if rows_normal and not n:
            n = 1
        weights = [3 if k == 0 else 1 for k in range(n)]
        counts = [rows_normal * w // (n + 2) for w in weights]
        if counts:
            counts[0] += rows_normal - sum(counts)
        if large:
            counts.append(large)
        self.ds_start, self.ds_count = array("i"), array("i", counts)
        for count in counts:
            self.ds_start.append(first_row)
            first_row += count

    def _plan_parents(self) -> None:
        """Breadth-first: each page takes 1..2*fan_out-1 children until max_depth; pages 0-1 stay leaves."""
        shape, rng = self.shape, self._rng
        top = min(shape.top_level_pages, self.n_tree)
        cursor, quota = 2, rng.randint(1, 2 * shape.fan_out - 1)
        for j in range(top, self.n_tree):
            while cursor < j and (quota == 0 or self.depth[cursor] >= shape.max_depth):
                cursor += 1
                quota = rng.randint(1, 2 * shape.fan_out - 1)
            if cursor >= j:
                continue  # nobody can take it: another top-level page
            self.parent[j] = cursor
            self.depth[j] = self.depth[cursor] + 1
            quota -= 1

    def _plan_children(self) -> None:
        """CSR child lists of tree pages (compact: two int arrays)."""
        counts = array("i", [0]) * (self.n_tree + 1)
        for j in range(self.n_tree):
            p = self.parent[j]
            if p >= 0:
                counts[p + 1] += 1
        for i in range(self.n_tree):
            counts[i + 1] += counts[i]
        self.child_start = counts
        self.child_list = array("i", [0]) * self.n_tree
        fill = array("i", counts)
        for j in range(self.n_tree):
            p = self.parent[j]
            if p >= 0:
                self.child_list[fill[p]] = j
                fill[p] += 1

    def _plan_times(self) -> None:
        rng, n = self._rng, self.n_pages
        self.ctime = array("I", [0]) * n
        self.etime = array("I", [0]) * n
        for i in range(n):
            created = int(rng.random() * SPAN_MINUTES)
            self.ctime[i] = created
            self.etime[i] = min(SPAN_MINUTES, created + int(rng.expovariate(1 / (20 * DAY))))

    def _plan_databases(self) -> None:
        """Database 0 holds two data sources; one database sits in a row page, one in a nested page."""
        n_ds = len(self.ds_count)
        self.db_sources: list[tuple[int, ...]] = []
        if n_ds >= 3:
            self.db_sources.append((0, 1))
            self.db_sources += [(k,) for k in range(2, n_ds)]
        else:
            self.db_sources = [(k,) for k in range(n_ds)]
        self.ds_db = array("i", [0]) * n_ds
        for db, sources in enumerate(self.db_sources):
            for k in sources:
                self.ds_db[k] = db
        nested = [i for i in range(self.n_tree) if self.depth[i] >= 2][:50]
        self.db_parent = array("i")
        self.db_inline = array("B")
        for db in range(len(self.db_sources)):
            self.db_parent.append(self._database_home(db, nested))
            self.db_inline.append(1 if db % 3 == 2 else 0)
        self.child_dbs: dict[int, list[int]] = {}
        for db, home in enumerate(self.db_parent):
            self.child_dbs.setdefault(home, []).append(db)
        self.db_ctime = array("I", [self.ctime[self.db_parent[db]] for db in range(len(self.db_sources))])

    def _database_home(self, db: int, nested: list[int]) -> int:
        if db == 0:
            return self.showcase
        if db == 1 and self.ds_count and self.ds_count[0]:
            return self.ds_start[0]  # a database inside a row page
        if db == 2 and nested:
            return nested[0]  # inside a page of a page (and inline)
        return self._rng.randrange(self.n_tree)

    def _plan_titles(self) -> None:
        """Hostile titles on a spread of pages, and duplicate titles among some siblings."""
        for k, title in enumerate(HOSTILE_TITLES):
            index = 3 + 7 * k
            if index < self.n_tree:
                self._titles[index] = title
        if self.ds_count:
            self._titles[self.ds_start[0] + self.ds_count[0] - 1] = HOSTILE_TITLES[3]
        for p in range(0, self.n_tree, 4):
            start, end = self.child_start[p], self.child_start[p + 1]
            if end - start >= 2:
                first, second = self.child_list[start], self.child_list[start + 1]
                self._titles[second] = self.page_title(first)

    # --- the View used by content and properties ----------------------------------------------

    def page_id(self, index: int) -> str:
        """Cached: a page's id is in its object, its parent's blocks, relations, mentions, search."""
        found = self._page_ids.get(index)
        if found is None:
            if len(self._page_ids) >= PAGE_ID_CACHE:
                self._page_ids.clear()
            found = self._page_ids[index] = self.codec.encode(Kind.PAGE, index)
        return found

    def page_title(self, index: int) -> str:
        if index in self._titles:
            return self._titles[index]
        h = (index * 2654435761 + self.seed * 40503) & 0xFFFFFFFF
        words = f"{WORDS[h % len(WORDS)].capitalize()} {WORDS[(h >> 8) % len(WORDS)]}"
        if self.flags[index] & ROW:
            return f"{words} #{index - self.ds_start[-self.parent[index] - 2] + 1}"
        if index == self.showcase:
            return "Showcase: every block type"
        if index == self.huge:
            return f"Huge page ({self.shape.huge_page_blocks} blocks)"
        return words

    def database_id(self, index: int) -> str:
        return self.codec.encode(Kind.DATABASE, index)

    def database_title(self, index: int) -> str:
        if index == 0 and len(self.db_sources[0]) == 2:
            return "Projects (two data sources)"
        h = (index * 40503 + self.seed) & 0xFFFF
        return f"{WORDS[h % len(WORDS)].capitalize()} database {index}"

    def source_title(self, k: int) -> str:
        db = self.ds_db[k]
        if len(self.db_sources[db]) == 2:
            return ("Tasks", "Bugs")[self.db_sources[db].index(k)]
        return self.database_title(db)

    def user_count(self) -> int:
        return self.n_users

    def user_object(self, index: int) -> JSON:
        """Shared and read-only (nested in other objects); copy it to answer with it."""
        return self._people[index]

    def _person(self, index: int) -> JSON:
        first, last = FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[index % len(LAST_NAMES)]
        return {
            "object": "user",
            "id": self.codec.encode(Kind.USER, index + 1),
            "name": f"{first} {last} {index}",
            "avatar_url": None if index % 3 else f"https://example.com/avatars/{index}.png",
            "type": "person",
            "person": {"email": f"{first.lower()}.{index}@example.com"},
        }

    def _author(self, index: int) -> JSON:
        return self._authors[index % self.n_users]

    def random_page(self, rng: random.Random) -> int:
        return rng.randrange(self.n_tree) if self.n_tree else 0

    def random_database(self, rng: random.Random) -> int | None:
        return rng.randrange(len(self.db_sources)) if self.db_sources else None

    def private_page(self, rng: random.Random) -> int | None:
        return self.private[rng.randrange(len(self.private))] if self.private else None

    def file_key(self, tag: str, name: str) -> str:
        return f"{tag}-{self._file_sig(tag, name)}/{name}"

    def _file_sig(self, tag: str, name: str) -> str:
        return self.files.mac(f"{tag}/{name}")[:12]

    def file_object(self, key: str, external: bool) -> JSON:
        if external:
            return {"type": "external", "external": {"url": self.files.external_url(key)}}
        url, expiry = self.files.url(key)
        return {"type": "file", "file": {"url": url, "expiry_time": expiry}}

    def file_bytes(self, key: str) -> bytes | None:
        tag_sig, _, name = key.partition("/")
        tag, _, sig = tag_sig.rpartition("-")
        if not name or not hmac.compare_digest(sig, self._file_sig(tag, name)):
            return None
        return content_bytes(key)

    # --- tree queries -------------------------------------------------------------------------

    def _decode(self, object_id: str, kind: Kind) -> int | None:
        decoded = self.codec.decode(object_id)
        if decoded is None or decoded.kind != kind:
            return None
        return decoded.a

    def _page_index(self, page_id: str) -> int | None:
        index = self._decode(page_id, Kind.PAGE)
        return index if index is not None and index < self.n_pages else None

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

    # --- page content -------------------------------------------------------------------------

    def _tree(self, index: int) -> PageTree:
        tree = self._trees.get(index)
        if tree is not None:
            self._trees.move_to_end(index)
            return tree
        tree = self._build_tree(index)
        self._trees[index] = tree
        if len(self._trees) > self.shape.lru_pages:
            self._trees.popitem(last=False)
        return tree

    def _forget(self, *indexes: int) -> None:
        """Drop cached trees and derived orders after a mutation."""
        for index in indexes:
            self._trees.pop(index, None)
        self._search_cache.clear()
        self._query_cache.clear()

    def _plan_for(self, index: int) -> PagePlan:
        rng = random.Random(f"plan-{self.seed}-{index}")
        if index == self.showcase and index < self.n_tree:
            sections = SHOWCASE
        elif index == self.huge:
            sections = (huge_sections(self.shape.huge_page_blocks),)
        elif self.flags[index] & ROW:
            sections = tuple(rng.sample(ORDINARY, rng.randint(0, 2)))
        else:
            sections = tuple(rng.sample(ORDINARY, rng.randint(1, 4)))
        refs = [
            ("child_page", self.page_id(c), self.page_title(c))
            for c in self.child_pages(index)
            if self._live(c) and not self.flags[c] & TRASHED  # unshared children keep their block
        ]
        refs += [
            ("child_database", self.database_id(db), self.database_title(db))
            for db in self.child_dbs.get(index, [])
        ]
        version = self._versions.get(index, 0)
        return PagePlan(
            sections=sections,
            child_refs=tuple(refs),
            version=version,
            edited=_minutes_iso(self.etime[index]) if version else None,
            appended=tuple(self._appended.get(index, ())),
            deleted=frozenset(self._deleted_blocks.get(index, ())),
        )

    def _build_tree(self, index: int) -> PageTree:
        created = _minutes_iso(self.ctime[index])
        builder = TreeBuilder(self, index, (created, created), self._author(index))
        return build_tree(builder, random.Random(f"content-{self.seed}-{index}"), self._plan_for(index))

    def _materialize(self, tree: PageTree, block: int) -> JSON:
        """A fresh top-level dict; file objects are signed now (nested values are shared, read-only)."""
        out = dict(tree.blocks[block])
        slot = tree.files.get(block)
        if slot is not None:
            holder = out
            for key in slot.path[:-1]:
                holder[key] = dict(holder[key])
                holder = holder[key]
            last = slot.path[-1]
            kept = {k: v for k, v in holder[last].items() if k not in ("type", "file", "external")}
            holder[last] = kept | self.file_object(slot.key, slot.external)
        return out

    # --- objects ------------------------------------------------------------------------------

    def _parent_ref(self, index: int) -> JSON:
        parent = self.parent[index]
        if parent == TOP:
            return {"type": "workspace", "workspace": True}
        if parent >= 0:
            return {"type": "page_id", "page_id": self.page_id(parent)}
        k = -parent - 2
        return {
            "type": "data_source_id",
            "data_source_id": self._source_id(k),
            "database_id": self.database_id(self.ds_db[k]),
        }

    def _source_id(self, k: int) -> str:
        return self.codec.encode(Kind.DATA_SOURCE, k)

    def _decoration(self, tag: str, index: int) -> tuple[JSON | None, JSON | None]:
        """(icon, cover) for a page or database: emoji, external or Notion-hosted files, or none."""
        h = (index * 2246822519 + self.seed) % 20
        icon: JSON | None = None
        if h < 12:
            icon = {"type": "emoji", "emoji": "📄🚀💡🧪✅📌"[h % 6]}
        elif h < 16:
            icon = self.file_object(self.file_key(f"{tag}{index}i", "icon.png"), external=h < 14)
        cover = None
        if h % 7 == 0:
            cover = self.file_object(self.file_key(f"{tag}{index}c", "cover.png"), external=h % 2 == 0)
        return icon, cover

    def _page_url(self, index: int) -> str:
        slug = "-".join(NOT_ALNUM.sub(" ", self.page_title(index)).split())
        hex_id = self.page_id(index).replace("-", "")
        return f"https://app.notion.com/p/{slug}-{hex_id}" if slug else f"https://app.notion.com/p/{hex_id}"

    def page(self, page_id: str) -> JSON | None:
        index = self._page_index(page_id)
        if index is None or not self._visible(index):
            return None
        return self._page_object(index)

    def _page_object(self, index: int) -> JSON:
        trashed = self._in_trash(index)
        icon, cover = self._decoration("p", index)
        return {
            "object": "page",
            "id": self.page_id(index),
            "created_time": _minutes_iso(self.ctime[index]),
            "last_edited_time": _minutes_iso(self.etime[index]),
            "created_by": self._author(index),
            "last_edited_by": self._author(index + self._versions.get(index, 0)),
            "cover": cover,
            "icon": icon,
            "parent": self._parent_ref(index),
            "in_trash": trashed,
            "is_archived": trashed,
            "is_locked": index % 50 == 7,
            "properties": self._properties(index, capped=True),
            "url": self._page_url(index),
            "public_url": None,
            "archived": trashed,
        }

    def _properties(self, index: int, capped: bool) -> JSON:
        parent = self.parent[index]
        if parent >= TOP:
            return {"title": {"id": "title", "type": "title", "title": rich(self.page_title(index))}}
        meta = RowMeta(
            version=self._versions.get(index, 0),
            created=_minutes_iso(self.ctime[index]),
            edited=_minutes_iso(self.etime[index]),
            creator=self.user_object(index % self.n_users),
            editor=self.user_object((index + self._versions.get(index, 0)) % self.n_users),
        )
        return self.schemas.values(index, self._sources[-parent - 2], meta, capped)

    def _source_info(self, k: int) -> SourceInfo:
        target = (
            k if self.ds_count[k] >= 30 else max(range(len(self.ds_count)), key=lambda j: self.ds_count[j])
        )
        return SourceInfo(
            index=k,
            row_start=self.ds_start[k],
            row_count=self.ds_count[k],
            target_id=self._source_id(target),
            target_database_id=self.database_id(self.ds_db[target]),
            target_row_start=self.ds_start[target],
            target_row_count=self.ds_count[target],
        )

    def database(self, database_id: str) -> JSON | None:
        db = self._decode(database_id, Kind.DATABASE)
        if db is None or not self._db_visible(db):
            return None
        home = self.db_parent[db]
        trashed = self._in_trash(home)
        icon, cover = self._decoration("d", db)
        return {
            "object": "database",
            "id": self.database_id(db),
            "title": rich(self.database_title(db)),
            "description": [text("A generated database with <every> *property* type.")],
            "parent": {"type": "page_id", "page_id": self.page_id(home)},
            "is_inline": bool(self.db_inline[db]),
            "in_trash": trashed,
            "is_locked": False,
            "created_time": _minutes_iso(self.db_ctime[db]),
            "last_edited_time": _minutes_iso(self.db_ctime[db] + 5),
            "data_sources": [
                {"id": self._source_id(k), "name": self.source_title(k)} for k in self.db_sources[db]
            ],
            "icon": icon,
            "cover": cover,
            "url": "https://app.notion.com/p/" + self.database_id(db).replace("-", ""),
            "public_url": None,
            "archived": trashed,
        }

    def data_source(self, data_source_id: str) -> JSON | None:
        k = self._decode(data_source_id, Kind.DATA_SOURCE)
        if k is None or k >= len(self.ds_count) or not self._db_visible(self.ds_db[k]):
            return None
        return self._source_object(k)

    def _source_object(self, k: int) -> JSON:
        db = self.ds_db[k]
        home = self.db_parent[db]
        trashed = self._in_trash(home)
        icon, cover = self._decoration("s", k)
        author = self._author(db)
        return {
            "object": "data_source",
            "id": self._source_id(k),
            "cover": cover,
            "icon": icon,
            "created_time": _minutes_iso(self.db_ctime[db]),
            "created_by": author,
            "last_edited_by": author,
            "last_edited_time": _minutes_iso(self.db_ctime[db] + 5),
            "title": rich(self.source_title(k)),
            "description": [],
            "is_inline": bool(self.db_inline[db]),
            "properties": self.schemas.schema(self._sources[k]),
            "parent": {"type": "database_id", "database_id": self.database_id(db)},
            "database_parent": {"type": "page_id", "page_id": self.page_id(home)},
            "url": "https://app.notion.com/p/" + self.database_id(db).replace("-", ""),
            "public_url": None,
            "in_trash": trashed,
            "archived": trashed,
        }

    def _reference_block(self, index: int | None, db: int | None) -> JSON:
        """The child_page / child_database block whose id is the page's or database's own id."""
        if index is not None:
            object_id, kind, title = self.page_id(index), "child_page", self.page_title(index)
            owner, parent, trashed = index, self._parent_ref(index), self._in_trash(index)
        else:
            assert db is not None
            home = self.db_parent[db]
            object_id, kind, title = self.database_id(db), "child_database", self.database_title(db)
            owner, parent, trashed = (
                home,
                {"type": "page_id", "page_id": self.page_id(home)},
                self._in_trash(home),
            )
        return {
            "object": "block",
            "id": object_id,
            "parent": parent,
            "created_time": _minutes_iso(self.ctime[owner]),
            "last_edited_time": _minutes_iso(self.etime[owner]),
            "created_by": self._author(owner),
            "last_edited_by": self._author(owner),
            "has_children": kind == "child_page",
            "archived": trashed,
            "in_trash": trashed,
            "type": kind,
            kind: {"title": title},
        }

    def _locate(self, block_id: str, shared: bool = True) -> tuple[Kind, int, int] | None:
        """(kind, page or database index, block index) of a visible page, database or block
        (with `shared=False`, of a live one, shared with the integration or not)."""
        decoded = self.codec.decode(block_id)
        if decoded is None:
            return None
        kind, a, b = decoded
        visible = self._visible if shared else self._live
        if kind == Kind.DATABASE:
            return (kind, a, 0) if self._db_visible(a, visible) else None
        if kind not in (Kind.PAGE, Kind.BLOCK) or a >= self.n_pages or not visible(a):
            return None
        if kind == Kind.BLOCK:
            blocks = self._tree(a).blocks
            if not 0 < b < len(blocks) or not blocks[b]:
                return None
        return kind, a, b

    def block(self, block_id: str) -> JSON | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return self._reference_block(None, a)
        if kind == Kind.PAGE:
            return self._reference_block(a, None)
        return self._materialize(self._tree(a), b)

    def block_children(self, block_id: str) -> list[JSON] | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return []
        tree = self._tree(a)
        b = tree.alias.get(b, b)  # a duplicate synced block lists its original's children
        return [self._materialize(tree, child) for child in tree.children.get(b, ())]

    # --- users and comments -------------------------------------------------------------------

    def users(self) -> list[JSON]:
        return [dict(person) for person in self._people] + [dict(self.bot_user)]

    def user(self, user_id: str) -> JSON | None:
        index = self._decode(user_id, Kind.USER)
        if index is None or index > self.n_users:
            return None
        return dict(self.bot_user if index == 0 else self.user_object(index - 1))

    def comments(self, block_id: str) -> list[JSON] | None:
        found = self._locate(block_id)
        if found is None:
            return None
        kind, a, b = found
        if kind == Kind.DATABASE:
            return []
        count = (a % 4 == 0) + (a % 8 == 0) if kind == Kind.PAGE else int((a * 31 + b) % 13 == 0)
        parent = (
            {"type": "page_id", "page_id": self.page_id(a)}
            if kind == Kind.PAGE
            else {"type": "block_id", "block_id": self.codec.encode(Kind.BLOCK, a, b)}
        )
        return [self._comment(a, b, n, parent) for n in range(count)]

    def _comment(self, page: int, block: int, n: int, parent: JSON) -> JSON:
        stamp = _minutes_iso(self.ctime[page] + 10 + n)
        words = ["Looks good", "<script>alert('c')</script> *really*?", "See the spec"][
            (page + block + n) % 3
        ]
        return {
            "object": "comment",
            "id": self.codec.encode(Kind.COMMENT, page, block * 4 + n),
            "parent": parent,
            "discussion_id": self.codec.encode(Kind.DISCUSSION, page, block),
            "created_time": stamp,
            "last_edited_time": stamp,
            "created_by": self._author(page + n),
            "rich_text": [text(f"{words} "), text("(comment)", "italic")],
        }

    # --- property items -----------------------------------------------------------------------

    def property_item(self, page_id: str, property_id: str) -> JSON | list[JSON] | None:
        index = self._page_index(page_id)
        if index is None or not self._visible(index):
            return None
        props = self._properties(index, capped=False)
        for name, prop in props.items():
            if property_id in (prop["id"], unquote(prop["id"]), name):
                return property_item(prop)
        return None

    # --- search and query ---------------------------------------------------------------------

    def _searchable(self, index: int) -> bool:
        return self._visible(index) and not self._in_trash(index)

    def search(self, kind: Literal["page", "data_source"] | None, descending: bool) -> Sequence[str]:
        """Visible, untrashed pages (rows included) and data sources by (last_edited_time, id)."""
        entries = self._search_cache.get(kind)
        if entries is None:
            entries = self._search_order(kind)
            self._search_cache[kind] = entries
        return IdSequence(self.page_id, self._source_id, entries, reverse=descending)

    def _search_order(self, kind: str | None) -> "array[int]":
        number, etime = self.codec.number, self.etime
        keyed: list[tuple[int, int, int]] = []
        if kind in (None, "page"):
            keyed += [(etime[i], number(Kind.PAGE, i), i) for i in range(self.n_pages) if self._searchable(i)]
        if kind in (None, "data_source"):
            for k in range(len(self.ds_count)):
                db = self.ds_db[k]
                if self._db_visible(db) and not self._in_trash(self.db_parent[db]):
                    keyed.append((self.db_ctime[db] + 5, number(Kind.DATA_SOURCE, k), -k - 1))
        keyed.sort()
        return array("q", (entry for _, _, entry in keyed))

    def search_result(self, object_id: str) -> JSON:
        decoded = self.codec.decode(object_id)
        if decoded is not None and decoded.kind == Kind.DATA_SOURCE:
            return self._source_object(decoded.a)
        assert decoded is not None and decoded.kind == Kind.PAGE, object_id
        return self._page_object(decoded.a)

    def query(
        self, data_source_id: str, filter: JSON | None, sorts: list[JSON] | None
    ) -> Sequence[str] | None:
        k = self._decode(data_source_id, Kind.DATA_SOURCE)
        if k is None or k >= len(self.ds_count) or not self._db_visible(self.ds_db[k]):
            return None
        accept = _predicate(filter) if filter else None
        order = _sort_key(sorts or [], self.ctime, self.etime)
        cache_key = (k, repr((filter, sorts)))
        rows = self._query_cache.get(cache_key)
        if rows is None:
            start = self.ds_start[k]
            rows = [
                i
                for i in range(start, start + self.ds_count[k])
                if self._searchable(i) and (accept is None or accept(self.ctime[i], self.etime[i]))
            ]
            if order is not None:
                rows.sort(key=order)
            self._query_cache[cache_key] = rows
            if len(self._query_cache) > 32:
                self._query_cache.popitem(last=False)
        return IdSequence(self.page_id, self._source_id, rows)

    # --- mutations ----------------------------------------------------------------------------

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
        stamp = _minutes_iso(self.etime[index])
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

    # --- summary ------------------------------------------------------------------------------

    def summary(self) -> JSON:
        deleted = sum(1 for i in self._flagged if self.flags[i] & DELETED)
        return {
            "seed": self.seed,
            "pages": self.n_pages - deleted,
            "tree_pages": self.n_tree,
            "rows": sum(self.ds_count),
            "databases": len(self.db_sources),
            "data_sources": len(self.ds_count),
            "largest_data_source_rows": max(self.ds_count, default=0),
            "private_pages": len(self.private),
            "unshared_pages": sum(1 for shared in self._access.values() if not shared),
            "users": self.n_users + 1,
            "max_depth": max(self.depth, default=0),
            "huge_page_blocks": self.shape.huge_page_blocks if self.huge is not None else 0,
        }


def _instant(value: Any) -> tuple[float, bool]:
    """(seconds since epoch, whether `value` was a bare date) of an ISO date or date-time."""
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a date: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp(), "T" not in value


def _predicate(spec: JSON) -> Callable[[int, int], bool]:
    """Timestamp filters (and/or of them) over (created, edited) minutes since BASE."""
    for joiner, combine in (("and", all), ("or", any)):
        if joiner in spec:
            parts = [_predicate(p) for p in spec[joiner]]
            return lambda c, e: combine(p(c, e) for p in parts)
    field = spec.get("timestamp")
    if field not in ("created_time", "last_edited_time") or not isinstance(spec.get(field), dict):
        raise ValueError("only created_time / last_edited_time timestamp filters are supported")
    ((operator, value),) = spec[field].items()
    seconds, bare = _instant(value)
    low = (seconds - BASE) / 60
    high = low + (DAY if bare else 1)  # the instant's minute (or day) is [low, high)
    tests: dict[str, Callable[[int], bool]] = {
        "equals": lambda m: low <= m < high,
        "before": lambda m: m < low,
        "after": lambda m: m >= high,
        "on_or_before": lambda m: m < high,
        "on_or_after": lambda m: m >= low,
    }
    if operator not in tests:
        raise ValueError(f"unsupported timestamp condition: {operator}")
    test = tests[operator]
    return (lambda c, e: test(c)) if field == "created_time" else (lambda c, e: test(e))


def _sort_key(
    sorts: list[JSON], ctime: "array[int]", etime: "array[int]"
) -> Callable[[int], tuple[int, ...]] | None:
    if not sorts:
        return None
    columns: list[tuple[array[int], int]] = []
    for sort in sorts:
        field = sort.get("timestamp")
        if field not in ("created_time", "last_edited_time"):
            raise ValueError("only timestamp sorts are supported")
        columns.append(
            (ctime if field == "created_time" else etime, -1 if sort.get("direction") == "descending" else 1)
        )
    return lambda i: (*(sign * column[i] for column, sign in columns), i)
