"""S3 uploads slowed to 0.2 s per object and per MiB, so a test can stop a worker halfway through one.

`python -m tests.s3.slow_uploads` runs `worker.py`'s worker with the slow uploads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from notion_sync.observability import configure_logging
from notion_sync.storage import s3

DELAY = 0.2


class _SlowProgress(s3._Progress):
    def __init__(self, stop: threading.Event) -> None:
        super().__init__(stop)
        self._sent = 0

    def __call__(self, sent: int) -> None:
        super().__call__(sent)
        self._sent += sent
        while self._sent >= 1 << 20:
            self._sent -= 1 << 20
            if self._stop.wait(DELAY):
                raise s3.TransferCancelled("the transfer was stopped")


def slow_uploads(setattr_: Callable[[object, str, Any], None]) -> None:
    """Patches the S3 destination through `setattr_` (pytest's `monkeypatch.setattr`, or `setattr`)."""
    upload_one = s3.S3Destination._upload_one

    def slow_upload_one(self: s3.S3Destination, *args: Any) -> int | None:
        stop: threading.Event = args[-1]
        if stop.wait(DELAY):
            raise s3.TransferCancelled("the transfer was stopped")
        return upload_one(self, *args)

    store_one = s3.S3Destination._store_one

    def slow_store_one(self: s3.S3Destination, *args: Any) -> tuple[str, int | None]:
        stop: threading.Event = args[-1]
        if stop.wait(DELAY):
            raise s3.TransferCancelled("the transfer was stopped")
        return store_one(self, *args)

    setattr_(s3.S3Destination, "_upload_one", slow_upload_one)
    setattr_(s3.S3Destination, "_store_one", slow_store_one)
    setattr_(s3, "_Progress", _SlowProgress)


if __name__ == "__main__":
    import worker

    slow_uploads(setattr)
    configure_logging()
    asyncio.run(worker.main())
