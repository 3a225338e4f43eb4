"""The Temporal workers of one process, run and stopped together.

One polls the workflows' task queue; one more per workspace the process holds polls that
workspace's activity queue, with that workspace's credential and its own activity slots, so a large
export of one workspace never takes the slots of another.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from types import TracebackType

from temporalio.worker import Worker


class WorkerGroup:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._stack: AsyncExitStack | None = None

    @property
    def is_running(self) -> bool:
        return all(worker.is_running for worker in self.workers)

    @property
    def is_shutdown(self) -> bool:
        return any(worker.is_shutdown for worker in self.workers)

    async def run(self) -> None:
        """Runs every worker until one fails or the caller is cancelled, then stops them all."""
        async with asyncio.TaskGroup() as group:
            for worker in self.workers:
                group.create_task(worker.run())

    async def __aenter__(self) -> WorkerGroup:
        async with AsyncExitStack() as stack:
            for worker in self.workers:
                await stack.enter_async_context(worker)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            await self._stack.__aexit__(exc_type, exc, tb)
            self._stack = None
