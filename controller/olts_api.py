"""OLTs and ONTs over the API, and the jobs that change them.

    GET    /api/v1/olts                              OLTs (targets of kind huawei-olt)
    GET    /api/v1/olts/{id}                         one, with counts
    GET    /api/v1/olts/{id}/board-info              boards of frame 0.. as last polled
    GET    /api/v1/olts/{id}/autofind-onts/all       ONTs seen but not registered
    POST   /api/v1/olts/{id}/onts                    provision an ONT (a job)
    DELETE /api/v1/olts/{id}/onts/{ont}              delete an ONT (a job)
    POST   /api/v1/olts/{id}/onts/{ont}/reboot       reboot an ONT (a job)
    POST   /api/v1/olts/{id}/ports/{F-S-P}/enable    enable a PON port (a job); /disable
    POST   /api/v1/olts/{id}/commands                run an allow-listed display command
    GET    /api/v1/onts?olt=&state=&serial=          ONTs, each with the CPE behind it
    GET    /api/v1/onts/{id}                         one ONT: CPE, last inform, optical levels
    GET    /api/v1/devices/{id}/ont                  the ONT (OLT, port, ONT id) of a CPE

The ONT-to-CPE link: an ONT's serial as the OLT shows it (16 hex digits, or the vendor
form HWTC-XXXXXXXX) is matched against the serial number CPEs inform the ACS with, in
either form and any case.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp import web

from controller import documents as docs
from controller import jobs
from controller.errors import bad_request, not_found, page_of, parse_json
from controller.nbi import POOL

OLT_KIND = "huawei-olt"
OLTS = """
SELECT t.id, t.name, t.address, t.port, t.labels, t.enabled, f.product, f.version, f.patch,
       f.uptime, f.inventory_at, f.autofind_at, a.agent_id,
       (SELECT count(*) FROM onts o WHERE o.target_id = t.id) AS onts,
       (SELECT count(*) FROM onts o WHERE o.target_id = t.id AND o.run_state = 'online')
           AS onts_online,
       (SELECT count(*) FROM ont_autofind x WHERE x.target_id = t.id) AS autofind
FROM targets t
LEFT JOIN olt_facts f ON f.target_id = t.id
LEFT JOIN assignments a ON a.target_id = t.id AND a.state = 'active'
WHERE t.kind = 'huawei-olt'
"""
BOARDS = """
SELECT frame, slot, board, status, subtypes, online FROM olt_boards
WHERE target_id = $1 ORDER BY frame, slot
"""
AUTOFIND = """
SELECT serial, serial_vendor, frame, slot, port, password, loid, vendor_id, version,
       software_version, equipment_id, found_at, first_seen
FROM ont_autofind WHERE target_id = $1 ORDER BY frame, slot, port, serial
"""
# The CPE behind each ONT: the device whose serial matches either form of the ONT's.
ONTS = """
SELECT o.*, t.name AS olt_name, d.id AS device_id, d.last_inform
FROM onts o
JOIN targets t ON t.id = o.target_id
LEFT JOIN LATERAL (
    SELECT id, last_inform FROM devices
    WHERE upper(serial_number) IN (o.serial, o.serial_vendor,
        left(o.serial_vendor, 4) || '-' || substr(o.serial_vendor, 5))
    ORDER BY last_inform DESC NULLS LAST LIMIT 1
) d ON true
"""
ONT_OF_DEVICE = """
SELECT o.*, t.name AS olt_name, d.id AS device_id, d.last_inform
FROM devices d
JOIN onts o ON upper(d.serial_number) IN (o.serial, o.serial_vendor,
    left(o.serial_vendor, 4) || '-' || substr(o.serial_vendor, 5))
JOIN targets t ON t.id = o.target_id
WHERE d.id = $1
ORDER BY o.updated DESC LIMIT 1
"""
# The newest optical sample of each metric the agents report for one ONT.
OPTICS = """
SELECT DISTINCT ON (s.metric) s.metric, x.ts, x.value
FROM series s JOIN samples x ON x.series_id = s.id
WHERE s.target_id = $1 AND s.labels ->> 'ont' = $2
  AND x.ts > now() - interval '1 day'
