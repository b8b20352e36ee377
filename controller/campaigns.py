"""Bulk operations and firmware campaigns: the API, `/api/v1/campaigns`.

An operator POSTs a device query, actions (task templates or provisions, run in order
on each device), waves, a concurrency limit, a success criterion and a failure ratio
(`schemas.campaigns.CampaignSpec`); follows its progress and per-device outcomes with
GET; and pauses, resumes or cancels it. Everything is validated before anything is
stored: the body by pydantic, the queries by compiling them to SQL, each action by the
rules of `POST /devices/{id}/tasks` (`controller.taskbodies`). Credentials in actions
are sealed at rest and masked in every answer. The engine that runs campaigns is
`controller.campaign_engine`; its rules are `controller.campaign_rules`.

Routes (operators and admins write, viewers read):

    POST /api/v1/campaigns[?dryRun=1]          201 + the campaign; dryRun: the count
    GET  /api/v1/campaigns?state=&skip=&limit=  newest first, the count in `total`
    GET  /api/v1/campaigns/{id}?deviceState=&skip=&limit=
    POST /api/v1/campaigns/{id}/pause|resume|cancel   409 when the state forbids it
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from acs import filestore
from acs import query as q
from acs import query_sql as qs
from acs.store import task_hex
from controller import campaign_rules as rules
from controller import documents as docs
from controller import nbi, taskbodies
from controller.auth import principal_of
from controller.campaign_engine import (
    COUNTS,
    INSERT_EVENT,
    LOCK_CAMPAIGN,
    WITHDRAW_UNSTARTED,
    CampaignEngine,
    EngineSettings,
)
from controller.errors import ApiError, bad_request, not_found, parse_json
from schemas import tasks as t
from schemas.campaigns import (
    CAMPAIGN_STATES,
    DEVICE_STATES,
    CampaignSpec,
    ProvisionAction,
    ResumeRequest,
)

log = logging.getLogger("chronos.campaigns")

__all__ = ["ENGINE", "CampaignEngine", "EngineSettings", "add_routes"]

MASK = "********"
DEFAULT_OUTCOMES = 100
MAX_OUTCOMES = 1000

# --- SQL ------------------------------------------------------------------------------------

INSERT_CAMPAIGN = """
INSERT INTO campaigns (name, definition, created_by, start_at) VALUES ($1, $2, $3, $4)
RETURNING *
"""

CAMPAIGN = "SELECT * FROM campaigns WHERE id = $1"

NOTIFY = "SELECT pg_notify('chronos_campaign', $1)"

SKIP_WAITING = """
UPDATE campaign_devices SET state = 'skipped', finished_at = now(), detail = $2::jsonb
WHERE campaign_id = $1 AND state = 'waiting'
"""

# A halted campaign that resumes gives the devices withdrawn at the halt their turn back.
REQUEUE_WITHDRAWN = """
UPDATE campaign_devices SET state = 'waiting', step = 0, task_ids = '{}', detail = NULL,
    queued_at = NULL, started_at = NULL, tasks_done_at = NULL, finished_at = NULL
WHERE campaign_id = $1 AND state = 'skipped' AND detail->>'reason' = 'withdrawn_on_halt'
"""

LIST_CAMPAIGNS = """
SELECT * FROM campaigns WHERE ($1::text IS NULL OR state = $1)
ORDER BY id DESC OFFSET $2 LIMIT $3
"""

COUNT_CAMPAIGNS = "SELECT count(*) FROM campaigns WHERE ($1::text IS NULL OR state = $1)"

WAVE_COUNTS = """
SELECT wave, state, count(*)::int AS n FROM campaign_devices WHERE campaign_id = $1
GROUP BY wave, state
"""

EVENTS = """
SELECT at, kind, actor, detail FROM (
    SELECT * FROM campaign_events WHERE campaign_id = $1 ORDER BY id DESC LIMIT 50
) AS e ORDER BY id
"""

OUTCOMES = """
SELECT device_id, seq, wave, state, step, task_ids, detail, queued_at, started_at,
       finished_at
FROM campaign_devices
WHERE campaign_id = $1 AND ($2::text IS NULL OR state = $2)
ORDER BY seq OFFSET $3 LIMIT $4
"""

COUNT_OUTCOMES = """
SELECT count(*) FROM campaign_devices
WHERE campaign_id = $1 AND ($2::text IS NULL OR state = $2)
"""

UPDATE_STATE = """
UPDATE campaigns SET state = $2, state_reason = $3, definition = $4, finished = $5,
                     updated = now()
