"""Reading the emulator's workspace and an export's outcome, for the hostile-server tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from notion_sync.emulator.process import EmulatorProcess

JSON = dict[str, Any]
# Blocks whose children the exporter does not read through them.
_SEPARATE = ("child_page", "child_database", "synced_block")


def listed_pages(emulator: EmulatorProcess) -> list[JSON]:
    """Every page search returns, oldest edit first (the order the exporter lists them in)."""
    pages: list[JSON] = []
    body: JSON = {
        "filter": {"property": "object", "value": "page"},
        "sort": {"timestamp": "last_edited_time", "direction": "ascending"},
    }
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=30) as http:
        while True:
            answer = http.post("/v1/search", json=body).json()
            pages += answer["results"]
            if not answer["has_more"]:
                return pages
            body["start_cursor"] = answer["next_cursor"]


def plain_pages(emulator: EmulatorProcess) -> list[JSON]:
    """Pages that are not rows of a data source, with at least one block."""
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=30) as http:
        return [
            page
            for page in listed_pages(emulator)
            if page["parent"]["type"] != "data_source_id"
            and http.get(f"/v1/blocks/{page['id']}/children").json()["results"]
        ]


def nested_block(emulator: EmulatorProcess, page_id: str) -> str | None:
    """A block of the page that has children of its own (read by the exporter's walk)."""
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=30) as http:
        for block in http.get(f"/v1/blocks/{page_id}/children").json()["results"]:
            if block["has_children"] and block["type"] not in (
                "child_page",
                "child_database",
                "synced_block",
            ):
                return str(block["id"])
    return None


def manifest(destination: Path) -> dict[str, JSON]:
    lines = (destination / "current" / "manifest.jsonl").read_text().splitlines()
    return {entry["id"]: entry for entry in map(json.loads, lines[1:])}


def problems(destination: Path) -> list[JSON]:
    lines = (destination / "current" / "problems.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def problem_kinds(destination: Path, object_id: str) -> dict[str, str]:
    """kind -> reason of every problems.jsonl entry about `object_id`."""
    return {p["kind"]: p["reason"] for p in problems(destination) if p["object_id"] == object_id}


def hostile_hits(emulator: EmulatorProcess, mode: str, object_id: str) -> int:
    return int(emulator.stats().get("hostile", {}).get(f"{mode}:{object_id}", 0))


def exported_pages(destination: Path) -> set[str]:
    return {i for i, e in manifest(destination).items() if e["type"] == "page" and e["status"] == "exported"}