ORDER BY s.metric, x.ts DESC
"""
_FSP = re.compile(r"^(\d{1,2})[-/](\d{1,2})[-/](\d{1,3})$")


def olt_document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "address": row["address"],
        "labels": row["labels"],
        "enabled": row["enabled"],
        "agent": row["agent_id"],
        "product": row["product"],
        "version": row["version"],
        "patch": row["patch"],
        "uptime": row["uptime"],
        "inventoryAt": docs.iso(row["inventory_at"]),
        "autofindAt": docs.iso(row["autofind_at"]),
        "onts": row["onts"],
        "ontsOnline": row["onts_online"],
        "autofind": row["autofind"],
    }


def ont_document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "olt": row["target_id"],
        "oltName": row["olt_name"],
        "frame": row["frame"],
        "slot": row["slot"],
        "port": row["port"],
        "fsp": f"{row['frame']}/{row['slot']}/{row['port']}",
        "ontId": row["ont_id"],
        "serial": row["serial"],
        "serialVendor": row["serial_vendor"],
        "controlFlag": row["control_flag"],
        "runState": row["run_state"],
        "configState": row["config_state"],
        "matchState": row["match_state"],
        "description": row["description"],
        "distanceM": row["distance_m"],
        "lineProfile": row["line_profile"],
        "serviceProfile": row["service_profile"],
        "lastUp": row["last_up"],
        "lastDown": row["last_down"],
        "lastDownCause": row["last_down_cause"],
        "firstSeen": docs.iso(row["first_seen"]),
        "updated": docs.iso(row["updated"]),
        "cpe": {"deviceId": row["device_id"], "lastInform": docs.iso(row["last_inform"])}
        if row["device_id"]
        else None,
    }


def _id(request: web.Request, name: str = "id") -> int:
    text = request.match_info[name]
    if not text.isdigit() or len(text) > 18:
        raise not_found("NOT_FOUND", f"no {name} {text!r}")
    return int(text)


async def _olt(request: web.Request) -> asyncpg.Record:
    olt_id = _id(request)
    row = await request.app[POOL].fetchrow(OLTS + " AND t.id = $1", olt_id)
    if row is None:
        raise not_found("OLT_NOT_FOUND", f"no OLT {olt_id}")
    return row


async def list_olts(request: web.Request) -> web.Response:
    skip, limit = page_of(request)
    rows = await request.app[POOL].fetch(OLTS + f" ORDER BY t.id OFFSET {skip} LIMIT {limit}")
    return web.json_response([olt_document(r) for r in rows])


async def get_olt(request: web.Request) -> web.Response:
    return web.json_response(olt_document(await _olt(request)))


async def board_info(request: web.Request) -> web.Response:
    row = await _olt(request)
    boards = await request.app[POOL].fetch(BOARDS, row["id"])
    return web.json_response(
        {
            "olt": row["id"],
            "inventoryAt": docs.iso(row["inventory_at"]),
            "boards": [
                {**dict(b), "subtypes": [s for s in b["subtypes"].split(",") if s]} for b in boards
            ],
        }
    )


def autofind_document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "serial": row["serial"],
        "serialVendor": row["serial_vendor"],
        "frame": row["frame"],
        "slot": row["slot"],
        "port": row["port"],
        "fsp": f"{row['frame']}/{row['slot']}/{row['port']}",
        "password": row["password"],
        "loid": row["loid"],
        "vendorId": row["vendor_id"],
        "version": row["version"],
        "softwareVersion": row["software_version"],
        "equipmentId": row["equipment_id"],
        "foundAt": row["found_at"],  # as the OLT tells it
        "firstSeen": docs.iso(row["first_seen"]),
    }


async def autofind(request: web.Request) -> web.Response:
    row = await _olt(request)
    found = await request.app[POOL].fetch(AUTOFIND, row["id"])
    return web.json_response(
        {
            "olt": row["id"],
            "autofindAt": docs.iso(row["autofind_at"]),
            "onts": [autofind_document(f) for f in found],
        }
    )


async def _job(
    request: web.Request, olt_id: int, kind: str, params: dict[str, Any], body: dict
) -> web.Response:
    doc, created = await jobs.create(
        request.app[POOL],
        olt_id,
        kind,
        jobs.validated(kind, params),
        key=jobs.key_of(request, body),
        timeout_ms=jobs.timeout_of(body),
    )
    return jobs.job_response(doc, created)


async def _body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    body = parse_json(text) if text.strip() else {}
    if not isinstance(body, dict):
        raise bad_request("INVALID_JOB", "the body is a JSON object")
    return body


async def provision_ont(request: web.Request) -> web.Response:
    row = await _olt(request)
    body = await _body(request)
    params = {k: v for k, v in body.items() if k not in ("idempotencyKey", "timeoutMs")}
    if "fsp" in params:
        params.update(_fsp(str(params.pop("fsp"))))
    return await _job(request, row["id"], "ont.provision", params, body)


async def _ont_of(request: web.Request, olt_id: int) -> asyncpg.Record:
    ont = _id(request, "ont")
    row = await request.app[POOL].fetchrow(
        "SELECT * FROM onts WHERE id = $1 AND target_id = $2", ont, olt_id
    )
    if row is None:
        raise not_found("ONT_NOT_FOUND", f"no ONT {ont} on OLT {olt_id}")
    return row


def _ref(ont: asyncpg.Record) -> dict[str, int]:
    return {
        "frame": ont["frame"],
        "slot": ont["slot"],
        "port": ont["port"],
        "ont_id": ont["ont_id"],
    }


async def delete_ont(request: web.Request) -> web.Response:
    row = await _olt(request)
    ont = await _ont_of(request, row["id"])
    return await _job(request, row["id"], "ont.delete", _ref(ont), await _body(request))


async def reboot_ont(request: web.Request) -> web.Response:
    row = await _olt(request)
    ont = await _ont_of(request, row["id"])
    return await _job(request, row["id"], "ont.reboot", _ref(ont), await _body(request))


def _fsp(text: str) -> dict[str, int]:
    match = _FSP.fullmatch(text)
    if match is None:
        raise bad_request(
            "BAD_PORT", f"a PON port is frame/slot/port or frame-slot-port, not {text!r}"
        )
    return {"frame": int(match[1]), "slot": int(match[2]), "port": int(match[3])}


async def port_state(request: web.Request) -> web.Response:
    row = await _olt(request)
    action = request.match_info["action"]
    params = _fsp(request.match_info["port"])
    return await _job(request, row["id"], f"port.{action}", params, await _body(request))


async def run_command(request: web.Request) -> web.Response:
    row = await _olt(request)
    body = await _body(request)
    params = {k: body[k] for k in ("command", "interface") if k in body}
    return await _job(request, row["id"], "display", params, body)


async def list_onts(request: web.Request) -> web.Response:
    skip, limit = page_of(request)
    filters, args = [], []
    if request.query.get("olt"):
        if not request.query["olt"].isdigit():
            raise bad_request("BAD_PARAMETER", "olt is an OLT id")
        args.append(int(request.query["olt"]))
        filters.append(f"o.target_id = ${len(args)}")
    if request.query.get("state"):
        args.append(request.query["state"])
        filters.append(f"o.run_state = ${len(args)}")
    if request.query.get("serial"):
        args.append(request.query["serial"].upper().replace("-", ""))
        filters.append(f"(o.serial = ${len(args)} OR o.serial_vendor = ${len(args)})")
    where = " WHERE " + " AND ".join(filters) if filters else ""
    pool = request.app[POOL]
    total = await pool.fetchval(f"SELECT count(*) FROM onts o{where}", *args)
    rows = await pool.fetch(
        f"{ONTS}{where} ORDER BY o.target_id, o.frame, o.slot, o.port, o.ont_id"
        f" OFFSET {skip} LIMIT {limit}",
        *args,
    )
    return web.json_response([ont_document(r) for r in rows], headers={"total": str(total)})


async def _with_optics(pool: asyncpg.Pool, row: asyncpg.Record) -> dict[str, Any]:
    doc = ont_document(row)
    key = f"{row['frame']}/{row['slot']}/{row['port']}/{row['ont_id']}"
    optics = await pool.fetch(OPTICS, row["target_id"], key)
    doc["optical"] = {o["metric"]: {"value": o["value"], "at": docs.iso(o["ts"])} for o in optics}
    return doc


async def get_ont(request: web.Request) -> web.Response:
    ont = _id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(ONTS + " WHERE o.id = $1", ont)
    if row is None:
        raise not_found("ONT_NOT_FOUND", f"no ONT {ont}")
    return web.json_response(await _with_optics(pool, row))


async def device_ont(request: web.Request) -> web.Response:
    device = request.match_info["id"]
    pool = request.app[POOL]
    row = await pool.fetchrow(ONT_OF_DEVICE, device)
    if row is None:
        raise not_found("ONT_NOT_FOUND", f"no ONT is known for device {device!r}")
    return web.json_response(await _with_optics(pool, row))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/olts", list_olts)
    r.add_get("/api/v1/olts/{id}", get_olt)
    r.add_get("/api/v1/olts/{id}/board-info", board_info)
    r.add_get("/api/v1/olts/{id}/autofind-onts/all", autofind)
    r.add_post("/api/v1/olts/{id}/onts", provision_ont)
    r.add_delete("/api/v1/olts/{id}/onts/{ont}", delete_ont)
    r.add_post("/api/v1/olts/{id}/onts/{ont}/reboot", reboot_ont)
    r.add_post("/api/v1/olts/{id}/ports/{port}/{action:enable|disable}", port_state)
    r.add_post("/api/v1/olts/{id}/commands", run_command)
    r.add_get("/api/v1/onts", list_onts)
    r.add_get("/api/v1/onts/{id}", get_ont)
    r.add_get("/api/v1/devices/{id}/ont", device_ont)
