"""The restore engine: a snapshot's objects created again in Notion, in plan order, exactly once.

For each planned object: its shell (a page under its new parent page, a row under its new data
source, a database with its first data source), then its content, appended in order in requests
Notion accepts (`blocks.split_for_append`). Child pages and databases are created at their place
among their parent's blocks: the blocks before one are appended, then its shell is created (Notion
puts it at the end), then the rest follows. Files are uploaded from the snapshot's local copies;
comments are written with their original author and time. A second pass, once every object exists,
adds relation and rollup properties and relation values.

Every create is one *step* with a deterministic key. Before it is sent, its intent is recorded in the
`RestoreIndex`; its answer's ids are recorded with the step, in one transaction. A replay (a retried
activity, a killed worker) skips finished steps, and a step with an intent but no result first looks
for what the lost request made (`restore.recover`) and adopts it: nothing is created twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from notion_sync.convert.properties import with_property_items
from notion_sync.notion.errors import ObjectProblem, ObjectUnavailable
from notion_sync.notion.gateway import JSON
from notion_sync.notion.writes import NotionWrites, WriteRejected, WriteUnknown
from notion_sync.restore import recover
from notion_sync.restore.blocks import (
    MAX_TEXT,
    SEPARATE,
    Append,
    Loss,
    Targets,
    creatable_blocks,
    file_object,
    placeholder,
    rich_text,
    split_for_append,
)
from notion_sync.restore.index import Intent, PlannedObject, RestoreIndex
from notion_sync.restore.properties import creatable_schema, creatable_values
from notion_sync.restore.recover import Lookup
from notion_sync.restore.source import SnapshotSource

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# An update (safe to repeat) whose outcome stays unknown this many times fails the step.
_UNKNOWN_ATTEMPTS = 3
# What every restored database loses: the API neither reads nor creates views.
_VIEWS_LOST = (
    "its views (layouts, filters, sorts, groups, shown properties, their order) are not recreated: "
    "the API cannot create views, so the copy has Notion's default view of each data source"
)
# Lets a lost write settle before its parent is listed.
SETTLE_S = 2.0


@dataclass
class Restorer:
    writes: NotionWrites
    index: RestoreIndex
    source: SnapshotSource
    # The page everything without a restored parent goes under.
    target: str
    # Users of the target workspace (None: the same workspace).
    users: frozenset[str] | None = None
    heartbeat: Callable[[], None] = lambda: None
    # The uploads of the page whose content is being appended.
    _uploads: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------------------ objects

    async def create(self, obj: PlannedObject) -> None:
        """First pass: the object's shell and, for a page, the shells of its child pages and
        databases in the order of its blocks (Notion puts each at the end of its parent page). Once
        every shell exists, links and mentions in any content can name their new targets."""
        if obj.state != "pending":
            return
        try:
            if obj.kind == "page":
                saved = self.source.saved("page", obj.id)
                if saved is None:
                    raise _Missing(obj.id, "its JSON is missing from the snapshot")
                await self._page_shell(obj.id, obj.parent_id, saved)
                await self._child_shells(obj.id, saved)
            elif obj.kind == "database":
                await self._database(obj.id, obj.parent_id)
            else:
                await self._data_source(obj.id)
        except ObjectProblem as problem:
            # Rejected, or its parent gone: this object is lost, the restore carries on.
            self._fatal_if_target(problem)
            self.index.add_losses([Loss(obj.id, obj.kind, problem.reason)])
            self.index.set_state(obj.id, "done")
            return
        self.index.set_state(obj.id, "created")

    async def _child_shells(self, old: str, saved: JSON) -> None:
        for block in saved.get("blocks") or []:
            child, kind = str(block.get("id")), block.get("type")
            if kind not in SEPARATE or self.index.kind_of(child) is None:
                continue
            try:
                if kind == "child_page":
                    child_saved = self.source.saved("page", child)
                    if child_saved is not None:
                        await self._page_shell(child, old, child_saved)
                else:
                    await self._database(child, old)
            except ObjectProblem as problem:
                # Tried again when the plan reaches it (under the same parent, at its end).
                log.info("child %s of %s not created at its place: %s", child, old, problem.reason)

    async def fill(self, obj: PlannedObject) -> None:
        """Second pass: a page's blocks, in order among its child pages and databases, and its
        comments."""
        if obj.state == "done":
            return
        new = self.index.new_id(obj.id)
        saved = self.source.saved("page", obj.id) if obj.kind == "page" else None
        if new is not None and saved is not None:
            try:
                await self._content(obj.id, new, saved)
                await self._comments(obj.id, new, saved)
            except ObjectProblem as problem:
                self._fatal_if_target(problem)
                self.index.add_losses([Loss(obj.id, "content", problem.reason)])
        self.index.set_state(obj.id, "done")

    def _fatal_if_target(self, problem: ObjectProblem) -> None:
        """A target page gone or unshared mid-restore ends the restore: every object would be lost."""
        if isinstance(problem, ObjectUnavailable) and _same_id(problem.object_id, self.target):
            raise TargetUnavailable(
                f"the target page {self.target} can no longer be reached ({problem.status} {problem.code}): "
                "was it deleted, moved to the trash or unshared from the integration?"
            )

    def _targets(self, uploads: dict[str, str] | None = None) -> Targets:
        return Targets(ids=self.index.ids_view(), uploads=uploads or {}, users=self.users)

    def _parent_of(self, parent_id: str | None) -> tuple[str, str]:
        """(kind, new id) of where an object goes: its restored parent, else the target page."""
        if parent_id is not None:
            row = self.index.new_id(parent_id)
            kind = self.index.kind_of(parent_id)
            if row is not None and kind in ("page", "data_source", "database"):
                return ("data_source" if kind == "data_source" else "page", row)
        return "page", self.target

    async def _page_shell(self, old: str, parent_id: str | None, saved: JSON) -> str:
        key = f"{old}:shell"
        done = self.index.step(key)
        if done is not None:
            return done[0]
        uploads = await self._uploads_of(old, saved, shell=True)  # nosec B604 # our own keyword argument; no shell is involved
        targets = self._targets(uploads)
        page = with_property_items(saved["page"], saved.get("property_items") or {})
        values = creatable_values(page, targets)
        self.index.add_losses(values.losses)
        parent_kind, parent = self._parent_of(parent_id)
        body: JSON = {"properties": self._shell_properties(page, targets, parent_kind, old)}
        if parent_kind == "data_source":
            body["parent"] = {"type": "data_source_id", "data_source_id": parent}
        else:
            body["parent"] = {"type": "page_id", "page_id": parent}
        title_items = _title_items(body["properties"])
        for name in ("icon", "cover"):
            made = file_object(page.get(name), targets)
            if made is not None:
                body[name] = made
        what = "row" if parent_kind == "data_source" else "child_page"
        lookup = Lookup(what, recover.shown_as(title_items).pattern, olds=((old, "page"),))

        async def send() -> list[str]:
            try:
                return [str((await self.writes.create_page(body))["id"])]
            except WriteRejected as rejected:
                refused = rejected.reason
            # Once more with links and mentions only of restored pages (nothing was created).
            strict = Targets(self.index.ids_view(), uploads, self.users, strict=True)
            again = {**body, "properties": self._shell_properties(page, strict, parent_kind, old)}
            if again != body:
                try:
                    made = await self.writes.create_page(again)
                except WriteRejected as rejected:
                    refused = rejected.reason
                else:
                    what = f"its title or properties lost links ({refused})"
                    self.index.add_losses([Loss(old, "page", what)])
                    return [str(made["id"])]
            title_only = {name: v for name, v in again["properties"].items() if "title" in v}
            if parent_kind != "data_source" or title_only == again["properties"]:
                raise WriteRejected(old, refused)
            # One bad value must not lose the row: it is created with its title alone.
            made = await self.writes.create_page({**again, "properties": title_only})
            dropped = sorted(set(again["properties"]) - set(title_only))
            what = f"its values of {', '.join(dropped)} were refused ({refused})"
            self.index.add_losses([Loss(old, "properties", what)])
            return [str(made["id"])]

        return (await self._step(key, parent, None, lookup, send))[0]

    def _shell_properties(self, page: JSON, targets: Targets, parent_kind: str, old: str) -> JSON:
        """A row's property values, or a page's title."""
        values = creatable_values(page, targets)
        if parent_kind == "data_source":
            return values.now
        for prop in (page.get("properties") or {}).values():
            if prop.get("type") == "title":
                return {"title": {"title": rich_text(prop.get("title"), targets, [], old)}}
        return {"title": {"title": []}}

    async def _database(self, old: str, parent_id: str | None) -> str | None:
        key = f"{old}:shell"
        done = self.index.step(key)
        if done is not None:
            return done[0]
        saved = self.source.saved("database", old)
        if saved is None:
            self.index.add_losses([Loss(old, "database", "its JSON is missing from the snapshot")])
            return None
        sources = [str(s["id"]) for s in saved.get("data_sources") or [] if s.get("id")]
        first = self.source.saved("data_source", sources[0]) if sources else None
        targets = self._targets()
        parent_kind, parent = self._parent_of(parent_id)
        if parent_kind != "page":
            # A database lives on a page: under a data source (a row's parent) it goes to the target.
            parent = self.target
        title_items = rich_text(saved.get("title"), targets, [], old)
        body: JSON = {
            "parent": {"type": "page_id", "page_id": parent},
            "title": title_items,
            "description": rich_text(saved.get("description"), targets, [], old),
            "is_inline": bool(saved.get("is_inline")),
        }
        for name in ("icon", "cover"):
            made = file_object(saved.get(name), targets)
            if made is not None:
                body[name] = made
            elif isinstance(saved.get(name), dict):
                self.index.add_losses([Loss(old, name, "a Notion-hosted database file is not uploaded")])
        if first is not None:
            schema = creatable_schema(first, targets)
            self.index.add_losses(schema.losses)
            body["initial_data_source"] = {"properties": schema.now}
        first_old = sources[0] if first is not None else ""
        olds = ((old, "database"), (first_old, "data_source"))
        lookup = Lookup("child_database", recover.shown_as(title_items).pattern, olds=olds)

        async def send() -> list[str]:
            made = await self.writes.create_database(body)
            return [str(made["id"]), *[str(s["id"]) for s in made.get("data_sources") or []][:1]]

        created = await self._step(key, parent, None, lookup, send)
        self.index.add_losses([Loss(old, "views", _VIEWS_LOST)])
        return created[0]

    async def _data_source(self, old: str) -> None:
        """A database's second (third...) data source; the first came with the database."""
        if self.index.new_id(old) is not None:
            return
        saved = self.source.saved("data_source", old)
        if saved is None:
            self.index.add_losses([Loss(old, "data_source", "its JSON is missing from the snapshot")])
            return
        database_old = str((saved.get("parent") or {}).get("database_id", ""))
        database = self.index.new_id(database_old)
        if database is None:
            self.index.add_losses([Loss(old, "data_source", "its database was not restored")])
            return
        targets = self._targets()
        schema = creatable_schema(saved, targets)
        self.index.add_losses(schema.losses)
        title_items = rich_text(saved.get("title"), targets, [], old)
        body: JSON = {
            "parent": {"type": "database_id", "database_id": database},
            "title": title_items,
            "properties": schema.now,
        }
        lookup = Lookup("data_source", recover.shown_as(title_items).pattern, olds=((old, "data_source"),))

        async def send() -> list[str]:
            return [str((await self.writes.create_data_source(body))["id"])]

        await self._step(f"{old}:shell", database, None, lookup, send)

    # ------------------------------------------------------------------------------ content

    async def _content(self, old: str, new: str, saved: JSON) -> None:
        """The page's blocks in order: the blocks before its first child page or database at the
        start, each following run of blocks right after that child."""
        uploads = self._uploads = await self._uploads_of(old, saved, shell=False)
        after: str | None = None
        segment: list[JSON] = []
        part = 0
        for block in saved.get("blocks") or []:
            child = str(block.get("id"))
            if block.get("type") in SEPARATE and self.index.kind_of(child) is not None:
                after = await self._append_all(f"{old}:c{part}", new, segment, after, uploads)
                segment, part = [], part + 1
                after = self.index.new_id(child) or after
                continue
            segment.append(block)
        await self._append_all(f"{old}:c{part}", new, segment, after, uploads)

    async def _append_all(
        self, key: str, parent: str, blocks: list[JSON], after: str | None, uploads: dict[str, str]
    ) -> str | None:
        """Appends saved `blocks` under `parent` after block `after`, each list of children under its
        created parent; returns the id of the last block appended (else `after`)."""
        olds = [b for b in blocks if b.get("type") not in SEPARATE]
        for run, part in enumerate(_runs(olds)):
            # Converted once the run before it exists: a synced block's reference needs its original.
            converted = creatable_blocks(part, self._targets(uploads))
            self.index.add_losses(converted.losses)
            for n, request in enumerate(split_for_append(converted.blocks)):
                step = f"{key}:{n}" if run == 0 else f"{key}:r{run}:{n}"
                sent_olds = part[n * 100 : n * 100 + len(request.blocks)]
                ids = await self._append(step, parent, request.blocks, sent_olds, after)
                after = ids[-1]
                await self._deferred(step, ids, sent_olds, request)
        return after

    async def _append_deferred(
        self, key: str, parent: str, bodies: list[JSON], olds: list[JSON], after: str | None
    ) -> None:
        """Children held back by `split_for_append` (already converted), under their created parent
        after its child `after` (None: at its start)."""
        for n, request in enumerate(split_for_append(bodies)):
            step = f"{key}:{n}"
            sent_olds = olds[n * 100 : n * 100 + len(request.blocks)]
            ids = await self._append(step, parent, request.blocks, sent_olds, after)
            after = ids[-1]
            await self._deferred(step, ids, sent_olds, request)

    async def _deferred(self, step: str, ids: list[str], olds: list[JSON], request: Append) -> None:
        """The children an append held back, each list under its created parent (after the children
        that went with it)."""
        listed: dict[str, list[str]] = {}
        for path, children in sorted(request.deferred.items()):
            found = await self._created_at(ids, olds, path, listed)
            if found is None:
                # Its parent was replaced by a stand-in (Notion refused it): its children go with it.
                continue
            holder, holder_old = found
            kept = [c for c in holder_old.get("children") or [] if c.get("type") not in SEPARATE]
            where = f"{step}/{'.'.join(map(str, path))}"
            if path in request.fillers:
                await self._after_filler(where, holder, children, kept, listed)
                continue
            sent = request.sent.get(path, 0)
            after: str | None = None
            if sent:
                if holder not in listed:
                    listed[holder] = [str(b["id"]) async for b in self.writes.gateway.children(holder)]
                after = listed[holder][sent - 1]
            await self._append_deferred(where, holder, children, kept[sent:], after)

    async def _after_filler(
        self, where: str, holder: str, bodies: list[JSON], olds: list[JSON], listed: dict[str, list[str]]
    ) -> None:
        """A column created with the filler paragraph: its content appended after the filler, then
        the filler trashed. The filler's id is recorded first: once trashed, it is no longer listed."""
        filler = self.index.step(f"{where}:filler")
        if filler is None:
            if holder not in listed:
                listed[holder] = [str(b["id"]) async for b in self.writes.gateway.children(holder)]
            filler = listed[holder][:1]
            self.index.finish_step(f"{where}:filler", filler)
        await self._append_deferred(where, holder, bodies, olds, filler[0])
        if self.index.step(f"{where}:filler trashed") is None:
            # A retry after a lost answer may find it in the trash already.
            with contextlib.suppress(WriteRejected):
                await _again(partial(self.writes.trash_block, filler[0]))
            self.index.finish_step(f"{where}:filler trashed", [])

    async def _created_at(
        self, ids: list[str], olds: list[JSON], path: tuple[int, ...], listed: dict[str, list[str]]
    ) -> tuple[str, JSON] | None:
        """The new id (and the saved block) at `path` of an append: its first level from the answer,
        deeper levels by listing the created parent's children (once per parent); None if it is not
        there (a stand-in took its parent's place)."""
        new, old = ids[path[0]], olds[path[0]]
        for position in path[1:]:
            if new not in listed:
                listed[new] = [str(b["id"]) async for b in self.writes.gateway.children(new)]
            if position >= len(listed[new]):
                return None
            new = listed[new][position]
            old = [c for c in old.get("children") or [] if c.get("type") not in SEPARATE][position]
        if old.get("id"):
            self.index.map_id(str(old["id"]), new, "block")
        return new, old

    async def _append(
        self, key: str, parent: str, bodies: list[JSON], olds: list[JSON], after: str | None
    ) -> list[str]:
        """One append step; a request Notion rejects is sent again block by block, and a block it
        still rejects becomes a placeholder callout (reported)."""
        kinds = tuple(str(b["type"]) for b in bodies)
        lookup = Lookup("appended", kinds=kinds, olds=tuple((str(o.get("id") or ""), "block") for o in olds))

        async def send() -> list[str]:
            made = await self.writes.append_children(parent, bodies, after)
            return [str(b["id"]) for b in made["results"]]

        # Once Notion refused the whole batch, a retry goes on block by block: the batch is never
        # sent again (should the refusal not recur, every block already made would be made twice).
        split = f"{key}:split"
        if self.index.step(split) is None:
            try:
                return await self._step(key, parent, after, lookup, send)
            except WriteRejected as rejected:
                if len(bodies) == 1:
                    placed = await self._stand_in(key, parent, olds, bodies[0], after, rejected.reason)
                    self.index.finish_step(key, placed, lookup.pairs(placed))
                    return placed
            self.index.finish_step(split, [])
        made: list[str] = []
        for i, (body, old) in enumerate(zip(bodies, olds, strict=True)):
            made += await self._append(f"{key}/{i}", parent, [body], [old], made[-1] if made else after)
        self.index.finish_step(key, made, lookup.pairs(made))
        return made

    async def _stand_in(
        self, key: str, parent: str, olds: list[JSON], sent: JSON, after: str | None, reason: str
    ) -> list[str]:
        """What stands for one block Notion refused: the block with links and mentions only of
        restored pages (a page it names may not be in this workspace), else a placeholder callout."""
        old = olds[0] if olds else {}
        kind = str(sent["type"])
        strict = creatable_blocks(olds, Targets(self.index.ids_view(), self._uploads, self.users, True))
        attempts = [placeholder(kind, "Notion rejected it")]
        if strict.blocks and split_for_append(strict.blocks)[0].blocks[0] != sent:
            attempts.insert(0, split_for_append(strict.blocks)[0].blocks[0])
        for n, body in enumerate(attempts):

            async def send(body: JSON = body) -> list[str]:
                made = await self.writes.append_children(parent, [body], after)
                return [str(b["id"]) for b in made["results"]]

            try:
                lookup = Lookup("appended", kinds=(str(body["type"]),))
                made = await self._step(f"{key}/again{n}", parent, after, lookup, send)
            except WriteRejected:
                continue
            if n == 0 and len(attempts) > 1:
                self.index.add_losses(strict.losses)
            else:
                self.index.add_losses([Loss(str(old.get("id", "")), kind, f"Notion rejected it: {reason}")])
            return made
        raise WriteRejected(str(old.get("id", "")), f"even its placeholder was refused: {reason}")

    # ------------------------------------------------------------------------------ files, comments

    async def _uploads_of(self, old: str, saved: JSON, shell: bool) -> dict[str, str]:
        """URL -> file upload id for the Notion-hosted files of the page (`shell`: its icon, cover
        and `files` properties; else its blocks) that have a local copy in the snapshot."""
        local: dict[str, str] = saved.get("files") or {}
        found: list[str] = []
        scope: Any = saved.get("page") if shell else saved.get("blocks")
        _hosted_urls(scope, found)
        uploads: dict[str, str] = {}
        for url in dict.fromkeys(found):
            relpath = local.get(url)
            path = self.source.local_file(relpath) if relpath else None
            if path is None or relpath is None:
                continue
            key = f"{old}:upload:{relpath}"
            done = self.index.step(key)
            if done is None:
                # A lost upload leaves only an unattached upload, which Notion expires: no intent.
                try:
                    upload = await _again(partial(self.writes.upload_file, path, _file_name(url, path), old))
                except WriteRejected as rejected:
                    # This file alone is lost (its block becomes a placeholder), not the page.
                    self.index.add_losses([Loss(old, "file", f"its upload was refused: {rejected.reason}")])
                    continue
                self.index.finish_step(key, [upload])
                done = [upload]
            uploads[url] = done[0]
        return uploads

    async def _comments(self, old: str, new: str, saved: JSON) -> None:
        """The page's comments, each prefixed with its original author and time; for a row, a
        comment naming the people its people properties held that this workspace does not have."""
        for n, comment in enumerate(saved.get("comments") or []):
            author_id = str((comment.get("created_by") or {}).get("id", ""))
            author = self.source.user_name(author_id) or author_id or "someone"
            prefix = f"Originally by {author} at {comment.get('created_time', '?')}: "
            body = [{"type": "text", "text": {"content": prefix}}]
            body += rich_text(comment.get("rich_text"), self._targets(), [], old)
            await self._comment(f"{old}:comment:{n}", old, new, body)
        page = with_property_items(saved["page"], saved.get("property_items") or {})
        people = creatable_values(page, self._targets()).people_text
        if people and "data_source_id" in (page.get("parent") or {}):
            named = "; ".join(f"{name}: {who}" for name, who in sorted(people.items()))
            text = f"notion-sync restore: people not in this workspace. {named}"[:MAX_TEXT]
            await self._comment(f"{old}:people", old, new, [{"type": "text", "text": {"content": text}}])

    async def _comment(self, key: str, old: str, new: str, body: list[JSON]) -> None:
        if self.index.step(key) is not None:
            return
        lookup = Lookup("comment", recover.shown_as(body).pattern)

        async def send() -> list[str]:
            return [str((await self.writes.create_comment(new, body))["id"])]

        try:
            await self._step(key, new, None, lookup, send)
        except WriteRejected as rejected:
            self.index.add_losses([Loss(old, key.split(":", 1)[1], rejected.reason)])

    # ------------------------------------------------------------------------------ the protocol

    async def _step(
        self,
        key: str,
        parent: str,
        after: str | None,
        lookup: Lookup,
        send: Callable[[], Awaitable[list[str]]],
    ) -> list[str]:
        """One create, exactly once: finished steps are skipped, a lost one is adopted."""
        done = self.index.step(key)
        if done is not None:
            return done
        intent = self.index.intent(key)
        if intent is not None:
            # A create sent before with no answer: it may still be in flight, so it gets time to land.
            await asyncio.sleep(SETTLE_S)
            found = await recover.find(self.writes, self.index, intent, lookup)
            if found is not None:
                log.info("adopted what a lost create made (%s)", key)
                self.index.finish_step(key, found, lookup.pairs(found))
                return found
        self.index.record_intent(Intent(key, parent, after, len(lookup.kinds) or 1, _now(), lookup.dumps()))
        try:
            made = await send()
        except WriteRejected:
            self.index.clear_intent(key)
            raise
        # A `WriteUnknown` fails the attempt: Temporal retries it after a backoff, which looks again
        # (and only then sends), never at once while the lost request may still land.
        self.index.finish_step(key, made, lookup.pairs(made))
        self.heartbeat()
        return made

    # ------------------------------------------------------------------------------ second pass

    async def link(self, obj: PlannedObject) -> None:
        """Relations and rollups (schemas), relation values: once every object exists."""
        new = self.index.new_id(obj.id)
        if new is None:
            return
        key = f"{obj.id}:links"
        if self.index.step(key) is not None:
            return
        targets = self._targets()
        try:
            if obj.kind == "data_source":
                saved = self.source.saved("data_source", obj.id)
                later = creatable_schema(saved, targets).later if saved else {}
                relations = {k: v for k, v in later.items() if "relation" in v}
                rollups = {k: v for k, v in later.items() if "rollup" in v}
                for part in (relations, rollups):
                    if part:
                        await _again(partial(self.writes.update_data_source, new, {"properties": part}))
            elif obj.kind == "page" and self.index.kind_of(obj.parent_id or "") == "data_source":
                await self._relation_values(obj, new, targets)
        except ObjectProblem as problem:
            self._fatal_if_target(problem)
            self.index.add_losses([Loss(obj.id, "relations", problem.reason)])
        self.index.finish_step(key, [])

    async def _relation_values(self, obj: PlannedObject, new: str, targets: Targets) -> None:
        """A row's relation values, one property a request (a refused one loses only itself);
        none for the mirrored side of a two-way relation (set with its other side)."""
        saved = self.source.saved("page", obj.id)
        source = self.source.saved("data_source", obj.parent_id or "")
        if saved is None:
            return
        mirrored = set(creatable_schema(source, targets).mirrored) if source else set()
        page = with_property_items(saved["page"], saved.get("property_items") or {})
        values = creatable_values(page, targets)
        self.index.add_losses(loss for loss in values.losses if loss.kind.startswith("property "))
        for name, value in values.relations.items():
            if name in mirrored:
                continue
            try:
                await _again(partial(self.writes.update_page, new, {"properties": {name: value}}))
            except WriteRejected as rejected:
                self.index.add_losses([Loss(obj.id, f"property {name}", rejected.reason)])


