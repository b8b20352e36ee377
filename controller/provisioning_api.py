"""Presets, provisions, virtual parameters and device classes over the API.

GenieACS paths and shapes where it has them (`PUT|DELETE /presets/{name}`,
`GET /presets/`, the same for provisions and virtual_parameters), with one deliberate
difference: provisions and virtual parameters are declarative documents (JSON or YAML,
see acs.provisions), never scripts. A document that does not parse is refused with a
message naming the bad step, and nothing is stored. Every change notifies the ACS
processes, which use it from their next session on.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acs import catalog
from acs import query_sql as qs
from acs.provisions import (
    RESERVED,
    ProvisionError,
    check_cycles,
    check_name,
    load_source,
    parse_preset,
    parse_provision,
    parse_virtual_parameter,
)
from controller import documents as docs
from controller.errors import ApiError, bad_request, not_found, parse_json
from controller.nbi import POOL, Collection, collection_response

log = logging.getLogger("chronos.api.provisioning")

NOTIFY = f"SELECT pg_notify('{catalog.CHANNEL}', $1)"

UPSERT_PRESET = """
INSERT INTO presets (name, document) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET document = EXCLUDED.document, updated = now()
"""
UPSERT_PROVISION = """
INSERT INTO provisions (name, source, document) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, document = EXCLUDED.document,
                                 updated = now()
"""
UPSERT_VIRTUAL = """
INSERT INTO virtual_parameters (name, source, document) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source, document = EXCLUDED.document,
                                 updated = now()
