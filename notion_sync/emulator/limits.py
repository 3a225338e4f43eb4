"""Token-bucket rate limiting, seeded fault injection and latency for the emulator's /v1 routes."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping

# What asyncio counts as due: a timer runs once loop.time() + this passes its deadline.
CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution

# Fixed order so one uniform draw maps to the same kind for the same seed.
FAULT_KINDS = ("500", "502", "503", "504", "529", "slow", "reset", "truncate")


class TokenBucket:
    """`rate` tokens per second refill a bucket of `burst`; a request takes one token."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> int | None:
        """Take a token: None when allowed, else the whole seconds to wait (for Retry-After)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / self.rate))


class FaultInjector:
    """Picks at most one fault per request, each kind with its own probability, from a seeded RNG."""

    def __init__(self, probabilities: Mapping[str, float], seed: int) -> None:
        unknown = set(probabilities) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if any(p < 0 for p in probabilities.values()) or sum(probabilities.values()) > 1.0:
            raise ValueError("fault probabilities must be >= 0 and sum to <= 1")
        self.probabilities = {k: float(probabilities.get(k, 0.0)) for k in FAULT_KINDS}
        self.active = any(self.probabilities.values())
        self._rng = random.Random(seed)

    def pick(self) -> str | None:
        if not self.active:
            return None
        draw = self._rng.random()
        for kind in FAULT_KINDS:
            draw -= self.probabilities[kind]
            if draw < 0:
                return kind
        return None


class DelayLine:
    """`asyncio.sleep` for many concurrent requests with one loop timer instead of one each.

    A fixed latency hands out deadlines in order, so waiters queue and one timer releases each
    batch exactly when their own sleeps would have ended. A deadline that would jump the queue
    (jitter, a shorter latency set mid-flight) sleeps on its own.
    """

    def __init__(self) -> None:
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if seconds <= 0 or (self._waiting and deadline < self._waiting[-1][0]):
            await asyncio.sleep(seconds)
            return
        if not self._waiting:
            loop.call_at(deadline, self._release, loop)
        waiter = loop.create_future()
        self._waiting.append((deadline, waiter))
        await waiter

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        due = loop.time() + CLOCK_RESOLUTION
        while self._waiting and self._waiting[0][0] < due:
            waiter = self._waiting.popleft()[1]
            if not waiter.done():  # cancelled while waiting
                waiter.set_result(None)
        if self._waiting:
            loop.call_at(self._waiting[0][0], self._release, loop)
