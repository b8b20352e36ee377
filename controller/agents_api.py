"""GET /api/v1/agents: the fleet as the controllers see it (for operators and SREs).

Each agent with its labels, drivers and capacity, which controller holds its stream,
whether its lease is live, and how many targets it polls (and is letting go of).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from controller import documents as docs
from controller.errors import not_found, page_of
from controller.nbi import POOL

AGENTS = """
SELECT g.id, g.boot, g.labels, g.capacity, g.kinds, g.software, g.controller, g.connected,
       g.last_seen, g.lease_expires, g.lease_expires > now() AS alive,
       count(a.target_id) FILTER (WHERE a.state = 'active') AS targets,
       count(a.target_id) FILTER (WHERE a.state = 'revoking') AS revoking
FROM agents g LEFT JOIN assignments a ON a.agent_id = g.id
"""
GROUPED = " GROUP BY g.id"


def document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "labels": row["labels"],
        "capacity": row["capacity"],
        "kinds": list(row["kinds"]),
        "software": row["software"],
        "controller": row["controller"],
        "alive": bool(row["alive"]),
        "connected": docs.iso(row["connected"]),
        "lastSeen": docs.iso(row["last_seen"]),
        "leaseExpires": docs.iso(row["lease_expires"]),
        "targets": row["targets"],
        "revoking": row["revoking"],
    }


async def list_agents(request: web.Request) -> web.Response:
    skip, limit = page_of(request)
    where, args = "", []
    if request.query.get("zone"):
        where, args = " WHERE g.labels ->> 'zone' = $1", [request.query["zone"]]
    pool = request.app[POOL]
    total = await pool.fetchval(f"SELECT count(*) FROM agents g{where}", *args)
    rows = await pool.fetch(
        f"{AGENTS}{where}{GROUPED} ORDER BY g.id OFFSET {skip} LIMIT {limit}", *args
    )
    return web.json_response([document(r) for r in rows], headers={"total": str(total)})


async def get_agent(request: web.Request) -> web.Response:
    agent = request.match_info["id"]
    row = await request.app[POOL].fetchrow(f"{AGENTS} WHERE g.id = $1{GROUPED}", agent)
    if row is None:
        raise not_found("AGENT_NOT_FOUND", f"no agent {agent!r}", agent=agent)
    return web.json_response(document(row))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_get("/api/v1/agents/{id}", get_agent)
