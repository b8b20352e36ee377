"""The GenieACS-compatible northbound API: devices, tasks, faults, tags.

Same paths, query strings, task bodies and status codes as GenieACS's NBI, so existing
integrations work unchanged; errors carry our one JSON error shape. Device ids in paths
arrive percent-decoded once, as GenieACS expects (`%252D` in the URL is `%2D` in the id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from acs import connreq, filestore
from acs import query as q
from acs import query_sql as qs
from acs.provisions import RESERVED as RESERVED_PROVISIONS
from controller import documents as docs
from controller import taskbodies
from controller.auth import principal_of
from controller.errors import ApiError, bad_request, not_found, parse_json
from controller.notify import TaskWaiter
from schemas.config import Config
from schemas.sealing import Sealer

log = logging.getLogger("chronos.api.nbi")

POOL = web.AppKey("api_pool", asyncpg.Pool)
CONFIG = web.AppKey("api_config", Config)
SEALER = web.AppKey("sealer", Sealer)
WAITER = web.AppKey("task_waiter", TaskWaiter)
HTTP = web.AppKey("http_client", aiohttp.ClientSession)

# GenieACS waits this long for a session to end after it started (section 2.2 of its NBI).
SESSION_END_WAIT = 120.0
BATCH = 200

DEVICE_COLUMNS = """d.id, d.oui, d.product_class, d.serial_number, d.manufacturer, d.tags,
    d.registered, d.last_inform, d.last_boot, d.last_bootstrap, d.inform_params"""
PARAM_COLUMNS = """device_id, path, object, object_ts, writable, value, value_type, value_ts,
    notification, access_list, attributes_ts"""
PARAMS_OF = f"SELECT {PARAM_COLUMNS} FROM device_params WHERE device_id = ANY($1) ORDER BY path"
PARAMS_UNDER = f"""
SELECT {PARAM_COLUMNS} FROM device_params, unnest($2::text[]) AS pre(p)
WHERE device_id = ANY($1) AND (path = pre.p OR (path >= pre.p || '.' AND path < pre.p || '/'))
ORDER BY path
"""
DEVICE_EXISTS = "SELECT 1 FROM devices WHERE id = $1"
KNOWN_TYPES = """
SELECT path, value_type FROM device_params
WHERE device_id = $1 AND path = ANY($2::text[]) AND value_type IS NOT NULL
"""
KNOWN_PROVISIONS = "SELECT name FROM provisions WHERE name = ANY($1::text[])"
DELETE_UNIQUE = """
DELETE FROM tasks WHERE device_id = $1 AND body->>'uniqueKey' = $2
  AND status IN ('pending', 'waiting')
"""
INSERT_TASK = """
INSERT INTO tasks (device_id, name, body, args, expiry) VALUES ($1, $2, $3, $4, $5)
RETURNING id, device_id, body, created, expiry
"""
TASK_COLUMNS = """id, device_id, name, body, status, created, expiry, retries,
    NULLIF(retry_at, 'infinity') AS retry_at, retry_at = 'infinity' AS gave_up,
    result, completed"""
TASK_BY_ID = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"
TASK_STATE = """
SELECT t.status, EXISTS (SELECT 1 FROM faults f WHERE f.task_id = t.id) AS faulted,
       (SELECT d.session_id IS NOT NULL FROM devices d WHERE d.id = $2) AS busy
