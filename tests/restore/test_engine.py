"""The restore engine without Temporal: answers lost after Notion applied the write (a timeout) are
found and adopted, never sent again; a restore run again from the start creates nothing new."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import RestoreStep
from notion_sync.notion.writes import NotionWrites, WriteUnknown
from notion_sync.restore import engine, run
from tests.export.harness import EmulatorAndWorker, export_and_wait, worker_settings

SEED = 17
COUNTED = ("pages", "blocks", "databases", "data_sources", "comments", "blocks_by_type", "trashed")


async def _restore(source: Path, state: Path, times: int = 1) -> dict[str, Any]:
    """Restores `source` into an empty emulated workspace (`times` over, as retries would) and
    returns what the emulator's store counts."""
    with EmulatorProcess(pages=0, seed=SEED) as target:
        settings = worker_settings(target, state)
        step = RestoreStep(
            restore_id="r", source=str(source), target=target.workspace_summary()["root_page_id"]
        )
        run.prepare(settings, step)
        for _ in range(times):
            for which in run.PASSES:
                cursor = 0
                while True:
                    ranged = step.model_copy(update={"cursor": cursor, "limit": 7})
                    try:
                        result = await run.restore_range(settings, ranged, which)
                    except WriteUnknown:
                        # A lost answer fails the attempt; the retry looks before it sends again.
                        continue
                    cursor = result.next_cursor
                    if result.done:
                        break
        created = target.workspace_summary()["created"]
    return {key: created[key] for key in COUNTED}


async def test_lost_answers_are_adopted_and_a_rerun_creates_nothing(
    temporal_client: Client,
    emulator_and_worker: EmulatorAndWorker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with emulator_and_worker(pages=25, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    reference = await _restore(tmp_path / "a", tmp_path / "reference")

    sent = itertools.count(1)
    lost = 0
    original = NotionWrites.write

    async def answer_lost_every_third(
        self: NotionWrites, object_id: str, request: Callable[[], Awaitable[Any]]
    ) -> dict[str, Any]:
        async def applied_then_lost() -> Any:
            nonlocal lost
            answer = await request()
            if next(sent) % 3 == 0:
                lost += 1
                raise httpx.ReadTimeout("the answer never came")
            return answer

        return await original(self, object_id, applied_then_lost)

    monkeypatch.setattr(NotionWrites, "write", answer_lost_every_third)
    # Nothing to wait for: the emulator applies a write before it answers.
    monkeypatch.setattr(engine, "SETTLE_S", 0.0)
    lossy = await _restore(tmp_path / "a", tmp_path / "lossy", times=2)

    assert lost > 50
    assert reference["pages"] >= 20 and reference["blocks"] > 100
    assert lossy == reference


async def test_a_target_page_that_is_gone_ends_the_restore(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=3, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    with EmulatorProcess(pages=0, seed=SEED) as target:
        settings = worker_settings(target, tmp_path / "state")
        # Never shared (as one deleted or unshared mid-restore answers): 404 to every create under it.
        step = RestoreStep(restore_id="r", source=str(tmp_path / "a"), target=str(uuid.uuid4()), limit=5)
        run.prepare(settings, step)
        with pytest.raises(engine.TargetUnavailable, match="can no longer be reached"):
            await run.restore_range(settings, step, "create")
