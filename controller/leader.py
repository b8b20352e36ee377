"""The fleet leader: one controller at a time computes and writes assignments.

Each pass reads live agents (lease not run out), enabled targets and current
assignments, asks `controller.assignment.plan` for the moves and writes them in one
transaction on the leadership connection (fenced: a deposed leader cannot commit). Then
it notifies `chronos_assign` with the agents concerned; whichever controller holds an
agent's stream sends it the new assign/revoke frames.

A pass runs when something happened (`chronos_fleet`: a target changed, an agent came or
went, a revoke was confirmed) and at least every `pass_interval` seconds, which is also
how lease expiry is noticed. Scoring every target is skipped when nothing changed.

Periodic duties also ride on leadership: time-series maintenance (partitions, rollups,
retention) and forgetting long-dead agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge

from controller import assignment as a
from controller import jobs
from controller.leadership import Leadership
from schemas.config import FleetConfig

log = logging.getLogger("chronos.fleet.leader")

FLEET_CHANNEL = "chronos_fleet"  # targets, agents or revocations changed
ASSIGN_CHANNEL = "chronos_assign"  # payload: agent ids whose assignments changed, or "*"
# Any fixed 64-bit number unique to this purpose ("chrflead").
FLEET_LOCK = 0x6368_7266_6C65_6164
_NOTIFY_LIMIT = 7000  # pg_notify payloads must stay under 8000 bytes

LEADER = Gauge("chronos_fleet_leader", "1 while this controller leads the fleet")
MOVES = Counter("chronos_fleet_moves_total", "Assignment changes made by the leader", ["kind"])
UNPLACED = Gauge("chronos_fleet_unplaced_targets", "Enabled targets no live agent may poll")
PASSES = Counter("chronos_fleet_passes_total", "Leader passes that recomputed assignments")

LIVE_AGENTS = """
SELECT id, labels, capacity, kinds FROM agents WHERE lease_expires > now()
"""
ENABLED_TARGETS = "SELECT id, kind, labels ->> 'zone' AS zone FROM targets WHERE enabled"
HELD = "SELECT target_id, agent_id, epoch, state FROM assignments"
DROP = """
DELETE FROM assignments a USING unnest($1::bigint[], $2::bigint[]) AS d(target_id, epoch)
WHERE a.target_id = d.target_id AND a.epoch = d.epoch
"""
REVOKE = """
UPDATE assignments a SET state = 'revoking', since = now()
FROM unnest($1::bigint[], $2::bigint[]) AS r(target_id, epoch)
WHERE a.target_id = r.target_id AND a.epoch = r.epoch AND a.state = 'active'
"""
# Targets deleted since they were read are skipped (their rows would break the key).
ASSIGN = """
INSERT INTO assignments (target_id, agent_id, epoch, state)
SELECT n.target_id, n.agent_id, nextval('assignment_epoch'), 'active'
FROM unnest($1::bigint[], $2::text[]) AS n(target_id, agent_id)
JOIN targets t ON t.id = n.target_id
ORDER BY n.target_id
ON CONFLICT (target_id) DO NOTHING
"""
FORGET_AGENTS = """
DELETE FROM agents g
WHERE lease_expires < now() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM assignments WHERE agent_id = g.id)
"""
NOTIFY_ASSIGN = f"SELECT pg_notify('{ASSIGN_CHANNEL}', $1)"

Maintenance = Callable[[], Awaitable[dict[str, Any]]]


def _agent(row: asyncpg.Record) -> a.AgentInfo:
    labels = row["labels"]
    if isinstance(labels, str):
        labels = json.loads(labels)
    return a.AgentInfo(row["id"], labels, row["capacity"], frozenset(row["kinds"]))


class FleetLeader:
    """Runs passes while this controller holds the fleet lock."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        config: FleetConfig,
        *,
        maintenance: Maintenance | None = None,
        maintenance_interval: float = 300.0,
    ) -> None:
        self.pool = pool
        self.config = config
        self.passes = 0
        self._maintenance = maintenance
        self._maintenance_interval = maintenance_interval
        self._wake = asyncio.Event()
        self._last_live: frozenset[a.AgentInfo] | None = None
        self._next_full = 0.0
        self._leadership = Leadership(dsn, FLEET_LOCK, "fleet", self._lead, retry=1.0)

    @property
    def leading(self) -> bool:
        return self._leadership.leading

    def start(self) -> None:
        self._leadership.start()

    async def stop(self) -> None:
        await self._leadership.stop()
        LEADER.set(0)

    def wake(self) -> None:
        self._wake.set()

    async def _lead(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        await conn.add_listener(FLEET_CHANNEL, self._notified)
        LEADER.set(1)
        self._last_live = None  # a new leader recomputes everything first
        # Maintenance runs beside the passes (on the pool): a long rollup must not hold
        # up reassignment when an agent dies.
        upkeep = asyncio.create_task(self._upkeep(), name="fleet-upkeep")
        try:
            while not lost.is_set():
                # run_pass reads and clears the wake flag: a NOTIFY that woke this wait
                # (an agent joined, confirmed a revocation, said bye) forces a pass.
                await self.run_pass(conn)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.pass_interval):
                        await self._wake.wait()
        finally:
            LEADER.set(0)
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
            with contextlib.suppress(Exception):
                await conn.remove_listener(FLEET_CHANNEL, self._notified)

    def _notified(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()

    async def run_pass(self, conn: asyncpg.Connection) -> a.Plan | None:
        """One pass; returns the plan applied, or None when nothing could have changed."""
        await jobs.expire(conn)
        live = frozenset(_agent(r) for r in await conn.fetch(LIVE_AGENTS, timeout=10))
        woken = self._wake.is_set()
        now = time.monotonic()
        if live == self._last_live and not woken and now < self._next_full:
            return None
        self._wake.clear()
        targets = [
            a.TargetInfo(r["id"], r["kind"], r["zone"]) for r in await conn.fetch(ENABLED_TARGETS)
        ]
        held = {
            r["target_id"]: a.Held(r["agent_id"], r["epoch"], r["state"] == "revoking")
            for r in await conn.fetch(HELD)
        }
        plan = await asyncio.to_thread(a.plan, targets, live, held)
        if plan:
            await self._apply(conn, plan)
        self._last_live = live
        self._next_full = now + self.config.resync_interval
        self.passes += 1
        PASSES.inc()
        UNPLACED.set(len(plan.unplaced))
        return plan

    async def _apply(self, conn: asyncpg.Connection, plan: a.Plan) -> None:
        async with conn.transaction():
            if plan.drop:
                await conn.execute(DROP, list(plan.drop), [h.epoch for h in plan.drop.values()])
            if plan.revoke:
                await conn.execute(
                    REVOKE, list(plan.revoke), [h.epoch for h in plan.revoke.values()]
                )
            if plan.assign:
                await conn.execute(ASSIGN, list(plan.assign), list(plan.assign.values()))
            agents = ",".join(sorted(plan.agents_touched()))
            await conn.execute(NOTIFY_ASSIGN, agents if len(agents) <= _NOTIFY_LIMIT else "*")
        for kind, moves in (("assign", plan.assign), ("revoke", plan.revoke), ("drop", plan.drop)):
            if moves:
                MOVES.labels(kind).inc(len(moves))
        log.info(
            "assignments changed",
            extra={
                "assigned": len(plan.assign),
                "revoked": len(plan.revoke),
                "dropped": len(plan.drop),
                "unplaced": len(plan.unplaced),
            },
        )

    async def _upkeep(self) -> None:
        while True:
            try:
                forgotten = await self.pool.execute(
                    FORGET_AGENTS, float(self.config.forget_after_s)
                )
                counts = await self._maintenance() if self._maintenance is not None else {}
                log.info("fleet maintenance", extra={"agents_forgotten": forgotten, **counts})
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("fleet maintenance failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._maintenance_interval)
