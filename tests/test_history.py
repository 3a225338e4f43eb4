"""`notion-sync log` and `diff`: the merge walk on hand-made manifests, the command's renderings and
errors, and the exact change set of a scripted sync against a real export of the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.history import HistoryError, count_pages, diff_manifests, snapshot_log
from notion_sync.models import Counters, ExportReport, ManifestFile, ManifestHeader, ManifestObject
from tests.export.harness import EmulatorAndWorker, export_and_wait

runner = CliRunner()
DATA_SOURCE = "d0000000-0000-0000-0000-000000000000"
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> \x1b[2J'


def _page(
    object_id: str,
    title: str,
    parent: str | None = None,
    edited: str = "2026-01-01T00:00:00.000Z",
    digest: str = "0" * 64,
    status: str = "exported",
) -> ManifestObject:
    return ManifestObject.model_validate(
        {
            "id": object_id,
            "type": "page",
            "title": title,
            "last_edited_time": edited,
            "parent": parent,
            "path": f"{title}.md",
            "status": status,
            "files": [ManifestFile(path=f"json/pages/{object_id}.json", sha256=digest, size=1)],
        }
    )


def _data_source() -> ManifestObject:
    return ManifestObject(
        id=DATA_SOURCE,
        type="data_source",
        title="Tasks",
        last_edited_time=None,
        path="Tasks.csv",
        status="exported",
    )


OLD = [
    _page("a1", "Unchanged"),
    _page("b2", "Removed"),
    _page("c3", "Moved", parent="a1"),
    _page("d4", "Old name"),
    _page("e5", "Edited"),
    _page("f6", "Digest only"),
    _page("g7", "Row", parent=DATA_SOURCE),
    _page("h8", "Fails now"),
    _data_source(),
]
NEW = [
    _page("a1", "Unchanged"),
    _page("c3", "Moved", parent="e5"),
    _page("d4", "New name", edited="2026-01-02T00:00:00.000Z"),
    _page("e5", "Edited", edited="2026-01-02T00:00:00.000Z"),
    _page("e6", "Added"),
    _page("f6", "Digest only", digest="1" * 64),
    _page("g7", "Row", parent=DATA_SOURCE, edited="2026-01-03T00:00:00.000Z"),
    _page("h8", "Fails now", status="failed"),
    _data_source(),
]


def _sorted(objects: list[ManifestObject]) -> list[ManifestObject]:
    return sorted(objects, key=lambda entry: entry.id)


def test_the_merge_walk_sorts_every_page_into_its_change() -> None:
    diff = diff_manifests(_sorted(OLD), _sorted(NEW), frozenset({DATA_SOURCE}))
    assert [p.id for p in diff.added] == ["e6"]
    assert [p.id for p in diff.removed] == ["b2", "h8"]
    assert [(p.id, p.old_parent, p.new_parent) for p in diff.moved] == [("c3", "a1", "e5")]
    assert [(p.id, p.old_title, p.title) for p in diff.renamed] == [("d4", "Old name", "New name")]
    # The rename's new last_edited_time does not make it an edit too; a changed JSON digest does.
    assert [(p.id, p.kind) for p in diff.edited] == [("e5", "page"), ("f6", "page"), ("g7", "row")]
    assert (diff.old_pages, diff.old_rows, diff.new_pages, diff.new_rows) == (7, 1, 6, 1)
    assert count_pages(_sorted(NEW), frozenset({DATA_SOURCE})) == (6, 1)
    # A JSON digest that changed with nothing but file URLs signed anew is no edit.
    unsigned = diff_manifests(
        _sorted(OLD), _sorted(NEW), frozenset({DATA_SOURCE}), json_changed=lambda a, b: False
    )
    assert [p.id for p in unsigned.edited] == ["e5", "g7"]


def test_a_manifest_not_sorted_by_id_is_refused() -> None:
    with pytest.raises(HistoryError, match="not sorted by id"):
        diff_manifests(_sorted(OLD), reversed(_sorted(NEW)), frozenset({DATA_SOURCE}))


def test_identical_manifests_have_no_changes() -> None:
    diff = diff_manifests(_sorted(OLD), _sorted(OLD), frozenset({DATA_SOURCE}))
    assert diff.counts().total == 0


def _write_snapshot(
    root: Path, name: str, objects: list[ManifestObject], markdown: dict[str, str], status: str = "completed"
) -> None:
    snapshot = root / "snapshots" / name
    snapshot.mkdir(parents=True, exist_ok=True)
    lines = [ManifestHeader(objects=len(objects)).model_dump_json()]
    lines += [entry.model_dump_json() for entry in _sorted(objects)]
    (snapshot / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    started = datetime(2026, 1, int(name[-1]), tzinfo=UTC)
    report = ExportReport.model_validate(
        {
            "status": status,
            "destination": str(root),
            "counters": Counters(),
            "started_at": started,
            "finished_at": started,
        }
    )
    (snapshot / "report.json").write_text(report.model_dump_json())
    for path, text in markdown.items():
        (snapshot / path).write_text(text)
    current = root / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(Path("snapshots") / name)


def _hand_made(root: Path) -> None:
    """Three snapshots: the second renames a page to a hostile title and edits another's Markdown."""
    _write_snapshot(
        root, "snap-1", [_page("a1", "Home"), _page("b2", "Notes")], {"Notes.md": "# Notes\n\nold line\n"}
    )
    second = [_page("a1", HOSTILE), _page("b2", "Notes", edited="2026-01-02T00:00:00.000Z")]
    _write_snapshot(root, "snap-2", second, {"Notes.md": "# Notes\n\nnew <b>line</b>\n"}, status="failed")
    _write_snapshot(root, "snap-3", [*second, _page("c3", "Later")], {})


