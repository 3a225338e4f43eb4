"""Many workspaces on one engine: named credentials, a task queue per workspace, the identity of
each snapshot, search attributes (real dev server, emulators over HTTP, workers in process and out)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from notion_sync.devserver import DevServer, temporal_binary
from notion_sync.emulator.process import EmulatorProcess
from notion_sync.models import ExportReport
from notion_sync.workspaces import WorkspaceCredential, activity_queue
from tests.export.harness import REPO, EmulatorAndWorker, export_and_wait, running_worker, worker_settings

pytestmark = pytest.mark.slow


def _tree(root: Path) -> dict[str, bytes]:
    """Every file and link under root, with its bytes (or link target): a write anywhere shows."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = os.readlink(path).encode()
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def _credentials_file(path: Path, emulators: dict[str, EmulatorProcess]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {"workspaces": {n: {"token": e.token, "base_url": e.base_url} for n, e in emulators.items()}}
        )
    )
    return path


async def test_a_worker_serves_only_the_workspaces_it_holds(
    temporal_client: Client, temporal_server: DevServer, tmp_path: Path
) -> None:
    with (
        EmulatorProcess(pages=40, seed=11, token="ntn_alpha_token_value") as alpha,
        EmulatorProcess(pages=40, seed=12, token="ntn_beta_token_value") as beta,
    ):
        both = worker_settings(alpha, tmp_path / "state")
        queue = both.task_queue
        env = {k: v for k, v in os.environ.items() if k not in ("NOTION_TOKEN", "NOTION_TOKEN_FILE")}
        env.update(
            TEMPORAL_ADDRESS=temporal_server.address,
            NOTION_SYNC_TASK_QUEUE=queue,
            NOTION_SYNC_STATE_DIR=str(tmp_path / "state"),
            NOTION_SYNC_RATE="0",
            NOTION_SYNC_CREDENTIALS_FILE=str(
                _credentials_file(tmp_path / "workspaces.yaml", {"alpha": alpha, "beta": beta})
            ),
        )
        # The cluster worker holds both workspaces; this process's worker holds only alpha.
        cluster = subprocess.Popen([sys.executable, str(REPO / "worker.py")], env=env, cwd=REPO)
        only_alpha = {
            "alpha": WorkspaceCredential(name="alpha", token=SecretStr(alpha.token), base_url=alpha.base_url)
        }
        here = f"{os.getpid()}@{socket.gethostname()}"
        try:
            async with running_worker(temporal_client, both, only_alpha):
                reports = {
                    name: await export_and_wait(
                        temporal_client, both, tmp_path / name, workspace=name, batch_size=5
                    )
                    for name in ("alpha", "beta")
                }
        finally:
            cluster.kill()
            cluster.wait()
        for name, emulator in (("alpha", alpha), ("beta", beta)):
            report = reports[name]
            assert report.status == "completed" and report.counters.skipped == report.counters.failed == 0
            assert report.workspace == name
            assert emulator.stats()["unauthorized_total"] == 0
        assert reports["alpha"].identity != reports["beta"].identity

        starters: dict[str, set[str]] = {}
        for name in ("alpha", "beta"):
            handle = temporal_client.get_workflow_handle(_workflow_id(tmp_path / name), run_id=None)
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    queue_name = event.activity_task_scheduled_event_attributes.task_queue.name
                    assert queue_name == activity_queue(queue, name)
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    starters.setdefault(name, set()).add(
                        event.activity_task_started_event_attributes.identity
                    )
        assert here not in starters["beta"], "a worker without beta's credential ran beta's activities"
        assert starters["beta"] and starters["alpha"], "both exports' activities ran"


def _workflow_id(destination: Path) -> str:
    from notion_sync.control import export_workflow_id

    return export_workflow_id(destination)


async def test_a_destination_of_one_workspace_refuses_another(
    temporal_client: Client, destination: Path, tmp_path: Path
) -> None:
    with (
        EmulatorProcess(pages=30, seed=21, workspace_name="Acme") as acme,
        EmulatorProcess(pages=30, seed=22, workspace_name="Globex") as globex,
    ):
        acme_settings = worker_settings(acme, tmp_path / "state")
        async with running_worker(temporal_client, acme_settings):
            first = await export_and_wait(temporal_client, acme_settings, destination)
        assert first.identity is not None and first.identity.workspace_name == "Acme"
        before = _tree(destination)

        globex_settings = worker_settings(globex, tmp_path / "state")
        async with running_worker(temporal_client, globex_settings):
            with pytest.raises(WorkflowFailureError) as refused:
                await export_and_wait(temporal_client, globex_settings, destination)
            message = str(refused.value.cause)
            assert "'Acme'" in message and "'Globex'" in message and "--force-workspace" in message
            assert _tree(destination) == before, "a refused run wrote into the destination"

            forced = await export_and_wait(
                temporal_client, globex_settings, destination, force_workspace=True
            )
        assert forced.status == "completed"
        assert forced.identity is not None and forced.identity.workspace_name == "Globex"
        assert forced.shrink is not None and not forced.shrink.tripped
        current = json.loads((destination / "current" / "report.json").read_text())
        assert current["identity"]["workspace_name"] == "Globex"


async def test_runs_are_found_by_their_search_attributes(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    temporal_server: DevServer,
    tmp_path: Path,
) -> None:
    async with emulator_and_worker(pages=20, seed=31, settings={"workspace": "searchable"}) as (_, settings):
        report: ExportReport = await export_and_wait(
            temporal_client, settings, tmp_path / "found", workspace="searchable"
        )
    query = 'NotionWorkspace="searchable" AND NotionOutcome="completed"'
    listed = subprocess.run(
        [temporal_binary(), "workflow", "list", "--address", temporal_server.address, "--query", query,
         "--output", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    runs = json.loads(listed.stdout or "[]")
    assert [run["execution"]["workflowId"] for run in runs] == [_workflow_id(tmp_path / "found")]
    described = await temporal_client.get_workflow_handle(_workflow_id(tmp_path / "found")).describe()
    attributes = {key.name: value for key, value in described.typed_search_attributes}  # type: ignore[attr-defined]
    assert attributes["NotionDestination"] == str((tmp_path / "found").resolve())
    assert attributes["NotionPagesExported"] == report.counters.exported > 0
