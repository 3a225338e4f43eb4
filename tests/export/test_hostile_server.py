"""A server that misbehaves on purpose (the emulator's hostile modes): every class of misbehaviour is
bounded in requests and time, the export completes with the bad objects in problems.jsonl and every
other page present, and a token the server echoes appears nowhere."""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from notion_sync.control import activity_status, export_workflow_id, start_export
from notion_sync.devserver import DevServer, temporal_binary
from notion_sync.models import ExportInput
from notion_sync.notion import gateway
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.export.hostile_helpers import (
    exported_pages,
    hostile_hits,
    listed_pages,
    manifest,
    nested_block,
    plain_pages,
    problem_kinds,
    problems,
)

# A few bad objects among 30-odd pages trip the default guard (5 %): allow it, and check it counted them.
LOSSY = {"allow_shrink": True}


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pause between a failing request's attempts (the worker runs in this process): the tests
    that count attempts see the same attempts, without the seconds of backoff between them."""
    monkeypatch.setattr(gateway, "_backoff", lambda attempt: 0.01)


async def test_a_repeated_cursor_on_block_children_stops_that_listing(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=21) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        emulator.hostile(children={victim: "same_cursor"})
        report = await export_and_wait(temporal_client, settings, destination)
        hits = hostile_hits(emulator, "same_cursor", victim)
    assert report.status == "completed"
    assert hits == 2, "the first page, then the cursor it gave: seen before, so the listing stops"
    assert everyone <= exported_pages(destination)
    assert "same cursor twice" in problem_kinds(destination, victim)["listing"]


async def test_a_repeated_cursor_on_search_stops_the_listing(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=22) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        emulator.hostile(search="same_cursor")
        report = await export_and_wait(temporal_client, settings, destination)
        hits = hostile_hits(emulator, "same_cursor", "search")
    assert report.status == "completed"
    # Pages: two requests in one activity. Data sources: one request per activity, the cursor carried
    # across activities by the workflow is recognised in the second.
    assert hits == 4
    assert everyone <= exported_pages(destination)
    assert "same cursor twice" in problem_kinds(destination, "search/page")["listing"]
    assert "same cursor twice" in problem_kinds(destination, "search/data_source")["listing"]


async def test_a_block_cycle_is_read_once(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=23) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        pages = plain_pages(emulator)
        page = pages[0]["id"]
        holder, toggle = next((p["id"], b) for p in pages[1:] if (b := nested_block(emulator, p["id"])))
        # The page lists itself among its children; a toggle of another page lists itself.
        emulator.hostile(children={page: "cycle", toggle: "cycle"})
        report = await export_and_wait(temporal_client, settings, destination)
        hits = (hostile_hits(emulator, "cycle", page), hostile_hits(emulator, "cycle", toggle))
    assert report.status == "completed"
    assert hits == (1, 1)
    assert everyone <= exported_pages(destination)
    assert "listed again" in problem_kinds(destination, page)["blocks:cycle"]
    assert "listed again" in problem_kinds(destination, holder)["blocks:cycle"]


async def test_depth_and_size_caps_cut_a_page_and_say_so(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    caps = {"max_block_depth": 3, "max_page_blocks": 500}
    async with emulator_and_worker(pages=30, seed=24, settings=caps) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        report = await export_and_wait(temporal_client, settings, destination)
        fetched = emulator.stats()["fetches_by_id"]["block_children"]
    assert report.status == "completed"
    assert everyone <= exported_pages(destination)
    kinds = {p["kind"]: p["reason"] for p in problems(destination)}
    assert "NOTION_SYNC_MAX_BLOCK_DEPTH" in kinds["blocks:depth"], "the showcase nests lists 20 deep"
    assert "NOTION_SYNC_MAX_PAGE_BLOCKS" in kinds["blocks:cap"], "the huge page has 1,200 blocks"
    # Every block read once (a synced block's original once more, as the original).
    assert max(fetched.values()) <= 2


@pytest.mark.usefixtures("quick_backoff")
@pytest.mark.parametrize("mode", ["results_null", "truncated", "html"])
async def test_malformed_children_fail_that_page_only(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path, mode: str
) -> None:
    async with emulator_and_worker(pages=30, seed=25) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[1]["id"]
        emulator.hostile(children={victim: mode})
        report = await export_and_wait(temporal_client, settings, destination, **LOSSY)
        hits = hostile_hits(emulator, mode, victim)
    assert report.status == "completed"
    assert hits == settings.object_attempts, "retried a bounded number of times, once"
    entry = manifest(destination)[victim]
    assert entry["status"] == "failed" and "malformed answer" in entry["reason"]
    assert victim in {p["object_id"] for p in problems(destination)}
    assert everyone - {victim} <= exported_pages(destination)
    assert report.counters.failed == 1
    assert report.shrink is not None and report.shrink.lost == 1, "the shrink guard counts it"


async def test_unusable_file_urls_are_file_problems(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=26) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        emulator.hostile(bad_file_urls=[victim])
        report = await export_and_wait(temporal_client, settings, destination)
    assert report.status == "completed"
    assert everyone <= exported_pages(destination)
    kinds = problem_kinds(destination, victim)
    assert "control characters" in kinds["file:cover"]
    assert "file:icon" in kinds
    assert report.counters.files_failed >= 2


@pytest.mark.usefixtures("quick_backoff")
async def test_a_page_that_never_answers_fails_alone_in_bounded_time(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    impatient = {"request_timeout_s": 1.0}
    async with emulator_and_worker(pages=30, seed=27, settings=impatient) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        emulator.hostile(children={victim: "hang"}, hang_seconds=120)
        started = time.monotonic()
        report = await export_and_wait(temporal_client, settings, destination, **LOSSY)
        elapsed = time.monotonic() - started
        hits = hostile_hits(emulator, "hang", victim)
    assert report.status == "completed"
    assert elapsed < 60
    assert hits == settings.object_attempts + 1  # and one more once other pages answered
    entry = manifest(destination)[victim]
    assert entry["status"] == "failed" and "no answer within 1 s" in entry["reason"]
    assert everyone - {victim} <= exported_pages(destination)


@pytest.mark.slow
@pytest.mark.usefixtures("quick_backoff")
async def test_a_page_that_always_answers_500_fails_alone_from_the_third_attempt(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=32) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        emulator.hostile(children={victim: "error_500"})
        report = await export_and_wait(temporal_client, settings, destination, **LOSSY)
        hits = hostile_hits(emulator, "error_500", victim)
    assert report.status == "completed"
    # A 5xx storm passes: two attempts of the batch retry it (6 requests each), the third fails it alone.
    assert hits == 3 * 6
    entry = manifest(destination)[victim]
    assert entry["status"] == "failed" and "Notion answered 500 internal_server_error" in entry["reason"]
    assert everyone - {victim} <= exported_pages(destination)


async def test_a_huge_retry_after_is_capped_and_shown(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    # Longer than Temporal's heartbeat throttle (2 s), so the wait shows before it is over.
    cap, limited = 5.0, 2
    capped = {"max_retry_after_s": cap}
    async with emulator_and_worker(pages=20, seed=28, settings=capped) as (emulator, settings):
        emulator.hostile(rate_limit={"count": limited, "retry_after": "999999"})
        started = time.monotonic()
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        seen = await _statuses_until_done(handle)
        report = await handle.result()
        elapsed = time.monotonic() - started
        answered = emulator.stats()["hostile"]["rate_limit:999999"]
    assert report.status == "completed"
    assert answered == limited
    assert elapsed < limited * cap + 30, "each wait was cut to the cap"
    waits = [(at, line) for at, line in seen if "waiting on Notion's rate limit until" in line]
    assert waits, seen
    for at, line in waits:
        until = _clock_after(line.split(" until ", 1)[1][:8], at)
        assert until - at <= cap + 1, line


async def test_a_wait_longer_than_an_activity_holds_is_temporals_and_shown(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    cap = 61.0  # past the 60 s an activity waits itself: Temporal waits, as the next attempt's delay
    capped = {"max_retry_after_s": cap}
    async with emulator_and_worker(pages=20, seed=33, settings=capped) as (emulator, settings):
        emulator.hostile(rate_limit={"count": 1, "retry_after": "999999"})
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        line, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline and not (line and "rate limit" in line):
            line = await activity_status(handle)
            await asyncio.sleep(0.2)
        seen_at = time.time()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert line is not None and line.startswith("waiting on Notion's rate limit until "), line
    until = _clock_after(line.split(" until ", 1)[1][:8], seen_at)
    assert cap - 30 < until - seen_at <= cap + 1, line


async def test_retries_are_shown_while_they_happen(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=20, seed=29, fault_503=1.0) as (emulator, settings):
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(destination)))
        line = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = await activity_status(handle)
            if line and "503" in line:
                break
            await asyncio.sleep(0.2)
        emulator.configure(fault_503=0.0)
        report = await handle.result()
        after = await activity_status(handle)
    assert line is not None and "retrying" in line and "Notion answered 503 service_unavailable" in line
    assert report.status == "completed"
    assert after is None


def _tokens() -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return [
        "ntn_" + "".join(secrets.choice(alphabet) for _ in range(40)),
        # No known shape: only the worker's own copy of it can mask it.
        f"Gateway-{secrets.token_hex(6)}-key",
    ]


@pytest.mark.parametrize("token", _tokens(), ids=["ntn_prefix", "custom"])
async def test_a_token_echoed_by_the_server_is_never_kept(
    emulator_and_worker: EmulatorAndWorker,
    temporal_client: Client,
    temporal_server: DevServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    one_page, whole = tmp_path / "one-page", tmp_path / "whole"
    async with emulator_and_worker(pages=20, seed=30, token=token) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        # A 400 about one page: that page fails, with the server's message, masked.
        emulator.hostile(children={victim: "echo_token_400"})
        report = await export_and_wait(temporal_client, settings, one_page, **LOSSY)
        # A 400 to search: the export fails, its message masked everywhere it goes.
        emulator.hostile(search="echo_token_400")
        handle = await start_export(temporal_client, settings, ExportInput(destination=str(whole)))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert report.status == "completed"
    entry = manifest(one_page)[victim]
    assert entry["status"] == "failed" and "400 validation_error" in entry["reason"]
    assert "[redacted]" in entry["reason"]
    assert everyone - {victim} <= exported_pages(one_page)

    shown = subprocess.run(
        [
            temporal_binary(),
            "workflow",
            "show",
            "--workflow-id",
            export_workflow_id(whole),
            "--address",
            temporal_server.address,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "NotionRejected" in shown and "[redacted]" in shown
    reports = list((whole / ".notion-sync" / "reports").glob("*-failed.json"))
    assert reports and "[redacted]" in reports[0].read_text()
    texts = {
        "workflow failure": _chain(failure.value),
        "temporal workflow show": shown,
        "logs": caplog.text,
    }
    leaks = [where for where, text in texts.items() if token in text]
    # Every byte written: snapshots, problems, reports, the index (SQLite), the worker's state.
    for root in (one_page, whole, tmp_path / "state"):
        leaks += [
            str(path) for path in root.rglob("*") if path.is_file() and token.encode() in path.read_bytes()
        ]
    assert not leaks


async def test_pages_whose_parents_loop_go_to_the_top_level(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, destination: Path
) -> None:
    async with emulator_and_worker(pages=30, seed=31) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        a, b, c = (page["id"] for page in plain_pages(emulator)[:3])
        # a is its own parent; b and c are each other's.
        emulator.hostile(parents={a: a, b: c, c: b})
        report = await export_and_wait(temporal_client, settings, destination)
    assert report.status == "completed"
    assert everyone <= exported_pages(destination)
    entries = manifest(destination)

    def reported(object_id: str) -> bool:
        return any("cycle" in reason for reason in problem_kinds(destination, object_id).values())

    assert "/" not in entries[a]["path"] and reported(a), "at the top level, reported"
    looped = [x for x in (b, c) if reported(x)]
    assert len(looped) == 1 and "/" not in entries[looped[0]]["path"], "the cycle is broken once"


async def _statuses_until_done(handle: WorkflowHandle[Any, Any]) -> list[tuple[float, str]]:
    """Every line `activity_status` gives while the export runs, with when it was read."""
    seen: list[tuple[float, str]] = []
    waiter = asyncio.ensure_future(handle.result())
    try:
        while not waiter.done():
            line = await activity_status(handle)
            if line:
                seen.append((time.time(), line))
            await asyncio.sleep(0.2)
    finally:
        if not waiter.done():
            waiter.cancel()
    return seen


def _clock_after(clock: str, at: float) -> float:
    """The unix time of `clock` (HH:MM:SS, local) closest to `at`."""
    day = time.localtime(at)
    hours, minutes, seconds = map(int, clock.split(":"))
    stamp = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hours, minutes, seconds, 0, 0, -1))
    return min((stamp - 86400, stamp, stamp + 86400), key=lambda s: abs(s - at))


def _chain(error: BaseException) -> str:
    parts = []
    cause: BaseException | None = error
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return "\n".join(parts)


@pytest.mark.parametrize("layout", ["tree", "notion"])
async def test_an_id_that_is_not_notions_is_left_out_and_reported(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path, layout: str
) -> None:
    destination = tmp_path / "deep" / "backup"
    async with emulator_and_worker(pages=30, seed=33) as (emulator, settings):
        everyone = {page["id"] for page in listed_pages(emulator)}
        victim = plain_pages(emulator)[0]["id"]
        emulator.hostile(ids={victim: "../../x"})
        report = await export_and_wait(temporal_client, settings, destination, layout=layout)
    assert report.status == "completed"
    assert everyone - {victim} <= exported_pages(destination)
    problems = (destination / "current" / "problems.jsonl").read_text()
    assert "../../x" in problems and "not a Notion id" in problems
    outside = {p.name for p in (tmp_path / "deep").iterdir()} | {p.name for p in tmp_path.iterdir()}
    assert "x" not in outside and "x.md" not in outside, "something was written outside the destination"
