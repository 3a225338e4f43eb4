"""The `notion-sync` command as a user runs it: embedded dev server, demo workspace, clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from notion_sync.devserver import free_port
from notion_sync.emulator.process import EmulatorProcess

CLI = [sys.executable, "-m", "notion_sync"]
# Each workspace of the two-terminal test: enough batches of 5 that both exports outlast the kill.
PAGES = 80


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
        # Batches small enough that the export still runs a second after it started, when it is killed.
        [*CLI, "export", "--out", str(out), "--batch-size", "20", "--parallel", "2"],
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
    # Refused before the export starts: the command asks Notion who the token is first.
    assert "rejected the integration token" in done.stderr
    assert "Traceback" not in done.stderr
    assert "ntn_wrong" not in done.stderr
    assert not (tmp_path / "out").exists()


def _started(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Reads the command's stderr until its export started (collecting what it printed)."""
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if line.startswith(("Started export", "An export to")):
            return
    raise AssertionError(f"the export did not start: {''.join(lines)}")


def _finish(process: subprocess.Popen[str], lines: list[str]) -> str:
    assert process.stderr is not None
    lines.extend(process.stderr)
    assert process.wait(timeout=300) == 0, "".join(lines)
    return "".join(lines)


def test_two_workspaces_from_two_terminals_never_cross(tmp_path: Path) -> None:
    """Two commands, two tokens, one state folder (one embedded server): the one that started the
    server is killed and run again; both exports are whole and no request carried the other's token."""
    env = _env(tmp_path)
    with (
        EmulatorProcess(
            pages=PAGES, seed=51, token="ntn_first_workspace_token", workspace_name="First"
        ) as first,
        EmulatorProcess(
            pages=PAGES, seed=52, token="ntn_second_workspace_token", workspace_name="Second"
        ) as second,
    ):
        commands = {}
        for name, emulator in (("first", first), ("second", second)):
            own = {
                **env,
                "NOTION_TOKEN": emulator.token,
                "NOTION_BASE_URL": emulator.base_url,
                "NOTION_SYNC_RATE": "0",
            }
            argv = [*CLI, "export", "--out", str(tmp_path / name), "--batch-size", "5", "--parallel", "1"]
            commands[name] = (argv, own)
        output: dict[str, list[str]] = {"first": [], "second": []}
        running = {}
        for name, (argv, own) in commands.items():
            running[name] = subprocess.Popen(argv, env=own, stderr=subprocess.PIPE, text=True)
            _started(running[name], output[name])
        time.sleep(1.0)
        os.kill(running["first"].pid, signal.SIGKILL)
        running["first"].wait()
        argv, own = commands["first"]
        output["first"] = []
        running["first"] = subprocess.Popen(argv, env=own, stderr=subprocess.PIPE, text=True)
        _started(running["first"], output["first"])
        printed = {name: _finish(process, output[name]) for name, process in running.items()}
        for name, emulator in (("first", first), ("second", second)):
            assert "0 skipped, 0 failed" in printed[name], printed[name]
            assert "had stopped" not in printed[name]
            stats = emulator.stats()
            assert stats["unauthorized_total"] == 0 and "401" not in stats["by_status"]
            snapshot = tmp_path / name / "current"
            assert (snapshot / "problems.jsonl").read_text() == ""
            report = json.loads((snapshot / "report.json").read_text())
            assert report["identity"]["workspace_name"] == name.title()
            assert report["counters"]["exported"] == report["counters"]["discovered"] > PAGES
        assert "already running; attaching" in printed["first"]


def test_a_stopped_embedded_server_is_started_again(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with EmulatorProcess(pages=120, seed=53) as emulator:
        env.update(NOTION_TOKEN=emulator.token, NOTION_BASE_URL=emulator.base_url, NOTION_SYNC_RATE="0")
        lines: list[str] = []
        command = subprocess.Popen(
            [*CLI, "export", "--out", str(tmp_path / "out"), "--batch-size", "5", "--parallel", "1"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        _started(command, lines)
        time.sleep(1.0)
        state = json.loads((tmp_path / "state" / "temporal.json").read_text())
        for pid in (state["temporal_pid"], state["supervisor_pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        printed = _finish(command, lines)
    assert "had stopped" in printed and "Export complete" in printed and "0 skipped, 0 failed" in printed
