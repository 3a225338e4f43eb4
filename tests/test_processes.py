"""The shared child-process helpers, with real children."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from notion_sync.processes import PipeTimeout, read_lines, stop_process


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def test_read_lines_returns_the_first_lines_without_their_ends() -> None:
    child = _python("print('one'); print('two'); print('three')")
    assert child.stdout is not None
    with child.stdout:
        assert read_lines(child.stdout, 2, timeout=30) == ["one", "two"]
    child.wait()


def test_read_lines_returns_fewer_when_the_child_closes_its_pipe() -> None:
    child = _python("import sys; sys.stdout.write('only\\npartial')")
    assert child.stdout is not None
    with child.stdout:
        assert read_lines(child.stdout, 3, timeout=30) == ["only", "partial"]
    child.wait()


def test_read_lines_times_out_with_the_whole_lines_so_far() -> None:
    child = _python("import sys, time; sys.stdout.write('pid\\nhalf'); sys.stdout.flush(); time.sleep(60)")
    assert child.stdout is not None
    started = time.monotonic()
    with pytest.raises(PipeTimeout) as raised:
        read_lines(child.stdout, 2, timeout=1)
    assert raised.value.lines == ["pid"]
    assert time.monotonic() - started < 10
    stop_process(child, grace=5)
    child.stdout.close()


def test_stop_process_terminates_then_kills_a_child_that_ignores_sigterm() -> None:
    polite = _python("import time; time.sleep(60)")
    stubborn = _python(
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); "
        "time.sleep(60)"
    )
    assert stubborn.stdout is not None
    read_lines(stubborn.stdout, 1, timeout=30)  # its handler is in place
    stop_process(polite, grace=10)
    stop_process(stubborn, grace=0.5)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    stop_process(polite, grace=1)  # an ended child: nothing to do
    for child in (polite, stubborn):
        assert child.stdout is not None
        child.stdout.close()
