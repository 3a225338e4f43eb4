"""The write routes of the emulator (aiohttp handlers over `WriteModel`), registered by the server
beside its reads, so they pass the same middleware: auth, version, rate limit, faults, counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, web

from notion_sync.emulator.api import parse_uuid, validation_error
from notion_sync.emulator.backend import JSON
from notion_sync.emulator.writes import MAX_SINGLE_PART_BYTES, WriteModel

if TYPE_CHECKING:
    from notion_sync.emulator.server import EmulatorServer

Handler = Callable[[web.Request], Awaitable[web.Response]]


class WriteRoutes:
    """Handlers for POST/PATCH/DELETE routes; bodies are parsed as the reads parse theirs."""

    def __init__(self, server: EmulatorServer, model: WriteModel) -> None:
        self.server, self.model = server, model

    def register(self, router: web.UrlDispatcher) -> None:
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

    async def create_page(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.create_page(await self.body(request)))

    async def update_page(self, request: web.Request) -> web.Response:
        page_id = self.path_id(request, "page_id")
        return self.server.json(self.model.update_page(page_id, await self.body(request)))

    async def append_children(self, request: web.Request) -> web.Response:
        block_id = self.path_id(request, "block_id")
        return self.server.json(self.model.append_children(block_id, await self.body(request)))

    async def trash_block(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.trash_block(self.path_id(request, "block_id")))

    async def create_database(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.create_database(await self.body(request)))

    async def create_data_source(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.create_data_source(await self.body(request)))

    async def update_data_source(self, request: web.Request) -> web.Response:
        source_id = self.path_id(request, "data_source_id")
        return self.server.json(self.model.update_data_source(source_id, await self.body(request)))

    async def create_comment(self, request: web.Request) -> web.Response:
        return self.server.json(self.model.create_comment(await self.body(request)))

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
