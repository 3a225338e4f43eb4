"""`SourceWrites`: databases, data sources and their schemas created through the API
(`POST /v1/databases`, `POST /v1/data_sources`, `PATCH /v1/data_sources/{id}`), and the checking of
row property values against a schema (`POST /v1/pages` under a data source)."""

from __future__ import annotations

import hashlib
from typing import Any

from notion_sync.emulator.api import not_found, parse_uuid, validation_error
from notion_sync.emulator.backend import JSON
from notion_sync.emulator.created import CreatedModel, Node
from notion_sync.emulator.ids import Kind
from notion_sync.emulator.payloads import (
    MAX_CHILDREN,
    BlockReader,
    RichText,
    expect_list,
    expect_object,
    expect_text,
    failed,
    shown,
)

PROPERTY_TYPES = (
    "title",
    "rich_text",
    "number",
    "select",
    "multi_select",
    "status",
    "date",
    "people",
    "files",
    "checkbox",
    "url",
    "email",
    "phone_number",
    "formula",
    "relation",
    "rollup",
    "created_time",
    "created_by",
    "last_edited_time",
    "last_edited_by",
    "unique_id",
    "verification",
    "button",
    "place",
)
COMPUTED = (
    "formula",
    "rollup",
    "created_time",
    "created_by",
    "last_edited_time",
    "last_edited_by",
    "unique_id",
    "verification",
    "button",
)
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
TEXT_LIMITS = {"url": 2000, "email": 200, "phone_number": 200}


def short_id(*parts: str) -> str:
    """A property or option id like Notion's short ones, stable for its owner and name."""
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=8).digest()
    return "".join(ID_ALPHABET[b % len(ID_ALPHABET)] for b in digest[:4])


