"""Replay mode: serve recorded real Notion responses from vcrpy cassettes.

Cassettes come in two layouts: `response.body.string` + `response.status.code` (requests) and
`response.content` + `response.status_code` (httpx). Interactions are indexed by method, path,
sorted query and canonical JSON body; repeated keys are served in recorded order, the last one
repeating, so a recorded paging sequence replays as it happened.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml

ReplayKey = tuple[str, str, str, str]


def _canonical_body(body: str | bytes | None) -> str:
    if not body:
        return ""
    text = body.decode() if isinstance(body, bytes) else body
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def replay_key(method: str, path: str, query: str, body: str | bytes | None) -> ReplayKey:
    sorted_query = urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
    return (method.upper(), path.rstrip("/"), sorted_query, _canonical_body(body))


def _response(interaction: dict[str, Any]) -> tuple[int, bytes]:
    resp = interaction["response"]
    if "content" in resp:
        status, body = resp["status_code"], resp["content"]
    else:
        status, body = resp["status"]["code"], resp["body"]["string"]
    return int(status), body.encode() if isinstance(body, str) else bytes(body or b"")


class ReplayBackend:
    """Recorded responses, looked up per request."""

    def __init__(self, source: Path) -> None:
        files = sorted(source.rglob("*.yaml")) if source.is_dir() else [source]
        self._recorded: dict[ReplayKey, list[tuple[int, bytes]]] = defaultdict(list)
        self._served: dict[ReplayKey, int] = defaultdict(int)
        for file in files:
            self._load(file)

    def _load(self, file: Path) -> None:
        cassette = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for interaction in cassette.get("interactions", []):
            req = interaction["request"]
            uri = urlsplit(req["uri"])
            key = replay_key(req["method"], uri.path, uri.query, req.get("body"))
            self._recorded[key].append(_response(interaction))

    def __len__(self) -> int:
        return sum(len(v) for v in self._recorded.values())

    def lookup(self, method: str, path: str, query: str, body: bytes) -> tuple[int, bytes] | None:
        key = replay_key(method, path, query, body)
        responses = self._recorded.get(key)
        if not responses:
            return None
        index = min(self._served[key], len(responses) - 1)
        self._served[key] += 1
        return responses[index]
