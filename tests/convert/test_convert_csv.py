"""Property flattening (front matter and CSV) per property type, CSV safety and streaming."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from convert_helpers import check_golden, prop, text

from notion_sync.convert.csvfmt import csv_header, csv_row, neutralise, write_csv
from notion_sync.convert.links import NoLinks
from notion_sync.convert.markdown import front_matter
from notion_sync.convert.properties import property_text, property_value

ADA = {"object": "user", "id": "u-ada", "name": "Ada Lovelace", "type": "person"}
GHOST = {"object": "user", "id": "u-ghost"}
HOSTED = "https://prod-files-secure.s3.amazonaws.com/f/report.pdf?X-Amz-Signature=1"

# property name -> (schema type, value on the row page)
PROPERTIES: dict[str, tuple[str, Any]] = {
    "Notes": ("rich_text", [text("multi "), text("part", bold=True), text(", with comma")]),
    "Name": ("title", [text("Row =1")]),
    "Count": ("number", 42),
    "Negative": ("number", -3.5),
    "Priority": ("select", {"id": "s", "name": "High", "color": "red"}),
    "Stage": ("status", {"id": "st", "name": "In progress", "color": "blue"}),
    "Tags": ("multi_select", [{"name": "a"}, {"name": "b, c"}]),
    "Due": ("date", {"start": "2024-01-01", "end": None, "time_zone": None}),
    "Span": ("date", {"start": "2024-01-01T09:00:00.000+02:00", "end": "2024-01-03", "time_zone": None}),
    "Owner": ("people", [ADA, GHOST]),
    "Files": (
        "files",
        [
            {"name": "report.pdf", "type": "file", "file": {"url": HOSTED}},
            {"name": "ext", "type": "external", "external": {"url": "https://e.com/x.png"}},
        ],
    ),
    "Done": ("checkbox", True),
    "Open": ("checkbox", False),
    "Site": ("url", "https://example.com"),
    "Mail": ("email", "@evil.com"),
    "Phone": ("phone_number", "+1 555 0100"),
    "Calc": ("formula", {"type": "string", "string": '=HYPERLINK("x")'}),
    "CalcNum": ("formula", {"type": "number", "number": 7}),
    "CalcBool": ("formula", {"type": "boolean", "boolean": False}),
    "CalcDate": ("formula", {"type": "date", "date": {"start": "2024-02-02", "end": None}}),
    "Related": (
        "relation",
        [{"id": "00000000-0000-4000-8000-000000000001"}, {"id": "00000000-0000-4000-8000-000000000002"}],
    ),
    "Sum": ("rollup", {"type": "number", "number": 12, "function": "sum"}),
    "Latest": (
        "rollup",
        {"type": "date", "date": {"start": "2111-08-30", "end": None}, "function": "latest_date"},
    ),
    "All": (
        "rollup",
        {
            "type": "array",
            "function": "show_original",
            "array": [{"type": "title", "title": [text("T1")]}, {"type": "number", "number": 3}],
        },
    ),
    "Created": ("created_time", "2024-01-01T00:00:00.000Z"),
    "Edited": ("last_edited_time", "2024-01-05T00:00:00.000Z"),
    "Creator": ("created_by", ADA),
    "Editor": ("last_edited_by", GHOST),
    "ID": ("unique_id", {"prefix": "TASK", "number": 17}),
    "Bare ID": ("unique_id", {"prefix": None, "number": 3}),
    "Verified": ("verification", {"state": "verified", "verified_by": ADA, "date": None}),
    "Button": ("button", {}),
    "Place": ("place", {"lat": 1.5, "lon": 2, "name": "HQ"}),
    "Empty select": ("select", None),
}


class Links:
    def page_link(self, page_id: str) -> str | None:
        return {"00000000-0000-4000-8000-000000000001": "Projects/Alpha.md"}.get(page_id)

    def file_link(self, url: str) -> str | None:
        return "Row/report.pdf" if url == HOSTED else None

    def page_title(self, page_id: str) -> str | None:
        return {"00000000-0000-4000-8000-000000000001": "Alpha"}.get(page_id)


DATA_SOURCE = {
    "object": "data_source",
    "id": "ds",
    "title": [text("Tasks")],
    "properties": {
        name: {"id": name, "name": name, "type": kind, kind: {}} for name, (kind, _) in PROPERTIES.items()
    },
}


def _row(**overrides: Any) -> dict[str, Any]:
    values = {name: prop(kind, value) for name, (kind, value) in PROPERTIES.items()}
    values.update(overrides)
    return {"object": "page", "id": "row-1", "properties": values}


def test_header_is_schema_order_title_first() -> None:
    header = csv_header(DATA_SOURCE)
    assert header[0] == "Name" and header[1:] == [n for n in PROPERTIES if n != "Name"]


def test_every_property_type_golden_csv() -> None:
    buf = io.StringIO(newline="")
    rows = [_row(), _row(Name=prop("title", [text("- minus")]), Count=prop("number", None))]
    write_csv(buf, DATA_SOURCE, rows, Links())
    check_golden("properties.csv", buf.getvalue())
    parsed = list(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    assert len(parsed) == 3 and all(len(r) == len(PROPERTIES) for r in parsed)
    cells = dict(zip(parsed[0], parsed[1], strict=True))
    assert cells["Name"] == "Row =1"
    assert (
        cells["Calc"] == '\'=HYPERLINK("x")'
        and cells["Mail"] == "'@evil.com"
        and cells["Phone"] == "'+1 555 0100"
    )
    assert cells["Negative"] == "-3.5" and cells["Related"].startswith("Alpha, 00000000")
    assert (
        cells["Owner"] == "Ada Lovelace, u-ghost" and cells["Files"] == "Row/report.pdf, https://e.com/x.png"
    )
    assert cells["Span"] == "2024-01-01T09:00:00.000+02:00 → 2024-01-03" and cells["ID"] == "TASK-17"
    assert parsed[2][0] == "'- minus"


def test_front_matter_golden_for_every_property_type() -> None:
    page = _row()
    page.update(id="row-1", url="https://www.notion.so/row1", created_time="c", last_edited_time="e")
    out = front_matter(page, Links())
    check_golden("properties_front_matter.md", out)
    props = yaml.safe_load(out.strip("-\n"))["properties"]
    assert props["Tags"] == ["a", "b, c"] and props["Done"] is True and props["Count"] == 42
    assert props["Related"] == ["Alpha", "00000000-0000-4000-8000-000000000002"]
    assert props["All"] == ["T1", "3"] and props["Button"] is None and props["Empty select"] is None


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\r=x", "'\r=x"),
        ("  =x", "'  =x"),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralised(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_write_csv_streams_and_bom() -> None:
    produced = []

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(3):
            produced.append(n)
            yield _row(Name=prop("title", [text(f"r{n}")]))

    buf = io.StringIO(newline="")
    write_csv(buf, DATA_SOURCE, rows(), NoLinks(), bom=True)
    out = buf.getvalue()
    assert out.startswith("\ufeffName,") and out.count("\r\n") == 4 and produced == [0, 1, 2]


def test_missing_and_malformed_values_are_empty_not_errors() -> None:
    row = {
        "properties": {
            "Count": {"type": "number"},
            "Owner": {"type": "people", "people": None},
            "Tags": {"type": "multi_select", "multi_select": [None, {"name": "x"}]},
        }
    }
    cells = dict(zip(csv_header(DATA_SOURCE), csv_row(DATA_SOURCE, row, NoLinks()), strict=True))
    assert cells["Count"] == "" and cells["Owner"] == "" and cells["Tags"] == "x" and cells["Name"] == ""
    assert (
        property_text({"type": "rollup", "rollup": {"type": "incomplete", "incomplete": {}}}, NoLinks())
        == "{}"
    )
    assert property_value({"type": "formula", "formula": None}, NoLinks()) is None
