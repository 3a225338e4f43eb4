"""Hostile modes: a server that misbehaves on purpose, per object, for the exporter's robustness tests.

Set with `POST /_emulator/hostile` (the whole configuration at once; `{}` turns everything off) and
shown by `GET /_emulator/hostile`. Off by default: with nothing set, no answer changes by a byte.
What each mode does is documented in docs/emulator.md ("Hostile modes").
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# How GET /v1/blocks/{id}/children answers for one block or page.
ChildrenMode = Literal[
    "same_cursor",  # the first page again, whatever the cursor, always with has_more and one cursor
    "cycle",  # the last page of children ends with a toggle block that has the listed block's own id
    "results_null",  # the real answer with "results": null
    "truncated",  # 200, application/json, the first half of the real body (Content-Length matches)
    "html",  # 200 with an HTML page (a proxy's error page)
    "hang",  # never answers (sleeps `hang_seconds`)
    "echo_token_400",  # 400 validation_error whose message echoes the request's Authorization header
    "error_500",  # 500 internal_server_error, every time
]
# How GET /v1/pages/{id} answers for one page.
PageMode = Literal["hang", "echo_token_400", "html", "error_500"]
SearchMode = Literal["same_cursor", "echo_token_400"]
# The cursor `same_cursor` hands out: UUID-shaped, as Notion's are.
SAME_CURSOR = "0c0ffee0-0000-4000-8000-000000000000"


class RateLimitBurst(BaseModel):
    """The next `count` /v1 requests answer 429 rate_limited with `Retry-After: <retry_after>`."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0)
    retry_after: str = "1"


class HostileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    children: dict[str, ChildrenMode] = Field(default_factory=dict)
    pages: dict[str, PageMode] = Field(default_factory=dict)
    search: SearchMode | None = None
    # page id -> the parent page id its page object names (itself, or a cycle of pages).
    parents: dict[str, str] = Field(default_factory=dict)
    # Pages whose cover URL holds a control character and whose icon URL is not a valid URL.
    bad_file_urls: list[str] = Field(default_factory=list)
    # page id -> the "id" its page object claims instead (any text, e.g. "../../x").
    ids: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimitBurst | None = None
    hang_seconds: float = Field(3600.0, ge=0)

    @field_validator("children", "pages", mode="before")
    @classmethod
    def _modes_by_id(cls, value: object) -> object:
        return {_id(key): mode for key, mode in value.items()} if isinstance(value, dict) else value

    @field_validator("parents", mode="before")
    @classmethod
    def _parents_by_id(cls, value: object) -> object:
        return {_id(key): _id(parent) for key, parent in value.items()} if isinstance(value, dict) else value

    @field_validator("ids", mode="before")
    @classmethod
    def _claimed_ids(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {_id(key): str(claimed) for key, claimed in value.items()}

    @field_validator("bad_file_urls", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        return [_id(item) for item in value] if isinstance(value, list) else value

    @property
    def active(self) -> bool:
        return self != HostileConfig()

    @property
    def rewrites_pages(self) -> bool:
        return bool(self.parents or self.bad_file_urls or self.ids)


def _id(raw: object) -> str:
    """Dashed lowercase UUID (ValueError, a 400 from the admin API, for anything else)."""
    return str(uuid.UUID(str(raw)))


def echo_message(method: str, path: str, authorization: str, token: str) -> str:
    """What a gateway that echoes the request says in its 400 (header and token, as some do)."""
    return (
        f"body failed validation: the request {method} {path} was refused "
        f"(headers: authorization={authorization}; credential {token})."
    )
