"""The agent stream: `GET /api/v1/agents/stream`, a WebSocket of msgpack frames.

One `AgentSession` per connected agent:

1. the agent sends `hello`; its row in `agents` is claimed for this controller with a
   fresh lease, unless another process of the same agent id (another boot) still holds
   a live lease: that one may still be polling, so the newcomer is refused until the
   lease runs out (two processes never poll the same targets);
2. `welcome` tells the agent the heartbeat period, the lease, and the highest report
   sequence already stored for its boot;
3. the session sends `assign` for everything the agent owns, then keeps it in step:
   woken by `chronos_assign` (the leader moved targets) and `chronos_fleet` (a target
   was edited or deleted), it sends only what differs from what the agent was told;
4. frames from the agent: `heartbeat` renews the lease (answered with the same number
   once committed: the agent fences itself by these answers), `report` is stored and
   acknowledged after commit, `revoked` deletes the assignment so the leader can hand
   the target on, `bye` ends the lease at once.

A peer that sends garbage gets an `error` frame and is disconnected; nothing it sent
before the garbage is lost, and nothing after it is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web
from prometheus_client import Counter, Gauge

from controller import ingest, jobs, olt_inventory
from controller.auth import STREAM_PATH
from controller.leader import ASSIGN_CHANNEL, FLEET_CHANNEL
from schemas import frames as f
from schemas.config import FleetConfig, TimeseriesConfig
from schemas.olt import PORT_ONTS
from schemas.sealing import Sealer

log = logging.getLogger("chronos.fleet.stream")

HELLO_TIMEOUT = 10.0
# Reports an agent may have in flight (it keeps a window well below this).
REPORT_QUEUE = 64

CONNECTED = Gauge("chronos_agents_connected", "Agents whose stream this controller holds")
REPORTS = Counter("chronos_agent_reports_total", "Reports received", ["outcome"])
SAMPLES = Counter("chronos_agent_samples_total", "Samples received in new reports")
REFUSED = Counter("chronos_agent_streams_refused_total", "Streams refused or cut", ["code"])

CLAIM = """
INSERT INTO agents AS g
    (id, boot, labels, capacity, kinds, software, controller, connected, last_seen,
     lease_expires)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), now() + make_interval(secs => $8))
ON CONFLICT (id) DO UPDATE SET
    boot = EXCLUDED.boot, labels = EXCLUDED.labels, capacity = EXCLUDED.capacity,
    kinds = EXCLUDED.kinds, software = EXCLUDED.software, controller = EXCLUDED.controller,
    connected = now(), last_seen = now(), lease_expires = EXCLUDED.lease_expires
WHERE g.boot = EXCLUDED.boot OR g.lease_expires IS NULL OR g.lease_expires <= now()
RETURNING id
"""
LEASE_LEFT = """
SELECT greatest(extract(epoch FROM lease_expires - now()), 0)::float8 FROM agents WHERE id = $1
"""
ACKED = "SELECT coalesce(max(seq), 0) FROM agent_reports WHERE agent_id = $1 AND boot = $2"
# Renew; `lapsed` says the lease had already run out (the leader may have moved targets).
RENEW = """
UPDATE agents g SET last_seen = now(), lease_expires = now() + make_interval(secs => $4)
FROM (SELECT lease_expires <= now() AS lapsed FROM agents WHERE id = $1) old
WHERE g.id = $1 AND g.boot = $2 AND g.controller = $3
RETURNING old.lapsed
"""
RELEASE = """
UPDATE agents SET lease_expires = now(), controller = NULL, connected = NULL
WHERE id = $1 AND boot = $2 AND controller = $3
"""
DETACH = """
UPDATE agents SET controller = NULL, connected = NULL
WHERE id = $1 AND boot = $2 AND controller = $3
"""
OWNED = """
SELECT a.target_id, a.epoch, a.state, t.kind, t.address, t.port, t.credentials, t.labels,
       t.profile, t.updated
