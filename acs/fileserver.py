"""The file server CPEs download from and upload to (port 7567), in the ACS role.

    GET|HEAD  /files/{name}?d=&t=&e=&s=      a stored file, for the device and task the
                                             signed link names (acs.files)
    PUT|POST  /uploads/{task}?d=&f=&e=&s=    a CPE's configuration backup or log
    GET       /health, /ready, /metrics

Every transfer needs a valid link, issued in the Download/Upload RPC of an open task:
a link that is forged, expired, made for another device, or whose task is gone is 403.
Files stream chunk by chunk from PostgreSQL with Range (single ranges: 206, 416), ETag
(the content's SHA-256), Last-Modified, If-None-Match and If-Range; uploads stream in
chunk by chunk, bounded by `files.max_upload_bytes`, sealed at rest when a cipher is
given. A POST may be multipart/form-data (its first part with a file name is the file),
as some CPEs send.

In the background (every `files.sweep_interval` seconds), transfers that got no
TransferComplete within `files.download_timeout` are settled, and retired file versions
and abandoned uploads are removed. Both are single statements, safe from every ACS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client import Counter

from acs import filestore as fs
from acs import health
from acs.files import (
    ChunkCipher,
    FileUrls,
    LinkError,
    RangeNotSatisfiable,
    etag,
    http_date,
    if_range_allows,
    none_match,
    parse_range,
)
from schemas.config import Config

log = logging.getLogger("chronos.files")

REQUESTS = Counter(
    "chronos_files_requests_total", "File server requests, by route and status", ["route", "status"]
)
BYTES_SENT = Counter("chronos_files_sent_bytes_total", "File bytes sent to CPEs")
BYTES_RECEIVED = Counter("chronos_files_received_bytes_total", "Upload bytes stored from CPEs")

SETTINGS = web.AppKey("files_config", Config)
URLS = web.AppKey("file_urls", FileUrls)
CIPHER = web.AppKey("upload_cipher", ChunkCipher)

_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# A CPE that takes longer than this to accept one piece of a file has stalled.
_STALL_SECONDS = 120.0
_PIECE = 64 * 1024
_READ_BYTES = 256 * 1024


def _refuse(route: str, status: int, code: str, message: str, **headers: str) -> web.Response:
    REQUESTS.labels(route, str(status)).inc()
    body = {"error": {"code": code, "message": message, "details": {}}}
    response = web.json_response(body, status=status, headers=headers)
    if status == 413:
        response.force_close()  # the rest of the body is not worth reading
    return response


async def _link_task(
    request: web.Request, route: str, task_id: int, device_id: str, kind: str
) -> web.Response | None:
    """None if the link's task is open and of the right kind, else the refusal."""
    name = await fs.open_task(request.app[health.POOL], task_id, device_id)
    if name != kind:
        log.info(
            "link refused: task not open",
            extra={"device_id": device_id, "task_id": task_id, "route": route},
        )
        return _refuse(route, 403, "LINK_REVOKED", "the task this link was made for is not open")
    return None


