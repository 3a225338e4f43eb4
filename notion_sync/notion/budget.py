"""A request budget shared by every process on a host that uses the same Notion token.

Notion allows an average of 3 requests/s per integration. The budget is a token bucket kept in a
16-byte-plus file and updated under an exclusive `flock`, so any number of worker processes draw
from one bucket. A 429 from Notion also blocks the whole bucket for its `Retry-After`, so one
worker's rate-limit answer stops them all, not just itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

_RECORD = struct.Struct("<ddd")  # tokens, last refill (unix s), blocked until (unix s)


class RequestBudget:
    """Token bucket at `rate` requests/s with room for `burst`; rate 0 means unlimited."""

    def __init__(self, path: Path | None, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._fd: int | None = None
        if rate > 0 and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.waited_s = 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def acquire(self, on_wait: Callable[[float], None] | None = None) -> None:
        """Takes one request's worth of budget, sleeping while the bucket is empty (`on_wait` is told
        how long the bucket is empty for, before each sleep)."""
        if self._fd is None:
            return
        while True:
            wait = self._take()
            if wait <= 0:
                return
            self.waited_s += wait
            if on_wait is not None:
                on_wait(wait)
            await asyncio.sleep(min(wait, 1.0))

    def block_for(self, seconds: float) -> None:
        """Stops every sharer of the bucket for `seconds` (a 429's Retry-After)."""
        if self._fd is None:
            return
        with self._locked() as (_tokens, _last, blocked):
            until = max(blocked, time.time() + seconds)
            self._write(0.0, time.time(), until)

    def _take(self) -> float:
        with self._locked() as (tokens, last, blocked):
            now = time.time()
            if blocked > now:
                self._write(tokens, last, blocked)
                return blocked - now
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1.0:
                self._write(tokens - 1.0, now, 0.0)
                return 0.0
            self._write(tokens, now, 0.0)
            return (1.0 - tokens) / self.rate

    def _locked(self) -> _Locked:
        assert self._fd is not None
        return _Locked(self._fd, float(self.burst))

    def _write(self, tokens: float, last: float, blocked: float) -> None:
        assert self._fd is not None
        os.pwrite(self._fd, _RECORD.pack(tokens, last, blocked), 0)


class _Locked:
    """Holds the bucket file's exclusive lock and yields its current record."""

    def __init__(self, fd: int, initial_tokens: float) -> None:
        self._fd = fd
        self._initial = initial_tokens

    def __enter__(self) -> tuple[float, float, float]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        raw = os.pread(self._fd, _RECORD.size, 0)
        if len(raw) < _RECORD.size:
            return (self._initial, time.time(), 0.0)
        tokens, last, blocked = _RECORD.unpack(raw)
        return (tokens, last, blocked)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