FROM assignments a JOIN targets t ON t.id = a.target_id
WHERE a.agent_id = $1
"""
CONFIRM_REVOKED = """
DELETE FROM assignments a USING unnest($2::bigint[], $3::bigint[]) AS r(target_id, epoch)
WHERE a.agent_id = $1 AND a.target_id = r.target_id AND a.epoch = r.epoch
"""
NOTIFY_FLEET = f"SELECT pg_notify('{FLEET_CHANNEL}', $1)"


class StreamClosed(Exception):
    """End this session, telling the agent why (an `error` frame) unless `code` is empty."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def controller_id() -> str:
    """This process, as agents and the `agents` table name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class AgentSession:
    """One connected agent: what it has been told, and the frames it sends."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, hello: f.Hello) -> None:
        self.hub = hub
        self.ws = ws
        self.agent = hello.agent
        self.boot = hello.boot
        # target -> (epoch, target's updated time) of the last assign sent
        self.sent: dict[int, tuple[int, Any]] = {}
        self.revoking: set[tuple[int, int]] = set()
        self.dirty = asyncio.Event()
        self.reports: asyncio.Queue[f.Report] = asyncio.Queue(REPORT_QUEUE)
        self.synced = False  # the first sync tells the agent everything it owns
        self._send_lock = asyncio.Lock()

    async def send(self, frame: f.Frame) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(f.encode(frame))

    async def sync(self) -> None:
        """Tell the agent whatever changed in its assignments since it was last told."""
        self.dirty.clear()
        rows = await self.hub.pool.fetch(OWNED, self.agent)
        assign: list[f.TargetSpec] = []
        revoke: list[tuple[int, int]] = []
        seen = set()
        for row in rows:
            target, epoch = row["target_id"], row["epoch"]
            seen.add(target)
            if row["state"] == "revoking":
                # Sent even when this connection never assigned it: the agent may have
                # been polling it since an earlier connection. It confirms either way.
                if (target, epoch) not in self.revoking:
                    revoke.append((target, epoch))
                continue
            if self.sent.get(target) != (epoch, row["updated"]):
                spec = self.hub.spec(row)
                if spec is not None:
                    assign.append(spec)
                    self.sent[target] = (epoch, row["updated"])
        for target, (epoch, _) in list(self.sent.items()):
            if target not in seen and (target, epoch) not in self.revoking:
                revoke.append((target, epoch))  # the target was deleted, or its row dropped
        if assign or not self.synced:
            await self.send(f.Assign(tuple(assign), full=not self.synced))
            self.synced = True
        if revoke:
            self.revoking.update(revoke)
            await self.send(f.Revoke(tuple(revoke)))
        if assign or revoke:
            log.info(
                "assignments sent",
                extra={"agent_id": self.agent, "assigned": len(assign), "revoked": len(revoke)},
            )

    async def confirm_revoked(self, pairs: tuple[tuple[int, int], ...]) -> None:
        if pairs:
            async with self.hub.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    CONFIRM_REVOKED, self.agent, [p[0] for p in pairs], [p[1] for p in pairs]
                )
                await conn.execute(NOTIFY_FLEET, f"revoked:{self.agent}")
        for target, epoch in pairs:
            self.revoking.discard((target, epoch))
            if self.sent.get(target, (None,))[0] == epoch:
                del self.sent[target]

    # --- frames from the agent ---

    async def on_heartbeat(self, frame: f.Heartbeat) -> None:
        lapsed = await self.hub.pool.fetchval(
            RENEW, self.agent, self.boot, self.hub.controller, self.hub.config.lease_ms / 1000
        )
        if lapsed is None:
            raise StreamClosed("SUPERSEDED", "this agent's stream moved to another controller")
        if lapsed:
            # Its targets may have moved meanwhile; it fenced itself, so start afresh.
            raise StreamClosed("LEASE_EXPIRED", "the lease ran out before this heartbeat")
        await self.send(f.Heartbeat(frame.n))

    async def on_report(self, frame: f.Report) -> None:
        """Queue the report for `store_reports`: heartbeats must not wait behind a write."""
        try:
            self.reports.put_nowait(frame)
        except asyncio.QueueFull:
            raise StreamClosed(
                "TOO_MANY_REPORTS", f"more than {REPORT_QUEUE} reports sent unacknowledged"
            ) from None

    async def store_reports(self) -> None:
        """Store queued reports in order, acknowledging each after its commit."""
        while True:
            await self.store(await self.reports.get())

    async def store(self, frame: f.Report) -> None:
        # Inventory goes to its tables, not to the events table; applying it is
        # idempotent (and refuses older snapshots), so a resend applies it again.
        inventory, events = olt_inventory.split(frame.events)
        try:
            stored = await self.hub.ingest.store_report(
                self.hub.pool, self.agent, self.boot, frame.seq, frame.samples, events
            )
            for event in inventory:
                async with self.hub.pool.acquire() as conn:
                    await olt_inventory.apply(conn, event)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            REPORTS.labels("failed").inc()
            log.warning(
                "report not stored",
                extra={"agent_id": self.agent, "seq": frame.seq, "error": repr(exc)},
            )
            raise StreamClosed("STORE_FAILED", "the report could not be stored; resend") from None
        REPORTS.labels("stored" if stored else "duplicate").inc()
        if stored:
            SAMPLES.inc(len(frame.samples))
        await self.send(f.Ack(frame.seq))

    async def on_revoked(self, frame: f.Revoked) -> None:
        await self.confirm_revoked(frame.targets)

    async def on_bye(self, frame: f.Bye) -> None:
        async with self.hub.pool.acquire() as conn, conn.transaction():
            await conn.execute(RELEASE, self.agent, self.boot, self.hub.controller)
            await conn.execute(NOTIFY_FLEET, f"bye:{self.agent}")
        log.info("agent said goodbye", extra={"agent_id": self.agent})
        raise StreamClosed("", "bye")

    async def on_job_progress(self, frame: f.JobProgress) -> None:
        await jobs.progress(self.hub.pool, self.agent, frame.job, frame.step, frame.detail)

    async def on_job_result(self, frame: f.JobResult) -> None:
        # The port read back goes to the inventory, not into the job's stored result.
        stored = {k: v for k, v in frame.result.items() if k != PORT_ONTS}
        row = await jobs.finish(
            self.hub.pool,
            self.agent,
            frame.job,
            ok=frame.ok,
            result=stored,
            error=frame.error,
        )
        ports = frame.result.get(PORT_ONTS) if row is not None else None
        for detail in ports if isinstance(ports, list) else []:
            # What the job changed, read back from the OLT: inventory now, not at the
            # next poll.
            event = f.Event(row["target_id"], PORT_ONTS, int(time.time() * 1000), detail)
            async with self.hub.pool.acquire() as conn:
                await olt_inventory.apply(conn, event)

    async def dispatch_jobs(self) -> None:
        """Send the agent the queued jobs of targets it polls (claimed: sent once)."""
        owned = [t for t, (epoch, _) in self.sent.items() if (t, epoch) not in self.revoking]
        for row in await jobs.claim(self.hub.pool, self.agent, owned):
            await self.send(
                f.Job(row["id"], row["target_id"], row["kind"], row["params"], row["timeout_ms"])
            )
            log.info("job sent", extra={"job_id": row["id"], "agent_id": self.agent})

    HANDLERS: dict[type[f.Frame], Callable[[AgentSession, Any], Awaitable[None]]] = {
        f.Heartbeat: on_heartbeat,
        f.Report: on_report,
        f.Revoked: on_revoked,
        f.Bye: on_bye,
        f.JobProgress: on_job_progress,
        f.JobResult: on_job_result,
    }

    async def run(self) -> None:
        """Serve frames until the agent goes, falls silent, or breaks the protocol."""
        silent = 2 * self.hub.config.lease_ms / 1000
        while True:
            try:
                msg = await self.ws.receive(timeout=silent)
            except TimeoutError:
                raise StreamClosed("SILENT", f"no frame for {silent:.0f} s") from None
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type == WSMsgType.ERROR:
                raise StreamClosed("", f"stream error: {self.ws.exception()!r}")
            if msg.type != WSMsgType.BINARY:
                raise StreamClosed("BAD_FRAME", "frames are binary msgpack messages")
            try:
                frame = f.decode(msg.data)
            except f.FrameError as exc:
                raise StreamClosed("BAD_FRAME", str(exc)) from None
            handler = self.HANDLERS.get(type(frame))
            if handler is None:
                raise StreamClosed("BAD_FRAME", f"an agent does not send {frame.TYPE} frames")
            await handler(self, frame)

    async def keep_in_step(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.hub.config.resync_interval):
                    await self.dirty.wait()
            await self.sync()
            await self.dispatch_jobs()