WHERE id = $1
RETURNING *
"""


# --- validation ---------------------------------------------------------------------------


@contextlib.contextmanager
def _naming_action(index: int) -> Iterator[None]:
    """An action's 400 says which action it is."""
    try:
        yield
    except ApiError as exc:
        raise ApiError(
            exc.status, exc.code, f"actions[{index}]: {exc}", {**exc.details, "action": index}
        ) from None


def validate_action(index: int, action: Mapping[str, Any]) -> t._Task | None:
    """The typed task of a task template (None for a provision); a 400 naming the
    action when it is not valid."""
    with _naming_action(index):
        if "provision" in action:
            try:
                ProvisionAction.model_validate(action)
            except ValidationError as exc:
                raise _invalid("INVALID_ACTION", exc, prefix=f"actions.{index}") from None
            if "provisions" in t.TASK_NAMES:  # once the API knows the task, its rules too
                taskbodies.validate(rules.task_body(action))
            return None
        return taskbodies.validate(dict(action))


async def check_actions(conn: asyncpg.Pool | asyncpg.Connection, spec: CampaignSpec) -> None:
    """What needs the database: a stored file a download names must exist now (it is
    looked up again when each device's task is queued)."""
    for index, action in enumerate(spec.actions):
        task = validate_action(index, action)
        if task is None:
            continue
        with _naming_action(index):
            name = taskbodies.file_name(task)
            stored = await filestore.current_file(conn, name) if name else None
            taskbodies.arguments(task, {}, str, stored)


def _invalid(code: str, exc: ValidationError, prefix: str = "") -> ApiError:
    problems = [
        {
            "field": ".".join(str(p) for p in (prefix, *e["loc"]) if p != ""),
            "problem": e["msg"],
        }
        for e in exc.errors(include_url=False)
    ]
    first = problems[0] if problems else {"field": "", "problem": "invalid"}
    return ApiError(
        400, code, f"{first['field'] or 'body'}: {first['problem']}", {"problems": problems}
    )


def parse_spec(body: object) -> CampaignSpec:
    """A valid campaign, or a 400 listing every problem: body, queries, actions."""
    if not isinstance(body, dict):
        raise bad_request("INVALID_CAMPAIGN", "a campaign is a JSON object")
    try:
        spec = CampaignSpec.model_validate(body)
    except ValidationError as exc:
        raise _invalid("INVALID_CAMPAIGN", exc) from None
    for name, query in (("query", spec.query), ("successCriterion", spec.successCriterion)):
        if query is None:
            continue
        try:
            qs.device_where(q.parse_device_query(query), [])
        except q.QueryError as exc:
            raise bad_request("BAD_QUERY", f"{name}: {exc}", field=name) from None
    for index, action in enumerate(spec.actions):
        validate_action(index, action)
    return spec


# --- operator actions ---------------------------------------------------------------------


async def _record(
    conn: asyncpg.Connection, campaign_id: int, kind: str, actor: str, detail: dict[str, Any]
) -> None:
    await conn.execute(INSERT_EVENT, campaign_id, kind, actor, detail)
    await conn.execute(NOTIFY, str(campaign_id))