class TargetUnavailable(Exception):
    """The page the restore creates under answers 403/404: nothing more can be restored."""


def _same_id(a: str, b: str) -> bool:
    return a.replace("-", "").lower() == b.replace("-", "").lower()


class _Missing(ObjectProblem):
    """The snapshot lacks what an object needs."""


def _hosted_urls(value: Any, found: list[str]) -> None:
    """Every Notion-hosted file URL in saved JSON (the `file` objects)."""
    if isinstance(value, dict):
        if value.get("type") == "file" and isinstance(value.get("file"), dict):
            url = value["file"].get("url")
            if url:
                found.append(str(url))
        for item in value.values():
            _hosted_urls(item, found)
    elif isinstance(value, list):
        for item in value:
            _hosted_urls(item, found)


async def _again(write: Callable[[], Awaitable[_T]]) -> _T:
    """A write that is safe to repeat (an update; an upload, whose lost copy Notion expires unattached),
    sent again when its outcome is unknown."""
    for _attempt in range(_UNKNOWN_ATTEMPTS - 1):
        try:
            return await write()
        except WriteUnknown:
            await asyncio.sleep(SETTLE_S)
    return await write()


def _runs(blocks: list[JSON]) -> list[list[JSON]]:
    """`blocks` cut before each synced-block reference whose original is earlier in the same run."""
    runs: list[list[JSON]] = [[]] if blocks else []
    originals: set[str] = set()
    for block in blocks:
        origin = (block.get("synced_block") or {}).get("synced_from") or {}
        if block.get("type") == "synced_block" and origin.get("block_id") in originals:
            runs.append([])
            originals = set()
        if block.get("type") == "synced_block" and not origin:
            originals.add(str(block.get("id")))
        runs[-1].append(block)
    return runs


def _title_items(properties: JSON) -> list[JSON]:
    for value in properties.values():
        if isinstance(value, dict) and isinstance(value.get("title"), list):
            return list(value["title"])
    return []


def _file_name(url: str, path: Path) -> str:
    """The name Notion showed for a file: the last segment of its URL (else the local name)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or path.name


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
