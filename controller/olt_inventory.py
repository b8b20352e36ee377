"""OLT inventory from agents' reports: boards, PON ports, ONTs and the autofind list.

Agents report what a poll saw as events (`schemas.olt`); `apply()` turns them into rows,
replacing what the same OLT reported before. Each event carries its time: an older
snapshot arriving after a newer one (a resend from a spool) is skipped, so the tables
never go back in time. What changed is published on the live event stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from pydantic import BaseModel, ValidationError

from controller.events import publish
from schemas import olt
from schemas.frames import Event

log = logging.getLogger("chronos.olt.inventory")

FACTS = """
INSERT INTO olt_facts AS f (target_id, product, version, patch, uptime, inventory_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (target_id) DO UPDATE SET product = EXCLUDED.product, version = EXCLUDED.version,
    patch = EXCLUDED.patch, uptime = EXCLUDED.uptime, inventory_at = EXCLUDED.inventory_at
WHERE f.inventory_at IS NULL OR f.inventory_at <= EXCLUDED.inventory_at
RETURNING target_id
"""
AUTOFIND_AT = """
INSERT INTO olt_facts AS f (target_id, autofind_at) VALUES ($1, $2)
ON CONFLICT (target_id) DO UPDATE SET autofind_at = EXCLUDED.autofind_at
WHERE f.autofind_at IS NULL OR f.autofind_at <= EXCLUDED.autofind_at
RETURNING target_id
"""
TARGET_EXISTS = "SELECT 1 FROM targets WHERE id = $1 FOR KEY SHARE"
DELETE_BOARDS = "DELETE FROM olt_boards WHERE target_id = $1"
INSERT_BOARDS = """
INSERT INTO olt_boards (target_id, frame, slot, board, status, subtypes, online)
SELECT $1, b.* FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
    AS b(frame, slot, board, status, subtypes, online)
"""
UPSERT_PORTS = """
INSERT INTO pon_ports (target_id, frame, slot, port, enabled)
SELECT $1, p.* FROM unnest($2::int[], $3::int[], $4::int[], $5::bool[])
    AS p(frame, slot, port, enabled)
ON CONFLICT (target_id, frame, slot, port) DO UPDATE
    SET enabled = coalesce(EXCLUDED.enabled, pon_ports.enabled)
"""
ONT_COLUMNS = (
    "frame, slot, port, ont_id, serial, serial_vendor, control_flag, run_state, config_state,"
    " match_state, description, distance_m, line_profile, service_profile, last_up,"
    " last_down, last_down_cause"
)
UPSERT_ONTS = f"""
INSERT INTO onts (target_id, {ONT_COLUMNS})
SELECT $1, o.* FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[],
    $14::text[], $15::text[], $16::text[], $17::text[], $18::text[]) AS o({ONT_COLUMNS})
ON CONFLICT (target_id, frame, slot, port, ont_id) DO UPDATE SET
    serial = EXCLUDED.serial, serial_vendor = EXCLUDED.serial_vendor,
    control_flag = EXCLUDED.control_flag, run_state = EXCLUDED.run_state,
    config_state = EXCLUDED.config_state, match_state = EXCLUDED.match_state,
    description = EXCLUDED.description, distance_m = EXCLUDED.distance_m,
    line_profile = EXCLUDED.line_profile, service_profile = EXCLUDED.service_profile,
    last_up = EXCLUDED.last_up, last_down = EXCLUDED.last_down,
    last_down_cause = EXCLUDED.last_down_cause, updated = now(),
    -- a different ONT under the same id is a new ONT
    first_seen = CASE WHEN onts.serial = EXCLUDED.serial THEN onts.first_seen ELSE now() END
"""
# ONTs gone from a full inventory (deleted on the OLT), or from one port.
PRUNE_ONTS = """
DELETE FROM onts o WHERE o.target_id = $1
  AND (o.frame, o.slot, o.port, o.ont_id) NOT IN (
      SELECT * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[]))
"""
PRUNE_PORT_ONTS = """
DELETE FROM onts o WHERE o.target_id = $1 AND o.frame = $2 AND o.slot = $3 AND o.port = $4
  AND NOT (o.ont_id = ANY($5::int[]))
"""
AUTOFIND_REGISTERED = "DELETE FROM ont_autofind WHERE target_id = $1 AND serial = ANY($2::text[])"
DELETE_AUTOFIND = "DELETE FROM ont_autofind WHERE target_id = $1 AND NOT (serial = ANY($2::text[]))"
UPSERT_AUTOFIND = """
INSERT INTO ont_autofind (target_id, serial, serial_vendor, frame, slot, port, password, loid,
    vendor_id, version, software_version, equipment_id, found_at)
SELECT $1, a.* FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
    AS a(serial, serial_vendor, frame, slot, port, password, loid, vendor_id, version,
         software_version, equipment_id, found_at)
ON CONFLICT (target_id, serial) DO UPDATE SET
    serial_vendor = EXCLUDED.serial_vendor, frame = EXCLUDED.frame, slot = EXCLUDED.slot,
    port = EXCLUDED.port, password = EXCLUDED.password, loid = EXCLUDED.loid,
    vendor_id = EXCLUDED.vendor_id, version = EXCLUDED.version,
    software_version = EXCLUDED.software_version, equipment_id = EXCLUDED.equipment_id,
    found_at = EXCLUDED.found_at
