"""`GeneratedWorkspace`: the workspace as generated from `(seed, pages, shape)`, before any edit.

The tree lives in compact arrays (parent, timestamps, flags), so 100,000 pages fit in little memory;
page content is derived on demand (content.py) through the `View` methods here.
"""

import hashlib
import hmac
import random
import uuid
from array import array
from datetime import UTC, datetime

from notion_sync.emulator.content import JSON, WORDS
from notion_sync.emulator.files import FileSigner, content_bytes, iso_ms
from notion_sync.emulator.ids import IdCodec, Kind
from notion_sync.emulator.properties import Schemas, SourceInfo
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
DAY = 24 * 60
PAGE_ID_CACHE = 1 << 16  # ~10 MB of ids at most
MAX_FILE_UPLOAD = 5 * 1024**3  # bytes, Notion's paid-plan limit


def minutes_iso(minutes: int) -> str:
    return iso_ms(BASE + minutes * 60)


class GeneratedWorkspace:
    """Pages, rows, databases, data sources and users as generated; implements content's `View`."""

    def __init__(self, seed: int, pages: int, shape: WorkspaceShape | None = None) -> None:
        if pages < 1:
            raise ValueError("pages must be >= 1")
        self.seed = seed
        self.shape = shape or WorkspaceShape()
        self.codec = IdCodec(seed)
        secret = hashlib.blake2b(b"files", key=str(seed).encode()).digest()
        self.files = FileSigner(secret, self.shape.file_expiry_seconds)
        self._rng = random.Random(seed)
        self._titles: dict[int, str] = {}
        self._page_ids: dict[int, str] = {}
        self._plan_users()
        self._plan_tree(pages)
        self._sources = [self._source_info(k) for k in range(len(self.ds_count))]
        self.schemas = Schemas(self, seed)

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

    # --- ids and data sources -----------------------------------------------------------------

    def _decode(self, object_id: str, kind: Kind) -> int | None:
        decoded = self.codec.decode(object_id)
        if decoded is None or decoded.kind != kind:
            return None
        return decoded.a

    def _page_index(self, page_id: str) -> int | None:
        index = self._decode(page_id, Kind.PAGE)
        return index if index is not None and index < self.n_pages else None

    def _source_id(self, k: int) -> str:
        return self.codec.encode(Kind.DATA_SOURCE, k)

    def _source_info(self, k: int) -> SourceInfo:
        target = (
            k if self.ds_count[k] >= 30 else max(range(len(self.ds_count)), key=lambda j: self.ds_count[j])
        )
        return SourceInfo(
            index=k,
            row_start=self.ds_start[k],
            target_id=self._source_id(target),
            target_database_id=self.database_id(self.ds_db[target]),
            target_row_start=self.ds_start[target],
            target_row_count=self.ds_count[target],
        )
