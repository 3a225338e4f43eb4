"""`notion-sync log` and `diff` on s3://bucket/prefix: an export then a sync through the whole stack
with one page edited, one added and one deleted; and two snapshots uploaded by hand to SeaweedFS, the
older with its files at their paths (published before the object store), the newer with them in the
store. Each change set is named exactly, as text, JSON and HTML, and the log counts it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client
from typer.testing import CliRunner

from notion_sync.cli import app
from notion_sync.models import Counters, ExportReport, ManifestFile, ManifestHeader, ManifestObject
from notion_sync.snapshot import MANIFEST, PROBLEMS, REPORT, object_path
from tests.export.harness import EmulatorAndWorker, export_and_wait
from tests.s3.conftest import S3Server
from tests.s3.test_s3_verify import upload_snapshot

runner = CliRunner()
OLD = "2026-01-01T00-00-00Z-aaaaaaaa"
NEW = "2026-01-02T00-00-00Z-bbbbbbbb"
SIGNED = "https://files.example/icon.png?expires={}&sig={}"


def _saved(children: list[str], url: str = "") -> bytes:
    """A page's saved JSON: its icon's (signed) URL and its child_page blocks."""
    icon = {"type": "file", "file": {"url": url, "expiry_time": url[-2:]}}
    return json.dumps(
        {"page": {"icon": icon}, "blocks": [{"child_page": {"title": t}} for t in children]}
    ).encode()


# id -> (title, last_edited_time, JSON, Markdown)
Pages = dict[str, tuple[str, str, bytes, str]]
BEFORE: Pages = {
    "a1": ("Home", "2026-01-01T00:00:00.000Z", _saved([]), "# Home\n"),
    "b2": ("Notes", "2026-01-01T00:00:00.000Z", _saved([]), "# Notes\n\nold line\n"),
    "c3": ("Gone", "2026-01-01T00:00:00.000Z", _saved([]), "# Gone\n"),
    "e5": ("Parent", "2026-01-01T00:00:00.000Z", _saved([]), "# Parent\n"),
    "f6": ("Icon", "2026-01-01T00:00:00.000Z", _saved([], SIGNED.format(1, "aa")), "# Icon\n"),
}
AFTER: Pages = {
    "a1": BEFORE["a1"],
    "b2": ("Notes", "2026-01-02T00:00:00.000Z", _saved([]), "# Notes\n\nnew line\n"),
    "d4": ("Fresh", "2026-01-02T00:00:00.000Z", _saved([]), "# Fresh\n"),
    # The same last_edited_time, a new child page block: its JSON (fetched from the store) says so.
    "e5": ("Parent", "2026-01-01T00:00:00.000Z", _saved(["Child"]), "# Parent\n"),
    # Only its file URL signed anew: no edit, though its JSON's digest changed.
    "f6": ("Icon", "2026-01-01T00:00:00.000Z", _saved([], SIGNED.format(2, "bb")), "# Icon\n"),
}


def _listed(path: str, data: bytes) -> ManifestFile:
    return ManifestFile(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _snapshot(root: Path, name: str, pages: Pages) -> Path:
    """A snapshot folder: each page's JSON and Markdown listed in the manifest, a report, no problems."""
    folder = root / name
    (folder / "json" / "pages").mkdir(parents=True)
    objects = []
    for page_id, (title, edited, saved, markdown) in sorted(pages.items()):
        json_path, md_path = f"json/pages/{page_id}.json", f"{title}.md"
        (folder / json_path).write_bytes(saved)
        (folder / md_path).write_text(markdown)
        files = [_listed(json_path, saved), _listed(md_path, markdown.encode())]
        objects.append(
            ManifestObject(
                id=page_id,
                type="page",
                title=title,
                last_edited_time=edited,
                path=md_path,
                status="exported",
                files=files,
            )
        )
    lines = [ManifestHeader(objects=len(objects)).model_dump_json()]
    lines += [entry.model_dump_json() for entry in objects]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    started = datetime(2026, 1, int(name[9]), tzinfo=UTC)
    report = ExportReport(
        status="completed", destination="s3", counters=Counters(), started_at=started, finished_at=started
    )
    (folder / REPORT).write_text(report.model_dump_json())
    (folder / PROBLEMS).write_text("")
    return folder


