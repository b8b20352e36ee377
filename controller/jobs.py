"""Jobs: on-demand operations on a target, run by the agent that polls it.

A job is stored first (`queued`, with an idempotency key: asking twice with the same key
returns the first job), then claimed by whichever controller holds the stream of the
target's owner (`sent`, with a deadline) and sent as a `job` frame. The agent runs the
jobs of one target one at a time, reports `job_progress` (`running`, progress appended)
and a `job_result` (`succeeded` or `failed`). A job whose deadline passes without a
result fails as timed out; so does a queued job no agent took in its timeout. Every
change is published on the live event stream (`type: job`).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from controller import documents as docs
from controller.errors import ApiError, bad_request, not_found, page_of, parse_json
from controller.events import publish
from controller.nbi import POOL
from schemas import olt

log = logging.getLogger("chronos.jobs")

JOB_CHANNEL = "chronos_job"  # payload: the target id whose queue grew
DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 3_600_000

JOB_COLUMNS = """id, target_id, kind, params, idempotency_key, state, agent_id, progress,
    result, error, timeout_ms, created, sent, deadline, finished"""
CREATE = f"""
INSERT INTO jobs (target_id, kind, params, idempotency_key, timeout_ms)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING {JOB_COLUMNS}
"""
BY_KEY = f"SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = $1"
BY_ID = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
CLAIM = f"""
UPDATE jobs SET state = 'sent', agent_id = $1, sent = now(),
    deadline = now() + make_interval(secs => timeout_ms / 1000.0)
WHERE state = 'queued' AND target_id = ANY($2::bigint[])
RETURNING {JOB_COLUMNS}
"""
PROGRESS = """
UPDATE jobs SET state = 'running', progress = progress || $3::jsonb
WHERE id = $1 AND agent_id = $2 AND state IN ('sent', 'running')
RETURNING target_id, kind
"""
FINISH = """
UPDATE jobs SET state = CASE WHEN $3 THEN 'succeeded' ELSE 'failed' END, result = $4,
    error = nullif($5, ''), finished = now()
WHERE id = $1 AND agent_id = $2 AND state IN ('sent', 'running')
RETURNING target_id, kind, state
"""
EXPIRE = """
UPDATE jobs SET state = 'failed', finished = now(),
    error = CASE WHEN state = 'queued' THEN 'no agent took the job in its timeout'
                 ELSE 'timed out: no result from agent ' || coalesce(agent_id, '?') END
WHERE (state IN ('sent', 'running') AND deadline < now())
   OR (state = 'queued' AND created + make_interval(secs => timeout_ms / 1000.0) < now())
RETURNING id, target_id, kind, error
"""
NOTIFY = f"SELECT pg_notify('{JOB_CHANNEL}', $1)"
TARGET_KIND = "SELECT kind FROM targets WHERE id = $1"

# Which target kinds run which jobs.
KINDS_FOR_TARGET: dict[str, frozenset[str]] = {"huawei-olt": frozenset(olt.JOB_PARAMS)}


def document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "target": row["target_id"],
        "kind": row["kind"],
        "params": row["params"],
        "idempotencyKey": row["idempotency_key"],
        "state": row["state"],
        "agent": row["agent_id"],
        "progress": row["progress"],
        "result": row["result"],
        "error": row["error"],
        "timeoutMs": row["timeout_ms"],
        "created": docs.iso(row["created"]),
        "sent": docs.iso(row["sent"]),
        "deadline": docs.iso(row["deadline"]),
        "finished": docs.iso(row["finished"]),
    }


def validated(kind: str, params: Any) -> dict[str, Any]:
    """The job's parameters as the agent will get them; 400 with the reason otherwise."""
    try:
        return olt.job_params(kind, params).model_dump()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise bad_request("INVALID_JOB", f"{where}: {first['msg']}") from None
    except ValueError as exc:
        raise bad_request("INVALID_JOB", str(exc)) from None


