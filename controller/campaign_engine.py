"""The campaign engine: runs the campaigns `controller.campaigns` accepts.

The engine, in every controller process, runs
campaigns while it holds a PostgreSQL advisory lock on a connection of its own: one
controller drives them at a time, and when its connection goes (a crash, a restart, a
network cut), another takes over within `lock_retry` seconds. The same connection
LISTENs for task outcomes (`chronos_task`, sent by the ACS) and campaign changes
(`chronos_campaign`, sent by this API), so a round runs as soon as something happened,
and at least every `interval` seconds (grace periods and timeouts are time-driven).

A round, per campaign, in one transaction holding the campaign's row lock (operator
actions take the same lock, so they never interleave with a round):

1. a pending campaign whose time has come starts: its query is evaluated once, in SQL,
   and the matching devices are frozen into `campaign_devices`, in a pseudo-random
   order (md5 of campaign and device id: every wave samples the whole population
   rather than one OUI's serial range), cut into waves;
2. devices in flight are judged (`campaign_rules.judge_device`) from their tasks, the
   faults of those tasks and the success criterion, evaluated in SQL; a device whose
   step is done gets its next step's task queued;
3. the failure ratio is checked; crossing it halts the campaign and (by default)
   withdraws the tasks of devices that were queued but had not begun;
4. devices of the current wave are started up to maxConcurrent in flight; the next
   wave begins when the current one has finished.

Connection requests go out after the commit. Everything is in PostgreSQL, so a new
leader carries on from exactly where the last one stopped. The rules themselves are
pure functions in `controller.campaign_rules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from acs import filestore
from acs import query as q
from acs import query_sql as qs
from acs.store import task_hex
from controller import campaign_rules as rules
from controller import nbi, taskbodies
from controller.errors import ApiError
from controller.leadership import Leadership
from schemas import tasks as t
from schemas.campaigns import CampaignSpec

log = logging.getLogger("chronos.campaigns.engine")

TASK_CHANNEL = "chronos_task"  # the ACS: a task finished or faulted
CAMPAIGN_CHANNEL = "chronos_campaign"  # the API: a campaign was created or changed
# Any fixed 64-bit number unique to this purpose ("chrcampn").
ENGINE_LOCK = 0x6368_7263_616D_706E
ENGINE_ACTOR = "engine"  # who campaign_events name for what the engine did

DEVICES_FINISHED = Counter(
    "chronos_campaign_devices_total", "Campaign devices finished, by outcome", ["outcome"]
)

ENGINE_LEADER = Gauge("chronos_campaign_engine_leader", "1 while this process drives the campaigns")

# --- SQL ------------------------------------------------------------------------------------

LOCK_CAMPAIGN = "SELECT * FROM campaigns WHERE id = $1 FOR UPDATE"

ACTIVE = """
SELECT id FROM campaigns
WHERE state IN ('pending', 'running') OR queued + running > 0
ORDER BY id
"""

INSERT_EVENT = """
INSERT INTO campaign_events (campaign_id, kind, actor, detail) VALUES ($1, $2, $3, $4)
"""

# Frozen in a pseudo-random order that is stable for the campaign (see the docstring).
FREEZE = """
INSERT INTO campaign_devices (campaign_id, device_id, seq, wave)
SELECT $1::bigint, s.id, s.seq, 0 FROM (
    SELECT d.id,
           row_number() OVER (ORDER BY md5(($1::bigint)::text || '/' || d.id), d.id) AS seq
    FROM devices d WHERE {where}
) AS s
"""

SET_WAVES = """
UPDATE campaign_devices SET wave = width_bucket(seq, $2::int[]) - 1 WHERE campaign_id = $1
"""

MARK_STARTED = """
UPDATE campaigns SET started = now(), total = $2, wave_sizes = $3, current_wave = 0
WHERE id = $1
"""

# Devices in flight with what their tasks say: each task's status, a fault of any of
# them, whether the device held a session since its first task was queued, and whether
# it matches the success criterion now.
OBSERVE = """
SELECT cd.device_id, cd.state, cd.step, cd.task_ids, cd.queued_at, cd.tasks_done_at,
       d.id IS NOT NULL AS present,
       COALESCE(d.last_inform >= cd.queued_at, false) AS contacted,
       COALESCE((
           SELECT json_agg(json_build_object(
               'id', t.id, 'status', t.status,
               'touched', t.retries > 0 OR t.progress <> '{{}}'::jsonb))
           FROM tasks t WHERE t.id = ANY(cd.task_ids)), '[]'::json) AS tasks,
       (SELECT json_build_object('task', f.task_id, 'code', f.code, 'message', f.message,
                                 'detail', f.detail)
        FROM faults f WHERE f.task_id = ANY(cd.task_ids)
        ORDER BY f.timestamp LIMIT 1) AS fault,
       COALESCE(d.id IS NOT NULL AND {criterion}, false) AS criterion_met