class Hub:
    """This controller's agent sessions, and the LISTEN connection that wakes them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        config: FleetConfig,
        sealer: Sealer | None,
        timeseries: TimeseriesConfig | None = None,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.config = config
        self.sealer = sealer
        self.ingest = ingest.Ingest(timeseries)
        self.controller = controller_id()
        self.sessions: dict[str, AgentSession] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="fleet-listen")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.close_streams()

    async def close_streams(self) -> None:
        """Tell every agent this controller is going (they reconnect, elsewhere or here);
        aiohttp waits for open streams at shutdown, so this runs at `on_shutdown`."""
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001, message=b"controller stopping")

    def spec(self, row: asyncpg.Record) -> f.TargetSpec | None:
        """The assign entry of one OWNED row, credentials unsealed."""
        credentials: dict[str, Any] = {}
        if row["credentials"]:
            if self.sealer is None:
                log.error("target has sealed credentials but no secret key is configured")
                return None
            credentials = json.loads(self.sealer.unseal(row["credentials"]))
        labels, profile = row["labels"], row["profile"]
        return f.TargetSpec(
            id=row["target_id"],
            kind=row["kind"],
            address=row["address"],
            port=row["port"],
            credentials=credentials,
            labels=json.loads(labels) if isinstance(labels, str) else labels,
            profile=json.loads(profile) if isinstance(profile, str) else profile,
            epoch=row["epoch"],
        )

    def _wake(self, agents: list[str] | None) -> None:
        targets = (
            self.sessions.values()
            if agents is None
            else (self.sessions[a] for a in agents if a in self.sessions)
        )
        for session in targets:
            session.dirty.set()

    def _notified(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        if channel == ASSIGN_CHANNEL:
            self._wake(None if payload == "*" else payload.split(","))
        elif payload.startswith("target:"):
            # An edited or deleted target: whoever was sent it gets the news.
            target = int(payload.partition(":")[2] or 0)
            for session in self.sessions.values():
                if target in session.sent:
                    session.dirty.set()
        elif payload == "import":
            self._wake(None)
        elif channel == jobs.JOB_CHANNEL and payload.isdigit():
            for session in self.sessions.values():
                if int(payload) in session.sent:
                    session.dirty.set()

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                await conn.add_listener(ASSIGN_CHANNEL, self._notified)
                await conn.add_listener(FLEET_CHANNEL, self._notified)
                await conn.add_listener(jobs.JOB_CHANNEL, self._notified)
                self._wake(None)  # whatever was missed while not listening
                while True:
                    await asyncio.sleep(5)
                    await conn.fetchval("SELECT 1", timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("fleet listener: database unavailable", extra={"error": repr(exc)})
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(1)

    # --- one stream ---

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=self.config.max_frame_bytes, autoping=True)
        await ws.prepare(request)
        session: AgentSession | None = None
        try:
            hello = await self._hello(ws)
            await self._claim(hello)
            session = AgentSession(self, ws, hello)
            previous = self.sessions.get(hello.agent)
            self.sessions[hello.agent] = session
            if previous is not None:
                await previous.ws.close(code=1000, message=b"replaced by a newer stream")
            CONNECTED.set(len(self.sessions))
            acked = await self.pool.fetchval(ACKED, hello.agent, hello.boot)
            await session.send(
                f.Welcome(self.controller, self.config.heartbeat_ms, self.config.lease_ms, acked)
            )
            log.info(
                "agent connected",
                extra={
                    "agent_id": hello.agent,
                    "boot": hello.boot,
                    "labels": hello.labels,
                    "capacity": hello.capacity,
                    "remote": request.remote,
                },
            )
            await session.sync()
            await session.dispatch_jobs()
            await self._run(session)
        except StreamClosed as closed:
            await self._refuse(ws, closed, session.agent if session else None)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("agent stream failed", extra={"error": repr(exc)})
        finally:
            if session is not None and self.sessions.get(session.agent) is session:
                del self.sessions[session.agent]
                CONNECTED.set(len(self.sessions))
                with contextlib.suppress(Exception):
                    await self.pool.execute(DETACH, session.agent, session.boot, self.controller)
                log.info("agent disconnected", extra={"agent_id": session.agent})
            await ws.close()
        return ws

    async def _run(self, session: AgentSession) -> None:
        """Read frames, keep the agent in step, store its reports; whichever ends, ends all."""
        tasks = [
            asyncio.create_task(session.run()),
            asyncio.create_task(session.keep_in_step()),
            asyncio.create_task(session.store_reports()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _hello(self, ws: web.WebSocketResponse) -> f.Hello:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError:
            raise StreamClosed("NO_HELLO", "no hello frame in time") from None
        if msg.type != WSMsgType.BINARY:
            raise StreamClosed("BAD_FRAME", "the first frame must be a binary hello")
        try:
            hello = f.decode(msg.data)
        except f.FrameError as exc:
            raise StreamClosed("BAD_FRAME", str(exc)) from None
        if not isinstance(hello, f.Hello):
            raise StreamClosed("BAD_FRAME", "the first frame must be hello")
        if hello.version != f.VERSION:
            raise StreamClosed(
                "VERSION", f"this controller speaks version {f.VERSION}, not {hello.version}"
            )
        return hello

    async def _claim(self, hello: f.Hello) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                CLAIM,
                hello.agent,
                hello.boot,
                hello.labels,
                hello.capacity,
                list(hello.kinds),
                hello.software,
                self.controller,
                self.config.lease_ms / 1000,
            )
            if claimed is None:
                left = await conn.fetchval(LEASE_LEFT, hello.agent)
                raise StreamClosed(
                    "AGENT_ID_IN_USE",
                    f"another process of agent {hello.agent!r} holds a lease for {left:.1f} s more",
                )
            await conn.execute(NOTIFY_FLEET, f"agent:{hello.agent}")

    async def _refuse(
        self, ws: web.WebSocketResponse, closed: StreamClosed, agent: str | None
    ) -> None:
        if closed.code:
            REFUSED.labels(closed.code).inc()
            log.warning(
                "agent stream closed",
                extra={"agent_id": agent, "code": closed.code, "reason": str(closed)},
            )
            with contextlib.suppress(Exception):
                await ws.send_bytes(f.encode(f.Error(closed.code, str(closed))))


HUB = web.AppKey("fleet_hub", Hub)


async def stream(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].serve(request)


async def _close_streams(app: web.Application) -> None:
    await app[HUB].close_streams()


def add_routes(app: web.Application) -> None:
    """The stream route; the app must hold a Hub under HUB."""
    app.router.add_get(STREAM_PATH, stream)
    app.on_shutdown.append(_close_streams)
