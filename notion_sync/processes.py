"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys

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
