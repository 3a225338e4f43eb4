"""A real Prometheus (Debian's `prometheus` package) for tests: scraping given targets every second,
evaluating the rule files every second, on 127.0.0.1 with its storage in a temporary folder; and the
two workspaces whose exports give it something to alert on. scripts/render_dashboard.py's demo uses
both.

Tests that need the binaries fail with a clear message when they are missing (`.ci/run` installs
them), unless NOTION_SYNC_SKIP_PROMETHEUS=1 says to skip them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from notion_sync.devserver import free_port
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.workspaces import WorkspaceCredential

SKIP_VARIABLE = "NOTION_SYNC_SKIP_PROMETHEUS"
READY_WITHIN_S = 30.0
# A token Notion (the emulator) does not know: what a revoked one looks like.
REVOKED_TOKEN = "ntn_revoked_token_0000"


def accepted_and_revoked(emulator: EmulatorProcess) -> dict[str, WorkspaceCredential]:
    """Workspace "acme", whose token the emulator accepts, and "revoked", whose token it refuses (401):
    an export of each makes both the success and the failure metrics."""
    return {
        "acme": WorkspaceCredential(name="acme", token=SecretStr(emulator.token), base_url=emulator.base_url),
        "revoked": WorkspaceCredential(
            name="revoked", token=SecretStr(REVOKED_TOKEN), base_url=emulator.base_url
        ),
    }


def prometheus_binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; fails the test (or skips it, when asked) if missing."""
    found = shutil.which(name)
    if found is not None:
        return found
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{name} is not installed and {SKIP_VARIABLE}=1 is set: skipped")
    pytest.fail(
        f"{name} is not installed: `apt-get install prometheus` (as .ci/run does), "
        f"or set {SKIP_VARIABLE}=1 to skip the tests that need it",
        pytrace=False,
    )


class PrometheusProcess:
    """`with PrometheusProcess(["127.0.0.1:9464"], [rules], tmp) as prometheus:` scrapes the targets
    as job `notion-sync-worker`; `query` and `alerts` read its HTTP API."""

    def __init__(self, targets: Sequence[str], rule_files: Sequence[Path], workdir: Path) -> None:
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.url, timeout=5)

    def __enter__(self) -> PrometheusProcess:
        binary = prometheus_binary("prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(path) for path in self.rule_files],
                    "scrape_configs": [
                        {"job_name": "notion-sync-worker", "static_configs": [{"targets": self.targets}]}
                    ],
                }
            )
        )
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._http.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log_text(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{self.log_text()}")
            try:
                if self._http.get("/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready within {READY_WITHIN_S:.0f} s:\n{self.log_text()}")

    def _api(self, path: str, **params: str) -> Any:
        response = self._http.get(f"/api/v1/{path}", params=params)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": {...}, "value": [time, "text"]}, ...]."""
        data = self._api("query", query=expression)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expression: str) -> float | None:
        """The single value of an instant query, None when it has no result."""
        result = self.query(expression)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts: [{"labels": {...}, "state": "pending" | "firing", ...}]."""
        alerts: list[dict[str, Any]] = self._api("alerts")["alerts"]
        return alerts

    def targets_up(self) -> bool:
        active = self._api("targets")["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)
