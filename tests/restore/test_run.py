"""The restore's steps as plain functions, where no Notion is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from notion_sync.models import RestoreStep
from notion_sync.restore import run
from notion_sync.restore.index import RestoreIndex
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
