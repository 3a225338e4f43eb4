"""Hostile titles become safe, unique and stable file names."""

from __future__ import annotations

import unicodedata

import pytest

from notion_sync.convert.names import safe_name, unique_name

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "...",
    "a/b\\c",
    'Q&A: what? <yes> | "no" *star*',
    "tab\there\nnewline\r\x00nul\x1fus\x7fdel",
    "\u202egnp.exe",  # right-to-left override
    "\ufeffbom",
    "x" * 300,
    "é" * 300,
    "😀" * 100,
    "👨‍👩‍👧 family",
    "CON",
    "con.txt",
    "Aux ",
    "LPT9",
    "COM1.md",
    "nul.tar.gz",
    "trailing dots...",
    "trailing spaces   ",
    "   ",
    "",
    "\x00\x01",
    "Ω decomposed: e\u0301",
]

WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}


@pytest.mark.parametrize("title", HOSTILE)
def test_safe_name_is_safe(title: str) -> None:
    name = safe_name(title)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert not any(c in name for c in '<>:"/\\|?*')
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
    assert "\u202e" not in name and "\ufeff" not in name
    assert not name.endswith((".", " ")) and not name.startswith(" ")
    assert len(name.encode("utf-8")) <= 80
    assert unicodedata.is_normalized("NFC", name)
    assert name.split(".")[0].strip().upper() not in WINDOWS_RESERVED
    assert safe_name(title) == name  # deterministic
    assert safe_name(name) == name  # idempotent


def test_safe_name_examples() -> None:
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("CON") == "CON_" and safe_name("con.txt") == "con_.txt"
    assert safe_name("") == safe_name("...") == safe_name("\x00") == "Untitled"
    assert safe_name("Meeting notes 😀") == "Meeting notes 😀"
    assert safe_name("a\tb\nc") == "a b c"
    assert safe_name("e\u0301") == "\u00e9"
    assert safe_name("😀" * 100) == "😀" * 20  # 4 bytes each, never a split code point
    assert safe_name("x" * 300, max_len=200) == "x" * 200


def test_unique_name_uses_id_suffix_and_is_stable() -> None:
    a, b, c = (
        "38a9ce7b-60a4-8195-b89e-da7ef0a8270c",
        "38a9ce7b-60a4-817a-a1fb-fc3840302bd2",
        "38a9ce7b-60a4-8145-8829-e7364415b8bf",
    )
    taken: set[str] = set()
    names = []
    for object_id in (a, b, c):
        name = unique_name("Notes", object_id, taken)
        taken.add(name.casefold())
        names.append(name)
    assert names == ["Notes", "Notes 40302bd2", "Notes 4415b8bf"]
    # renaming or removing one sibling never changes another's name
    taken = {"notes"}
    assert unique_name("Notes", c, taken) == names[2]
    # case-insensitive file systems: "notes" collides with "Notes"
    assert unique_name("NOTES", a, {"notes"}) == "NOTES f0a8270c"


def test_unique_name_grows_the_suffix_on_a_suffix_collision() -> None:
    object_id = "11111111-2222-3333-4444-555555555555"
    taken = {"notes", "notes 55555555"}
    assert unique_name("Notes", object_id, taken) == "Notes 555555555555"


def test_link_helpers() -> None:
    from notion_sync.convert.links import encode_path, is_safe_url, notion_id_from_url, notion_url

    dashed = "00000000-0000-4000-8000-000000000001"
    assert notion_url(dashed) == "https://www.notion.so/00000000000040008000000000000001"
    assert (
        notion_id_from_url("https://www.notion.so/ws/My-Page-00000000000040008000000000000001?pvs=4")
        == dashed
    )
    assert notion_id_from_url("/00000000000040008000000000000001") == dashed
    assert notion_id_from_url("https://example.com/00000000000040008000000000000001") is None
    assert encode_path("A b/#1 é.md") == "A%20b/%231%20%C3%A9.md"
    assert [
        is_safe_url(u)
        for u in (
            "https://x",
            "mailto:a@b",
            "rel/path.md",
            "javascript:x",
            " JavaScript:x",
            "data:text/html,x",
            "vbscript:x",
            "//evil.com",
        )
    ] == [True] * 3 + [False] * 5
