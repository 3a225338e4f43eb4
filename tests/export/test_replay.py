"""Recorded export histories replay against today's workflow code: nondeterminism fails here first.

Re-record after a deliberate, versioned change to the workflow with `scripts/record_histories.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.export import ExportWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("name", ["first_run.json", "last_run.json", "sync_changes.json"])
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json("recorded-export", (HISTORIES / name).read_text())
    replayer = Replayer(workflows=[ExportWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