FROM tasks t WHERE t.id = $1
"""
DEVICE_SESSION = "SELECT last_inform, session_id IS NOT NULL AS busy FROM devices WHERE id = $1"
DELETE_TASK = "DELETE FROM tasks WHERE id = $1 RETURNING device_id"
RETRY_TASK = """
WITH t AS (
    UPDATE tasks SET retry_at = NULL WHERE id = $1 AND status IN ('pending', 'waiting')
    RETURNING id
)
DELETE FROM faults WHERE task_id IN (SELECT id FROM t) OR task_id = $1
"""
TASK_EXISTS = "SELECT 1 FROM tasks WHERE id = $1"
FAULT_BY_TASK = "SELECT * FROM faults WHERE task_id = $1"
DELETE_FAULT = "DELETE FROM faults WHERE id = $1 RETURNING task_id"
DELETE_FAULT_TASK = "DELETE FROM tasks WHERE id = $1"
DELETE_DEVICE = "DELETE FROM devices WHERE id = $1"
ADD_TAG = """
UPDATE devices SET tags = CASE WHEN $2 = ANY(tags) THEN tags ELSE array_append(tags, $2) END
WHERE id = $1 RETURNING 1
"""
REMOVE_TAG = "UPDATE devices SET tags = array_remove(tags, $2) WHERE id = $1 RETURNING 1"
CONNECTION_PARAMS = """
SELECT path, value FROM device_params
WHERE device_id = $1 AND path = ANY($2::text[])
"""
RECORD_CONNREQ = """
INSERT INTO connection_requests (device_id, url, ok, http_status, detail, duration_ms)
VALUES ($1, $2, $3, $4, $5, $6)
"""
# Keep the newest 50 outcomes per device.
TRIM_CONNREQ = """
DELETE FROM connection_requests WHERE device_id = $1 AND id < (
    SELECT min(id) FROM (
        SELECT id FROM connection_requests WHERE device_id = $1 ORDER BY id DESC LIMIT 50
    ) AS newest
)
"""
LIST_CONNREQ = """
SELECT at, url, ok, http_status, detail, duration_ms FROM connection_requests
WHERE device_id = $1 ORDER BY id DESC LIMIT 50
"""

# --- request parsing -------------------------------------------------------------------


def _json_param(request: web.Request, name: str) -> Any:
    text = request.query.get(name)
    return None if text is None else parse_json(text, name)


def _int_param(request: web.Request, name: str, minimum: int = 0) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise bad_request("BAD_PARAMETER", f"{name} must be an integer") from None
    if value < minimum:
        raise bad_request("BAD_PARAMETER", f"{name} must be at least {minimum}")
    return value


def _task_id(text: str) -> int:
    """A task id as the API shows it (24 hex digits) or as a plain number."""
    try:
        return int(text, 16)
    except ValueError:
        raise not_found("TASK_NOT_FOUND", f"no task {text!r}") from None


def _query_error(exc: q.QueryError) -> ApiError:
    return bad_request("BAD_QUERY", str(exc))


def _page(request: web.Request) -> tuple[int, int]:
    skip = _int_param(request, "skip") or 0
    limit = _int_param(request, "limit", minimum=0)
    return skip, limit if limit is not None else 2**62


# --- devices -----------------------------------------------------------------------------


def _reveal(request: web.Request) -> Any:
    """Operators and admins see stored secrets; viewers see them masked."""
    principal = principal_of(request)
    sealer = request.app.get(SEALER)
    return sealer.unseal if sealer is not None and principal.can_write else None


async def list_devices(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /devices/?query=&projection=&sort=&skip=&limit="""
    args: list[object] = []
    try:
        expr = q.parse_device_query(_json_param(request, "query") or {})
        where = qs.device_where(expr, args)
        sort = _json_param(request, "sort")
        order = qs.device_order_by(q.parse_sort(sort) if sort else [], args)
    except q.QueryError as exc:
        raise _query_error(exc) from None
    projection = docs.parse_projection(request.query.get("projection"))
    skip, limit = _page(request)
    pool = request.app[POOL]
    total = await pool.fetchval(f"SELECT count(*) FROM devices d WHERE {where}", *args)
    headers = {"total": str(total), "Content-Type": "application/json"}
    if request.method == "HEAD":
        return web.Response(headers=headers)
    sql = (
        f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE {where} ORDER BY {order}"
        f" OFFSET {skip} LIMIT {limit}"
    )
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    reveal = _reveal(request)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        first = True
        await response.write(b"[\n")
        async for batch in _batches(conn, sql, args):
            ids = [row["id"] for row in batch]
            for doc in await _documents(conn, batch, ids, projection, reveal):
                await response.write((b"" if first else b",\n") + json.dumps(doc).encode())
                first = False
        await response.write(b"\n]")
    await response.write_eof()
    return response


