"""Restore activities: thin wrappers over `notion_sync.restore.run`.

The token comes from this worker's credential (the workspace's activity queue), never from the input.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import temporal_errors
from notion_sync.models import RestoreReport, RestoreStep, RestoreStepResult
from notion_sync.restore import run
from notion_sync.restore.engine import TargetUnavailable
from notion_sync.settings import Settings

_BEAT_S = 2.0
_T = TypeVar("_T")


class RestoreActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn
    async def prepare_restore(self, step: RestoreStep) -> RestoreStepResult:
        """The snapshot as a tree in the restore's folder, and the plan (disk, or an S3 download),
        heartbeating meanwhile so a lost worker is noticed."""
        with temporal_errors():
            try:
                await run.check_target(self._settings, step.target)
                work = asyncio.create_task(asyncio.to_thread(run.prepare, self._settings, step))
                while not work.done():
                    activity.heartbeat()
                    await asyncio.wait([work], timeout=_BEAT_S)
                prepared = work.result()
                await run.record_users(self._settings, step)
                return prepared
            except run.RestoreRefused as refused:
                raise ApplicationError(str(refused), type="RestoreRefused", non_retryable=True) from None

    @activity.defn
    async def create_shells(self, step: RestoreStep) -> RestoreStepResult:
        return await _range(self._settings, step, "create")

    @activity.defn
    async def fill_content(self, step: RestoreStep) -> RestoreStepResult:
        return await _range(self._settings, step, "fill")

    @activity.defn
    async def link_objects(self, step: RestoreStep) -> RestoreStepResult:
        return await _range(self._settings, step, "link")

    @activity.defn(name="write_restore_report")
    def write_restore_report(self, step: RestoreStep, report: RestoreReport) -> RestoreReport:
        with temporal_errors():
            return run.write_report(self._settings, step, report)

    @activity.defn
    async def undo_restore(self, step: RestoreStep) -> int:
        """Moves what restore `step.restore_id` created to the trash; returns how many objects."""
        with temporal_errors():
            try:
                return await run.undo(self._settings, step.restore_id, activity.heartbeat)
            except run.RestoreRefused as refused:
                raise ApplicationError(str(refused), type="RestoreRefused", non_retryable=True) from None


async def _range(settings: Settings, step: RestoreStep, which: run.Pass) -> RestoreStepResult:
    """One pass over a range; a worker without the restore's state fails it for good (retrying on
    this worker cannot help, and an empty index would report the range done)."""
    with temporal_errors():
        try:
            return await _beating(run.restore_range(settings, step, which, activity.heartbeat))
        except run.RestoreStateMissing as missing:
            raise ApplicationError(str(missing), type="RestoreStateMissing", non_retryable=True) from None
        except TargetUnavailable as gone:
            raise ApplicationError(str(gone), type="TargetUnavailable", non_retryable=True) from None


async def _beating(work: Coroutine[Any, Any, _T]) -> _T:
    """Runs `work`, heartbeating every few seconds meanwhile (a long upload or a slow answer is not a
    lost worker); a cancelled activity cancels `work` and waits for it to stop."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            activity.heartbeat()
            await asyncio.wait([task], timeout=_BEAT_S)
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    return task.result()