async def apply_action(
    pool: asyncpg.Pool,
    campaign_id: int,
    action: str,
    actor: str,
    resume: ResumeRequest | None = None,
) -> asyncpg.Record:
    """Pause, resume or cancel, under the campaign's row lock (a round never interleaves).

    Cancel withdraws at once what has not begun: waiting devices end skipped, and queued
    ones whose first task no session has taken yet lose their tasks and end skipped.
    Devices that began run to their end and are still followed by the engine.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(LOCK_CAMPAIGN, campaign_id)
        if row is None:
            raise _no_campaign(campaign_id)
        try:
            state = rules.operator_transition(action, row["state"])
        except rules.TransitionRefused as exc:
            raise ApiError(
                409,
                "CAMPAIGN_STATE_CONFLICT",
                str(exc),
                {"state": exc.state, "allowed": exc.allowed},
            ) from None
        definition = dict(row["definition"])
        detail: dict[str, Any] = {"from": row["state"]}
        finished = None
        if action == "resume" and resume is not None:
            changes = resume.model_dump(exclude_none=True)
            definition.update(changes)
            detail["changes"] = changes
        if action == "resume" and row["state"] == "halted":
            await conn.execute(REQUEUE_WITHDRAWN, campaign_id)
        if action == "cancel":
            cancelled = {"reason": "cancelled", "message": f"campaign cancelled by {actor}"}
            await conn.execute(SKIP_WAITING, campaign_id, cancelled)
            await conn.fetch(WITHDRAW_UNSTARTED, campaign_id, cancelled)
        counts = rules.Counts.of(dict(await conn.fetchrow(COUNTS, campaign_id)))
        if state == "cancelled" and counts.in_flight == 0:
            finished = await conn.fetchval("SELECT now()")
        kind = _ACTION_EVENTS[action]
        reason = "" if state == "running" else f"{kind} by {actor}"
        updated = await conn.fetchrow(
            UPDATE_STATE, campaign_id, state, reason, definition, finished
        )
        await _record(conn, campaign_id, kind, actor, detail)
    log.info(f"campaign {kind}", extra={"campaign_id": campaign_id, "actor": actor})
    return updated


_ACTION_EVENTS = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


# --- documents and handlers ---------------------------------------------------------------


def _no_campaign(campaign_id: object) -> ApiError:
    return not_found("CAMPAIGN_NOT_FOUND", f"no campaign {campaign_id}", campaign=campaign_id)


def _campaign_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise _no_campaign(text)
    return int(text)


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise bad_request("BAD_PARAMETER", f"{name} must be a non-negative integer")
    return min(int(text), maximum)


def _ratio(failed: int, finished: int) -> float | None:
    return round(failed / finished, 4) if finished else None


def summary_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A campaign in a list: identity, state, counts."""
    counts = rules.Counts.of(dict(row))
    definition = row["definition"]
    return {
        "id": row["id"],
        "name": row["name"],
        "state": row["state"],
        "stateReason": row["state_reason"],
        "createdBy": row["created_by"],
        "created": docs.iso(row["created"]),
        "startAt": docs.iso(row["start_at"]),
        "started": docs.iso(row["started"]),
        "finished": docs.iso(row["finished"]),
        "updated": docs.iso(row["updated"]),
        "devices": counts.as_dict(),
        "failureRatio": _ratio(counts.failed, counts.finished),
        "maxFailureRatio": definition.get("maxFailureRatio"),
        "minFinished": definition.get("minFinished"),
        "currentWave": row["current_wave"] + 1 if row["wave_sizes"] else None,
        "waveCount": len(row["wave_sizes"]),
    }


async def campaign_document(
    conn: asyncpg.Connection | asyncpg.Pool,
    row: Mapping[str, Any],
    *,
    device_state: str | None = None,
    skip: int = 0,
    limit: int = DEFAULT_OUTCOMES,
) -> dict[str, Any]:
    """A campaign in full: definition (credentials masked), per-wave progress, history,
    and one page of per-device outcomes."""
    doc = summary_document(row)
    definition = dict(row["definition"])
    definition["actions"] = [rules.map_secrets(a, lambda _v: MASK) for a in definition["actions"]]
    doc["definition"] = definition
    per_wave: dict[int, dict[str, int]] = defaultdict(dict)
    for r in await conn.fetch(WAVE_COUNTS, row["id"]):
        per_wave[r["wave"]][r["state"]] = r["n"]
    doc["waves"] = [
        {"wave": i + 1, "size": size, **rules.Counts.of(per_wave.get(i, {})).as_dict()}
        for i, size in enumerate(row["wave_sizes"])
    ]
    for wave in doc["waves"]:
        del wave["total"]
    doc["history"] = [
        {"at": docs.iso(e["at"]), "event": e["kind"], "by": e["actor"], "detail": e["detail"]}
        for e in await conn.fetch(EVENTS, row["id"])
    ]
    total = await conn.fetchval(COUNT_OUTCOMES, row["id"], device_state)
    items = await conn.fetch(OUTCOMES, row["id"], device_state, skip, limit)
    doc["outcomes"] = {
        "total": total,
        "skip": skip,
        "limit": limit,
        "items": [_outcome(r) for r in items],
    }
    return doc


def _outcome(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "device": r["device_id"],
        "wave": r["wave"] + 1,
        "state": r["state"],
        "step": r["step"] + 1,
        "tasks": [task_hex(i) for i in r["task_ids"]],
        "detail": r["detail"],
        "queuedAt": docs.iso(r["queued_at"]),
        "startedAt": docs.iso(r["started_at"]),
        "finishedAt": docs.iso(r["finished_at"]),
    }


