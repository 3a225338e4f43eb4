"""`EmulatorProcess`: the emulator as a subprocess, for the demo mode, the tests and the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
from types import TracebackType
from typing import Any, Self

import httpx

from notion_sync.emulator.server import DEFAULT_TOKEN
from notion_sync.processes import PipeTimeout, die_with_parent, read_lines, stop_process

BANNER = "Notion API emulator listening on "
NOTION_VERSION = "2025-09-03"  # notion-client 3.1's default


def _flags(options: dict[str, Any]) -> list[str]:
    """Python keyword arguments -> CLI flags (`fault_500=0.2` -> `--fault-500 0.2`)."""
    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
    return argv


class EmulatorProcess:
    """Start `python -m notion_sync.emulator --port 0 ...`; every CLI flag is a keyword argument.

    `shape` takes a dict of WorkspaceShape knobs; `replay` a cassette file or folder.
    """

    def __init__(
        self,
        *,
        pages: int = 50,
        seed: int = 7,
        token: str = DEFAULT_TOKEN,
        track_ids: bool = True,
        startup_timeout: float = 180.0,
        **options: Any,
    ) -> None:
        self.token = token
        self.base_url = ""
        self._argv = _flags({"port": 0, "pages": pages, "seed": seed, "token": token, **options})
        if track_ids:
            self._argv.append("--track-ids")
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def headers(self) -> dict[str, str]:
        """What a raw HTTP client must send to /v1, as notion-client does."""
        return {"Authorization": f"Bearer {self.token}", "Notion-Version": NOTION_VERSION}

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> None:
        cmd = [sys.executable, "-m", "notion_sync.emulator", *self._argv]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)  # nosec B603 # an argv list of our own binaries, no shell
        assert self._proc.stdout is not None
        try:
            banner = read_lines(self._proc.stdout, 1, self._startup_timeout)
        except PipeTimeout:
            banner = []
        line = banner[0] if banner else ""
        if not line.startswith(BANNER):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r} from {' '.join(cmd)}")
        self.base_url = line[len(BANNER) :].strip()
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._proc is not None:
            stop_process(self._proc, grace=10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        assert self._http is not None, "not started"
        response = self._http.request(method, f"/_emulator/{path}", json=body)
        if response.status_code == 400:
            raise ValueError(response.json().get("error", response.text))
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "stats")
        return result

    def reset(self) -> None:
        self._admin("POST", "reset")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs (the CLI flag names, e.g. `rate=5, burst=5, fault_500=0.2`); returns all."""
        result: dict[str, Any] = self._admin("POST", "config", knobs)
        return result

    def hostile(self, **modes: Any) -> dict[str, Any]:
        """Sets the hostile modes (hostile.py; all of them at once, none to turn them off)."""
        result: dict[str, Any] = self._admin("POST", "hostile", modes)
        return result

    def mutate(self, op: dict[str, Any]) -> dict[str, Any]:
        """Apply a workspace mutation; raises ValueError when the workspace rejects it."""
        result: dict[str, Any] = self._admin("POST", "mutations", op)
        return result

    def workspace_summary(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "workspace")
        return result
