"""The `notion-sync` command as a user runs it: embedded dev server, demo workspace, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from notion_sync.devserver import free_port
from notion_sync.emulator.testing import EmulatorProcess

CLI = [sys.executable, "-m", "notion_sync"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTION_TOKEN", "TEMPORAL_ADDRESS")}
    env.update(
        NOTION_SYNC_STATE_DIR=str(tmp_path / "state"),
        NOTION_SYNC_DEV_SERVER_PORT=str(free_port()),
        NOTION_SYNC_DEV_SERVER_UI_PORT=str(free_port()),
    )
    return env


def test_export_without_token_exports_the_demo_workspace(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    done = subprocess.run(
        [*CLI, "export", "--out", str(out)], env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "demo workspace" in done.stderr
    assert "Web UI: http://127.0.0.1:" in done.stderr
    assert "Export complete" in done.stderr
    assert (out / "current" / "manifest.jsonl").is_file()
    assert len(list((out / "current").rglob("*.md"))) > 100


def test_killed_export_resumes_on_the_next_invocation(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    env = _env(tmp_path)
    first = subprocess.Popen(
        [*CLI, "export", "--out", str(out), "--batch-size", "5", "--parallel", "1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("Started export"):
            break
    time.sleep(1.0)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = subprocess.run(
        [*CLI, "export", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "already running; attaching" in second.stderr
    assert (out / "current" / "manifest.jsonl").is_file()


def test_bad_destination_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("keep me")
    done = subprocess.run(
        [*CLI, "export", "--out", str(not_a_folder)], env=_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr
    assert "Traceback" not in done.stderr
    assert not_a_folder.read_text() == "keep me"


def test_status_of_nothing_running_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "status", "--out", str(tmp_path / "nothing")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "No export to" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_token_exits_non_zero_and_says_so(tmp_path: Path) -> None:
    with EmulatorProcess(pages=10, seed=3) as emulator:
        env = _env(tmp_path)
        env.update(NOTION_TOKEN="ntn_wrong", NOTION_BASE_URL=emulator.base_url)
        done = subprocess.run(
            [*CLI, "export", "--out", str(tmp_path / "out")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 1
    assert "Export failed" in done.stderr and "token" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ntn_wrong" not in done.stderr
