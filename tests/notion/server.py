"""A Notion stand-in scripted per test: an in-process aiohttp server answering each path from a list.

Each path answers with its replies in order; the last one repeats. Every request is kept, so a test
can count what the gateway asked for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON = dict[str, Any]


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    async def reply(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return reply


def error(status: int, code: str, headers: dict[str, str] | None = None) -> Reply:
    """An error as Notion sends it."""
    body = {"object": "error", "status": status, "code": code, "message": f"scripted {code}"}
    return answer(body, status, headers)


def not_json() -> Reply:
    """A proxy's HTML page where JSON was due."""

    async def reply(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>Bad gateway</html>", content_type="text/html")

    return reply


def silence(seconds: float) -> Reply:
    """No answer for `seconds` (longer than the gateway's timeout)."""

    async def reply(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({"object": "page", "id": "late"})

    return reply


def reset() -> Reply:
    """The connection dropped without an answer."""

    async def reply(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    return reply


def page(page_id: str) -> Reply:
    return answer({"object": "page", "id": page_id, "properties": {}})


def listed(ids: list[str], next_cursor: Any = None) -> Reply:
    """One page of a listing of objects with these ids."""
    body = {
        "object": "list",
        "results": [{"object": "block", "id": item} for item in ids],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }
    return answer(body)


@dataclass
class ScriptedNotion:
    base_url: str = ""
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    # (method, path, query string, JSON body or None) of every request, in order.
    requests: list[tuple[str, str, str, JSON | None]] = field(default_factory=list)

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def hits(self, path: str) -> int:
        return sum(1 for _, seen, _, _ in self.requests if seen == path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            (request.method, request.path, request.query_string, json.loads(body) if body else None)
        )
        replies = self.replies.get(request.path)
        if not replies:
            return await error(404, "object_not_found")(request)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return await reply(request)


@asynccontextmanager
async def scripted_notion() -> AsyncIterator[ScriptedNotion]:
    notion = ScriptedNotion()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", notion.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    notion.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield notion
    finally:
        await runner.cleanup()
