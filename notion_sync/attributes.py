"""Custom search attributes of export runs: filter them in the Web UI or with
`temporal workflow list --query 'NotionWorkspace="acme"'`.

The embedded dev server registers them when it starts; a cluster needs them created once
(`temporal operator search-attribute create`, see README). None of them ever holds a secret.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

WORKSPACE = SearchAttributeKey.for_keyword("NotionWorkspace")
DESTINATION = SearchAttributeKey.for_keyword("NotionDestination")
# completed | failed | cancelled | shrink-refused, set when the run ends.
OUTCOME = SearchAttributeKey.for_keyword("NotionOutcome")
PAGES_EXPORTED = SearchAttributeKey.for_int("NotionPagesExported")

ALL = (WORKSPACE, DESTINATION, OUTCOME, PAGES_EXPORTED)


def registration_flags() -> list[str]:
    """`temporal server start-dev` flags that register every attribute."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_type(key)}"]
    return flags


def registration_commands() -> list[str]:
    """The `temporal` commands that register every attribute on a cluster."""
    return [f"temporal operator search-attribute create --name {key.name} --type {_type(key)}" for key in ALL]


def _type(key: SearchAttributeKey[Any]) -> str:
    """The type's name as the `temporal` CLI spells it (Keyword, Int)."""
    return key.indexed_value_type.name.title()