FROM campaign_devices cd LEFT JOIN devices d ON d.id = cd.device_id
WHERE cd.campaign_id = $1 AND cd.state IN ('queued', 'running')
"""

MARK_RUNNING = """
UPDATE campaign_devices SET state = 'running', started_at = COALESCE(started_at, now())
WHERE campaign_id = $1 AND device_id = ANY($2::text[]) AND state = 'queued'
"""

MARK_VERIFYING = """
UPDATE campaign_devices SET state = 'running', started_at = COALESCE(started_at, now()),
                            tasks_done_at = now()
WHERE campaign_id = $1 AND device_id = ANY($2::text[]) AND state IN ('queued', 'running')
"""

FINISH = """
UPDATE campaign_devices cd SET state = u.state, detail = u.detail::jsonb, finished_at = now()
FROM unnest($2::text[], $3::text[], $4::text[]) AS u(device_id, state, detail)
WHERE cd.campaign_id = $1 AND cd.device_id = u.device_id
  AND cd.state IN ('waiting', 'queued', 'running')
RETURNING cd.device_id, cd.task_ids
"""

WITHDRAW_TASKS = """
DELETE FROM tasks WHERE id = ANY($1::bigint[]) AND status IN ('pending', 'waiting')
"""

# Devices per state, counted from campaign_devices; the campaign row is rewritten only
# when a count changed, so `updated` says when something last happened.
COUNTS = """
WITH s AS (
    SELECT count(*) FILTER (WHERE state = 'waiting') AS waiting,
           count(*) FILTER (WHERE state = 'queued') AS queued,
           count(*) FILTER (WHERE state = 'running') AS running,
           count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state = 'skipped') AS skipped
    FROM campaign_devices WHERE campaign_id = $1
), saved AS (
    UPDATE campaigns c SET
        waiting = s.waiting, queued = s.queued, running = s.running,
        succeeded = s.succeeded, failed = s.failed, skipped = s.skipped, updated = now()
    FROM s
    WHERE c.id = $1 AND (c.waiting, c.queued, c.running, c.succeeded, c.failed, c.skipped)
        IS DISTINCT FROM (s.waiting, s.queued, s.running, s.succeeded, s.failed, s.skipped)
)
SELECT * FROM s
"""

WAITING_BY_WAVE = """
SELECT wave, count(*)::int AS n FROM campaign_devices
WHERE campaign_id = $1 AND state = 'waiting' AND wave >= $2
GROUP BY wave
"""

NEXT_DEVICES = """
SELECT device_id FROM campaign_devices
WHERE campaign_id = $1 AND wave = $2 AND state = 'waiting'
ORDER BY seq LIMIT $3
"""

SAVE_ROUND = """
UPDATE campaigns SET state = $2, state_reason = $3, current_wave = $4, next_wave_at = $5,
                     finished = $6, updated = now()
WHERE id = $1 AND (state, state_reason, current_wave, next_wave_at, finished)
    IS DISTINCT FROM ($2::text, $3::text, $4::int, $5::timestamptz, $6::timestamptz)
"""

# Queueing a step: the devices' known parameter types (for setParameterValues), the
# open tasks a uniqueKey replaces, then the tasks themselves (a device deleted meanwhile
# gets none), then the devices' rows.
KNOWN_TYPES = """
SELECT device_id, path, value_type FROM device_params
WHERE device_id = ANY($1::text[]) AND path = ANY($2::text[]) AND value_type IS NOT NULL
"""

DELETE_UNIQUE = """
DELETE FROM tasks WHERE device_id = ANY($1::text[]) AND body->>'uniqueKey' = $2
  AND status IN ('pending', 'waiting')
