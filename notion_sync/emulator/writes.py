"""`WriteModel`: the write endpoints' behaviour over the workspace: create and edit pages, append
and trash blocks, comments and file uploads (databases and data sources: sources.py).

Each write checks its whole request first and changes nothing when it fails, as Notion does; then
the created objects are visible to every read (created.py).
"""

from __future__ import annotations

import mimetypes
from typing import Any

from notion_sync.emulator.api import ApiError, list_body, not_found, validation_error
from notion_sync.emulator.backend import JSON
from notion_sync.emulator.created import Node, Upload
from notion_sync.emulator.files import iso_ms
from notion_sync.emulator.generate import minutes_iso
from notion_sync.emulator.ids import Kind
from notion_sync.emulator.payloads import BlockSpec, expect_object, failed, shown
from notion_sync.emulator.sources import SourceWrites

MAX_SINGLE_PART_BYTES = 20 * 1024 * 1024  # Notion's single-part upload limit
UPLOAD_EXPIRY_SECONDS = 3600
ARCHIVED = "Can't edit block that is archived. You must unarchive the block before editing."


class WriteModel(SourceWrites):
    """The write side of the API; every method returns the response body or raises `ApiError`."""

    # --- pages ----------------------------------------------------------------------------------

    def create_page(self, body: JSON) -> JSON:
        parent = body.get("parent")
        if parent is None:
            raise failed("body.parent should be defined, instead was `undefined`.")
        parent = expect_object(parent, "body.parent")
        kind = parent.get("type") or next(
            (k for k in ("page_id", "data_source_id", "database_id") if k in parent), None
        )
        now = self.minutes()
        children = self.reader().children(body.get("children", []), "body.children")
        self.check_specs(children)
        data: JSON = {
            "icon": self.file_value(body.get("icon"), "body.icon"),
            "cover": self.file_value(body.get("cover"), "body.cover"),
        }
        if kind == "page_id":
            parent_id = self.editable_page(self.canonical(parent.get("page_id")))
            data["title"] = self.page_title_value(body.get("properties") or {})
            node = Node(self.new_id(Kind.PAGE), "page", "page_id", parent_id, now, now, data)
        elif kind in ("data_source_id", "database_id"):
            source = self.row_source(kind, self.canonical(parent.get(kind)))
            data["properties"] = self.row_values(source, body.get("properties") or {}, {})
            node = Node(self.new_id(Kind.PAGE), "page", "data_source_id", source.id, now, now, data)
        else:
            raise failed(
                "body.parent should have a page_id, data_source_id or database_id, "
                f"instead was `{shown(parent)}`."
            )
        self.add_node(node)
        self.insert(children, node.id, "page_id", None)
        self.touch(node.parent_id)
        return self.render_page(node)

    def page_title_value(self, properties: Any) -> list[JSON]:
        """The title of a page under a page: its only property, named "title" (or any name)."""
        properties = expect_object(properties, "body.properties")
        title: list[JSON] = []
        for key, value in properties.items():
            if isinstance(value, list):  # the short form Notion also takes: {"title": [rich text]}
                value = {"title": value}
            value = expect_object(value, f"body.properties.{key}")
            if "title" not in value:
                raise validation_error(f"{key} is not a property that exists.")
            title = self.rich().array(value["title"], f"body.properties.{key}.title")
        return title

    def row_source(self, kind: str, object_id: str) -> Node:
        """The created data source a row goes into (a database stands for its first source)."""
        if kind == "database_id":
            database = self._found(object_id, "database")
            if database is None:
                raise self.not_created("database", object_id, self.database(object_id) is not None)
            sources = self.order.get(database.id, [])
            if len(sources) != 1:
                raise validation_error(
                    f"Database {object_id} has {len(sources)} data sources: give parent.data_source_id."
                )
            object_id = sources[0]
        source = self._found(object_id, "data_source")
        if source is None:
            raise self.not_created("data_source", object_id, self.data_source(object_id) is not None)
        if self.trashed(source.id):
            raise validation_error(ARCHIVED)
        return source

    @staticmethod
    def not_created(kind: str, object_id: str, generated: bool) -> ApiError:
        if generated:
            return validation_error(f"The emulator writes only into a {kind} created through the API.")
        return not_found(kind, object_id)

    def update_page(self, page_id: str, body: JSON) -> JSON:
        node = self._found(page_id, "page")
        if node is None:
            raise self.not_created("page", page_id, self.page(page_id) is not None)
        data = dict(node.data)
        if "properties" in body:
            if node.parent_type == "data_source_id":
                source = self.nodes[node.parent_id]
                data["properties"] = self.row_values(source, body["properties"], node.data["properties"])
            elif body["properties"]:
                data["title"] = self.page_title_value(body["properties"])
        for key in ("icon", "cover"):
            if key in body:
                data[key] = self.file_value(body[key], f"body.{key}")
        trash = body.get("in_trash", body.get("archived"))
        if trash is not None and not isinstance(trash, bool):
            raise failed(f"body.in_trash should be a boolean, instead was `{shown(trash)}`.")
        if trash is None and self.trashed(page_id):
            raise validation_error(ARCHIVED)
        node.data = data
        if trash is not None:
            node.in_trash = trash
        self.touch(page_id)
        return self.render_page(node)

    # --- blocks ---------------------------------------------------------------------------------

    def append_children(self, block_id: str, body: JSON) -> JSON:
        if "children" not in body:
            raise failed("body.children should be defined, instead was `undefined`.")
        node = self.nodes.get(block_id)
        if not self.exists(block_id) or (node is not None and node.object == "data_source"):
            raise not_found("block", block_id)
        if node is not None and node.object == "database":
            raise validation_error(
                "Use POST /v1/pages with a data_source_id parent to add rows to a database."
            )
        if self.trashed(block_id) if node is not None else self.block_trashed(block_id):
            raise validation_error(ARCHIVED)
        children = self.reader().children(body["children"], "body.children")
        self.check_specs(children)
        start = self.insert_position(block_id, body)
        parent_type = "page_id" if self.is_page(block_id) else "block_id"
        created = self.insert(children, block_id, parent_type, start)
        self.touch(block_id)
        return list_body([self.render_block(self.nodes[i]) for i in created], None, "block")

    def is_page(self, object_id: str) -> bool:
        node = self.nodes.get(object_id)
        if node is not None:
            return node.object == "page"
        decoded = self.codec.decode(object_id)
        return decoded is not None and decoded.kind == Kind.PAGE

    def block_trashed(self, block_id: str) -> bool:
        found = self.block(block_id)
        return bool(found and found.get("in_trash"))

    def insert_position(self, parent_id: str, body: JSON) -> int | None:
        """Where the new children go among the parent's: `position` (2025-09-03+) or `after`."""
        position = body.get("position")
        after = body.get("after")
        if position is not None:
            position = expect_object(position, "body.position")
            kind = position.get("type")
            if kind == "end":
                return None
            if kind == "start":
                return 0
            if kind != "after_block":
                raise failed(
                    "body.position.type should be `end`, `start` or `after_block`, "
                    f"instead was `{shown(kind)}`."
                )
            after = expect_object(position.get("after_block"), "body.position.after_block").get("id")
        if after is None:
            return None
        after_id = self.canonical(after)
        siblings = self.sibling_list(parent_id)
        if after_id not in siblings:
            raise validation_error(f"Block {after_id} is not a child of {parent_id}.")
        return siblings.index(after_id) + 1

    def check_specs(self, specs: list[BlockSpec]) -> None:
        """Checks that need the workspace: synced block originals, link targets."""
        for spec in specs:
            if spec.type == "synced_block" and spec.content["synced_from"] is not None:
                original = spec.content["synced_from"]["block_id"]
                found = self.block(original)
                if found is None or found["type"] != "synced_block" or found["synced_block"]["synced_from"]:
                    raise failed(
                        f"synced_block.synced_from.block_id: `{original}` is not an original synced block."
                    )
                if spec.children:
                    raise failed(
                        "synced_block.children should be not present for a synced_block with synced_from."
                    )
            if spec.type == "link_to_page":
                target = spec.content[spec.content["type"]]
                if not self.exists(self.canonical(target)):
                    raise not_found("page" if spec.content["type"] == "page_id" else "database", target)
            self.check_specs(spec.children)

    def insert(
        self, specs: list[BlockSpec], parent_id: str, parent_type: str, start: int | None
    ) -> list[str]:
        """Creates the blocks (depth first) and returns the first level's ids."""
        ids: list[str] = []
        now = self.minutes()
        for offset, spec in enumerate(specs):
            node = Node(
                self.new_id(Kind.BLOCK),
                "block",
                parent_type,
                parent_id,
                now,
                now,
                {"type": spec.type, spec.type: spec.content},
            )
            self.add_node(node, None if start is None else start + offset)
            self.insert(spec.children, node.id, "block_id", None)
            ids.append(node.id)
        return ids

    def trash_block(self, block_id: str) -> JSON:
        node = self.nodes.get(block_id)
        if node is None or not self.readable(block_id) or node.object == "data_source":
            raise self.not_created("block", block_id, self.block(block_id) is not None)
        node.in_trash = True
        self.touch(block_id)
        self.touch(node.parent_id)
        if node.object == "block":
            return self.render_block(node)
        return self.reference_block(node)

    # --- comments -------------------------------------------------------------------------------

    def create_comment(self, body: JSON) -> JSON:
        rich_text = self.rich().array(body.get("rich_text"), "body.rich_text")
        discussion = body.get("discussion_id")
        if discussion is not None:
            discussion_id = self.canonical(discussion)
            target = self.discussions.get(discussion_id)
            if target is None:
                raise not_found("discussion", discussion_id)
        else:
            parent = expect_object(body.get("parent"), "body.parent")
            kind = "page_id" if "page_id" in parent else "block_id"
            target = self.canonical(parent.get(kind))
            if not self.exists(target):
                raise not_found("page" if kind == "page_id" else "block", target)
            discussion_id = self.new_id(Kind.DISCUSSION)
            self.discussions[discussion_id] = target
        stamp = self.minutes()
        parent_ref = (
            {"type": "page_id", "page_id": target}
            if self.is_page(target)
            else {"type": "block_id", "block_id": target}
        )
        comment = {
            "object": "comment",
            "id": self.new_id(Kind.COMMENT),
            "parent": parent_ref,
            "discussion_id": discussion_id,
            "created_time": minutes_iso(stamp),
            "last_edited_time": minutes_iso(stamp),
            "created_by": self.author(),
            "rich_text": rich_text,
        }
        self.created_comments.setdefault(target, []).append(comment)
        self.counters.comments += 1
        return dict(comment)

    # --- file uploads ---------------------------------------------------------------------------

    def create_file_upload(self, body: JSON) -> JSON:
        mode = body.get("mode", "single_part")
        if mode != "single_part":
            raise validation_error(
                f"The emulator supports file uploads in `single_part` mode only, not `{mode}`."
            )
        filename = str(body.get("filename") or "")
        content_type = str(
            body.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        )
        upload = Upload(self.new_id(Kind.BLOCK), filename, content_type, self.clock())
        self.uploads[upload.id] = upload
        self.counters.file_uploads += 1
        return self.upload_object(upload)

    def send_file_upload(
        self, upload_id: str, filename: str | None, content_type: str | None, data: bytes
    ) -> JSON:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise not_found("file upload", upload_id)
        if upload.status != "pending":
            raise validation_error(
                f"File upload {upload_id} has status `{upload.status}`: only pending uploads take a file."
            )
        if len(data) > MAX_SINGLE_PART_BYTES:
            raise validation_error(
                f"The file is {len(data)} bytes; a single-part upload holds at most "
                f"{MAX_SINGLE_PART_BYTES} bytes."
            )
        upload.filename = upload.filename or filename or "file"
        if content_type and content_type != "application/octet-stream":
            upload.content_type = content_type
        upload.data, upload.status = data, "uploaded"
        return self.upload_object(upload)

    def file_upload(self, upload_id: str) -> JSON:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise not_found("file upload", upload_id)
        return self.upload_object(upload)

    def upload_object(self, upload: Upload) -> JSON:
        pending = upload.status == "pending"
        return {
            "object": "file_upload",
            "id": upload.id,
            "created_time": iso_ms(upload.created // 60 * 60),
            "created_by": {"id": self.bot_user["id"], "type": "bot"},
            "last_edited_time": iso_ms(upload.created // 60 * 60),
            "archived": False,
            "expiry_time": iso_ms(upload.created // 60 * 60 + UPLOAD_EXPIRY_SECONDS) if pending else None,
            "status": upload.status,
            "filename": upload.filename or None,
            "content_type": upload.content_type,
            "content_length": len(upload.data) if not pending else None,
            "upload_url": f"{self.files.base_url}/v1/file_uploads/{upload.id}/send" if pending else None,
            "in_trash": False,
        }
