"""`notion-sync restore` as a user runs it: embedded dev server and worker, clear errors, undo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from temporalio.client import Client

from notion_sync.emulator.process import EmulatorProcess
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.test_cli import CLI, _env

SEED = 19


def _restore(tmp_path: Path, emulator: EmulatorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    env.update(NOTION_TOKEN=emulator.token, NOTION_BASE_URL=emulator.base_url, NOTION_SYNC_RATE="0")
    return subprocess.run([*CLI, "restore", *args], env=env, capture_output=True, text=True, timeout=300)


async def test_restore_command_restores_reports_and_undoes(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=20, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    source = str(tmp_path / "a")
    with EmulatorProcess(pages=0, seed=SEED) as target:
        root = target.workspace_summary()["root_page_id"]

        unknown_page = _restore(tmp_path, target, source, "--to", "0" * 32)
        assert unknown_page.returncode == 1
        assert "cannot be read" in unknown_page.stderr and "Traceback" not in unknown_page.stderr
        assert target.workspace_summary()["created"]["pages"] == 0

        done = _restore(
            tmp_path, target, source, "--to", f"https://www.notion.so/Target-{root.replace('-', '')}"
        )
        assert done.returncode == 0, done.stderr
        assert "Restore completed" in done.stderr
        mapping = re.search(r"Mapping \(old id -> new id\): (\S+)", done.stderr)
        assert mapping and Path(mapping.group(1)).is_file()
        made = target.workspace_summary()["created"]
        assert made["pages"] >= 15 and made["live_pages"] == made["pages"] + 1

        restore_id = Path(mapping.group(1)).parent.name
        undone = _restore(tmp_path, target, source, "--to", root, "--undo", restore_id)
        assert undone.returncode == 0, undone.stderr
        assert "objects moved to the trash" in undone.stderr
        assert target.workspace_summary()["created"]["live_pages"] == 1


def test_bad_input_is_refused_with_a_message(tmp_path: Path) -> None:
    with EmulatorProcess(pages=0) as target:
        not_an_id = _restore(tmp_path, target, str(tmp_path), "--to", "my page")
        missing = _restore(tmp_path, target, str(tmp_path / "nowhere"), "--to", "1" * 32)
    assert not_an_id.returncode == 2 and "is not a Notion page id" in not_an_id.stderr
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


async def test_a_second_restore_into_a_busy_page_and_undo_of_a_running_restore_are_refused(
    temporal_client: Client, emulator_and_worker: EmulatorAndWorker, tmp_path: Path
) -> None:
    async with emulator_and_worker(pages=10, seed=SEED) as (_source, settings):
        await export_and_wait(temporal_client, settings, tmp_path / "a")
    source = str(tmp_path / "a")
    env = _env(tmp_path)  # one state folder and server for all three commands
    with EmulatorProcess(pages=0, seed=SEED, latency_ms=500) as target:
        env.update(NOTION_TOKEN=target.token, NOTION_BASE_URL=target.base_url, NOTION_SYNC_RATE="0")
        root = target.workspace_summary()["root_page_id"]

        def restore(*args: str) -> subprocess.CompletedProcess[str]:
            command = [*CLI, "restore", source, "--to", root, *args]
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

        started = restore("--no-wait")
        assert started.returncode == 0, started.stderr
        found = re.search(r"Started restore (restore-[0-9a-f]+)", started.stderr)
        assert found, started.stderr
        first = found.group(1)

        second = restore("--no-wait")
        assert second.returncode == 1, second.stderr
        assert f"a restore into page {root} is already running ({first})" in second.stderr
        assert "Traceback" not in second.stderr

        undo = restore("--undo", first)
        assert undo.returncode == 1, undo.stderr
        assert f"restore {first} is still running" in undo.stderr
        assert f"--workflow-id {first}" in undo.stderr and "Traceback" not in undo.stderr
