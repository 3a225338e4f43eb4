"""The session's S3 server: SeaweedFS, started once on free loopback ports (see `seaweedfs.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Server, running_seaweedfs

__all__ = ["ACCESS_KEY", "SECRET_KEY", "S3Server"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
    except RuntimeError as error:
        pytest.fail(str(error))
