"""The emulator's HTTP server: Notion API 2025-09-03 routes over a `Backend`, plus an admin API.

Request pipeline for /v1 (one middleware, in this order): auth, Notion-Version, unknown URL,
rate limit, fault injection, latency, handler. /_files and /_external skip auth, limits and
faults; /_emulator is never counted, limited or faulted.
"""

from __future__ import annotations

import asyncio
import math
import mimetypes
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notion_sync.emulator.api import (
    NOT_SHARED,
    ApiError,
    decode_offset,
    encode_offset,
    list_body,
    not_found,
    page_by_id,
    page_by_offset,
    parse_page_size,
    parse_uuid,
    validation_error,
)
from notion_sync.emulator.backend import JSON, Backend
from notion_sync.emulator.hostile import SAME_CURSOR, HostileConfig, echo_message
from notion_sync.emulator.limits import FAULT_KINDS, DelayLine, FaultInjector, TokenBucket
from notion_sync.emulator.replay import ReplayBackend
from notion_sync.emulator.stats import Stats
from notion_sync.emulator.write_routes import register_write_routes

DEFAULT_TOKEN = "secret_emulator_token"  # nosec B105 # the emulator's fixed fake token, not a credential
QUERY_ROW_CAP = 10_000
RATE_LIMITED = "You have been rate limited. Please try again in a few minutes."
MISSING_VERSION = (
    "Notion-Version header failed validation: Notion-Version header should be defined, instead was "
    "`undefined`."
)
INCOMPLETE = {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"}
UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits, as uuid.UUID(version=4)
UUID4_SET = (4 << 76) | (0x8000 << 48)
FAULT_BODIES = {
    "500": (500, "internal_server_error", "Unexpected error occurred."),
    "502": (502, "bad_gateway", "Bad Gateway"),
    "503": (503, "service_unavailable", "Notion is unavailable. Please try again later."),
    "504": (504, "gateway_timeout", "Gateway Timeout"),
    "529": (529, "service_overload", "Notion is overloaded. Please try again later."),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmulatorConfig(BaseModel):
    """Run-time knobs, set by CLI flags and by POST /_emulator/config (partial updates)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0)
    jitter_ms: float = Field(0.0, ge=0)
    rate: float | None = Field(None, gt=0, description="requests/s; None means unlimited")
    burst: int | None = Field(None, ge=1, description="bucket size; defaults to ceil(rate)")
    fault_500: float = Field(0.0, ge=0, le=1)
    fault_502: float = Field(0.0, ge=0, le=1)
    fault_503: float = Field(0.0, ge=0, le=1)
    fault_504: float = Field(0.0, ge=0, le=1)
    fault_529: float = Field(0.0, ge=0, le=1)
    fault_slow: float = Field(0.0, ge=0, le=1)
    fault_reset: float = Field(0.0, ge=0, le=1)
    fault_truncate: float = Field(0.0, ge=0, le=1)
    slow_seconds: float = Field(30.0, ge=0)
    fault_seed: int = 0
    file_expiry: int | None = Field(None, ge=1, description="seconds; None keeps the signer's")

    def fault_probabilities(self) -> dict[str, float]:
        return {kind: float(getattr(self, f"fault_{kind}")) for kind in FAULT_KINDS}


def plain_title(obj: JSON) -> str:
    """Title text of a page or data source, for the search `query`."""
    rich: list[JSON] = obj.get("title") or []
    if obj.get("object") == "page":
        for prop in obj.get("properties", {}).values():
            if prop.get("type") == "title":
                rich = prop["title"]
    return "".join(part.get("plain_text", "") for part in rich)


@lru_cache(maxsize=64)  # file names repeat (photo.png, paper.pdf, ...); guess_type is slow
def content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def s3_error(code: str, message: str, request_id: str) -> web.Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><ServerTime>{now}</ServerTime>"
        f"<RequestId>{request_id[:16].upper()}</RequestId></Error>"
    )
    return web.Response(status=403, body=body.encode(), content_type="application/xml")


def reset_connection(request: web.Request) -> None:
    """Drop the connection with a TCP RST, so the client sees ECONNRESET, not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class EmulatorServer:
    """Holds the backend, knobs and counters; `app` is the aiohttp application."""

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        replay: ReplayBackend | None = None,
        token: str = DEFAULT_TOKEN,
        config: EmulatorConfig | None = None,
        track_ids: bool = False,
        seed: int = 0,
    ) -> None:
        if (backend is None) == (replay is None):
            raise ValueError("exactly one of backend and replay is required")
        self.backend = backend
        self.replay = replay
        self.auth_header = f"Bearer {token}"
        self.stats = Stats(track_ids=track_ids)
        self._request_ids = random.Random(seed)  # seeded: same requests, same bytes
        self._jitter = random.Random(seed + 1)
        self._delays = DelayLine()
        self.config = EmulatorConfig()
        self._bucket: TokenBucket | None = None
        self._faults = FaultInjector({}, 0)
        self.configure(config or EmulatorConfig())
        self.hostile = HostileConfig()
        self._rate_limited_left = 0
        self.app = self._build_app()

    # --- configuration -------------------------------------------------------------------------

    def configure(self, config: EmulatorConfig) -> None:
        """Apply knobs; a new fault config restarts its RNG so rates are reproducible from here."""
        self._bucket = None
        if config.rate is not None:
            self._bucket = TokenBucket(config.rate, config.burst or max(1, math.ceil(config.rate)))
        self._faults = FaultInjector(config.fault_probabilities(), config.fault_seed)
        if config.file_expiry is not None and self.backend is not None:
            self.backend.files.expiry_seconds = config.file_expiry
        self.config = config

    def set_base_url(self, base_url: str) -> None:
        if self.backend is not None:
            self.backend.files.base_url = base_url

    # --- plumbing ------------------------------------------------------------------------------

    def request_id(self) -> str:
        """str(uuid.UUID(int=<128 random bits>, version=4)), without building the UUID."""
        h = f"{self._request_ids.getrandbits(128) & UUID4_CLEAR | UUID4_SET:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def json(self, payload: JSON, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        payload["request_id"] = self.request_id()
        return web.Response(
            body=orjson.dumps(payload),
            status=status,
            headers=headers,
            content_type="application/json",
            charset="utf-8",
        )

    def error(self, err: ApiError, headers: dict[str, str] | None = None) -> web.Response:
        body: JSON = {"object": "error", "status": err.status, "code": err.code, "message": err.message}
        return self.json(body, err.status, headers)

    @property
    def content(self) -> Backend:
        assert self.backend is not None, "routes over content exist only with a backend"
        return self.backend

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        r = app.router
        r.add_get("/_emulator/stats", self._admin_stats)
        r.add_post("/_emulator/reset", self._admin_reset)
        r.add_get("/_emulator/config", self._admin_get_config)
        r.add_post("/_emulator/config", self._admin_config)
        r.add_get("/_emulator/hostile", self._admin_get_hostile)
        r.add_post("/_emulator/hostile", self._admin_hostile)
        if self.replay is not None:
            r.add_route("*", "/v1/{tail:.*}", self._replay)
            return app
        r.add_get("/_emulator/workspace", self._admin_workspace)
        r.add_post("/_emulator/mutations", self._admin_mutate)
        r.add_post("/v1/search", self._search)
        r.add_get("/v1/pages/{id}", self._page)
        r.add_get("/v1/pages/{id}/properties/{property_id:[^/]+}", self._property_item)
        r.add_get("/v1/blocks/{id}", self._block)
        r.add_get("/v1/blocks/{id}/children", self._block_children)
        r.add_get("/v1/databases/{id}", self._database)
        r.add_get("/v1/data_sources/{id}", self._data_source)
        r.add_post("/v1/data_sources/{id}/query", self._query)
        r.add_get("/v1/users", self._users)
        r.add_get("/v1/users/me", self._users_me)
        r.add_get("/v1/users/{id}", self._user)
        r.add_get("/v1/comments", self._comments)
        register_write_routes(self, r)
        r.add_get("/_files/{key:.+}", self._file)
        r.add_get("/_external/{path:.+}", self._external)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        resource = request.match_info.route.resource
        endpoint = f"{request.method} {resource.canonical if resource else '<unmatched>'}"
        self.stats.started()
        status, sent = "error", 0
        try:
            response = await self._serve(request, handler)
            status, sent = str(response.status), response.content_length or 0
            if len(response):  # a faulted response carries what really went out; see _inject
                status, sent = response["emulator_status"], response["emulator_sent"]
            return response
        except web.HTTPException as exc:  # aiohttp's own 404/405 outside /v1
            status = str(exc.status)
            raise
        finally:
            self.stats.finished(endpoint, status, sent)

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        try:
            self._check_headers(request)
            if request.match_info.http_exception is not None:
                raise ApiError(400, "invalid_request_url", "Invalid request URL.")
            if self._rate_limited_left > 0 and self.hostile.rate_limit is not None:
                self._rate_limited_left -= 1
                self.stats.hostile_answer("rate_limit", self.hostile.rate_limit.retry_after)
                headers = {"Retry-After": self.hostile.rate_limit.retry_after}
                return self.error(ApiError(429, "rate_limited", RATE_LIMITED), headers)
            limited = self._bucket.take() if self._bucket is not None else None
            if limited is not None:
                return self.error(ApiError(429, "rate_limited", RATE_LIMITED), {"Retry-After": str(limited)})
            fault = self._faults.pick()
            if fault is not None:
                self.stats.faults_injected[fault] += 1
                return await self._inject(fault, request, handler)
            await self._delay()
            return await handler(request)
        except ApiError as err:
            return self.error(err)

    def _check_headers(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != self.auth_header:
            self.stats.unauthorized_total += 1
            raise ApiError(401, "unauthorized", "API token is invalid.")
        if "Notion-Version" not in request.headers:
            raise ApiError(400, "missing_version", MISSING_VERSION)

    async def _delay(self) -> None:
        cfg = self.config
        if cfg.latency_ms or cfg.jitter_ms:
            await self._delays.sleep((cfg.latency_ms + self._jitter.uniform(0, cfg.jitter_ms)) / 1000)

    async def _inject(self, fault: str, request: web.Request, handler: Handler) -> web.StreamResponse:
        if fault in FAULT_BODIES:
            status, code, message = FAULT_BODIES[fault]
            headers = {"Retry-After": "1"} if fault == "529" else None
            return self.error(ApiError(status, code, message), headers)
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
            return await handler(request)
        if fault == "reset":
            reset_connection(request)
            response = web.Response()  # never sent: aiohttp drops it on the closed transport
            response["emulator_status"], response["emulator_sent"] = "reset", 0
            return response
        return await self._truncate(request, await handler(request))

    async def _truncate(self, request: web.Request, full: web.StreamResponse) -> web.StreamResponse:
        """Announce the real response's full length, send half of its body, drop the connection."""
        body = full.body if isinstance(full, web.Response) and isinstance(full.body, bytes) else b"{}"
        response = web.StreamResponse(status=full.status, headers=full.headers)
        response.content_length = len(body)
        await response.prepare(request)
        sent = len(body) // 2
        await response.write(body[:sent])
        if request.transport is not None:
            request.transport.close()  # a clean FIN: the client sees a body shorter than announced
        response["emulator_status"], response["emulator_sent"] = "truncated", sent
        return response

    async def _json_body(self, request: web.Request) -> JSON:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "Error parsing JSON body.") from None
        if not isinstance(body, dict):
            raise validation_error("body failed validation: body should be an object.")
        return body

    # --- Notion routes -------------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        kind = self._search_kind(body.get("filter"))
        descending = self._search_descending(body.get("sort"))
        size = parse_page_size(body.get("page_size"), "body")
        ids = self.content.search(kind, descending)
        needle = str(body.get("query") or "").strip().casefold()
        results: list[JSON] = []
        index = decode_offset(body.get("start_cursor"))
        while index < len(ids) and len(results) < size:
            obj = self.content.search_result(ids[index])
            index += 1
            if not needle or needle in plain_title(obj).casefold() or needle in obj["id"]:
                results.append(obj)
        next_cursor = encode_offset(index) if index < len(ids) else None
        if self.hostile.search is not None:
            return self._hostile_search(request, body, kind)
        return self.json(list_body(self._rewritten(results), next_cursor, "page_or_data_source"))

    @staticmethod
    def _search_kind(spec: Any) -> Literal["page", "data_source"] | None:
        if spec is None:
            return None
        if not isinstance(spec, dict) or spec.get("property") != "object":
            raise validation_error('body failed validation: body.filter.property should be `"object"`.')
        value = spec.get("value")
        if value == "page":
            return "page"
        if value == "data_source":
            return "data_source"
        raise validation_error(
            'body failed validation: body.filter.value should be `"page"` or `"data_source"`, '
            f"instead was `{orjson.dumps(value).decode()}`."
        )

    @staticmethod
    def _search_descending(spec: Any) -> bool:
        if spec is None:
            return True
        if not isinstance(spec, dict) or spec.get("timestamp") != "last_edited_time":
            raise validation_error(
                'body failed validation: body.sort.timestamp should be `"last_edited_time"`.'
            )
        direction = spec.get("direction", "descending")
        if direction not in ("ascending", "descending"):
            raise validation_error(
                'body failed validation: body.sort.direction should be `"ascending"` or `"descending"`.'
            )
        return bool(direction == "descending")

    def _retrieve(
        self, request: web.Request, kind: str, lookup: Callable[[str], JSON | None]
    ) -> web.Response:
        """GET /v1/<kind>s/{id}: the object, or Notion's 404 for unknown and unshared ids."""
        object_id = parse_uuid(request.match_info["id"], f"path failed validation: path.{kind}_id")
        if kind == "page":
            self.stats.fetched_page(object_id)
        found = lookup(object_id)
        if found is None:
            raise not_found(kind, object_id)
        return self.json(found)

    async def _page(self, request: web.Request) -> web.Response:
        if self.hostile.pages:
            mode = self.hostile.pages.get(parse_uuid(request.match_info["id"], "path failed validation"))
            if mode is not None:
                self.stats.hostile_answer(mode, request.match_info["id"])
                return await self._hostile_answer(request, request.match_info["id"], mode)
        return self._retrieve(
            request, "page", lambda page_id: self._rewritten_page(self.content.page(page_id))
        )

    async def _property_item(self, request: web.Request) -> web.Response:
        page_id = parse_uuid(request.match_info["id"], "path failed validation: path.page_id")
        page = self.content.page(page_id)
        if page is None:
            raise not_found("page", page_id)
        raw_id = request.rel_url.raw_parts[-1]  # property ids are URL-encoded in page JSON too
        prop_id, prop = self._find_property(page, raw_id)
        if prop is None:
            raise not_found("property", unquote(raw_id))
        item = self.content.property_item(page_id, prop_id)
        if item is None:
            raise not_found("property", prop_id)
        if isinstance(item, dict):
            return self.json(item)
        size = parse_page_size(request.query.get("page_size"), "query")
        results, next_cursor = page_by_offset(item, request.query.get("start_cursor"), size)
        body = list_body(results, next_cursor, "property_item")
        next_url = None
        if next_cursor is not None:
            next_url = f"{request.url.origin()}{request.rel_url.path}?start_cursor={next_cursor}"
        body["property_item"] = {"id": prop_id, "next_url": next_url, "type": prop["type"], prop["type"]: {}}
        return self.json(body)

    @staticmethod
    def _find_property(page: JSON, raw_id: str) -> tuple[str, JSON | None]:
        wanted = {raw_id, unquote(raw_id)}
        for prop in page.get("properties", {}).values():
            if prop.get("id") in wanted or unquote(prop.get("id", "")) in wanted:
                return str(prop["id"]), prop
        return raw_id, None

    async def _block(self, request: web.Request) -> web.Response:
        return self._retrieve(request, "block", self.content.block)

    async def _block_children(self, request: web.Request) -> web.Response:
        block_id = parse_uuid(request.match_info["id"], "path failed validation: path.block_id")
        if self.hostile.children and block_id in self.hostile.children:
            return await self._hostile_children(request, block_id)
        query = request.query
        cursor = query.get("start_cursor")
        if not cursor:
            self.stats.fetched_children(block_id)
        size = parse_page_size(query.get("page_size"), "query")
        children = self.content.block_children(block_id)
        if children is None:
            raise not_found("block", block_id)
        results, next_cursor = page_by_id(children, cursor, size)
        return self.json(list_body(results, next_cursor, "block"))

    async def _database(self, request: web.Request) -> web.Response:
        return self._retrieve(request, "database", self.content.database)

    async def _data_source(self, request: web.Request) -> web.Response:
        return self._retrieve(request, "data_source", self.content.data_source)

    async def _query(self, request: web.Request) -> web.Response:
        ds_id = parse_uuid(request.match_info["id"], "path failed validation: path.data_source_id")
        body = await self._json_body(request)
        size = parse_page_size(body.get("page_size"), "body")
        try:
            rows = self.content.query(ds_id, body.get("filter"), body.get("sorts"))
        except ValueError as exc:
            raise validation_error(f"body failed validation: {exc}") from None
        if rows is None:
            raise not_found("data_source", ds_id)
        capped = len(rows) > QUERY_ROW_CAP
        visible = rows[:QUERY_ROW_CAP] if capped else rows
        ids, next_cursor = page_by_offset(visible, body.get("start_cursor"), size)
        results = [page for page in map(self.content.page, ids) if page is not None]
        payload = list_body(self._rewritten(results), next_cursor, "page_or_data_source")
        if capped and next_cursor is None:
            payload["request_status"] = INCOMPLETE
        return self.json(payload)

    async def _users(self, request: web.Request) -> web.Response:
        size = parse_page_size(request.query.get("page_size"), "query")
        results, next_cursor = page_by_offset(self.content.users(), request.query.get("start_cursor"), size)
        return self.json(list_body(results, next_cursor, "user"))

    async def _users_me(self, request: web.Request) -> web.Response:
        return self.json(dict(self.content.bot_user))

    async def _user(self, request: web.Request) -> web.Response:
        user_id = parse_uuid(request.match_info["id"], "path failed validation: path.user_id")
        user = self.content.user(user_id)
        if user is None:
            raise not_found("user", user_id)
        return self.json(user)

    async def _comments(self, request: web.Request) -> web.Response:
        raw = request.query.get("block_id")
        if raw is None:
            raise validation_error(
                "query failed validation: query.block_id should be defined, instead was `undefined`."
            )
        block_id = parse_uuid(raw, "query failed validation: query.block_id")
        comments = self.content.comments(block_id)
        if comments is None:
            raise not_found("block", block_id)
        size = parse_page_size(request.query.get("page_size"), "query")
        results, next_cursor = page_by_offset(comments, request.query.get("start_cursor"), size)
        return self.json(list_body(results, next_cursor, "comment"))

    # --- hostile modes (hostile.py) -------------------------------------------------------------

    async def _hostile_children(self, request: web.Request, block_id: str) -> web.Response:
        mode = self.hostile.children[block_id]
        self.stats.hostile_answer(mode, block_id)
        if mode in ("hang", "html", "echo_token_400", "error_500"):
            return await self._hostile_answer(request, block_id, mode)
        children = self.content.block_children(block_id)
        if children is None:
            raise not_found("block", block_id)
        size = parse_page_size(request.query.get("page_size"), "query")
        if mode == "same_cursor":
            results, _ = page_by_id(children, None, size)
            return self.json(list_body(results, SAME_CURSOR, "block"))
        results, next_cursor = page_by_id(children, request.query.get("start_cursor"), size)
        if mode == "cycle" and next_cursor is None:
            toggle = {"rich_text": [], "color": "default"}
            itself = {
                "object": "block",
                "id": block_id,
                "type": "toggle",
                "has_children": True,
                "toggle": toggle,
            }
            results = [*results, itself]
        body = list_body(results, next_cursor, "block")
        if mode == "results_null":
            body["results"] = None
        response = self.json(body)
        if mode == "truncated":
            assert isinstance(response.body, bytes)
            return web.Response(
                body=response.body[: len(response.body) // 2],
                content_type="application/json",
                charset="utf-8",
            )
        return response

    async def _hostile_answer(self, request: web.Request, object_id: str, mode: str) -> web.Response:
        if mode == "hang":
            await asyncio.sleep(self.hostile.hang_seconds)
            raise ApiError(504, "gateway_timeout", "Gateway Timeout")
        if mode == "error_500":
            raise ApiError(*FAULT_BODIES["500"])
        if mode == "html":
            page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(text=page, content_type="text/html")
        token = self.auth_header.removeprefix("Bearer ")
        authorization = request.headers.get("Authorization", "")
        raise validation_error(echo_message(request.method, request.path, authorization, token))

    def _hostile_search(
        self, request: web.Request, body: JSON, kind: Literal["page", "data_source"] | None
    ) -> web.Response:
        mode = self.hostile.search
        assert mode is not None
        self.stats.hostile_answer(mode, "search")
        if mode == "echo_token_400":
            token = self.auth_header.removeprefix("Bearer ")
            authorization = request.headers.get("Authorization", "")
            raise validation_error(echo_message(request.method, request.path, authorization, token))
        # same_cursor: the first page again, whatever the cursor, always "more" behind one cursor.
        descending = self._search_descending(body.get("sort"))
        size = parse_page_size(body.get("page_size"), "body")
        ids = self.content.search(kind, descending)
        results = [self.content.search_result(object_id) for object_id in ids[:size]]
        return self.json(list_body(self._rewritten(results), SAME_CURSOR, "page_or_data_source"))

    def _rewritten(self, objects: list[JSON]) -> list[JSON]:
        if not self.hostile.rewrites_pages:
            return objects
        return [self._rewritten_page(obj) or obj for obj in objects]

    def _rewritten_page(self, page: JSON | None) -> JSON | None:
        """A page object as the hostile modes have it: another parent, unusable file URLs."""
        if page is None or page.get("object") != "page" or not self.hostile.rewrites_pages:
            return page
        page_id = page["id"]
        parent = self.hostile.parents.get(page_id)
        if parent is not None:
            page = {**page, "parent": {"type": "page_id", "page_id": parent}}
        if page_id in self.hostile.bad_file_urls:
            base = self.backend.files.base_url if self.backend is not None else "http://127.0.0.1"
            cover = {"type": "external", "external": {"url": f"{base}/_external/bad\u0007name.png"}}
            icon = {"type": "external", "external": {"url": "http://[::1/bad-icon.png"}}
            page = {**page, "cover": cover, "icon": icon}
        if page_id in self.hostile.ids:
            page = {**page, "id": self.hostile.ids[page_id]}
        return page

    # --- files ---------------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        """Notion-hosted file: S3-like 403s for expired or forged URLs, else the bytes."""
        key = request.match_info["key"]
        try:
            expires = int(request.query.get("expires", ""))
        except ValueError:
            return s3_error("AccessDenied", "Query-string authentication requires the expires parameter", "")
        verdict = self.content.files.verify(key, expires, request.query.get("sig", ""), time.time())
        if verdict == "expired":
            return s3_error("AccessDenied", "Request has expired", self.request_id())
        if verdict == "bad":
            return s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                self.request_id(),
            )
        return self._bytes(key)

    async def _external(self, request: web.Request) -> web.Response:
        return self._bytes(request.match_info["path"])

    def _bytes(self, key: str) -> web.Response:
        data = self.content.file_bytes(key)
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type=content_type(key.rpartition("/")[2]))

    # --- replay --------------------------------------------------------------------------------

    async def _replay(self, request: web.Request) -> web.Response:
        assert self.replay is not None
        body = await request.read()
        recorded = self.replay.lookup(request.method, request.path, request.query_string, body)
        if recorded is None:
            raise ApiError(404, "object_not_found", f"Could not find a recorded response. {NOT_SHARED}")
        status, data = recorded
        return web.Response(body=data, status=status, content_type="application/json", charset="utf-8")

    # --- admin API -----------------------------------------------------------------------------

    async def _admin_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot(), dumps=lambda o: orjson.dumps(o).decode())

    async def _admin_reset(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.json_response({"ok": True})

    async def _admin_get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.config.model_dump())

    async def _admin_config(self, request: web.Request) -> web.Response:
        try:
            update = orjson.loads(await request.read() or b"{}")
            config = EmulatorConfig.model_validate({**self.config.model_dump(), **update})
            self.configure(config)
        except (orjson.JSONDecodeError, ValidationError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(self.config.model_dump())

    async def _admin_get_hostile(self, request: web.Request) -> web.Response:
        return web.json_response(self.hostile.model_dump())

    async def _admin_hostile(self, request: web.Request) -> web.Response:
        """Replaces the hostile configuration as a whole (`{}` turns every mode off)."""
        try:
            self.hostile = HostileConfig.model_validate(orjson.loads(await request.read() or b"{}"))
        except (orjson.JSONDecodeError, ValidationError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        self._rate_limited_left = self.hostile.rate_limit.count if self.hostile.rate_limit else 0
        return web.json_response(self.hostile.model_dump())

    async def _admin_workspace(self, request: web.Request) -> web.Response:
        return web.json_response(self.content.summary())

    async def _admin_mutate(self, request: web.Request) -> web.Response:
        try:
            op = orjson.loads(await request.read())
            if not isinstance(op, dict):
                raise ValueError("a mutation is a JSON object")
            result = self.content.mutate(op)
        except (orjson.JSONDecodeError, ValueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(result)
