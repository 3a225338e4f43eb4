"""A backup never silently shrinks: lost access refuses to publish, deletions within the limit sync,
retention keeps the last good snapshot (real dev server, emulator over HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from notion_sync.models import ExportReport, ManifestObject
from tests.export.harness import REPO, EmulatorAndWorker, export_and_wait, snapshot_files

pytestmark = pytest.mark.slow


def _pages(snapshot: Path) -> list[ManifestObject]:
    lines = (snapshot / "manifest.jsonl").read_text().splitlines()[1:]
    return [o for o in map(ManifestObject.model_validate_json, lines) if o.type == "page"]


def _reports(destination: Path) -> list[ExportReport]:
    files = sorted((destination / ".notion-sync" / "reports").glob("*.json"))
    return [ExportReport.model_validate_json(f.read_bytes()) for f in files]


async def test_lost_access_is_refused_unless_allowed(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=120, seed=41) as (emulator, settings):
        first = await export_and_wait(temporal_client, settings, destination)
        assert first.status == "completed" and first.shrink is not None and not first.shrink.tripped
        good = (destination / "current").resolve()
        before = snapshot_files(good)
        pages = _pages(good)
        revoked = pages[: len(pages) * 3 // 10]
        emulator.mutate({"op": "unshare_page", "page_ids": [p.id for p in revoked]})

        # A full listing sees that the pages are gone: refused, nothing published or pruned.
        with pytest.raises(WorkflowFailureError) as refused:
            await export_and_wait(
                temporal_client, settings, destination, full_listing_days=0, keep_snapshots=1
            )
        message = str(refused.value.cause)
        assert "nothing was published" in message and "--allow-shrink" in message
        assert (destination / "current").resolve() == good
        assert snapshot_files(good) == before
        assert [p.name for p in (destination / "snapshots").iterdir()] == [good.name]
        assert not list((destination / ".notion-sync" / "staging").iterdir())
        failed = _reports(destination)[-1]
        assert failed.status == "failed" and failed.shrink is not None and failed.shrink.tripped
        assert failed.shrink.lost + failed.shrink.removed >= len(revoked)
        assert failed.shrink.examples and failed.shrink.examples[0] in {p.title for p in revoked}

        # The retention command keeps everything while the last run is a refused one.
        prune = subprocess.run(
            [sys.executable, "-m", "notion_sync", "prune", str(destination), "--keep", "1"],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert prune.returncode == 1 and "shrink guard" in prune.stderr
        assert (destination / "snapshots" / good.name).is_dir()

        # Allowed: published and said so; retention keeps the last snapshot that passed the guard.
        allowed = await export_and_wait(
            temporal_client,
            settings,
            destination,
            full_listing_days=0,
            keep_snapshots=1,
            allow_shrink=True,
        )
        assert allowed.status == "completed"
        assert allowed.shrink is not None and allowed.shrink.tripped and allowed.shrink.allowed
        published = (destination / "current").resolve()
        assert published != good
        assert len(_pages(published)) <= len(pages) - len(revoked)
        assert json.loads((published / "report.json").read_text())["shrink"]["allowed"] is True
        assert (destination / "snapshots" / good.name).is_dir(), "retention deleted the last good snapshot"


async def test_a_few_deletions_sync_as_ordinary_changes(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=120, seed=42) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        pages = _pages((destination / "current").resolve())
        leaves = [p for p in pages if not any(q.parent == p.id for q in pages) and p.parent]
        for page in leaves[:2]:
            emulator.mutate({"op": "delete_page", "page_id": page.id})
        report = await export_and_wait(temporal_client, settings, destination, full_listing_days=0)
        assert report.status == "completed"
        assert report.shrink is not None and not report.shrink.tripped
        assert report.shrink.removed + report.shrink.lost == 2
        remaining = {p.id for p in _pages((destination / "current").resolve())}
        assert not remaining & {p.id for p in leaves[:2]}