def test_file_urls_signed_anew_are_no_edit_but_a_new_child_page_is(tmp_path: Path) -> None:
    def saved(url: str, expiry: str, children: list[str]) -> str:
        file = {"type": "file", "file": {"url": url, "expiry_time": expiry}}
        return json.dumps(
            {"page": {"icon": file}, "blocks": [{"child_page": {"title": t}} for t in children]}
        )

    signed = "https://files.example/icon.png?expires={}&sig={}"
    old = {
        "json/pages/a1.json": saved(signed.format(1, "aa"), "T1", []),
        "json/pages/b2.json": saved("", "", []),
    }
    new = {
        "json/pages/a1.json": saved(signed.format(2, "bb"), "T2", []),
        "json/pages/b2.json": saved("", "", ["New"]),
    }
    for name, files in (("snap-1", old), ("snap-2", new)):
        (tmp_path / "snapshots" / name / "json" / "pages").mkdir(parents=True)
        pages = [_page(page, page, digest=name[-1] * 64) for page in ("a1", "b2")]
        _write_snapshot(tmp_path, name, pages, files)
    diff = json.loads(_invoke("diff", tmp_path, "--json").output)
    assert [p["id"] for p in diff["edited"]] == ["b2"]


def _invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_log_lists_snapshots_newest_first_with_their_changes(tmp_path: Path) -> None:
    _hand_made(tmp_path)
    summaries = snapshot_log(tmp_path)
    assert [s.name for s in summaries] == ["snap-1", "snap-2", "snap-3"]
    assert [s.current for s in summaries] == [False, False, True]
    assert [s.status for s in summaries] == ["completed", "failed", "completed"]
    assert summaries[0].changes is None and summaries[0].pages == 2
    assert summaries[1].changes is not None and summaries[1].changes.model_dump() == {
        "added": 0,
        "removed": 0,
        "moved": 0,
        "renamed": 1,
        "edited": 1,
    }
    text = _invoke("log", tmp_path)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1].startswith("* snap-3") and "1 added" in lines[1]
    assert lines[2].startswith("  snap-2") and "failed" in lines[2] and "1 renamed, 1 edited" in lines[2]
    assert lines[3].split()[-1] == "-"
    listed = json.loads(_invoke("log", tmp_path, "--json").output)
    assert [entry["name"] for entry in listed] == ["snap-1", "snap-2", "snap-3"]


def test_diff_defaults_to_the_two_newest_and_takes_names(tmp_path: Path) -> None:
    _hand_made(tmp_path)
    newest = json.loads(_invoke("diff", tmp_path, "--json").output)
    assert (newest["old"], newest["new"]) == ("snap-2", "snap-3")
    assert [p["id"] for p in newest["added"]] == ["c3"]
    named = json.loads(_invoke("diff", tmp_path, "snap-1", "snap-2", "--json").output)
    assert [p["id"] for p in named["renamed"]] == ["a1"]
    assert named["edited"][0]["markdown_diff"].splitlines()[-2:] == ["-old line", "+new <b>line</b>"]
    text = _invoke("diff", tmp_path, "snap-1", "snap-2")
    assert text.exit_code == 0
    assert "renamed (1)" in text.output and "edited (1)" in text.output and "+new <b>line</b>" in text.output
    # A title's control characters are shown, not sent to the terminal.
    assert "\x1b" not in text.output and "\\x1b[2J" in text.output