async def _batches(
    conn: asyncpg.Connection, sql: str, args: list[object]
) -> AsyncIterator[list[asyncpg.Record]]:
    cursor = await conn.cursor(sql, *args)
    while batch := await cursor.fetch(BATCH):
        yield batch


async def _documents(
    conn: asyncpg.Connection,
    devices: list[asyncpg.Record],
    ids: list[str],
    projection: list[str] | None,
    reveal: Any,
) -> list[dict[str, Any]]:
    if projection is None:
        rows = await conn.fetch(PARAMS_OF, ids)
    else:
        prefixes = docs.parameter_prefixes(projection)
        rows = await conn.fetch(PARAMS_UNDER, ids, prefixes) if prefixes else []
    by_device: dict[str, list[asyncpg.Record]] = {i: [] for i in ids}
    for row in rows:
        by_device[row["device_id"]].append(row)
    return [
        docs.project(docs.device_document(d, by_device[d["id"]], reveal), projection)
        for d in devices
    ]


async def delete_device(request: web.Request) -> web.Response:
    """DELETE /devices/{id}: the device, its tree, tasks and faults. 200 even if absent."""
    device = request.match_info["id"]
    await request.app[POOL].execute(DELETE_DEVICE, device)
    log.info("device deleted", extra={"device_id": device})
    return web.Response(status=200)


async def add_tag(request: web.Request) -> web.Response:
    return await _tag(request, ADD_TAG)


async def remove_tag(request: web.Request) -> web.Response:
    return await _tag(request, REMOVE_TAG)


async def _tag(request: web.Request, sql: str) -> web.Response:
    device, tag = request.match_info["id"], request.match_info["tag"]
    if not 0 < len(tag) <= 128 or not tag.isprintable():
        raise bad_request("BAD_TAG", "a tag is 1 to 128 printable characters")
    if await request.app[POOL].fetchval(sql, device, tag) is None:
        raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
    return web.Response(status=200)


# --- tasks ------------------------------------------------------------------------------


async def create_task(request: web.Request) -> web.Response:
    """POST /devices/{id}/tasks[?connection_request][&timeout=ms]"""
    device = request.match_info["id"]
    pool = request.app[POOL]
    text = await request.text()
    wants_cr = "connection_request" in request.query
    timeout_ms = _int_param(request, "timeout")
    if timeout_ms is None:
        timeout_ms = request.app[CONFIG].api.task_wait_ms
    if not text.strip():
        if not wants_cr:
            raise bad_request("EMPTY_BODY", "give a task, or ?connection_request alone")
        if await pool.fetchval(DEVICE_EXISTS, device) is None:
            raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
        outcome = await connection_request(request.app, device)
        if outcome.ok:
            return web.Response(status=200)
        return web.Response(status=504, reason=_reason(outcome.detail), text=outcome.detail)
    body = parse_json(text)
    task = taskbodies.validate(body)
    if await pool.fetchval(DEVICE_EXISTS, device) is None:
        raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
    row = await _insert_task(request, device, task, body)
    doc = docs.task_document({**row, "body": body})
    log.info(
        "task queued",
        extra={"device_id": device, "task_id": row["id"], "task": task.name},
    )
    if not wants_cr:
        return web.json_response(doc, status=202)
    started = time.monotonic()
    since = await pool.fetchval("SELECT now()")
    outcome = await connection_request(request.app, device)
    if not outcome.ok:
        return web.json_response(doc, status=202, reason=_reason(outcome.detail))
    remaining = max(0.0, timeout_ms / 1000 - (time.monotonic() - started))
    if not await _session_started(pool, device, since, remaining):
        return web.json_response(doc, status=202, reason="Task queued but not processed")
    status = await _task_outcome(request.app, device, row["id"])
    if status == "done":
        return web.json_response(doc, status=200)
    if status == "fault":
        return web.json_response(doc, status=202, reason="Task faulted")
    return web.json_response(doc, status=202, reason="Task queued but not processed")