def _invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _entries(s3: Any, bucket: str, manifest_key: str) -> dict[str, dict[str, Any]]:
    lines = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().splitlines()[1:]
    return {entry["id"]: entry for entry in map(json.loads, lines)}


async def test_diff_and_log_of_a_sync_to_s3(
    emulator_and_worker: EmulatorAndWorker, temporal_client: Client, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    destination = f"s3://{bucket}/backups/team"
    async with emulator_and_worker(pages=30, seed=73) as (emulator, settings):
        await export_and_wait(temporal_client, settings, destination)  # type: ignore[arg-type]
        pointer = json.loads(s3.get_object(Bucket=bucket, Key="backups/team/current.json")["Body"].read())
        before = _entries(s3, bucket, pointer["manifest"])
        pages = {i: e for i, e in before.items() if e["type"] == "page" and e["status"] == "exported"}
        parents = {e["parent"] for e in before.values()}
        leaves = sorted(i for i, e in pages.items() if i not in parents and e["parent"] in pages)
        edited, deleted, host = leaves[:3]
        emulator.mutate({"op": "edit_page", "page_id": edited})
        emulator.mutate({"op": "delete_page", "page_id": deleted})
        created = emulator.mutate({"op": "create_page", "parent_id": host, "title": "Brand new"})
        added = str(created.get("page_id") or created.get("id"))
        await export_and_wait(temporal_client, settings, destination, full_listing_days=0)  # type: ignore[arg-type]
    first, second = (
        pointer["snapshot"],
        json.loads(s3.get_object(Bucket=bucket, Key="backups/team/current.json")["Body"].read())["snapshot"],
    )

    done = _invoke("diff", destination, "--json")
    assert done.exit_code == 0, done.output
    diff = json.loads(done.output)
    assert (diff["old"], diff["new"]) == (first, second)
    assert [p["id"] for p in diff["added"]] == [added]
    assert [p["id"] for p in diff["removed"]] == [deleted]
    assert diff["moved"] == [] and diff["renamed"] == []
    # The pages whose child pages appeared or vanished changed too: their child_page blocks.
    hosts = {before[deleted]["parent"], host}
    assert {p["id"] for p in diff["edited"]} == {edited} | hosts
    by_id = {p["id"]: p for p in diff["edited"]}
    changed = by_id[edited]["markdown_diff"].splitlines()
    assert changed[0] == f"--- {first}/{before[edited]['path']}"
    assert any(line.startswith("+") and not line.startswith("+++") for line in changed)

    text = _invoke("diff", destination, first, second, "--html", tmp_path / "changes.html")
    assert text.exit_code == 0, text.output
    assert f"1 added, 1 removed, {len(hosts) + 1} edited" in text.output
    assert "Brand new" in (tmp_path / "changes.html").read_text()

    logged = json.loads(_invoke("log", destination, "--json").output)
    assert [(e["name"], e["current"], e["status"]) for e in logged] == [
        (first, False, "completed"),
        (second, True, "completed"),
    ]
    assert logged[0]["changes"] is None
    assert logged[1]["changes"] == {
        "added": 1,
        "removed": 1,
        "moved": 0,
        "renamed": 0,
        "edited": len(hosts) + 1,
    }
    assert logged[1]["pages"] + logged[1]["rows"] == logged[0]["pages"] + logged[0]["rows"]
    text = _invoke("log", destination)
    assert text.exit_code == 0 and text.output.splitlines()[1].startswith(f"* {second}"), text.output


def test_log_and_diff_of_an_s3_destination(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    upload_snapshot(s3, bucket, "team", _snapshot(tmp_path, OLD, BEFORE), lambda path: False)
    upload_snapshot(s3, bucket, "team", _snapshot(tmp_path, NEW, AFTER))
    # The newer snapshot's prefix holds no page: its files are only in the store.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"team/snapshots/{NEW}/")["Contents"]
    assert not [o["Key"] for o in listed if o["Key"].endswith(".md")]
    destination = f"s3://{bucket}/team"

    done = _invoke("diff", destination, "--json")
    assert done.exit_code == 0, done.output
    diff = json.loads(done.output)
    assert (diff["old"], diff["new"]) == (OLD, NEW)
    assert [p["id"] for p in diff["added"]] == ["d4"]
    assert [p["id"] for p in diff["removed"]] == ["c3"]
    assert diff["moved"] == [] and diff["renamed"] == []
    assert [p["id"] for p in diff["edited"]] == ["b2", "e5"]
    notes = diff["edited"][0]["markdown_diff"].splitlines()
    assert notes[:2] == [f"--- {OLD}/Notes.md", f"+++ {NEW}/Notes.md"]
    assert notes[-2:] == ["-old line", "+new line"]
    assert diff["edited"][1]["markdown_diff"] is None  # the same Markdown

    text = _invoke("diff", destination, OLD, NEW)
    assert text.exit_code == 0, text.output
    assert "1 added, 1 removed, 2 edited" in text.output and "+new line" in text.output
    report = tmp_path / "changes.html"
    done = _invoke("diff", destination, "--html", report)
    assert done.exit_code == 0, done.output
    html = report.read_text()
    assert "Fresh" in html and "Gone" in html and "+new line" in html

    done = _invoke("log", destination)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[1].startswith(f"* {NEW}") and "completed" in lines[1]
    assert "1 added, 1 removed, 2 edited" in lines[1]
    assert lines[2].startswith(f"  {OLD}") and lines[2].split()[-1] == "-"
    logged = json.loads(_invoke("log", destination, "--json").output)
    assert [(e["name"], e["pages"], e["current"]) for e in logged] == [(OLD, 5, False), (NEW, 5, True)]
    assert logged[1]["changes"] == {"added": 1, "removed": 1, "moved": 0, "renamed": 0, "edited": 2}

    # An edited page's Markdown gone from the store: the diff still names it, without its lines.
    new_notes = _listed("Notes.md", AFTER["b2"][3].encode()).sha256
    s3.delete_object(Bucket=bucket, Key=f"team/{object_path(new_notes)}")
    diff = json.loads(_invoke("diff", destination, "--json").output)
    assert [(p["id"], p["markdown_diff"]) for p in diff["edited"]] == [("b2", None), ("e5", None)]

    # A snapshot prefix without a manifest (a publish cut short) is a line of the log.
    s3.put_object(Bucket=bucket, Key="team/snapshots/2026-01-03T00-00-00Z-cccccccc/report.json", Body=b"{}")
    done = _invoke("log", destination)
    assert done.exit_code == 0, done.output
    assert "unreadable: snapshot 2026-01-03T00-00-00Z-cccccccc in" in done.output
    assert f"has no {MANIFEST}" in done.output


def test_clear_errors_for_s3(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    cases = {
        ("log", "s3://no-such-bucket-here/team"): "the bucket no-such-bucket-here does not exist",
        ("log", f"s3://{bucket}/empty"): "is not an export: no snapshot under empty/snapshots/",
        ("diff", f"s3://{bucket}/empty"): "is not an export",
    }
    for args, message in cases.items():
        done = _invoke(*args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
        assert isinstance(done.exception, SystemExit), done.exception
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key=f"one/snapshots/{OLD}/{MANIFEST}", Body=b'{"objects": 0}\n')
    done = _invoke("diff", f"s3://{bucket}/one")
    assert done.exit_code == 2 and "nothing to compare" in done.output, done.output
    done = _invoke("diff", f"s3://{bucket}/one", "nope", OLD)
    assert done.exit_code == 2 and "no snapshot named 'nope'" in done.output, done.output
