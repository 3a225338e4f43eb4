"""The steps of one restore as plain functions (the activities call these): prepare the snapshot and
the plan, restore a range of the plan, link a range, write the report and the mapping, undo.

Everything a restore keeps lives in `<state>/restores/<restore id>/`: `snapshot/` (the snapshot as a
tree, from `restore_files`: a folder, packed or S3 snapshot alike), `restore.sqlite` (the
`RestoreIndex`), and at the end `report.json` and `mapping.jsonl` (old id -> new id, one a line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from notion_sync.exporter.context import open_gateway
from notion_sync.models import RestoreCounts, RestoreReport, RestoreStep, RestoreStepResult
from notion_sync.notion.errors import ObjectProblem, ObjectUnavailable
from notion_sync.notion.writes import NotionWrites
from notion_sync.restore import engine, recover
from notion_sync.restore.engine import Restorer
from notion_sync.restore.index import RestoreIndex
from notion_sync.restore.plan import PlanError, plan_restore
from notion_sync.restore.source import SnapshotSource
from notion_sync.restore_files import RestoreError, restore_files
from notion_sync.settings import Settings
from notion_sync.snapshot import MANIFEST, has_manifest

log = logging.getLogger(__name__)

RESTORES = "restores"
_PLANNED = "plan"


class RestoreRefused(Exception):
    """The restore cannot start: no such snapshot or page (the message says which)."""


class RestoreStateMissing(Exception):
    """This worker lacks the restore's index (another host, a wiped state folder): carrying on would
    report the restore's ranges done while nothing is restored."""


def restore_dir(settings: Settings, restore_id: str) -> Path:
    if not restore_id or "/" in restore_id or restore_id.startswith("."):
        raise RestoreRefused(f"{restore_id!r} is not a restore id")
    return settings.state_dir / RESTORES / restore_id


async def check_target(settings: Settings, target: str) -> None:
    """Refuses a target page the integration cannot see, or one in the trash, before anything is made."""
    async with open_gateway(settings) as (gateway, _http):
        try:
            page = await gateway.page(target)
        except ObjectUnavailable as missing:
            raise RestoreRefused(
                f"the target page {target} cannot be read ({missing.status} {missing.code}): "
                "is it shared with the integration?"
            ) from None
    if page.get("in_trash") or page.get("archived"):
        raise RestoreRefused(f"the target page {target} is in the trash")