def _reason(text: str) -> str:
    """An HTTP reason phrase: one line of printable ASCII."""
    cleaned = "".join(c if " " <= c <= "~" else " " for c in text)[:200].strip()
    return cleaned or "Accepted"


async def _insert_task(
    request: web.Request, device: str, task: Any, body: dict[str, Any]
) -> Mapping[str, Any]:
    pool = request.app[POOL]
    sealer = request.app.get(SEALER)
    seal = sealer.seal if sealer is not None else str
    names = taskbodies.parameter_names(task)
    async with pool.acquire() as conn, conn.transaction():
        known = {}
        if names:
            known = {
                r["path"]: r["value_type"] for r in await conn.fetch(KNOWN_TYPES, device, names)
            }
        name = taskbodies.file_name(task)
        stored = await filestore.current_file(conn, name) if name else None
        args = taskbodies.arguments(task, known, seal, stored)
        if task.name == "provisions":
            await _check_provisions(conn, [p[0] for p in args["provisions"]])
        if task.uniqueKey:
            await conn.execute(DELETE_UNIQUE, device, task.uniqueKey)
        expiry = taskbodies.expiry_of(task, datetime.now(UTC))
        return await conn.fetchrow(
            INSERT_TASK, device, task.name, taskbodies.stored_body(body), args, expiry
        )


async def _check_provisions(conn: asyncpg.Connection, names: list[str]) -> None:
    stored = {r["name"] for r in await conn.fetch(KNOWN_PROVISIONS, names)}
    unknown = sorted(set(names) - stored - RESERVED_PROVISIONS)
    if unknown:
        raise bad_request("UNKNOWN_PROVISION", f"no provision named {', '.join(unknown)}")