"""
VIRTUAL_DOCUMENTS = "SELECT name, document FROM virtual_parameters WHERE name <> $1"
UPSERT_CLASS = """
INSERT INTO device_classes (oui, product_class, options) VALUES ($1, $2, $3)
ON CONFLICT (oui, product_class) DO UPDATE SET options = EXCLUDED.options, updated = now()
"""
LIST_CLASSES = "SELECT oui, product_class, options, updated FROM device_classes ORDER BY 1, 2"
DELETE_CLASS = "DELETE FROM device_classes WHERE oui = $1 AND product_class = $2 RETURNING 1"


def _document_fields(column: str) -> dict[str, qs.Field]:
    return {
        "_id": qs.Field("x.name", qs.FieldKind.TEXT),
        "*": qs.Field(f"x.{column}", qs.FieldKind.JSON),
    }


PRESETS = Collection(
    "presets x",
    _document_fields("document"),
    "TRUE",
    "x.name",
    "SELECT x.name, x.document FROM presets x",
    lambda r: {"_id": r["name"], **r["document"]},
)
PROVISIONS = Collection(
    "provisions x",
    _document_fields("document"),
    "TRUE",
    "x.name",
    "SELECT x.name, x.source, x.document FROM provisions x",
    lambda r: {"_id": r["name"], "script": r["source"], "steps": r["document"]},
)
VIRTUAL_PARAMETERS = Collection(
    "virtual_parameters x",
    _document_fields("document"),
    "TRUE",
    "x.name",
    "SELECT x.name, x.source, x.document FROM virtual_parameters x",
    lambda r: {"_id": r["name"], "script": r["source"], **r["document"]},
)


def _refused(kind: str, exc: ProvisionError) -> ApiError:
    return bad_request(f"INVALID_{kind.upper()}", f"invalid {kind}: {exc}")


async def _save(pool: asyncpg.Pool, what: str, sql: str, *args: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(sql, *args)
        await conn.execute(NOTIFY, what)


async def _delete(pool: asyncpg.Pool, table: str, name: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DELETE FROM {table} WHERE name = $1", name)
        await conn.execute(NOTIFY, table)


# --- presets ---------------------------------------------------------------------------------


async def put_preset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    document = parse_json(await request.text())
    try:
        check_name(name)
        parse_preset(name, document)
    except ProvisionError as exc:
        raise _refused("preset", exc) from None
    stored = {k: v for k, v in document.items() if k != "_id"}
    await _save(request.app[POOL], "presets", UPSERT_PRESET, name, stored)
    log.info("preset saved", extra={"preset": name})
    return web.Response(status=200)


async def delete_preset(request: web.Request) -> web.Response:
    await _delete(request.app[POOL], "presets", request.match_info["name"])
    return web.Response(status=200)


# --- provisions ------------------------------------------------------------------------------


async def put_provision(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    source = await request.text()
    try:
        check_name(name, reserved=RESERVED)
        document = load_source(source)
        parse_provision(document)
    except ProvisionError as exc:
        hint = ""
        if "function" in source or "declare(" in source:
            hint = " (provisions here are declarative documents, not scripts)"
        raise bad_request("INVALID_PROVISION", f"invalid provision: {exc}{hint}") from None
    await _save(request.app[POOL], "provisions", UPSERT_PROVISION, name, source, document)
    log.info("provision saved", extra={"provision": name})
    return web.Response(status=200)


async def delete_provision(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name in RESERVED:
        raise bad_request("BUILT_IN", f"{name!r} is a built-in provision")
    await _delete(request.app[POOL], "provisions", name)
    return web.Response(status=200)


# --- virtual parameters --------------------------------------------------------------------------


async def put_virtual_parameter(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    source = await request.text()
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        # Serialise definitions, so two uploads cannot close a cycle between them.
        await conn.execute("LOCK TABLE virtual_parameters IN SHARE ROW EXCLUSIVE MODE")
        try:
            document = load_source(source)
            parsed = parse_virtual_parameter(name, document)
            others = {
                r["name"]: parse_virtual_parameter(r["name"], r["document"])
                for r in await conn.fetch(VIRTUAL_DOCUMENTS, name)
            }
            check_cycles({**others, name: parsed})
        except ProvisionError as exc:
            raise _refused("virtual_parameter", exc) from None
        await conn.execute(UPSERT_VIRTUAL, name, source, document)
        await conn.execute(NOTIFY, "virtual_parameters")
    log.info("virtual parameter saved", extra={"virtual_parameter": name})
    return web.Response(status=200)


async def delete_virtual_parameter(request: web.Request) -> web.Response:
    await _delete(request.app[POOL], "virtual_parameters", request.match_info["name"])
    return web.Response(status=200)


# --- device classes ------------------------------------------------------------------------------


class ClassOptions(BaseModel):
    """Quirk settings of a device model (a device's own `options` override them)."""

    model_config = ConfigDict(extra="forbid")

    boolean_style: Literal["word", "digit"] | None = None  # true/false, or 1/0
    datetime_ms: bool | None = None  # send dateTime values with milliseconds
    xml_declaration: bool | None = None  # send the <?xml ...?> declaration
    skip_root_gpn: bool | None = None  # list the data model root, never ""
    hold_requests: bool | None = None
    gpv_batch: int | None = Field(None, ge=1, le=1000)
    transfer_timeout_is_success: bool | None = None  # never sends TransferComplete


def _class_key(request: web.Request) -> tuple[str, str]:
    oui = request.match_info["oui"]
    product_class = request.match_info["product_class"]
    if not oui or len(oui) > 16:
        raise bad_request("BAD_OUI", "an OUI is up to 16 characters")
    return oui, "" if product_class == "*" else product_class


async def put_device_class(request: web.Request) -> web.Response:
    oui, product_class = _class_key(request)
    try:
        options = ClassOptions.model_validate(parse_json(await request.text()))
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise bad_request("INVALID_OPTIONS", "; ".join(problems)) from None
    stored = options.model_dump(exclude_none=True)
    await _save(request.app[POOL], "device_classes", UPSERT_CLASS, oui, product_class, stored)
    return web.json_response({"oui": oui, "productClass": product_class or "*", "options": stored})


async def list_device_classes(request: web.Request) -> web.Response:
    rows = await request.app[POOL].fetch(LIST_CLASSES)
    return web.json_response(
        [
            {
                "oui": r["oui"],
                "productClass": r["product_class"] or "*",
                "options": r["options"],
                "updated": docs.iso(r["updated"]),
            }
            for r in rows
        ]
    )


async def delete_device_class(request: web.Request) -> web.Response:
    oui, product_class = _class_key(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(DELETE_CLASS, oui, product_class) is None:
            raise not_found("CLASS_NOT_FOUND", f"no settings for {oui}/{product_class or '*'}")
        await conn.execute(NOTIFY, "device_classes")
    return web.Response(status=200)


async def list_presets(request: web.Request) -> web.StreamResponse:
    return await collection_response(request, PRESETS)


async def list_provisions(request: web.Request) -> web.StreamResponse:
    return await collection_response(request, PROVISIONS)


async def list_virtual_parameters(request: web.Request) -> web.StreamResponse:
    return await collection_response(request, VIRTUAL_PARAMETERS)


def add_routes(app: web.Application) -> None:
    r = app.router
    for collection, put, delete, listing in (
        ("presets", put_preset, delete_preset, list_presets),
        ("provisions", put_provision, delete_provision, list_provisions),
        (
            "virtual_parameters",
            put_virtual_parameter,
            delete_virtual_parameter,
            list_virtual_parameters,
        ),
    ):
        r.add_put(f"/{collection}/{{name}}", put)
        r.add_delete(f"/{collection}/{{name}}", delete)
        r.add_get(f"/{collection}", listing)
        r.add_get(f"/{collection}/", listing)
    r.add_get("/api/v1/device-classes", list_device_classes)
    r.add_put("/api/v1/device-classes/{oui}/{product_class}", put_device_class)
    r.add_delete("/api/v1/device-classes/{oui}/{product_class}", delete_device_class)
