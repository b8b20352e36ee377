"""Targets over the API: create, list, show, replace, delete, and bulk import.

Credentials are sealed before they reach the database and never come back out of the
API. Every change wakes the fleet leader (`pg_notify('chronos_fleet')`), which assigns
new targets, and the controllers holding the owning agents' streams, which pass updated
target details on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import yaml
from aiohttp import web
from pydantic import ValidationError

from controller import documents as docs
from controller.errors import ApiError, bad_request, not_found, page_of, parse_json
from controller.nbi import POOL, SEALER
from schemas.sealing import Sealer
from schemas.targets import TargetIn, credential_summary

log = logging.getLogger("chronos.targets")

FLEET_CHANNEL = "chronos_fleet"
MAX_IMPORT = 100_000
MAX_IMPORT_BYTES = 64 * 1024 * 1024

TARGET_COLUMNS = """t.id, t.name, t.kind, t.address, t.port, t.credentials, t.labels,
    t.profile, t.enabled, t.created, t.updated,
    a.agent_id, a.epoch, a.state AS assignment_state"""
SELECT_TARGETS = f"""
SELECT {TARGET_COLUMNS}
FROM targets t LEFT JOIN assignments a ON a.target_id = t.id
"""
INSERT_TARGET = """
INSERT INTO targets (name, kind, address, port, credentials, labels, profile, enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id
"""
# Import: create or replace by name; credentials left out keep the stored ones.
UPSERT_TARGET = """
INSERT INTO targets AS t (name, kind, address, port, credentials, labels, profile, enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (name) DO UPDATE SET
    kind = EXCLUDED.kind, address = EXCLUDED.address, port = EXCLUDED.port,
    credentials = CASE WHEN EXCLUDED.credentials = '' THEN t.credentials
                       ELSE EXCLUDED.credentials END,
    labels = EXCLUDED.labels, profile = EXCLUDED.profile, enabled = EXCLUDED.enabled,
    updated = now()
RETURNING id, (xmax = 0) AS created
"""
REPLACE_TARGET = """
UPDATE targets AS t SET name = $2, kind = $3, address = $4, port = $5,
    credentials = CASE WHEN $6 = '' THEN t.credentials ELSE $6 END,
    labels = $7, profile = $8, enabled = $9, updated = now()
WHERE id = $1
RETURNING id
"""
DELETE_TARGET = "DELETE FROM targets WHERE id = $1 RETURNING id"
NOTIFY = f"SELECT pg_notify('{FLEET_CHANNEL}', $1)"


def _sealed(target: TargetIn, sealer: Sealer | None) -> str:
    if target.credentials is None:
        return ""
    text = target.credentials.model_dump_json()
    if sealer is None:
        raise ApiError(503, "NO_SECRET_KEY", "the controller has no secret key to seal credentials")
    return sealer.seal(text)


def _row_args(target: TargetIn, sealer: Sealer | None) -> tuple[Any, ...]:
    profile = {
        name: group.model_dump(by_alias=True, exclude_none=True)
        for name, group in target.profile.items()
    }
    return (
        target.name,
        target.kind,
        target.address,
        target.effective_port,
        _sealed(target, sealer),
        target.labels,
        profile,
        target.enabled,
    )


def document(row: Mapping[str, Any], sealer: Sealer | None) -> dict[str, Any]:
    """A target as the API shows it: credentials summarised, never revealed."""
    creds = None
    if row["credentials"] and sealer is not None:
        creds = credential_summary(json.loads(sealer.unseal(row["credentials"])))
    doc = {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "address": row["address"],
        "port": row["port"],
        "credentials": creds,
        "labels": row["labels"],
        "profile": row["profile"],
        "enabled": row["enabled"],
        "created": docs.iso(row["created"]),
        "updated": docs.iso(row["updated"]),
        "assignment": None,
    }
    if row["agent_id"] is not None:
        doc["assignment"] = {
            "agent": row["agent_id"],
            "epoch": row["epoch"],
            "state": row["assignment_state"],
        }
    return doc


def _validate(raw: Any, where: str = "") -> TargetIn:
    try:
        return TargetIn.model_validate(raw)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "target", "problem": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        first = problems[0]
        raise ApiError(
            400,
            "INVALID_TARGET",
            f"{where}{first['field']}: {first['problem']}",
            {"problems": problems},
        ) from None


async def _notify(conn: asyncpg.Connection | asyncpg.Pool, what: str) -> None:
    await conn.execute(NOTIFY, what)


# --- import files (pure) ---------------------------------------------------------------------

# CSV columns beyond the target's own fields: labels as "k=v;k=v", credentials by column.
_CSV_CREDENTIALS = {
    "community": "community",
    "snmp_user": "user",
    "auth_protocol": "auth_protocol",
    "auth_key": "auth_key",
    "priv_protocol": "priv_protocol",
    "priv_key": "priv_key",
    "username": "username",
    "password": "password",
}


def _csv_target(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("name", "kind", "address"):
        if row.get(key):
            out[key] = row[key].strip()
    if row.get("port"):
        port = row["port"].strip()
        out["port"] = int(port) if port.isdigit() else port
    labels = {}
    for item in (row.get("labels") or "").split(";"):
        if item.strip():
            key, _, value = item.partition("=")
            labels[key.strip()] = value.strip()
    for key in ("zone", "vendor", "tenant"):
        if row.get(key):
            labels[key] = row[key].strip()
    out["labels"] = labels
    creds = {field: row[col] for col, field in _CSV_CREDENTIALS.items() if row.get(col)}
    if creds:
        if "user" in creds:
            creds["version"] = "3"
        out["credentials"] = creds
    if row.get("profile"):
        out["profile"] = json.loads(row["profile"])
    if row.get("enabled"):
        out["enabled"] = row["enabled"].strip().lower() not in ("false", "0", "no")
    return out


def parse_import(text: str, content_type: str) -> list[dict[str, Any]]:
    """The raw targets of an import file: CSV (with a header line), YAML or JSON."""
    if "csv" in content_type:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise bad_request("BAD_IMPORT", "a CSV import needs a header line with at least name")
        rows = []
        for line, row in enumerate(reader, 2):
            try:
                rows.append(_csv_target(row))
            except (ValueError, json.JSONDecodeError) as exc:
                raise bad_request("BAD_IMPORT", f"line {line}: {exc}") from None
        return rows
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad_request("BAD_IMPORT", f"not valid YAML or JSON: {exc}") from None
    if isinstance(data, dict) and "targets" in data:
        data = data["targets"]
    if not isinstance(data, list):
        raise bad_request(
            "BAD_IMPORT", "a YAML/JSON import is a list of targets (or {targets: [...]})"
        )
    return data


# --- handlers -------------------------------------------------------------------------------


def _target_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit():
        raise not_found("TARGET_NOT_FOUND", f"no target {text!r}")
    return int(text)


async def create_target(request: web.Request) -> web.Response:
    target = _validate(parse_json(await request.text()))
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        try:
            target_id = await conn.fetchval(
                INSERT_TARGET, *_row_args(target, request.app.get(SEALER))
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "TARGET_EXISTS", f"a target named {target.name!r} exists") from None
        await _notify(conn, f"target:{target_id}")
        row = await conn.fetchrow(SELECT_TARGETS + " WHERE t.id = $1", target_id)
    log.info("target created", extra={"target_id": target_id, "kind": target.kind})
    return web.json_response(document(row, request.app.get(SEALER)), status=201)


async def list_targets(request: web.Request) -> web.Response:
    filters = []
    args: list[Any] = []
    for key, column in (
        ("kind", "t.kind"),
        ("zone", "t.labels ->> 'zone'"),
        ("agent", "a.agent_id"),
    ):
        if request.query.get(key):
            args.append(request.query[key])
            filters.append(f"{column} = ${len(args)}")
    if request.query.get("name"):
        args.append(request.query["name"])
        filters.append(f"t.name = ${len(args)}")
    where = " WHERE " + " AND ".join(filters) if filters else ""
    skip, limit = page_of(request)
    pool = request.app[POOL]
    total = await pool.fetchval(
        f"SELECT count(*) FROM targets t LEFT JOIN assignments a ON a.target_id = t.id{where}",
        *args,
    )
    rows = await pool.fetch(
        f"{SELECT_TARGETS}{where} ORDER BY t.id OFFSET {skip} LIMIT {limit}", *args
    )
    sealer = request.app.get(SEALER)
    return web.json_response([document(r, sealer) for r in rows], headers={"total": str(total)})


async def get_target(request: web.Request) -> web.Response:
    target_id = _target_id(request)
    row = await request.app[POOL].fetchrow(SELECT_TARGETS + " WHERE t.id = $1", target_id)
    if row is None:
        raise not_found("TARGET_NOT_FOUND", f"no target {target_id}")
    return web.json_response(document(row, request.app.get(SEALER)))


async def replace_target(request: web.Request) -> web.Response:
    target_id = _target_id(request)
    target = _validate(parse_json(await request.text()))
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        try:
            found = await conn.fetchval(
                REPLACE_TARGET, target_id, *_row_args(target, request.app.get(SEALER))
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "TARGET_EXISTS", f"a target named {target.name!r} exists") from None
        if found is None:
            raise not_found("TARGET_NOT_FOUND", f"no target {target_id}")
        await _notify(conn, f"target:{target_id}")
        row = await conn.fetchrow(SELECT_TARGETS + " WHERE t.id = $1", target_id)
    return web.json_response(document(row, request.app.get(SEALER)))


async def delete_target(request: web.Request) -> web.Response:
    target_id = _target_id(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(DELETE_TARGET, target_id) is None:
            raise not_found("TARGET_NOT_FOUND", f"no target {target_id}")
        await _notify(conn, f"target:{target_id}")
    log.info("target deleted", extra={"target_id": target_id})
    return web.Response(status=200)


async def import_targets(request: web.Request) -> web.Response:
    """POST /api/v1/targets/import: CSV, YAML or JSON; all valid, or nothing stored."""
    body = await request.content.read(MAX_IMPORT_BYTES + 1)
    if len(body) > MAX_IMPORT_BYTES:
        raise ApiError(413, "BODY_TOO_LARGE", f"an import is at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("BAD_IMPORT", "an import file is UTF-8 text") from None
    raw = parse_import(text, request.headers.get("Content-Type", "").lower())
    if len(raw) > MAX_IMPORT:
        raise bad_request("BAD_IMPORT", f"more than {MAX_IMPORT} targets in one import")
    targets, problems = [], []
    for index, item in enumerate(raw, 1):
        try:
            targets.append(_validate(item, f"target {index}: "))
        except ApiError as exc:
            problems.append(
                {
                    "target": index,
                    "name": (item or {}).get("name") if isinstance(item, dict) else None,
                    "message": str(exc),
                }
            )
    if problems:
        raise ApiError(
            400,
            "INVALID_IMPORT",
            f"{len(problems)} invalid target(s); nothing imported",
            {"problems": problems},
        )
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise bad_request("INVALID_IMPORT", "a name appears twice in the import")
    sealer = request.app.get(SEALER)
    created = updated = 0
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        for target in targets:
            row = await conn.fetchrow(UPSERT_TARGET, *_row_args(target, sealer))
            created += row["created"]
            updated += not row["created"]
        await _notify(conn, "import")
    log.info("targets imported", extra={"targets_created": created, "targets_updated": updated})
    return web.json_response({"created": created, "updated": updated})


async def specs(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Iterable[int]
) -> list[asyncpg.Record]:
    """Targets as agents need them (credentials still sealed)."""
    return await conn.fetch(
        "SELECT id, kind, address, port, credentials, labels, profile FROM targets"
        " WHERE id = ANY($1::bigint[])",
        list(ids),
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/targets", create_target)
    r.add_get("/api/v1/targets", list_targets)
    r.add_post("/api/v1/targets/import", import_targets)
    r.add_get("/api/v1/targets/{id}", get_target)
    r.add_put("/api/v1/targets/{id}", replace_target)
    r.add_delete("/api/v1/targets/{id}", delete_target)