async def _session_started(
    pool: asyncpg.Pool, device: str, since: datetime, seconds: float
) -> bool:
    """Whether the device opens (or has open) a session within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        row = await pool.fetchrow(DEVICE_SESSION, device)
        if row is None:
            return False
        if row["busy"] or (row["last_inform"] is not None and row["last_inform"] >= since):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


async def _task_outcome(app: web.Application, device: str, task_id: int) -> str:
    """'done', 'fault', or 'pending' once the device's session ended without settling the
    task (or SESSION_END_WAIT passed). A download waiting for its TransferComplete is
    waited for within the same bound."""
    pool, waiter = app[POOL], app[WAITER]
    deadline = time.monotonic() + SESSION_END_WAIT
    while True:
        future = waiter.expect(task_id)
        try:
            row = await pool.fetchrow(TASK_STATE, task_id, device)
            if row is None:
                return "pending"  # deleted meanwhile
            if row["status"] == "done":
                return "done"
            if row["faulted"]:
                return "fault"
            if row["status"] == "pending" and not row["busy"]:
                return "pending"  # the session is over and did not run it
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "pending"
            # Woken by the task's notification; the session's end is polled for.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.2)):
                    await future
        finally:
            waiter.forget(task_id, future)


async def connection_request(app: web.Application, device: str) -> connreq.Outcome:
    """Ask the device to open a session now; the outcome is recorded for the API."""
    pool = app[POOL]
    config = app[CONFIG].connection_request
    names = [
        f"{root}.ManagementServer.{leaf}"
        for root in ("InternetGatewayDevice", "Device")
        for leaf in (
            "ConnectionRequestURL",
            "ConnectionRequestUsername",
            "ConnectionRequestPassword",
        )
    ]
    found = {
        r["path"].rpartition(".")[2]: r["value"]
        for r in await pool.fetch(CONNECTION_PARAMS, device, names)
    }
    url = found.get("ConnectionRequestURL") or ""
    sealer = app.get(SEALER)
    password = found.get("ConnectionRequestPassword") or ""
    if sealer is not None:
        password = sealer.unseal(password)
    username = found.get("ConnectionRequestUsername") or ""
    if not username:
        username, password = config.username, config.password.get_secret_value()
    outcome = await connreq.request_connection(
        app[HTTP],
        url,
        connreq.Credentials(username, password),
        seconds=config.timeout,
        retries=config.retries,
        allow_basic=config.allow_basic,
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            RECORD_CONNREQ,
            device,
            url,
            outcome.ok,
            outcome.http_status,
            outcome.detail,
            outcome.duration_ms,
        )
        await conn.execute(TRIM_CONNREQ, device)
    log.info(
        "connection request",
        extra={
            "device_id": device,
            "ok": outcome.ok,
            "http_status": outcome.http_status,
            "detail": outcome.detail,
            "duration_ms": outcome.duration_ms,
        },
    )
    return outcome


@dataclass(frozen=True, slots=True)
class Collection:
    """A GenieACS collection kept in one table: how to filter, order and show it."""

    table: str
    fields: Mapping[str, qs.Field]
    scope: str
    default_order: str
    select: str
    document: Callable[[Mapping[str, Any]], dict[str, Any]]


TASKS = Collection(
    "tasks t",
    qs.TASK_FIELDS,
    # Open tasks only, as GenieACS shows (it deletes finished ones).
    "t.status IN ('pending', 'waiting')",
    "t.id",
    f"SELECT {TASK_COLUMNS} FROM tasks t",
    docs.task_document,
)
FAULTS = Collection(
    "faults f", qs.FAULT_FIELDS, "TRUE", "f.id", "SELECT f.* FROM faults f", docs.fault_document
)


async def list_tasks(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /tasks/?query=..."""
    return await collection_response(request, TASKS)


