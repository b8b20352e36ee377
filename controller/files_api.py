"""Files on the operator API: GenieACS's /files routes, and what CPEs uploaded.

    PUT    /files/{name}                          store a file (GenieACS headers), 201
    GET    /files/?query=&projection=&sort=&skip=&limit=   GenieACS's fs.files shape
    DELETE /files/{name}                          404 when absent
    GET    /api/v1/devices/{id}/uploads           what a device uploaded, newest first
    GET    /api/v1/devices/{id}/uploads/{upload}  one upload's content, streamed

A PUT streams its body into PostgreSQL chunk by chunk and never holds the file; beyond
`files.max_file_bytes` it is refused with 413 and leaves nothing behind. The new content
replaces the old in one transaction; CPEs already reading the old one finish reading it.
Configuration backups carry credentials: listing them is for every role, their content
only for operators and admins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from aiohttp import web

from acs import filestore as fs
from acs import query as q
from acs import query_sql as qs
from acs.files import UPLOAD_SEAL_PURPOSE, ChunkCipher, etag
from acs.query_sql import Field, FieldKind
from acs.store import task_hex
from controller import documents as docs
from controller import nbi
from controller.auth import principal_of
from controller.errors import ApiError, bad_request, error_response, not_found, parse_json

log = logging.getLogger("chronos.api.files")

# GenieACS's metadata headers, matched case-insensitively, as its NBI reads them.
META_HEADERS = ("fileType", "oui", "productClass", "version")
_READ_BYTES = 256 * 1024
_MAX_UPLOAD_LIST = 1000

FILE_FIELDS: Mapping[str, Field] = {
    "_id": Field("f.name", FieldKind.TEXT),
    "filename": Field("f.name", FieldKind.TEXT),
    "length": Field("f.length", FieldKind.NUMBER),
    "chunkSize": Field("f.chunk_size", FieldKind.NUMBER),
    "uploadDate": Field("f.uploaded", FieldKind.DATE),
    "md5": Field("f.md5", FieldKind.TEXT),
    "sha256": Field("f.sha256", FieldKind.TEXT),
    "metadata.fileType": Field("f.file_type", FieldKind.TEXT),
    "metadata.oui": Field("f.oui", FieldKind.TEXT),
    "metadata.productClass": Field("f.product_class", FieldKind.TEXT),
    "metadata.version": Field("f.version", FieldKind.TEXT),
}


def file_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored file as GenieACS lists one (a GridFS fs.files document), plus sha256."""
    return {
        "_id": row["name"],
        "length": row["length"],
        "chunkSize": row["chunk_size"],
        "uploadDate": docs.iso(row["uploaded"]),
        "filename": row["name"],
        "metadata": {
            "fileType": row["file_type"],
            "oui": row["oui"],
            "productClass": row["product_class"],
            "version": row["version"],
        },
        "md5": row["md5"],
        "sha256": row["sha256"],
    }


LIST_SQL = f"SELECT {fs.FILE_COLUMNS} FROM files f WHERE f.state = 'current' AND "
COUNT_SQL = "SELECT count(*) FROM files f WHERE f.state = 'current' AND "


def _file_name(text: str) -> str:
    if not 0 < len(text) <= 255 or text in (".", "..") or "/" in text or not text.isprintable():
        raise bad_request(
            "BAD_FILE_NAME", "a file name is 1 to 255 printable characters, without '/'"
        )
    return text


def _metadata(request: web.Request) -> dict[str, str]:
    out = {}
    for name in META_HEADERS:
        value = request.headers.get(name, "").strip()
        if len(value) > 256 or not value.isprintable():
            raise bad_request(
                "BAD_HEADER", f"header {name} must be at most 256 printable characters"
            )
        out[name] = value
    return out


def _too_large(limit: int) -> web.Response:
    """413, closing the connection: the rest of the body is not worth reading."""
    response = ApiError(
        413, "FILE_TOO_LARGE", f"the file is larger than {limit} bytes", {"limit": limit}
    ).response()
    response.force_close()
    return response


async def _expect(request: web.Request) -> web.StreamResponse | None:
    """Refuse a declared oversize body before the client sends it (Expect: 100-continue)."""
    limit = request.app[nbi.CONFIG].files.max_file_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    if request.headers.get("Expect", "").lower() == "100-continue":
        request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def put_file(request: web.Request) -> web.Response:
    """PUT /files/{name}: store the body as `name`, replacing any file of that name."""
    name = _file_name(request.match_info["name"])
    meta = _metadata(request)
    pool = request.app[nbi.POOL]
    limit = request.app[nbi.CONFIG].files.max_file_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    file_id = await fs.begin_file(pool, name, meta)
    try:
        writer = fs.ChunkWriter(pool, fs.INSERT_FILE_CHUNK, file_id, limit=limit)
        async for data in request.content.iter_chunked(_READ_BYTES):
            await writer.write(data)
        digest = await writer.close()
        stored, replaced = await fs.publish_file(pool, file_id, name, digest)
    except fs.TooLarge:
        await asyncio.shield(fs.discard_file(pool, file_id))
        log.warning("file refused: too large", extra={"file": name, "limit": limit})
        return _too_large(limit)
    except BaseException:
        await asyncio.shield(fs.discard_file(pool, file_id))
        raise
    log.info(
        "file stored",
        extra={
            "file": name,
            "length": stored.length,
            "sha256": stored.sha256,
            "replaced": replaced,
        },
    )
    return web.json_response(file_document(asdict(stored)), status=201)