def prepare(settings: Settings, step: RestoreStep) -> RestoreStepResult:
    """The snapshot as a tree under the restore's folder (once), and its plan (once)."""
    work = restore_dir(settings, step.restore_id)
    tree = work / "snapshot"
    if not has_manifest(tree):
        partial = work / "snapshot.partial"
        shutil.rmtree(partial, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        try:
            restore_files(step.source, partial, settings, snapshot=step.snapshot)
        except RestoreError as error:
            raise RestoreRefused(str(error)) from None
        partial.rename(tree)
    with RestoreIndex(work / "restore.sqlite") as index:
        if index.step(_PLANNED) is None:
            try:
                plan_restore(tree / MANIFEST, step.pages, index)
            except PlanError as error:
                raise RestoreRefused(str(error)) from None
            index.finish_step(_PLANNED, [])
        counts = _counts(index)
        return RestoreStepResult(next_cursor=0, counts=counts, done=index.max_seq() == 0)


async def record_users(settings: Settings, step: RestoreStep) -> None:
    """The target workspace's users, listed once per restore into its index (every range reads them
    there: mentions and people of users this workspace lacks become text)."""
    with _planned_index(settings, step.restore_id) as index:
        if index.users() is not None:
            return
        async with open_gateway(settings) as (gateway, _http):
            listed = await gateway.users()
        index.set_users(str(u["id"]) for u in listed if u.get("id"))


@contextlib.contextmanager
def _planned_index(settings: Settings, restore_id: str) -> Iterator[RestoreIndex]:
    """The restore's index, refused unless `prepare` planned it on this worker."""
    path = restore_dir(settings, restore_id) / "restore.sqlite"
    if not path.is_file():
        raise RestoreStateMissing(
            f"this worker has no state for restore {restore_id} ({path} is missing): "
            "run it on the worker that prepared it, or start the restore again"
        )
    with RestoreIndex(path) as index:
        if index.step(_PLANNED) is None:
            raise RestoreStateMissing(f"restore {restore_id} was never planned on this worker ({path})")
        yield index


Pass = Literal["create", "fill", "link"]
PASSES: tuple[Pass, ...] = ("create", "fill", "link")


async def restore_range(
    settings: Settings, step: RestoreStep, which: Pass, heartbeat: Callable[..., None] | None = None
) -> RestoreStepResult:
    """One pass over the next `step.limit` objects of the plan after `step.cursor`: `create` their
    shells, `fill` their content, `link` their relations (once every object exists)."""
    work = restore_dir(settings, step.restore_id)
    with _planned_index(settings, step.restore_id) as index:
        async with open_gateway(settings, heartbeat) as (gateway, _http):
            users = index.users()
            if users is None:
                # Prepared by a worker that did not list them: listed once, here.
                users = frozenset(str(u["id"]) for u in await gateway.users() if u.get("id"))
                index.set_users(users)
            source = SnapshotSource(work / "snapshot")
            restorer = Restorer(NotionWrites(gateway), index, source, step.target, users, gateway.beat)
            run_one = {"create": restorer.create, "fill": restorer.fill, "link": restorer.link}[which]
            objects = index.after(step.cursor, step.limit)
            for obj in objects:
                await run_one(obj)
            counts = _counts(index)
            counts.api_requests = gateway.requests
            cursor = objects[-1].seq if objects else step.cursor
            return RestoreStepResult(
                next_cursor=cursor, handled=len(objects), counts=counts, done=len(objects) < step.limit
            )


def write_report(settings: Settings, step: RestoreStep, report: RestoreReport) -> RestoreReport:
    """`report.json` and `mapping.jsonl` in the restore's folder; the report with their paths."""
    work = restore_dir(settings, step.restore_id)
    work.mkdir(parents=True, exist_ok=True)
    mapping = work / "mapping.jsonl"
    losses = work / "losses.jsonl"
    counts = report.counts
    if (work / "restore.sqlite").is_file():
        with RestoreIndex(work / "restore.sqlite") as index:
            with mapping.open("w") as out:
                for old, new, kind in index.mapping():
                    out.write(json.dumps({"old": old, "new": new, "kind": kind}) + "\n")
            with losses.open("w") as out:
                for loss in index.losses():
                    out.write(json.dumps({"id": loss.block_id, "kind": loss.kind, "what": loss.what}) + "\n")
            counts = _counts(index).model_copy(update={"api_requests": counts.api_requests})
    done = report.model_copy(
        update={"counts": counts, "report_path": str(work / "report.json"), "mapping_path": str(mapping)}
    )
    (work / "report.json").write_text(done.model_dump_json(indent=2))
    return done


async def undo(settings: Settings, restore_id: str, heartbeat: Callable[..., None] | None = None) -> int:
    """Moves what the restore created to the trash: the objects it created whose parent it did not
    create (their children go with them). Creates sent but never answered are settled first, as a
    retry would (what one made is adopted, then trashed with the rest). Returns how many were
    trashed."""
    work = restore_dir(settings, restore_id)
    if not (work / "restore.sqlite").is_file():
        raise RestoreRefused(f"no restore {restore_id} in {settings.state_dir / RESTORES}")
    trashed = 0
    async with open_gateway(settings, heartbeat) as (gateway, _http):
        writes = NotionWrites(gateway)
        with RestoreIndex(work / "restore.sqlite") as index:
            await _settle_intents(writes, index)
            for obj in index.objects():
                new = index.new_id(obj.id)
                if new is None or obj.kind == "data_source":
                    continue
                if obj.parent_id is not None and index.new_id(obj.parent_id) is not None:
                    continue
                try:
                    if obj.kind == "page":
                        await writes.update_page(new, {"in_trash": True})
                    else:
                        await writes.trash_block(new)
                except ObjectProblem:
                    continue  # already gone
                trashed += 1
    return trashed


async def _settle_intents(writes: NotionWrites, index: RestoreIndex) -> None:
    """Every create whose outcome the restore never learnt (a cancel or a failure mid-request): what
    it made is looked for the way a retry looks, and adopted into the index."""
    intents = index.open_intents()
    if intents:
        # A request cut short by the cancel may still be landing.
        await asyncio.sleep(engine.SETTLE_S)
    for intent in intents:
        if not intent.lookup:
            log.warning("cannot look for what %s made: its intent predates recorded lookups", intent.key)
            continue
        lookup = recover.Lookup.loads(intent.lookup)
        try:
            found = await recover.find(writes, index, intent, lookup)
        except (ObjectProblem, recover.RestoreConflict):
            continue  # its parent (or the block it went after) is gone: so is whatever it made
        if found is None:
            index.clear_intent(intent.key)
        else:
            index.finish_step(intent.key, found, lookup.pairs(found))


def _counts(index: RestoreIndex) -> RestoreCounts:
    kinds = index.kind_counts()
    return RestoreCounts(
        planned=index.count(),
        restored=index.count("done"),
        pages=kinds.get("page", 0),
        databases=kinds.get("database", 0),
        data_sources=kinds.get("data_source", 0),
        linked=index.count_steps(":links"),
        losses=index.count_losses(),
    )