async def get_file(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /files/{name}: the current version of a stored file."""
    name = request.match_info["name"]
    try:
        grant = request.app[URLS].verify_download(name, request.query, time.time())
    except LinkError as exc:
        log.info("link refused", extra={"reason": exc.code, "file": name, "peer": request.remote})
        return _refuse("download", 403, exc.code, str(exc))
    pool = request.app[health.POOL]
    refused = await _link_task(request, "download", grant.task_id, grant.device_id, "download")
    if refused is not None:
        return refused
    stored = await fs.current_file(pool, name)
    if stored is None:
        return _refuse("download", 404, "FILE_NOT_FOUND", f"no file {name!r}")
    tag = etag(stored.sha256)
    headers = {
        "ETag": tag,
        "Last-Modified": http_date(stored.uploaded),
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Cache-Control": "private, no-store",
    }
    if none_match(request.headers.get("If-None-Match"), tag):
        REQUESTS.labels("download", "304").inc()
        return web.Response(status=304, headers=headers)
    wanted = None
    if if_range_allows(request.headers.get("If-Range"), tag, stored.uploaded):
        try:
            wanted = parse_range(request.headers.get("Range"), stored.length)
        except RangeNotSatisfiable:
            return _refuse(
                "download",
                416,
                "RANGE_NOT_SATISFIABLE",
                f"the file has {stored.length} bytes",
                **{"Content-Range": f"bytes */{stored.length}"},
            )
    start, end = (wanted.start, wanted.end) if wanted else (0, stored.length - 1)
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range()
    status = 206 if wanted is not None else 200
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start + 1
    await response.prepare(request)
    sent = 0
    if request.method != "HEAD":
        async for data in fs.file_slices(pool, stored, start, end):
            for offset in range(0, len(data), _PIECE):
                async with asyncio.timeout(_STALL_SECONDS):
                    await response.write(data[offset : offset + _PIECE])
            sent += len(data)
    await response.write_eof()
    REQUESTS.labels("download", str(status)).inc()
    BYTES_SENT.inc(sent)
    log.info(
        "file sent",
        extra={
            "device_id": grant.device_id,
            "task_id": grant.task_id,
            "file": name,
            "status": status,
            "bytes": sent,
            "method": request.method,
        },
    )
    return response


async def _expect_upload(request: web.Request) -> web.StreamResponse | None:
    """Refuse a declared oversize upload before the CPE sends it (Expect: 100-continue)."""
    limit = request.app[SETTINGS].files.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse("upload", 413, "UPLOAD_TOO_LARGE", f"uploads are limited to {limit} bytes")
    if request.headers.get("Expect", "").lower() == "100-continue":
        request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def _body(request: web.Request) -> tuple[AsyncIterator[bytes], str, str]:
    """The uploaded bytes, their file name and content type: the body itself, or the
    first part with a file name of a multipart/form-data POST (other fields are skipped)."""
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise ValueError("multipart upload without a file part")
            if isinstance(part, aiohttp.BodyPartReader) and part.filename:
                break
            await part.release()
        file_part = part

        async def parts() -> AsyncIterator[bytes]:
            while data := await file_part.read_chunk(_READ_BYTES):
                yield data

        content_type = file_part.headers.get("Content-Type", "application/octet-stream")
        return parts(), file_part.filename or "", content_type
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    return request.content.iter_chunked(_READ_BYTES), "", content_type


async def receive_upload(request: web.Request) -> web.Response:
    """PUT|POST /uploads/{task}: store what the CPE sends, for the device and task."""
    try:
        grant = request.app[URLS].verify_upload(
            request.match_info["task"], request.query, time.time()
        )
    except LinkError as exc:
        log.info("upload link refused", extra={"reason": exc.code, "peer": request.remote})
        return _refuse("upload", 403, exc.code, str(exc))
    refused = await _link_task(request, "upload", grant.task_id, grant.device_id, "upload")
    if refused is not None:
        return refused
    limit = request.app[SETTINGS].files.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse("upload", 413, "UPLOAD_TOO_LARGE", f"uploads are limited to {limit} bytes")
    try:
        chunks, filename, content_type = await _body(request)
    except ValueError as exc:
        return _refuse("upload", 400, "BAD_UPLOAD", str(exc))
    pool = request.app[health.POOL]
    cipher = request.app.get(CIPHER)
    upload_id = await fs.begin_upload(
        pool,
        grant.device_id,
        grant.task_id,
        grant.file_type,
        filename=filename[:255],
        content_type=content_type[:255],
        sealed=cipher is not None,
    )
    writer = fs.ChunkWriter(
        pool,
        fs.INSERT_UPLOAD_CHUNK,
        upload_id,
        limit=limit,
        seal=cipher.seal if cipher is not None else None,
    )
    try:
        async for data in chunks:
            await writer.write(data)
        digest = await writer.close()
        await fs.complete_upload(pool, upload_id, digest)
    except fs.TooLarge:
        await asyncio.shield(fs.discard_upload(pool, upload_id))
        log.warning(
            "upload refused: too large",
            extra={"device_id": grant.device_id, "task_id": grant.task_id, "limit": limit},
        )
        return _refuse("upload", 413, "UPLOAD_TOO_LARGE", f"uploads are limited to {limit} bytes")
    except BaseException:
        await asyncio.shield(fs.discard_upload(pool, upload_id))
        raise
    REQUESTS.labels("upload", "200").inc()
    BYTES_RECEIVED.inc(digest.length)
    log.info(
        "upload stored",
        extra={
            "device_id": grant.device_id,
            "task_id": grant.task_id,
            "upload_id": upload_id,
            "file_type": grant.file_type,
            "bytes": digest.length,
        },
    )
    return web.Response(status=200, text=f"stored upload {upload_id}\n")


async def sweep_once(app: web.Application) -> None:
    """Settle overdue transfers and remove what no one can read any more."""
    pool = app[health.POOL]
    config = app[SETTINGS]
    await fs.time_out_transfers(
        pool, config.files.download_timeout, config.acs.retry_delay, config.acs.max_retries
    )
    removed = await fs.purge(pool, config.files.download_timeout)
    if removed:
        log.info("stale file versions and uploads removed", extra={"count": removed})


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(app[SETTINGS].files.sweep_interval)
            try:
                await sweep_once(app)
            except _DB_ERRORS as exc:  # the next round tries again
                log.warning("file sweep failed", extra={"error": type(exc).__name__})

    task = asyncio.create_task(loop(), name="file-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    pool: asyncpg.Pool, config: Config, signer: FileUrls, cipher: ChunkCipher | None = None
) -> web.Application:
    """The file server application (port 7567 by default); the caller owns the pool.

    `signer` checks the links the ACS issued (the same key and base URL); `cipher`, if
    given, seals uploaded content at rest.
    """
    app = web.Application()
    app[health.POOL] = pool
    app[SETTINGS] = config
    app[URLS] = signer
    if cipher is not None:
        app[CIPHER] = cipher
    health.add_routes(app)
    app.router.add_get("/files/{name}", get_file)  # GET also answers HEAD
    for method in ("PUT", "POST"):
        app.router.add_route(
            method, "/uploads/{task}", receive_upload, expect_handler=_expect_upload
        )
    app.cleanup_ctx.append(_sweeper)
    return app
