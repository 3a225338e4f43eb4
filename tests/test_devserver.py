"""The embedded Temporal server shared by every command of a state directory, with real processes:
a supervisor, `temporal server start-dev`, and users in this and other processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notion_sync.devserver import DevServer, EmbeddedServer, free_port, port_open, temporal_binary

GRACE = 2.0
STARTER = """
import sys, time
from pathlib import Path
from notion_sync.devserver import EmbeddedServer
state, port, grace = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
server = EmbeddedServer.acquire(state, port=port, ui_port=None, grace=grace)
print(server.address, flush=True)
time.sleep(600)
"""


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose leftover supervisors (and with them their servers) die after the test."""
    state = tmp_path / "state"
    yield state
    for pid in _supervisors(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _supervisors(state: Path) -> list[int]:
    """Live supervisor processes of `state`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                args = (proc / "cmdline").read_bytes().split(b"\0")
                if b"supervise" in args and str(state.resolve()).encode() in args:
                    found.append(int(proc.name))
    return found


def _state(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "temporal.json").read_text())
    return data


def _temporal(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [temporal_binary(), *args, "--address", address]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def _serving(address: str) -> bool:
    health = _temporal(address, "operator", "cluster", "health")
    return health.returncode == 0 and "SERVING" in health.stdout


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_server_outlives_the_killed_command_that_started_it(state_dir: Path) -> None:
    port = free_port()
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(state_dir), str(port), str(GRACE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        started_at = starter.stdout.readline().strip()
        with EmbeddedServer.acquire(state_dir, port=port, ui_port=None) as server:
            assert server.address == started_at == f"127.0.0.1:{port}"
            assert server.note is None
            supervisors = _supervisors(state_dir)
            assert supervisors == [_state(state_dir)["supervisor_pid"]]
            assert _parent(supervisors[0]) != starter.pid
            assert os.getsid(supervisors[0]) not in (os.getsid(starter.pid), os.getsid(0))

            starter.kill()
            starter.wait()
            time.sleep(GRACE + 1.5)  # past the grace: this user still holds the server
            assert _serving(server.address)
            assert _supervisors(state_dir) == supervisors
            assert server.ensure_running() is False
    finally:
        starter.kill()
        starter.wait()


def test_server_stops_after_the_grace_period_of_its_last_user(state_dir: Path) -> None:
    grace = 3.0
    server = EmbeddedServer.acquire(state_dir, port=free_port(), ui_port=None, grace=grace)
    [supervisor] = _supervisors(state_dir)
    server.release()
    time.sleep(1.5)
    with EmbeddedServer.acquire(state_dir, port=free_port(), ui_port=None) as again:
        assert again.address == server.address  # reused within the grace, not restarted
        assert _supervisors(state_dir) == [supervisor]
    released = time.monotonic()
    time.sleep(1.5)
    assert port_open("127.0.0.1", _port(server.address)), "stopped before its grace period"
    assert _wait_until(lambda: not port_open("127.0.0.1", _port(server.address)), timeout=grace + 6)
    assert _wait_until(lambda: not _supervisors(state_dir), timeout=5)
    assert time.monotonic() - released < grace + 8
    assert _state(state_dir)["supervisor_pid"] is None


@pytest.mark.parametrize("victim", ["temporal_pid", "supervisor_pid"])
def test_ensure_running_restarts_a_killed_server_on_its_port_and_database(
    state_dir: Path, victim: str
) -> None:
    with EmbeddedServer.acquire(state_dir, port=free_port(), ui_port=None, grace=GRACE) as server:
        address = server.address
        kept = _temporal(address, "workflow", "start", "--type", "Nothing", "--task-queue", "nowhere")
        assert kept.returncode == 0, kept.stderr
        before = _state(state_dir)
        os.kill(before[victim], signal.SIGKILL)
        assert _wait_until(lambda: not port_open("127.0.0.1", _port(address)), timeout=10)

        assert server.ensure_running() is True
        assert server.address == address
        after = _state(state_dir)
        assert after["supervisor_pid"] != before["supervisor_pid"]
        database = str(state_dir.resolve() / "temporal.db").encode()
        assert database in Path(f"/proc/{after['temporal_pid']}/cmdline").read_bytes().split(b"\0")
        workflows = _temporal(address, "workflow", "list", "--query", "WorkflowType='Nothing'")
        assert workflows.returncode == 0 and "Nothing" in workflows.stdout, "the restart lost the database"
        assert "NotionWorkspace" in _temporal(address, "operator", "search-attribute", "list").stdout
        assert server.ensure_running() is False


def test_foreign_program_on_the_port_is_never_shared(state_dir: Path) -> None:
    with socket.socket() as grpc, socket.socket() as ui:
        for foreign in (grpc, ui):
            foreign.bind(("127.0.0.1", 0))
            foreign.listen()
        port, ui_port = grpc.getsockname()[1], ui.getsockname()[1]
        server = EmbeddedServer.acquire(state_dir, port=port, ui_port=ui_port, grace=GRACE)
        moved_to = server.address
        assert _port(moved_to) not in (port, ui_port)
        assert server.ui_url and server.ui_url != f"http://127.0.0.1:{ui_port}"
        assert server.note is not None
        assert f"port {port} is used by another program" in server.note and moved_to in server.note
        assert f"port {ui_port} is used by another program" in server.note
        assert _serving(moved_to)

        # Killed and started afresh while the port is still taken: the remembered port again.
        os.kill(_state(state_dir)["supervisor_pid"], signal.SIGKILL)
        server.release()
        assert _wait_until(lambda: not port_open("127.0.0.1", _port(moved_to)), timeout=10)
        with EmbeddedServer.acquire(state_dir, port=port, ui_port=ui_port, grace=GRACE) as restarted:
            assert restarted.address == moved_to
            assert restarted.ui_url == server.ui_url


def test_embedded_server_registers_the_search_attributes(state_dir: Path) -> None:
    with EmbeddedServer.acquire(state_dir, port=free_port(), ui_port=None, grace=GRACE) as server:
        listed = _temporal(server.address, "operator", "search-attribute", "list").stdout
    for name in ("NotionWorkspace", "NotionDestination", "NotionOutcome", "NotionPagesExported"):
        assert name in listed


def test_test_servers_register_the_search_attributes(temporal_server: DevServer) -> None:
    listed = _temporal(temporal_server.address, "operator", "search-attribute", "list").stdout
    assert "NotionWorkspace" in listed and "NotionPagesExported" in listed