async def list_faults(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /faults/?query=..."""
    return await collection_response(request, FAULTS)


async def collection_response(request: web.Request, c: Collection) -> web.StreamResponse:
    """GET|HEAD of a GenieACS collection kept in one table (query, sort, page, total)."""
    args: list[object] = []
    try:
        where = qs.collection_where(_json_param(request, "query") or {}, c.fields, args)
        sort = _json_param(request, "sort")
        order = qs.collection_order_by(sort, c.fields, args) if sort else ""
        order = f"{order}, {c.default_order}" if order else c.default_order
    except q.QueryError as exc:
        raise _query_error(exc) from None
    skip, limit = _page(request)
    projection = docs.parse_projection(request.query.get("projection"))
    pool = request.app[POOL]
    condition = f"({c.scope}) AND ({where})"
    total = await pool.fetchval(f"SELECT count(*) FROM {c.table} WHERE {condition}", *args)
    headers = {"total": str(total)}
    if request.method == "HEAD":
        return web.Response(headers=headers, content_type="application/json")
    rows = await pool.fetch(
        f"{c.select} WHERE {condition} ORDER BY {order} OFFSET {skip} LIMIT {min(limit, 10**6)}",
        *args,
    )
    items = [docs.project(c.document(r), projection) for r in rows]
    return web.json_response(items, headers=headers)


async def delete_task(request: web.Request) -> web.Response:
    """DELETE /tasks/{id}: the task and its fault."""
    task_id = _task_id(request.match_info["id"])
    device = await request.app[POOL].fetchval(DELETE_TASK, task_id)
    if device is None:
        raise not_found("TASK_NOT_FOUND", f"no task {request.match_info['id']!r}")
    log.info("task deleted", extra={"device_id": device, "task_id": task_id})
    return web.Response(status=200)


async def retry_task(request: web.Request) -> web.Response:
    """POST /tasks/{id}/retry: clear its fault; it runs at the device's next session."""
    task_id = _task_id(request.match_info["id"])
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(TASK_EXISTS, task_id) is None:
            raise not_found("TASK_NOT_FOUND", f"no task {request.match_info['id']!r}")
        await conn.execute(RETRY_TASK, task_id)
    return web.Response(status=200)


async def delete_fault(request: web.Request) -> web.Response:
    """DELETE /faults/{device}:{channel}; a task's fault takes its task along."""
    fault_id = request.match_info["id"]
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        task_id = await conn.fetchval(DELETE_FAULT, fault_id)
        if task_id is None and ":task_" in fault_id:
            try:
                task_id = int(fault_id.rpartition(":task_")[2], 16)
            except ValueError:
                task_id = None
        if task_id is not None:
            await conn.execute(DELETE_FAULT_TASK, task_id)
    return web.Response(status=200)


# --- /api/v1 additions ---------------------------------------------------------------------


async def get_task(request: web.Request) -> web.Response:
    """GET /api/v1/tasks/{id}: any task, finished ones included, with fault and result."""
    task_id = _task_id(request.match_info["id"])
    pool = request.app[POOL]
    row = await pool.fetchrow(TASK_BY_ID, task_id)
    if row is None:
        raise not_found("TASK_NOT_FOUND", f"no task {request.match_info['id']!r}")
    fault = await pool.fetchrow(FAULT_BY_TASK, task_id)
    return web.json_response(docs.task_status_document(row, fault))


async def list_connection_requests(request: web.Request) -> web.Response:
    """GET /api/v1/devices/{id}/connection-requests: the last 50 outcomes, newest first."""
    device = request.match_info["id"]
    pool = request.app[POOL]
    if await pool.fetchval(DEVICE_EXISTS, device) is None:
        raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
    rows = await pool.fetch(LIST_CONNREQ, device)
    return web.json_response(
        [
            {
                "at": docs.iso(r["at"]),
                "url": r["url"],
                "ok": r["ok"],
                "httpStatus": r["http_status"],
                "detail": r["detail"],
                "durationMs": r["duration_ms"],
            }
            for r in rows
        ]
    )


async def post_connection_request(request: web.Request) -> web.Response:
    """POST /api/v1/devices/{id}/connection-request: wake the device, report the outcome."""
    device = request.match_info["id"]
    if await request.app[POOL].fetchval(DEVICE_EXISTS, device) is None:
        raise not_found("DEVICE_NOT_FOUND", f"no device {device!r}", device=device)
    outcome = await connection_request(request.app, device)
    body = {
        "ok": outcome.ok,
        "url": outcome.url,
        "httpStatus": outcome.http_status,
        "detail": outcome.detail,
        "durationMs": outcome.duration_ms,
    }
    return web.json_response(body, status=200 if outcome.ok else 504)


def add_routes(app: web.Application) -> None:
    r = app.router
    for path in ("/devices", "/devices/"):
        r.add_get(path, list_devices)  # GET also answers HEAD
    r.add_delete("/devices/{id}", delete_device)
    r.add_post("/devices/{id}/tasks", create_task)
    r.add_post("/devices/{id}/tasks/", create_task)
    r.add_post("/devices/{id}/tags/{tag}", add_tag)
    r.add_delete("/devices/{id}/tags/{tag}", remove_tag)
    for path in ("/tasks", "/tasks/"):
        r.add_get(path, list_tasks)
    r.add_delete("/tasks/{id}", delete_task)
    r.add_post("/tasks/{id}/retry", retry_task)
    for path in ("/faults", "/faults/"):
        r.add_get(path, list_faults)
    r.add_delete("/faults/{id}", delete_fault)
    r.add_get("/api/v1/tasks/{id}", get_task)
    r.add_get("/api/v1/devices/{id}/connection-requests", list_connection_requests)
    r.add_post("/api/v1/devices/{id}/connection-request", post_connection_request)
