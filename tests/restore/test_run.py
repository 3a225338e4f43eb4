"""The restore's steps as plain functions, where no Notion is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from notion_sync.models import RestoreStep
from notion_sync.restore import run
from notion_sync.restore.index import Intent, RestoreIndex
from notion_sync.settings import Settings


async def test_a_worker_without_the_restore_state_refuses_the_range(tmp_path: Path) -> None:
    settings = Settings.model_construct(**{**Settings().model_dump(), "state_dir": tmp_path})
    step = RestoreStep(restore_id="r", source=str(tmp_path / "dest"), target="0" * 32)
    with pytest.raises(run.RestoreStateMissing, match="no state for restore r"):
        await run.restore_range(settings, step, "create")
    # An index that was never planned (a half-made folder) is refused too, and nothing is reported done.
    with RestoreIndex(run.restore_dir(settings, "r") / "restore.sqlite"):
        pass
    with pytest.raises(run.RestoreStateMissing, match="never planned"):
        await run.restore_range(settings, step, "fill")


def test_an_intent_sent_again_keeps_its_first_time(tmp_path: Path) -> None:
    with RestoreIndex(tmp_path / "restore.sqlite") as index:
        index.record_intent(Intent("k", "parent", None, 1, "2026-01-01T10:00:59.000Z"))
        index.record_intent(Intent("k", "parent", "after", 2, "2026-01-01T10:07:00.000Z"))
        assert index.intent("k") == Intent("k", "parent", "after", 2, "2026-01-01T10:00:59.000Z")