class SourceWrites(CreatedModel):
    """Creates databases and data sources; checks row values against their schemas."""

    def rich(self) -> RichText:
        return RichText(self.mention_name)

    def reader(self) -> BlockReader:
        return BlockReader(self.rich(), self.resolve_upload)

    def mention_name(self, kind: str, object_id: str) -> str | None:
        if kind == "user":
            user = self.user(object_id)
            return "@" + str(user.get("name")) if user is not None else None
        found = self.page(object_id) if kind == "page" else self.database(object_id)
        if found is None:
            return None
        if kind == "database":
            return "".join(part.get("plain_text", "") for part in found["title"])
        title: list[JSON] = next(
            (p["title"] for p in found["properties"].values() if p["type"] == "title"), []
        )
        return "".join(part.get("plain_text", "") for part in title)

    def resolve_upload(self, upload_id: str, path: str) -> tuple[str, str]:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise failed(f"{path}: could not find file upload with ID `{upload_id}`.")
        if upload.status != "uploaded":
            raise failed(
                f"{path}: file upload `{upload_id}` has status `{upload.status}`, expected `uploaded`."
            )
        return upload.key, upload.filename

    def file_value(self, raw: Any, path: str) -> JSON | None:
        """An icon or cover: emoji, external URL or file upload (None clears it)."""
        if raw is None:
            return None
        raw = expect_object(raw, path)
        if (raw.get("type") or ("emoji" if "emoji" in raw else None)) == "emoji":
            return {"type": "emoji", "emoji": expect_text(raw.get("emoji"), f"{path}.emoji", 100)}
        found = self.reader().file(raw, path)
        found.pop("_name", None)
        return found

    # --- databases and data sources ----------------------------------------------------------------

    def editable_page(self, page_id: str, path: str = "body.parent.page_id") -> str:
        """A page the integration can read and write under: 404 if unknown, 400 if in the trash."""
        if not isinstance(page_id, str) or self.page(page_id) is None:
            raise not_found("page", str(page_id))
        if (page_id in self.nodes and self.trashed(page_id)) or self.page(page_id)["in_trash"]:  # type: ignore[index]
            raise validation_error(
                "Can't edit block that is archived. You must unarchive the block before editing."
            )
        return page_id

    def create_database(self, body: JSON) -> JSON:
        parent = expect_object(body.get("parent"), "body.parent")
        home = self.editable_page(self.canonical(parent.get("page_id")))
        initial = expect_object(body.get("initial_data_source") or {}, "body.initial_data_source")
        database_id, source_id = self.new_id(Kind.DATABASE), self.new_id(Kind.DATA_SOURCE)
        schema = self.schema(
            source_id, {}, initial.get("properties") or {}, "body.initial_data_source.properties"
        )
        title = self.rich().array(body.get("title", []), "body.title")
        data = {
            "title": title,
            "description": self.rich().array(body.get("description", []), "body.description"),
            "is_inline": bool(body.get("is_inline", False)),
            "icon": self.file_value(body.get("icon"), "body.icon"),
            "cover": self.file_value(body.get("cover"), "body.cover"),
        }
        now = self.minutes()
        self.add_node(Node(database_id, "database", "page_id", home, now, now, data))
        source_title = self.rich().array(initial.get("title", title), "body.initial_data_source.title")
        self.add_node(
            Node(
                source_id,
                "data_source",
                "database_id",
                database_id,
                now,
                now,
                {"title": source_title, "properties": schema},
            )
        )
        self.touch(home)
        return self.render_database(self.nodes[database_id])

    def create_data_source(self, body: JSON) -> JSON:
        parent = expect_object(body.get("parent"), "body.parent")
        database_id = self.canonical(parent.get("database_id"))
        database = self._found(database_id, "database")
        if database is None:
            if self.database(database_id) is not None:
                raise validation_error(
                    "The emulator adds data sources only to databases created through the API."
                )
            raise not_found("database", database_id)
        source_id = self.new_id(Kind.DATA_SOURCE)
        schema = self.schema(source_id, {}, body.get("properties") or {}, "body.properties")
        now = self.minutes()
        title = self.rich().array(body.get("title", []), "body.title")
        self.add_node(
            Node(
                source_id,
                "data_source",
                "database_id",
                database_id,
                now,
                now,
                {"title": title, "properties": schema},
            )
        )
        self.touch(database_id)
        return self.render_source(self.nodes[source_id])

    def update_data_source(self, source_id: str, body: JSON) -> JSON:
        node = self._found(source_id, "data_source")
        if node is None:
            if self.data_source(source_id) is not None:
                raise validation_error("The emulator edits only data sources created through the API.")
            raise not_found("data_source", source_id)
        changes = expect_object(body.get("properties") or {}, "body.properties")
        node.data["properties"] = self.schema(source_id, node.data["properties"], changes, "body.properties")
        if "title" in body:
            node.data["title"] = self.rich().array(body["title"], "body.title")
        self.touch(source_id)
        return self.render_source(node)

    def schema(self, source_id: str, current: JSON, changes: Any, path: str) -> JSON:
        """`current` with `changes` applied (name -> config, or None to remove); one title property."""
        changes = expect_object(changes, path)
        out = {name: dict(conf) for name, conf in current.items()}
        for name, raw in changes.items():
            existing = next((n for n, c in out.items() if name in (n, c["id"])), None)
            if raw is None:
                if existing is not None:
                    del out[existing]
                continue
            raw = expect_object(raw, f"{path}.{name}")
            new_name = str(raw.get("name") or existing or name)
            if existing is not None and existing != new_name:
                out[new_name] = out.pop(existing)
            kind = raw.get("type") or next((k for k in PROPERTY_TYPES if k in raw), None)
            if kind is None and existing is not None:
                continue  # a rename only
            if kind not in PROPERTY_TYPES:
                raise failed(
                    f"{path}.{name} should have one of the property types, instead was `{shown(raw)}`."
                )
            old = out.get(new_name)
            prop_id = "title" if kind == "title" else (old["id"] if old else short_id(source_id, new_name))
            config = self.property_config(kind, raw.get(kind) or {}, out, f"{path}.{name}.{kind}", source_id)
            out[new_name] = {"id": prop_id, "name": new_name, "type": kind, kind: config}
        titles = [n for n, c in out.items() if c["type"] == "title"]
        if len(titles) > 1:
            raise validation_error(
                f"body failed validation: {path} can have only one title property, found {titles}."
            )
        if not titles:  # Notion names the title of a schema given without one "Name"
            out = {"Name": {"id": "title", "name": "Name", "type": "title", "title": {}}, **out}
        return out

    def property_config(self, kind: str, raw: Any, schema: JSON, path: str, source_id: str) -> JSON:
        raw = expect_object(raw, path)
        if kind in ("select", "multi_select", "status"):
            options = expect_list(raw.get("options", []), f"{path}.options", MAX_CHILDREN)
            config: JSON = {
                "options": [self.option(o, f"{path}.options[{i}]", source_id) for i, o in enumerate(options)]
            }
            if kind == "status":
                config["groups"] = raw.get("groups", [])
            return config
        if kind == "number":
            return {"format": str(raw.get("format", "number"))}
        if kind == "formula":
            return {"expression": str(raw.get("expression", ""))}
        if kind == "unique_id":
            return {"prefix": raw.get("prefix")}
        if kind == "relation":
            return self.relation_config(raw, path)
        if kind == "rollup":
            return self.rollup_config(raw, schema, path)
        return {}

    def option(self, raw: Any, path: str, source_id: str) -> JSON:
        raw = expect_object(raw, path)
        name = expect_text(raw.get("name"), f"{path}.name", 100)
        return {
            "id": str(raw.get("id") or short_id(source_id, "option", name)),
            "name": name,
            "color": str(raw.get("color", "default")),
            "description": raw.get("description"),
        }

    def relation_config(self, raw: JSON, path: str) -> JSON:
        target = self.canonical(raw.get("data_source_id") or raw.get("database_id"))
        source = self.data_source(target)
        if source is None:
            database = self.database(target)
            if database is None or not database["data_sources"]:
                raise failed(f"{path}.data_source_id: could not find data source with ID `{target}`.")
            source = self.data_source(database["data_sources"][0]["id"])
            assert source is not None
        kind = (
            "dual_property"
            if raw.get("type") == "dual_property" or "dual_property" in raw
            else "single_property"
        )
        return {
            "database_id": source["parent"]["database_id"],
            "data_source_id": source["id"],
            "type": kind,
            kind: {}
            if kind == "single_property"
            else {"synced_property_name": None, "synced_property_id": None},
        }

    def rollup_config(self, raw: JSON, schema: JSON, path: str) -> JSON:
        relation_name = str(raw.get("relation_property_name") or "")
        relation = next(
            (
                c
                for n, c in schema.items()
                if relation_name in (n, c["id"]) or raw.get("relation_property_id") == c["id"]
            ),
            None,
        )
        if relation is None or relation["type"] != "relation":
            raise failed(f"{path}.relation_property_name: `{relation_name}` is not a relation property here.")
        target = self.data_source(relation["relation"]["data_source_id"])
        rollup_name = str(raw.get("rollup_property_name") or "")
        rolled = next(
            (
                c
                for n, c in (target or {}).get("properties", {}).items()
                if rollup_name in (n, c["id"]) or raw.get("rollup_property_id") == c["id"]
            ),
            None,
        )
        if rolled is None:
            raise failed(
                f"{path}.rollup_property_name: `{rollup_name}` is not a property of the related data source."
            )
        return {
            "relation_property_name": relation["name"],
            "relation_property_id": relation["id"],
            "rollup_property_name": rolled["name"],
            "rollup_property_id": rolled["id"],
            "function": str(raw.get("function", "show_original")),
        }

    # --- row values ---------------------------------------------------------------------------------

    def row_values(self, source: Node, raw: Any, current: JSON) -> JSON:
        """`current` values with the request's `properties` applied, checked against the schema."""
        raw = expect_object(raw, "body.properties")
        schema: JSON = source.data["properties"]
        out = dict(current)
        for key, value in raw.items():
            name = next((n for n, c in schema.items() if key in (n, c["id"])), None)
            if name is None:
                raise validation_error(f"{key} is not a property that exists.")
            conf = schema[name]
            kind = conf["type"]
            value = expect_object(value, f"body.properties.{key}")
            given = value.get("type") or next((k for k in PROPERTY_TYPES if k in value), None)
            if given != kind:
                raise validation_error(f"{name} is expected to be {kind}.")
            if kind in COMPUTED:
                raise validation_error(
                    f"{name} is a {kind} property: its value is computed and cannot be set."
                )
            out[name] = {kind: self.property_value(conf, value.get(kind), f"body.properties.{key}.{kind}")}
        return out

    def property_value(self, conf: JSON, value: Any, path: str) -> Any:
        kind = conf["type"]
        if kind in ("title", "rich_text"):
            return self.rich().array(value, path)
        if kind == "number":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise failed(f"{path} should be a number or `null`, instead was `{shown(value)}`.")
            return value
        if kind == "checkbox":
            if not isinstance(value, bool):
                raise failed(f"{path} should be a boolean, instead was `{shown(value)}`.")
            return value
        if kind in TEXT_LIMITS:
            return None if value is None else expect_text(value, path, TEXT_LIMITS[kind])
        if kind in ("select", "status"):
            return None if value is None else self.chosen(conf, value, path)
        if kind == "multi_select":
            items = expect_list(value, path, MAX_CHILDREN)
            return [self.chosen(conf, item, f"{path}[{i}]") for i, item in enumerate(items)]
        if kind == "date":
            if value is None:
                return None
            value = expect_object(value, path)
            return {
                "start": expect_text(value.get("start"), f"{path}.start", 100),
                "end": value.get("end"),
                "time_zone": value.get("time_zone"),
            }
        if kind == "people":
            return [
                self.person(item, f"{path}[{i}]")
                for i, item in enumerate(expect_list(value, path, MAX_CHILDREN))
            ]
        if kind == "files":
            return [
                self.file_item(item, f"{path}[{i}]")
                for i, item in enumerate(expect_list(value, path, MAX_CHILDREN))
            ]
        if kind == "relation":
            return [
                self.related(item, f"{path}[{i}]")
                for i, item in enumerate(expect_list(value, path, MAX_CHILDREN))
            ]
        return value  # place: stored as given

    def chosen(self, conf: JSON, raw: Any, path: str) -> JSON:
        """A select / multi-select / status option by name or id; a new name adds the option."""
        raw = expect_object(raw, path)
        options: list[JSON] = conf[conf["type"]]["options"]
        found = next((o for o in options if raw.get("id") == o["id"] or raw.get("name") == o["name"]), None)
        if found is None:
            if "name" not in raw:
                raise failed(f"{path}.id: no option with ID `{raw.get('id')}`.")
            found = {
                "id": short_id(conf["id"], "option", str(raw["name"])),
                "name": expect_text(raw["name"], f"{path}.name", 100),
                "color": str(raw.get("color", "default")),
                "description": None,
            }
            options.append(found)
        return {"id": found["id"], "name": found["name"], "color": found["color"]}

    def person(self, raw: Any, path: str) -> JSON:
        user_id = self.canonical(expect_object(raw, path).get("id"))
        user = self.user(user_id)
        if user is None:
            raise failed(f"{path}.id: could not find user with ID `{user_id}`.")
        return user

    def file_item(self, raw: Any, path: str) -> JSON:
        raw = expect_object(raw, path)
        found = self.reader().file(raw, path)
        name = found.pop("_name")
        return {"name": str(raw.get("name") or name), **found}

    def related(self, raw: Any, path: str) -> JSON:
        page_id = self.canonical(expect_object(raw, path).get("id"))
        if self.page(page_id) is None:
            raise failed(f"{path}.id: could not find page with ID `{page_id}` to relate to.")
        return {"id": page_id}

    @staticmethod
    def canonical(raw: Any) -> str:
        """A dashed lowercase id from a body, or Notion's validation error."""
        if not isinstance(raw, str):
            raise failed(f"an id should be a valid uuid, instead was `{shown(raw)}`.")
        return parse_uuid(raw, "body failed validation: id")
