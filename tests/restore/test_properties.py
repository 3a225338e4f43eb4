"""Schemas and property values turned into create requests: pure functions."""

from __future__ import annotations

from notion_sync.restore.blocks import Targets
from notion_sync.restore.properties import creatable_schema, creatable_values
from tests.convert.convert_helpers import prop, text

ROLLUP = {"relation_property_name": "Link", "rollup_property_name": "Score", "function": "sum"}
SOURCE_OLD, SOURCE_NEW = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def test_schema_is_created_first_without_relations_which_follow_once_targets_exist() -> None:
    source = {
        "id": "0-ds",
        "properties": {
            "Name": prop("title", {}),
            "Score": prop("number", {"format": "percent"}),
            "Tags": prop("multi_select", {"options": [{"id": "x", "name": "a", "color": "red"}]}),
            "Total": prop("formula", {"expression": 'prop("Score") * 2'}),
            "Link": prop("relation", {"data_source_id": SOURCE_OLD, "type": "dual_property"}),
            "Sum": prop("rollup", ROLLUP),
            "Stage": prop("status", {"options": [{"name": "Doing"}]}),
        },
    }
    schema = creatable_schema(source, Targets(ids={SOURCE_OLD: SOURCE_NEW}))
    assert schema.now["Name"] == {"title": {}}
    assert schema.now["Score"] == {"number": {"format": "percent"}}
    assert schema.now["Tags"] == {"multi_select": {"options": [{"name": "a", "color": "red"}]}}
    assert schema.now["Total"] == {"formula": {"expression": 'prop("Score") * 2'}}
    assert set(schema.later) == {"Link", "Sum"}
    assert schema.later["Link"]["relation"] == {"data_source_id": SOURCE_NEW, "dual_property": {}}
    assert [loss.kind for loss in schema.losses] == ["property Stage"]


def test_values_skip_what_notion_computes_and_degrade_unknown_people_to_names() -> None:
    page = {
        "id": "row",
        "properties": {
            "Name": prop("title", [text("Row 1")]),
            "Score": prop("number", 0.5),
            "Tags": prop("multi_select", [{"id": "x", "name": "a", "color": "red"}]),
            "When": prop("date", {"start": "2026-01-02", "end": None, "time_zone": None}),
            "Who": prop("people", [{"id": "u-here"}, {"id": "u-gone", "name": "Ada"}]),
            "Link": prop("relation", [{"id": SOURCE_OLD}]),
            "Total": prop("formula", {"type": "number", "number": 1}),
            "Made": prop("created_time", "2026-01-01T00:00:00.000Z"),
            "Doc": prop("files", [{"name": "a.pdf", "type": "file", "file": {"url": "https://files/a.pdf"}}]),
        },
    }
    uploads = {"https://files/a.pdf": "up-1"}
    targets = Targets(ids={SOURCE_OLD: SOURCE_NEW}, uploads=uploads, users=frozenset({"u-here"}))
    values = creatable_values(page, targets)
    assert values.now["Name"]["title"][0]["text"]["content"] == "Row 1"
    assert values.now["Tags"] == {"multi_select": [{"name": "a"}]}
    assert values.now["When"] == {"date": {"start": "2026-01-02"}}
    assert values.now["Who"] == {"people": [{"id": "u-here"}]}
    assert values.people_text == {"Who": "Ada"}
    uploaded = {"name": "a.pdf", "type": "file_upload", "file_upload": {"id": "up-1"}}
    assert values.now["Doc"] == {"files": [uploaded]}
    assert values.relations == {"Link": {"relation": [{"id": SOURCE_NEW}]}}
    assert "Total" not in values.now and "Made" not in values.now
    assert [loss.kind for loss in values.losses] == ["property Who"]


def test_a_two_way_relation_is_created_from_one_side() -> None:
    dual = {"type": "dual_property", "dual_property": {"synced_property_name": "Back"}}
    lower = {"id": SOURCE_OLD, "properties": {"Link": prop("relation", {**dual, "data_source_id": "9-ds"})}}
    higher = {"id": "9-ds", "properties": {"Back": prop("relation", {**dual, "data_source_id": SOURCE_OLD})}}
    targets = Targets(ids={SOURCE_OLD: SOURCE_NEW, "9-ds": "9-new"})
    first, second = creatable_schema(lower, targets), creatable_schema(higher, targets)
    assert set(first.later) == {"Link"} and first.mirrored == []
    assert second.later == {} and second.mirrored == ["Back"]


def test_status_outside_the_defaults_and_relations_outside_the_restore_are_dropped() -> None:
    page = {
        "id": "row",
        "properties": {
            "Stage": prop("status", {"name": "Doing"}),
            "Open": prop("status", {"name": "Done"}),
            "Link": prop("relation", [{"id": SOURCE_OLD}, {"id": "elsewhere"}]),
        },
    }
    values = creatable_values(page, Targets(ids={SOURCE_OLD: SOURCE_NEW}))
    assert "Stage" not in values.now and values.now["Open"] == {"status": {"name": "Done"}}
    assert values.relations == {"Link": {"relation": [{"id": SOURCE_NEW}]}}
    assert sorted(loss.kind for loss in values.losses) == ["property Link", "property Stage"]
