"""Child processes: started so that they never outlive their parent, awaited, and stopped."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in a child before exec: Linux ends it when its parent dies, even by kill -9."""
    _death_signal(signal.SIGTERM)


def killed_with_parent() -> None:
    """Like die_with_parent, but SIGKILL: no graceful shutdown that a successor could mistake for
    a live server. For children whose state is crash-safe (the dev server's SQLite)."""
    _death_signal(signal.SIGKILL)


def _death_signal(signum: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum)


def stop_process(process: subprocess.Popen[Any], grace: float) -> None:
    """Asks a child to stop (SIGTERM), kills it if it still runs after `grace` seconds, and reaps it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PipeTimeout(TimeoutError):
    """A child wrote fewer lines than awaited in time; `lines` holds those it did write."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(f"{len(lines)} whole line(s) before the timeout")
        self.lines = lines


def read_lines(pipe: IO[Any], count: int, timeout: float) -> list[str]:
    """The first `count` lines a child writes to `pipe` (a child's stdout), without line ends; fewer
    if the child closes it first. Raises `PipeTimeout` after `timeout` seconds.

    Reads the file descriptor, not the buffered stream: a child that stays silent costs no thread
    blocked in a read, and the stream can still be closed at once.
    """
    deadline = time.monotonic() + timeout
    received = b""
    while received.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            raise PipeTimeout(_lines(received.split(b"\n")[:-1]))
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            return _lines(received.splitlines()[:count])
        received += chunk
    return _lines(received.split(b"\n")[:count])


def _lines(raw: list[bytes]) -> list[str]:
    return [line.decode(errors="replace") for line in raw]