RETURNING serial, (xmax = 0) AS new
"""


def _serials(serial: str, vendor: str) -> tuple[str, str]:
    try:
        return olt.serial_forms(serial)
    except ValueError:
        return serial.upper(), vendor.upper().replace("-", "")


def _columns(items: Sequence[BaseModel], names: Sequence[str]) -> list[list[object]]:
    """One array per field, in `names` order: the parameters of an unnest() insert."""
    return [[getattr(item, name) for item in items] for name in names]


BOARD_FIELDS = ("frame", "slot", "board", "status", "subtypes", "online")
PORT_FIELDS = ("frame", "slot", "port", "enabled")
ONT_FIELDS = tuple(f.strip() for f in ONT_COLUMNS.split(","))
AUTOFIND_FIELDS = (
    "serial",
    "serial_vendor",
    "frame",
    "slot",
    "port",
    "password",
    "loid",
    "vendor_id",
    "version",
    "software_version",
    "equipment_id",
    "found_at",
)


M = TypeVar("M", olt.Ont, olt.AutofindEntry)


def _normalised(item: M) -> M:
    """The item with its serial in the forms the tables keep (16 hex, vendor form)."""
    serial, vendor = _serials(item.serial, item.serial_vendor)
    return item.model_copy(update={"serial": serial, "serial_vendor": vendor})


async def _upsert_onts(conn: asyncpg.Connection, target: int, onts: Sequence[olt.Ont]) -> None:
    """Insert or update ONTs (their serials already normalised)."""
    if onts:
        await conn.execute(UPSERT_ONTS, target, *_columns(onts, ONT_FIELDS))


async def _inventory(
    conn: asyncpg.Connection, target: int, at: datetime, inv: olt.Inventory
) -> dict:
    v = inv.version
    if (
        await conn.fetchval(
            FACTS,
            target,
            v.get("product", ""),
            v.get("version", ""),
            v.get("patch", ""),
            v.get("uptime", ""),
            at,
        )
        is None
    ):
        return {}  # an older snapshot than the one stored
    await conn.execute(DELETE_BOARDS, target)
    if inv.boards:
        frame, slot, board, status, subtypes, online = _columns(inv.boards, BOARD_FIELDS)
        subtypes = [",".join(s) for s in subtypes]  # type: ignore[arg-type]
        await conn.execute(INSERT_BOARDS, target, frame, slot, board, status, subtypes, online)
    if inv.ports:
        await conn.execute(UPSERT_PORTS, target, *_columns(inv.ports, PORT_FIELDS))
    keys = [(o.frame, o.slot, o.port, o.ont_id) for o in inv.onts]
    await conn.execute(
        PRUNE_ONTS, target, *([list(c) for c in zip(*keys, strict=True)] or [[]] * 4)
    )
    await _upsert_onts(conn, target, [_normalised(o) for o in inv.onts])
    return {"boards": len(inv.boards), "ports": len(inv.ports), "onts": len(inv.onts)}


async def _autofind(
    conn: asyncpg.Connection, target: int, at: datetime, found: olt.Autofind
) -> dict:
    if await conn.fetchval(AUTOFIND_AT, target, at) is None:
        return {}
    entries = [_normalised(e) for e in found.entries]
    await conn.execute(DELETE_AUTOFIND, target, [e.serial for e in entries])
    if not entries:
        return {"autofind": 0, "new": []}
    rows = await conn.fetch(UPSERT_AUTOFIND, target, *_columns(entries, AUTOFIND_FIELDS))
    return {"autofind": len(entries), "new": [r["serial"] for r in rows if r["new"]]}


async def _port(conn: asyncpg.Connection, target: int, port: olt.PortOnts) -> dict:
    await conn.execute(UPSERT_PORTS, target, *_columns([port], PORT_FIELDS))
    await conn.execute(
        PRUNE_PORT_ONTS, target, port.frame, port.slot, port.port, [o.ont_id for o in port.onts]
    )
    onts = [_normalised(o) for o in port.onts]
    await _upsert_onts(conn, target, onts)
    # A registered ONT is no longer waiting for authorisation.
    await conn.execute(AUTOFIND_REGISTERED, target, [o.serial for o in onts])
    changed: dict = {"port": port.fsp, "onts": len(port.onts)}
    if port.enabled is not None:
        changed["enabled"] = port.enabled
    return changed


def split(events: Iterable[Event]) -> tuple[list[Event], list[Event]]:
    """(inventory events, other events) of a report."""
    inventory, other = [], []
    for event in events:
        (inventory if event.kind in olt.INVENTORY_EVENTS else other).append(event)
    return inventory, other


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    """Apply one inventory event; a malformed one is logged and skipped."""
    at = datetime.fromtimestamp(event.ts_ms / 1000, UTC)
    try:
        async with conn.transaction():
            if await conn.fetchval(TARGET_EXISTS, event.target) is None:
                return  # deleted meanwhile
            if event.kind == olt.INVENTORY:
                changed = await _inventory(
                    conn, event.target, at, olt.Inventory.model_validate(event.detail)
                )
                kind = "inventory"
            elif event.kind == olt.AUTOFIND:
                changed = await _autofind(
                    conn, event.target, at, olt.Autofind.model_validate(event.detail)
                )
                kind = "autofind"
            else:
                changed = await _port(conn, event.target, olt.PortOnts.model_validate(event.detail))
                kind = "inventory"
            if changed:
                await publish(conn, kind, olt=event.target, **changed)
    except ValidationError as exc:
        log.warning(
            "inventory event refused",
            extra={"target_id": event.target, "kind": event.kind, "error": str(exc)[:500]},
        )