async def delete_file(request: web.Request) -> web.Response:
    """DELETE /files/{name}: CPEs are no longer given it; transfers in flight finish."""
    name = request.match_info["name"]
    if not await fs.delete_file(request.app[nbi.POOL], name):
        raise not_found("FILE_NOT_FOUND", f"no file {name!r}", file=name)
    log.info("file deleted", extra={"file": name})
    return web.Response(status=200)


def _number(request: web.Request, name: str, minimum: int) -> int | None:
    text = request.query.get(name, "")
    if text == "":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise bad_request("BAD_PARAMETER", f"{name} must be an integer of at least {minimum}")
    return int(text)


def _json_query(request: web.Request, name: str) -> object:
    text = request.query.get(name)
    return None if text is None else parse_json(text, name)


async def list_files(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /files/?query=&projection=&sort=&skip=&limit=: GenieACS's shape (a GridFS
    fs.files document per file), the count (skip and limit aside) in the `total` header."""
    args: list[object] = []
    try:
        where = qs.collection_where(_json_query(request, "query") or {}, FILE_FIELDS, args)
        sort = _json_query(request, "sort")
        order = qs.collection_order_by(sort, FILE_FIELDS, args) if sort else ""
    except q.QueryError as exc:
        raise bad_request("BAD_QUERY", str(exc)) from None
    order = f"{order}, f.name" if order else "f.name"
    skip = _number(request, "skip", 0) or 0
    limit = _number(request, "limit", 0)
    limit = request.app[nbi.CONFIG].api.max_page if limit is None else limit
    projection = docs.parse_projection(request.query.get("projection"))
    pool = request.app[nbi.POOL]
    total = await pool.fetchval(COUNT_SQL + f"({where})", *args)
    headers = {"total": str(total)}
    if request.method == "HEAD":
        return web.Response(headers=headers, content_type="application/json")
    sql = f"{LIST_SQL}({where}) ORDER BY {order} OFFSET {skip} LIMIT {limit}"
    rows = await pool.fetch(sql, *args)
    items = [docs.project(file_document(r), projection) for r in rows]
    return web.json_response(items, headers=headers)


# --- what devices uploaded ------------------------------------------------------------------


def upload_document(upload: fs.DeviceUpload) -> dict[str, Any]:
    return {
        "_id": upload.id,
        "device": upload.device_id,
        "task": task_hex(upload.task_id) if upload.task_id is not None else None,
        "fileType": upload.file_type,
        "filename": upload.filename,
        "contentType": upload.content_type,
        "length": upload.length,
        "md5": upload.md5,
        "sha256": upload.sha256,
        "timestamp": docs.iso(upload.created),
    }


async def _device(request: web.Request) -> str:
    device = request.match_info["id"]
    if await request.app[nbi.POOL].fetchval(nbi.DEVICE_EXISTS, device) is None:
        raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
    return device


async def list_device_uploads(request: web.Request) -> web.Response:
    """GET /api/v1/devices/{id}/uploads[?limit=]: newest first (at most 1000)."""
    device = await _device(request)
    limit = _number(request, "limit", 1) or 100
    uploads = await fs.list_uploads(request.app[nbi.POOL], device, min(limit, _MAX_UPLOAD_LIST))
    return web.json_response([upload_document(u) for u in uploads])


async def get_device_upload(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/devices/{id}/uploads/{upload}: the content as the CPE sent it."""
    if not principal_of(request).can_write:
        raise ApiError(
            403, "FORBIDDEN", "uploaded files hold device credentials: operators and admins only"
        )
    device = await _device(request)
    text = request.match_info["upload"]
    upload_id = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
    pool = request.app[nbi.POOL]
    upload = await fs.get_upload(pool, device, upload_id) if upload_id is not None else None
    if upload is None:
        raise not_found("UPLOAD_NOT_FOUND", f"device {device!r} has no upload {text!r}")
    sealer = request.app.get(nbi.SEALER)
    unseal = ChunkCipher(sealer.subkey(UPLOAD_SEAL_PURPOSE)).open if sealer else None
    if upload.sealed and unseal is None:
        return error_response(500, "NO_KEY", "this upload is sealed and the API has no key")
    filename = upload.filename or f"upload-{upload.id}"
    response = web.StreamResponse(
        headers={
            "Content-Type": upload.content_type,
            "ETag": etag(upload.sha256),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        }
    )
    response.content_length = upload.length
    await response.prepare(request)
    if request.method != "HEAD":
        async for data in fs.upload_content(pool, upload, unseal):
            await response.write(data)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    r = app.router
    for path in ("/files/{name}", "/files/{name}/"):
        r.add_route("PUT", path, put_file, expect_handler=_expect)
        r.add_delete(path, delete_file)
    for path in ("/files", "/files/"):
        r.add_get(path, list_files)
    r.add_get("/api/v1/devices/{id}/uploads", list_device_uploads)
    r.add_get("/api/v1/devices/{id}/uploads/{upload}", get_device_upload)