"""

INSERT_TASKS = """
INSERT INTO tasks (device_id, name, body, args, expiry)
SELECT u.device_id, $2, $3::jsonb, u.args::jsonb, $4
FROM unnest($1::text[], $5::text[]) WITH ORDINALITY AS u(device_id, args, n)
JOIN devices d ON d.id = u.device_id
ORDER BY u.n
RETURNING id, device_id
"""

RECORD_QUEUED = """
UPDATE campaign_devices cd SET
    state = CASE WHEN cd.state = 'waiting' THEN 'queued' ELSE cd.state END,
    step = $4, task_ids = cd.task_ids || u.task_id, queued_at = COALESCE(cd.queued_at, now())
FROM unnest($2::text[], $3::bigint[]) AS u(device_id, task_id)
WHERE cd.campaign_id = $1 AND cd.device_id = u.device_id
"""

# Devices queued but not begun (first step, no session now): their tasks are withdrawn
# and they end skipped. The device rows are locked (in id order, as the ACS takes them)
# so no session can begin and pick these tasks up before this commits.
WITHDRAW_UNSTARTED = """
WITH quiet AS (
    SELECT d.id FROM devices d
    JOIN campaign_devices cd ON cd.device_id = d.id AND cd.campaign_id = $1
    WHERE cd.state = 'queued' AND cd.step = 0
      AND (d.session_id IS NULL OR d.session_expires < now())
    ORDER BY d.id
    FOR UPDATE OF d
), gone AS (
    DELETE FROM tasks t USING campaign_devices cd, quiet
    WHERE cd.campaign_id = $1 AND cd.device_id = quiet.id AND t.id = ANY(cd.task_ids)
      AND t.status = 'pending' AND t.retries = 0 AND t.progress = '{}'::jsonb
      AND NOT EXISTS (SELECT 1 FROM faults f WHERE f.task_id = t.id)
    RETURNING t.device_id
)
UPDATE campaign_devices cd SET state = 'skipped', finished_at = now(), detail = $2::jsonb
FROM (SELECT DISTINCT device_id FROM gone) AS g
WHERE cd.campaign_id = $1 AND cd.device_id = g.device_id AND cd.state = 'queued'
RETURNING cd.device_id
"""

# --- the engine ------------------------------------------------------------------------------


@dataclass
class _Round:
    """What a round of one campaign did, for after its commit."""

    queued: list[str] = field(default_factory=list)  # devices given a task: wake them
    quiet: list[str] = field(default_factory=list)  # queued, not heard from since
    finished: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    interval: float = 5.0  # a round at least this often (grace periods, timeouts)
    settle: float = 0.2  # after a wake-up, let more notifications arrive first
    lock_retry: float = 5.0  # a follower tries to take over this often
    connection_requests: int = 32  # at most this many in flight
    # A device queued but silent is asked again this often (and at once by a new leader,
    # which cannot know whether the last one's request went out).
    connection_request_retry: float = 60.0


class CampaignEngine:
    """Drives every campaign while this process holds the engine lock."""

    def __init__(self, app: web.Application, settings: EngineSettings | None = None) -> None:
        self.app = app
        self.settings = settings or EngineSettings()
        self.rounds = 0
        self._wake = asyncio.Event()
        self._leadership: Leadership | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._limit: asyncio.Semaphore | None = None
        self._asked: dict[str, float] = {}  # device -> when its last request went out

    # --- lifecycle and leadership ---

    @property
    def leader(self) -> bool:
        return self._leadership is not None and self._leadership.leading

    async def start(self) -> None:
        self._limit = asyncio.Semaphore(self.settings.connection_requests)
        self._leadership = Leadership(
            self.app[nbi.WAITER].dsn,
            ENGINE_LOCK,
            "campaigns",
            self._lead,
            retry=self.settings.lock_retry,
        )
        self._leadership.start()

    async def stop(self) -> None:
        if self._leadership is not None:
            await self._leadership.stop()
        tasks = list(self._requests)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def _lead(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        conn.add_termination_listener(lambda _conn: self._wake.set())
        await conn.add_listener(TASK_CHANNEL, self._notified)
        await conn.add_listener(CAMPAIGN_CHANNEL, self._notified)
        ENGINE_LEADER.set(1)
        log.info("campaign engine leading")
        try:
            while not lost.is_set():
                self._wake.clear()
                # The lock is ours exactly as long as this connection's backend lives.
                await conn.fetchval("SELECT 1", timeout=10)
                await self.run_round()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.interval):
                        await self._wake.wait()
                await asyncio.sleep(self.settings.settle)
        finally:
            ENGINE_LEADER.set(0)

    def _notified(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()

    # --- rounds ---

    async def run_round(self) -> None:
        """One round over every campaign that may still start or finish devices."""
        pool = self.app[nbi.POOL]
        for row in await pool.fetch(ACTIVE):
            try:
                done = await self._campaign_round(row["id"])
            except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError):
                raise
            except Exception:
                log.exception("campaign round failed", extra={"campaign_id": row["id"]})
                continue
            self._after_commit(row["id"], done)
        self.rounds += 1

    async def _campaign_round(self, campaign_id: int) -> tuple[_Round, CampaignSpec | None]:
        pool = self.app[nbi.POOL]
        done = _Round()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK_CAMPAIGN, campaign_id)
            if row is None:
                return done, None
            spec = CampaignSpec.model_validate(row["definition"])
            now: datetime = await conn.fetchval("SELECT now()")
            state, reason = row["state"], row["state_reason"]
            current_wave, next_wave_at = row["current_wave"], row["next_wave_at"]
            wave_count = len(row["wave_sizes"])
            if rules.should_start(state, row["start_at"], now):
                state, reason = "running", ""
            if state == "running" and row["started"] is None:
                sizes = await self._freeze(conn, campaign_id, spec)
                wave_count, current_wave = len(sizes), 0
                done.events.append(("started", {"devices": sum(sizes), "waves": sizes}))
                if not sizes:
                    state, reason = "completed", "no device matched the query"
            await self._observe(conn, campaign_id, spec, now, done)
            counts = await self._counts(conn, campaign_id)
            if state in ("running", "paused") and (why := rules.halt_reason(counts, spec)):
                state, reason = "halted", why
                done.events.append(("halted", {"reason": why, **counts.as_dict()}))
                log.warning("campaign halted", extra={"campaign_id": campaign_id, "reason": why})
                if spec.cancelQueuedOnHalt:
                    await conn.fetch(
                        WITHDRAW_UNSTARTED,
                        campaign_id,
                        {"reason": "withdrawn_on_halt", "message": "withdrawn when halted"},
                    )
            if state == "running":
                waiting = {
                    r["wave"]: r["n"]
                    for r in await conn.fetch(WAITING_BY_WAVE, campaign_id, current_wave)
                }
                plan = rules.plan_round(
                    rules.CampaignView(
                        state=state,
                        current_wave=current_wave,
                        wave_count=wave_count,
                        waiting_by_wave=waiting,
                        in_flight=counts.in_flight,
                        next_wave_at=next_wave_at,
                        max_concurrent=spec.maxConcurrent,
                        pause_between_waves=spec.pauseBetweenWaves,
                        wave_delay=spec.waveDelaySeconds,
                    ),
                    now,
                )
                state, current_wave, next_wave_at = plan.state, plan.current_wave, plan.next_wave_at
                reason = plan.reason or reason
                done.events.extend(plan.events)
                if plan.start:
                    devices = [
                        r["device_id"]
                        for r in await conn.fetch(
                            NEXT_DEVICES, campaign_id, plan.current_wave, plan.start
                        )
                    ]
                    await self._queue_step(conn, campaign_id, spec, devices, step=0, done=done)
            counts = await self._counts(conn, campaign_id)
            finished = row["finished"]
            settled = state == "completed" or (
                state in ("halted", "cancelled") and counts.in_flight == 0
            )
            finished = (finished or now) if settled else None
            await conn.execute(
                SAVE_ROUND, campaign_id, state, reason, current_wave, next_wave_at, finished
            )
            for kind, detail in done.events:
                await conn.execute(INSERT_EVENT, campaign_id, kind, ENGINE_ACTOR, detail)
            if state != row["state"] and state in ("completed", "paused"):
                log.info(f"campaign {state}", extra={"campaign_id": campaign_id, "reason": reason})
        return done, spec

    async def _freeze(self, conn: asyncpg.Connection, campaign_id: int, spec: CampaignSpec) -> list:
        """Evaluate the query once and freeze its devices, cut into waves."""
        args: list[object] = [campaign_id]
        where = qs.device_where(q.parse_device_query(spec.query), args)
        status = await conn.execute(FREEZE.format(where=where), *args)
        total = int(status.rsplit(" ", 1)[-1])
        sizes = rules.wave_sizes(total, spec.waves)
        if len(sizes) > 1:
            await conn.execute(SET_WAVES, campaign_id, rules.wave_starts(sizes))
        await conn.execute(MARK_STARTED, campaign_id, total, sizes)
        log.info(
            "campaign started",
            extra={"campaign_id": campaign_id, "devices": total, "waves": len(sizes)},
        )
        return sizes

    async def _observe(
        self,
        conn: asyncpg.Connection,
        campaign_id: int,
        spec: CampaignSpec,
        now: datetime,
        done: _Round,
    ) -> None:
        """Judge every device in flight and apply the verdicts."""
        args: list[object] = [campaign_id]
        criterion = "FALSE"
        if spec.successCriterion is not None:
            criterion = qs.device_where(q.parse_device_query(spec.successCriterion), args)
        rows = await conn.fetch(OBSERVE.format(criterion=f"({criterion})"), *args)
        by_kind: dict[str, list[str]] = defaultdict(list)
        ends: dict[str, tuple[str, dict[str, Any]]] = {}
        next_steps: dict[int, list[str]] = defaultdict(list)
        for row in rows:
            verdict = rules.judge_device(
                _observation(row),
                steps=len(spec.actions),
                has_criterion=spec.successCriterion is not None,
                grace=spec.successGraceSeconds,
                timeout=spec.deviceTimeoutSeconds,
                now=now,
            )
            device = row["device_id"]
            if verdict.kind in ("succeeded", "failed", "skipped"):
                ends[device] = (verdict.kind, verdict.detail)
            elif verdict.kind == "next_step":
                next_steps[row["step"] + 1].append(device)
            elif verdict.kind != "wait":
                by_kind[verdict.kind].append(device)
            elif row["state"] == "queued" and not row["contacted"]:
                done.quiet.append(device)
        if by_kind["running"]:
            await conn.execute(MARK_RUNNING, campaign_id, by_kind["running"])
        if by_kind["verify"]:
            await conn.execute(MARK_VERIFYING, campaign_id, by_kind["verify"])
        if next_steps:
            await conn.execute(
                MARK_RUNNING, campaign_id, [d for group in next_steps.values() for d in group]
            )
        for step, devices in sorted(next_steps.items()):
            await self._queue_step(conn, campaign_id, spec, devices, step=step, done=done)
        await self._finish(conn, campaign_id, spec, ends, done)

    async def _finish(
        self,
        conn: asyncpg.Connection,
        campaign_id: int,
        spec: CampaignSpec,
        ends: Mapping[str, tuple[str, dict[str, Any]]],
        done: _Round,
    ) -> None:
        """Devices to their final state; a failed device's open tasks are withdrawn
        unless the campaign lets the ACS retry them."""
        if not ends:
            return
        devices = list(ends)
        rows = await conn.fetch(
            FINISH,
            campaign_id,
            devices,
            [ends[d][0] for d in devices],
            [json.dumps(ends[d][1]) for d in devices],
        )
        withdraw = [
            task_id
            for row in rows
            if ends[row["device_id"]][0] != "succeeded" and not spec.retryFailedTasks
            for task_id in row["task_ids"]
        ]
        if withdraw:
            await conn.execute(WITHDRAW_TASKS, withdraw)
        for row in rows:
            outcome, detail = ends[row["device_id"]]
            done.finished.append((row["device_id"], outcome, detail))

    async def _counts(self, conn: asyncpg.Connection, campaign_id: int) -> rules.Counts:
        row = await conn.fetchrow(COUNTS, campaign_id)
        return rules.Counts.of(dict(row) if row is not None else {})

    async def _queue_step(
        self,
        conn: asyncpg.Connection,
        campaign_id: int,
        spec: CampaignSpec,
        devices: list[str],
        *,
        step: int,
        done: _Round,
    ) -> None:
        """Queue action `step` for `devices`, one task each; devices it cannot be queued
        for end here (deleted: skipped before they began, failed after; arguments their
        parameter types refuse: failed)."""
        if not devices:
            return
        sealer = self.app.get(nbi.SEALER)
        unseal = sealer.unseal if sealer is not None else str
        seal = sealer.seal if sealer is not None else str
        body = rules.task_body(rules.map_secrets(spec.actions[step], unseal))
        ends: dict[str, tuple[str, dict[str, Any]]] = {}
        args_by_device: dict[str, dict[str, Any]] = {}
        expiry = None
        task = None
        if body["name"] in t.TASK_NAMES:
            try:
                task = taskbodies.validate(body)
            except ApiError as exc:  # a definition an older or newer build accepted
                invalid = {"reason": "invalid_task", "message": str(exc), "step": step + 1}
                ends = {d: ("failed", invalid) for d in devices}
        if task is not None:
            names = taskbodies.parameter_names(task)
            known: dict[str, dict[str, str]] = defaultdict(dict)
            if names:
                for r in await conn.fetch(KNOWN_TYPES, devices, names):
                    known[r["device_id"]][r["path"]] = r["value_type"]
            # A stored file as it is now: replaced since the campaign began, the new one.
            name = taskbodies.file_name(task)
            stored = await filestore.current_file(conn, name) if name else None
            for device in devices:
                try:
                    args_by_device[device] = taskbodies.arguments(task, known[device], seal, stored)
                except ApiError as exc:
                    ends[device] = (
                        "failed",
                        {"reason": "invalid_task", "message": str(exc), "step": step + 1},
                    )
            if task.uniqueKey:
                await conn.execute(DELETE_UNIQUE, devices, task.uniqueKey)
            expiry = taskbodies.expiry_of(task, datetime.now(UTC))
        elif not ends:
            # A provision on a build whose API does not know `provisions` tasks yet: queued
            # in GenieACS's shape for the ACS to run (or fault, which fails the device).
            args_by_device = {d: {"provisions": body["provisions"]} for d in devices}
        stored = {**taskbodies.stored_body(body), "campaign": campaign_id}
        ready = [d for d in devices if d in args_by_device]
        rows = await conn.fetch(
            INSERT_TASKS,
            ready,
            body["name"],
            stored,
            expiry,
            [json.dumps(args_by_device[d]) for d in ready],
        )
        queued = {r["device_id"]: r["id"] for r in rows}
        if queued:
            await conn.execute(
                RECORD_QUEUED, campaign_id, list(queued), list(queued.values()), step
            )
        for device in ready:
            if device not in queued:
                gone = {"reason": "device_deleted", "message": "the device was deleted"}
                ends[device] = ("skipped" if step == 0 else "failed", gone)
        done.queued.extend(queued)
        await self._finish(conn, campaign_id, spec, ends, done)

    # --- after a round ---

    def _after_commit(self, campaign_id: int, result: tuple[_Round, CampaignSpec | None]) -> None:
        done, spec = result
        for device, outcome, detail in done.finished:
            DEVICES_FINISHED.labels(outcome).inc()
            extra = {"campaign_id": campaign_id, "device_id": device, "outcome": outcome}
            if outcome == "failed":
                log.warning("campaign device failed", extra={**extra, **_log_detail(detail)})
            else:
                log.debug("campaign device finished", extra=extra)
            self._asked.pop(device, None)
        if len(self._asked) > 100_000:  # withdrawn devices are never popped: stay bounded
            self._asked.clear()
        if spec is None or not spec.connectionRequest:
            return
        now = asyncio.get_running_loop().time()
        retry = self.settings.connection_request_retry
        again = [d for d in done.quiet if now - self._asked.get(d, -retry) >= retry]
        for device in (*done.queued, *again):
            self._asked[device] = now
            task = asyncio.create_task(self._connection_request(device))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _connection_request(self, device: str) -> None:
        assert self._limit is not None
        async with self._limit:
            try:
                await nbi.connection_request(self.app, device)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "campaign connection request failed",
                    extra={"device_id": device, "error": repr(exc)},
                )


def _log_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {"reason": detail.get("reason"), "detail": detail.get("message")}


def _observation(row: Mapping[str, Any]) -> rules.DeviceObservation:
    tasks = {
        item["id"]: rules.TaskView(item["id"], item["status"], bool(item["touched"]))
        for item in _json(row["tasks"])
    }
    fault = _json(row["fault"]) if row["fault"] is not None else None
    if fault is not None and "task" in fault:
        fault["task"] = task_hex(fault["task"])
    return rules.DeviceObservation(
        device_id=row["device_id"],
        state=row["state"],
        step=row["step"],
        task_ids=tuple(row["task_ids"]),
        tasks=tasks,
        queued_at=row["queued_at"],
        tasks_done_at=row["tasks_done_at"],
        present=row["present"],
        contacted=row["contacted"],
        fault=fault,
        criterion_met=row["criterion_met"],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