class _Report(HTMLParser):
    """What a browser would see: the elements opened and the text shown."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_escapes_a_hostile_title(tmp_path: Path) -> None:
    _hand_made(tmp_path)
    report = tmp_path / "changes.html"
    done = _invoke("diff", tmp_path / "", "snap-1", "snap-2", "--html", report)
    assert done.exit_code == 0, done.output
    parsed = _Report()
    parsed.feed(report.read_text())
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" not in parsed.tags
    shown = "".join(parsed.text)
    assert HOSTILE in shown and "+new <b>line</b>" in shown
    assert {"h2", "table", "pre", "del"} <= set(parsed.tags)


def test_clear_errors_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cases = {
        (tmp_path / "empty",): "is not an export",
        (tmp_path / "missing",): "is not an export",
        (tmp_path / "dest", "snap-1", "nope"): "no snapshot named 'nope'",
        (tmp_path / "dest",): "nothing to compare",
        ("s3://Not_A_Bucket/prefix",): "expected s3://BUCKET/PREFIX",
    }
    _write_snapshot(tmp_path / "dest", "snap-1", [_page("a1", "Home")], {})
    for args, message in cases.items():
        done = _invoke("diff", *args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
        assert isinstance(done.exception, SystemExit), done.exception  # a message, not a traceback
    refused = _invoke("log", "s3://Not_A_Bucket/prefix")
    assert refused.exit_code == 2 and "expected s3://BUCKET/PREFIX" in refused.output, refused.output
    _hand_made(tmp_path / "pair")
    unwritable = _invoke("diff", tmp_path / "pair", "--html", tmp_path / "no" / "such" / "folder.html")
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output, unwritable.output
    assert isinstance(unwritable.exception, SystemExit), unwritable.exception


def _manifest(snapshot: Path) -> dict[str, dict[str, Any]]:
    lines = (snapshot / "manifest.jsonl").read_text().splitlines()[1:]
    return {entry["id"]: entry for entry in map(json.loads, lines)}


async def test_diff_names_exactly_the_scripted_changes_of_a_sync(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    async with emulator_and_worker(pages=60, seed=71) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        before = _manifest((destination / "current").resolve())
        data_sources = {i for i, e in before.items() if e["type"] == "data_source"}
        pages = {i: e for i, e in before.items() if e["type"] == "page" and e["status"] == "exported"}
        parents = {e["parent"] for e in before.values()}
        # Leaves under a page: removing, moving or renaming them changes no other page's path.
        leaves = sorted(i for i, e in pages.items() if i not in parents and e["parent"] in pages)
        rows = sorted(i for i, e in pages.items() if e["parent"] in data_sources)
        edited, renamed, moved, trashed, deleted = leaves[:5]
        new_parent, host = leaves[6], leaves[8]
        emulator.mutate({"op": "edit_page", "page_id": edited})
        emulator.mutate({"op": "edit_page", "page_id": rows[2]})
        emulator.mutate({"op": "rename_page", "page_id": renamed, "title": "Renamed <for> diff"})
        emulator.mutate({"op": "move_page", "page_id": moved, "new_parent_id": new_parent})
        emulator.mutate({"op": "trash_page", "page_id": trashed})
        emulator.mutate({"op": "delete_page", "page_id": deleted})
        created = emulator.mutate({"op": "create_page", "parent_id": host, "title": "Brand new"})
        added = str(created.get("page_id") or created.get("id"))
        first = ExportReport.model_validate_json((destination / "current" / "report.json").read_bytes())
        report = await export_and_wait(temporal_client, settings, destination, full_listing_days=0)

    done = _invoke("diff", destination, "--json")
    assert done.exit_code == 0, done.output
    diff = json.loads(done.output)
    assert [p["id"] for p in diff["added"]] == [added]
    assert sorted(p["id"] for p in diff["removed"]) == sorted([trashed, deleted])
    assert [(p["id"], p["new_parent"]) for p in diff["moved"]] == [(moved, new_parent)]
    assert [(p["id"], p["title"]) for p in diff["renamed"]] == [(renamed, "Renamed <for> diff")]
    # Pages whose child pages appeared, vanished or were renamed changed too: their child_page blocks.
    hosts = {before[page]["parent"] for page in (renamed, moved, trashed, deleted)} | {new_parent, host}
    assert {p["id"] for p in diff["edited"]} == {edited, rows[2]} | hosts
    by_id = {p["id"]: p for p in diff["edited"]}
    assert by_id[rows[2]]["kind"] == "row" and by_id[edited]["kind"] == "page"
    assert any(line.startswith("+") for line in by_id[edited]["markdown_diff"].splitlines()[2:])

    log = snapshot_log(destination)
    assert len(log) == 2 and log[1].current and log[1].status == "completed"
    assert log[1].changes is not None
    assert log[1].changes.model_dump() == {
        "added": 1,
        "removed": 2,
        "moved": 1,
        "renamed": 1,
        "edited": len(hosts) + 2,
    }
    assert (log[1].pages, log[1].rows) == (log[0].pages - 1, log[0].rows)
    # The sync's report (its result and its report.json) carries the same summary; the first has none.
    published = ExportReport.model_validate_json((destination / "current" / "report.json").read_bytes())
    assert report.changes == published.changes == log[1].changes
    assert first.changes is None


async def test_a_damaged_previous_snapshot_costs_the_summary_not_the_publish(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, tmp_path: Path
) -> None:
    destination = tmp_path / "backup"
    async with emulator_and_worker(pages=15, seed=72) as (_emulator, settings):
        await export_and_wait(temporal_client, settings, destination)
        damaged = (destination / "current").resolve()
        (damaged / "manifest.jsonl").write_text("not a manifest\n")
        report = await export_and_wait(temporal_client, settings, destination)
    assert report.status == "completed" and report.changes is None
    assert (destination / "current").resolve() != damaged
    # The log shows the damaged snapshot as such and goes on with the next one.
    done = _invoke("log", destination)
    assert done.exit_code == 0, done.output
    assert "unreadable" in done.output and done.output.count("completed") == 2