async def create_campaign(request: web.Request) -> web.Response:
    """POST /api/v1/campaigns[?dryRun=1]"""
    spec = parse_spec(parse_json(await request.text()))
    pool = request.app[nbi.POOL]
    await check_actions(pool, spec)
    if request.query.get("dryRun", "").lower() in ("1", "true", "yes"):
        args: list[object] = []
        where = qs.device_where(q.parse_device_query(spec.query), args)
        total = await pool.fetchval(f"SELECT count(*) FROM devices d WHERE {where}", *args)
        return web.json_response({"devices": total, "waves": rules.wave_sizes(total, spec.waves)})
    sealer = request.app.get(nbi.SEALER)
    seal = sealer.seal if sealer is not None else str
    definition = spec.model_dump(mode="json")
    definition["actions"] = [rules.map_secrets(a, seal) for a in spec.actions]
    actor = principal_of(request).name
    start_at = spec.startAt
    if start_at is not None and start_at.tzinfo is None:
        start_at = start_at.replace(tzinfo=UTC)  # a time without a zone is UTC, as GenieACS's
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(INSERT_CAMPAIGN, spec.name, definition, actor, start_at)
        await _record(conn, row["id"], "created", actor, {})
        doc = await campaign_document(conn, row, limit=0)
    log.info("campaign created", extra={"campaign_id": row["id"], "actor": actor})
    engine = request.app.get(ENGINE)
    if engine is not None:
        engine.wake()
    return web.json_response(
        doc, status=201, headers={"Location": f"/api/v1/campaigns/{row['id']}"}
    )


async def list_campaigns(request: web.Request) -> web.Response:
    """GET /api/v1/campaigns?state=&skip=&limit= (newest first; the count in `total`)."""
    state = request.query.get("state") or None
    if state is not None and state not in CAMPAIGN_STATES:
        raise bad_request("BAD_PARAMETER", f"unknown campaign state {state!r}")
    skip = _int_query(request, "skip", 0, 2**31)
    limit = _int_query(request, "limit", 100, 1000)
    pool = request.app[nbi.POOL]
    total = await pool.fetchval(COUNT_CAMPAIGNS, state)
    rows = await pool.fetch(LIST_CAMPAIGNS, state, skip, limit)
    return web.json_response([summary_document(r) for r in rows], headers={"total": str(total)})


async def get_campaign(request: web.Request) -> web.Response:
    """GET /api/v1/campaigns/{id}?deviceState=&skip=&limit="""
    campaign_id = _campaign_id(request)
    device_state = request.query.get("deviceState") or None
    if device_state is not None and device_state not in DEVICE_STATES:
        raise bad_request(
            "BAD_PARAMETER",
            f"deviceState must be one of {', '.join(DEVICE_STATES)}",
        )
    skip = _int_query(request, "skip", 0, 2**31)
    limit = _int_query(request, "limit", DEFAULT_OUTCOMES, MAX_OUTCOMES)
    pool = request.app[nbi.POOL]
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(CAMPAIGN, campaign_id)
        if row is None:
            raise _no_campaign(campaign_id)
        doc = await campaign_document(conn, row, device_state=device_state, skip=skip, limit=limit)
    return web.json_response(doc)


async def campaign_action(request: web.Request) -> web.Response:
    """POST /api/v1/campaigns/{id}/pause|resume|cancel"""
    campaign_id = _campaign_id(request)
    action = request.match_info["action"]
    resume = None
    text = await request.text()
    if text.strip():
        if action != "resume":
            raise bad_request("UNEXPECTED_BODY", f"{action} takes no body")
        try:
            resume = ResumeRequest.model_validate(parse_json(text))
        except ValidationError as exc:
            raise _invalid("INVALID_CAMPAIGN", exc) from None
    pool = request.app[nbi.POOL]
    row = await apply_action(pool, campaign_id, action, principal_of(request).name, resume)
    engine = request.app.get(ENGINE)
    if engine is not None:
        engine.wake()
    return web.json_response(await campaign_document(pool, row, limit=0))


# --- wiring -------------------------------------------------------------------------------

ENGINE = web.AppKey("campaign_engine", CampaignEngine)


async def _engine(app: web.Application) -> AsyncIterator[None]:
    engine = app[ENGINE]
    await engine.start()
    yield
    await engine.stop()


def add_routes(app: web.Application, settings: EngineSettings | None = None) -> None:
    """The campaign routes, and the engine, started and stopped with the app."""
    app[ENGINE] = CampaignEngine(app, settings)
    app.cleanup_ctx.append(_engine)
    r = app.router
    for path in ("/api/v1/campaigns", "/api/v1/campaigns/"):
        r.add_post(path, create_campaign)
        r.add_get(path, list_campaigns)
    r.add_get("/api/v1/campaigns/{id}", get_campaign)
    r.add_post("/api/v1/campaigns/{id}/{action:pause|resume|cancel}", campaign_action)
