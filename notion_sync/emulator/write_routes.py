"""The write routes of the emulator (aiohttp handlers over `WriteModel`), registered by the server
beside its reads, so they pass the same middleware: auth, version, rate limit, faults, counters.

One fault of their own, set by `POST /_emulator/late_creates {"seconds": N, "count": K}`: the next K
creates (pages, databases, data sources, comments, appended blocks) are applied N seconds late and
answered then, applied even if the client gave up meanwhile, as a create Notion is slow to answer
still lands after its client timed out. `GET /_emulator/late_creates` says how many are still landing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, web

from notion_sync.emulator.api import ApiError, parse_uuid, validation_error
from notion_sync.emulator.backend import JSON
from notion_sync.emulator.writes import MAX_SINGLE_PART_BYTES, WriteModel

if TYPE_CHECKING:
    from notion_sync.emulator.server import EmulatorServer

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class LateCreates:
    """How late the next `left` creates are applied and answered."""

    seconds: float = 0.0
    left: int = 0


class WriteRoutes:
    """Handlers for POST/PATCH/DELETE routes; bodies are parsed as the reads parse theirs."""

    def __init__(self, server: EmulatorServer, model: WriteModel) -> None:
        self.server, self.model = server, model
        self.late = LateCreates()
        # Late creates still to land (a reference keeps each task alive once its client is gone).
        self._landing: set[asyncio.Task[JSON]] = set()

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post("/_emulator/late_creates", self.set_late_creates)
        router.add_get("/_emulator/late_creates", self.late_creates)
        router.add_post("/v1/pages", self.create_page)
        router.add_patch("/v1/pages/{id}", self.update_page)
        router.add_patch("/v1/blocks/{id}/children", self.append_children)
        router.add_delete("/v1/blocks/{id}", self.trash_block)
        router.add_post("/v1/databases", self.create_database)
        router.add_post("/v1/data_sources", self.create_data_source)
        router.add_patch("/v1/data_sources/{id}", self.update_data_source)
        router.add_post("/v1/comments", self.create_comment)
        router.add_post("/v1/file_uploads", self.create_file_upload)
        router.add_get("/v1/file_uploads/{id}", self.file_upload)
        router.add_post("/v1/file_uploads/{id}/send", self.send_file_upload)

    async def body(self, request: web.Request) -> JSON:
        return await self.server._json_body(request)  # the reads' parser: same errors for bad JSON

    @staticmethod
    def path_id(request: web.Request, name: str) -> str:
        return parse_uuid(request.match_info["id"], f"path failed validation: path.{name}")

    async def set_late_creates(self, request: web.Request) -> web.Response:
        try:
            asked = await request.json()
            late = LateCreates(float(asked.get("seconds", 0.0)), int(asked.get("count", 0)))
        except (ValueError, TypeError, AttributeError):
            return web.json_response({"error": 'expected {"seconds": N, "count": K}'}, status=400)
        if late.seconds < 0 or late.left < 0:
            return web.json_response({"error": "seconds and count must not be negative"}, status=400)
        self.late = late
        return await self.late_creates(request)

    async def late_creates(self, _request: web.Request) -> web.Response:
        """The setting, and how many late creates have not landed yet."""
        return web.json_response(
            {"seconds": self.late.seconds, "count": self.late.left, "landing": len(self._landing)}
        )

    async def created(self, apply: Callable[[], JSON]) -> web.Response:
        """The answer to a create: at once, or (a late create) once it has landed."""
        if self.late.left <= 0:
            return self.server.json(apply())
        self.late.left -= 1
        landing = asyncio.create_task(self._land_late(apply, self.late.seconds))
        self._landing.add(landing)
        landing.add_done_callback(self._landed)
        # Shielded: the client hanging up cancels this handler, never the create.
        return self.server.json(await asyncio.shield(landing))

    @staticmethod
    async def _land_late(apply: Callable[[], JSON], seconds: float) -> JSON:
        await asyncio.sleep(seconds)
        return apply()

    def _landed(self, task: asyncio.Task[JSON]) -> None:
        self._landing.discard(task)
        if not task.cancelled():
            # Retrieved: a refusal nobody waits for any more is not an unhandled error.
            with contextlib.suppress(ApiError):
                task.result()

    async def create_page(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        return await self.created(lambda: self.model.create_page(body))

    async def update_page(self, request: web.Request) -> web.Response:
        page_id = self.path_id(request, "page_id")
        return self.server.json(self.model.update_page(page_id, await self.body(request)))

    async def append_children(self, request: web.Request) -> web.Response:
        block_id = self.path_id(request, "block_id")
        body = await self.body(request)
        return await self.created(lambda: self.model.append_children(block_id, body))

    async def trash_block(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.trash_block(self.path_id(request, "block_id")))

    async def create_database(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        return await self.created(lambda: self.model.create_database(body))

    async def create_data_source(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        return await self.created(lambda: self.model.create_data_source(body))

    async def update_data_source(self, request: web.Request) -> web.Response:
        source_id = self.path_id(request, "data_source_id")
        return self.server.json(self.model.update_data_source(source_id, await self.body(request)))

    async def create_comment(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        return await self.created(lambda: self.model.create_comment(body))

    async def create_file_upload(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.create_file_upload(await self.body(request)))

    async def file_upload(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.file_upload(self.path_id(request, "file_upload_id")))

    async def send_file_upload(self, request: web.Request) -> web.Response:
        """multipart/form-data with a `file` part, read in chunks up to the single-part limit."""
        upload_id = self.path_id(request, "file_upload_id")
        if not request.content_type.startswith("multipart/"):
            raise validation_error("Send the file as multipart/form-data with a `file` part.")
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data += chunk
                if len(data) > MAX_SINGLE_PART_BYTES:
                    break  # the model answers the size error; no need to read further
            content_type = part.headers.get("Content-Type")
            result = self.model.send_file_upload(upload_id, part.filename, content_type, bytes(data))
            return self.server.json(result)
        raise validation_error(
            "body failed validation: body.file should be defined, instead was `undefined`."
        )


def register_write_routes(server: EmulatorServer, router: web.UrlDispatcher) -> None:
    """The write routes, when the backend can write (a replay cannot)."""
    if isinstance(server.backend, WriteModel):
        WriteRoutes(server, server.backend).register(router)