async def create(
    pool: asyncpg.Pool,
    target: int,
    kind: str,
    params: dict[str, Any],
    *,
    key: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> tuple[dict[str, Any], bool]:
    """Store a job (or find the one with the same idempotency key); (document, created)."""
    async with pool.acquire() as conn, conn.transaction():
        target_kind = await conn.fetchval(TARGET_KIND, target)
        if target_kind is None:
            raise not_found("TARGET_NOT_FOUND", f"no target {target}")
        if kind not in KINDS_FOR_TARGET.get(target_kind, ()):
            raise bad_request("INVALID_JOB", f"a {target_kind} target runs no {kind!r} jobs")
        row = await conn.fetchrow(CREATE, target, kind, params, key, timeout_ms)
        if row is None:  # the key was used: same request again, or a clash
            row = await conn.fetchrow(BY_KEY, key)
            if row["target_id"] != target or row["kind"] != kind or row["params"] != params:
                raise ApiError(
                    409,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotency key was used for another job",
                    {"job": row["id"]},
                )
            return document(row), False
        await conn.execute(NOTIFY, str(target))
        await publish(conn, "job", job=row["id"], olt=target, kind=kind, state="queued")
    log.info("job queued", extra={"job_id": row["id"], "target_id": target, "kind": kind})
    return document(row), True


async def claim(pool: asyncpg.Pool, agent: str, targets: list[int]) -> list[asyncpg.Record]:
    """Queued jobs of these targets, now sent to `agent` (oldest first)."""
    if not targets:
        return []
    async with pool.acquire() as conn, conn.transaction():
        rows = sorted(await conn.fetch(CLAIM, agent, targets), key=lambda r: r["id"])
        for row in rows:
            await publish(
                conn, "job", job=row["id"], olt=row["target_id"], state="sent", agent=agent
            )
    return rows


async def progress(pool: asyncpg.Pool, agent: str, job: int, step: str, detail: dict) -> None:
    entry = {"step": step, "detail": detail, "at": docs.iso(_now())}
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(PROGRESS, job, agent, [entry])
        if row is not None:
            await publish(conn, "job", job=job, olt=row["target_id"], state="running", step=step)


async def finish(
    pool: asyncpg.Pool, agent: str, job: int, *, ok: bool, result: dict, error: str
) -> asyncpg.Record | None:
    """Record a job's outcome; None when it was not this agent's, or already over."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(FINISH, job, agent, ok, result, error)
        if row is not None:
            await publish(
                conn, "job", job=job, olt=row["target_id"], state=row["state"], error=error or None
            )
    if row is not None:
        log.info("job finished", extra={"job_id": job, "state": row["state"], "agent_id": agent})
    return row


async def expire(conn: asyncpg.Connection) -> int:
    """Fail jobs past their deadline (the leader runs this every pass)."""
    async with conn.transaction():
        rows = await conn.fetch(EXPIRE)
        for row in rows:
            await publish(
                conn, "job", job=row["id"], olt=row["target_id"], state="failed", error=row["error"]
            )
    for row in rows:
        log.warning("job expired", extra={"job_id": row["id"], "error": row["error"]})
    return len(rows)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --- API ------------------------------------------------------------------------------------


def timeout_of(body: dict[str, Any]) -> int:
    value = body.get("timeoutMs", DEFAULT_TIMEOUT_MS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value <= MAX_TIMEOUT_MS:
        raise bad_request("INVALID_JOB", f"timeoutMs is an integer in [1000, {MAX_TIMEOUT_MS}]")
    return value


def key_of(request: web.Request, body: dict[str, Any]) -> str | None:
    key = request.headers.get("Idempotency-Key") or body.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 200):
        raise bad_request("INVALID_JOB", "an idempotency key is a string of 1 to 200 characters")
    return key


def job_response(doc: dict[str, Any], created: bool) -> web.Response:
    return web.json_response(doc, status=202 if created else 200)


async def create_job(request: web.Request) -> web.Response:
    """POST /api/v1/jobs {target, kind, params, idempotencyKey?, timeoutMs?}"""
    body = parse_json(await request.text())
    if not isinstance(body, dict):
        raise bad_request("INVALID_JOB", "a job is a JSON object")
    target = body.get("target")
    if isinstance(target, bool) or not isinstance(target, int):
        raise bad_request("INVALID_JOB", "target is a target id")
    kind = body.get("kind")
    params = validated(str(kind), body.get("params", {}))
    doc, created = await create(
        request.app[POOL],
        target,
        str(kind),
        params,
        key=key_of(request, body),
        timeout_ms=timeout_of(body),
    )
    return job_response(doc, created)


async def get_job(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    row = await request.app[POOL].fetchrow(BY_ID, int(text)) if text.isdigit() else None
    if row is None:
        raise not_found("JOB_NOT_FOUND", f"no job {text!r}")
    return web.json_response(document(row))


async def list_jobs(request: web.Request) -> web.Response:
    skip, limit = page_of(request, default=100, most=1000)
    filters, args = [], []
    if request.query.get("target", "").isdigit():
        args.append(int(request.query["target"]))
        filters.append(f"target_id = ${len(args)}")
    if request.query.get("state"):
        args.append(request.query["state"])
        filters.append(f"state = ${len(args)}")
    where = " WHERE " + " AND ".join(filters) if filters else ""
    rows = await request.app[POOL].fetch(
        f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id DESC OFFSET {skip} LIMIT {limit}", *args
    )
    return web.json_response([document(r) for r in rows])


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/jobs", create_job)
    app.router.add_get("/api/v1/jobs", list_jobs)
    app.router.add_get("/api/v1/jobs/{id}", get_job)
