"""The agent process: one stream to a controller, the scheduler, the spool.

Connection: `hello`, then `welcome`; reconnects with exponential backoff (with jitter)
to the same or another controller behind the same URL. A newer process of this agent id
is refused while an older one's lease lives (`AGENT_ID_IN_USE`): it waits and retries.

Fencing: each heartbeat the controller answers was committed as a lease renewal after it
was sent, so the controller's lease lasts at least `lease` past the moment this agent
sent that heartbeat. The agent stops every poll `margin` before that moment plus the
lease, unless a later heartbeat was answered. So when the controller gives up on it
(lease expired) and hands its targets to others, it has already stopped: never two
pollers on one target, even across a network split.

Reports: samples and events are batched (`flush_interval`, `batch_samples`), kept in the
spool, sent in order with up to `window` unacknowledged, and resent after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client import Counter, Gauge

from agents.driver import Driver
from agents.jobs import JobRunner
from agents.scheduler import Scheduler
from agents.spool import Spool
from schemas import frames as f

log = logging.getLogger("chronos.agent")

SOFTWARE = "chronosconnect-agent/1"
CONNECTED = Gauge("chronos_agent_connected", "1 while the stream to a controller is up")
FENCED = Counter("chronos_agent_fenced_total", "Times the agent stopped polling: lease at risk")
RECONNECTS = Counter("chronos_agent_connects_total", "Stream connection attempts", ["outcome"])


class StreamEnded(Exception):
    """This connection is over; `retry_after` seconds is the least wait before the next."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(slots=True)
class AgentSettings:
    controller: str  # http(s)://host:port of a controller (or its load balancer)
    token: str = field(repr=False)
    agent_id: str
    labels: dict[str, str] = field(default_factory=dict)
    capacity: int = 100
    spool_dir: Path | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    max_in_flight: int = 256
    flush_interval: float = 1.0
    batch_samples: int = 5000
    window: int = 16
    backoff_min: float = 0.5
    backoff_max: float = 30.0

    @property
    def stream_url(self) -> str:
        return self.controller.rstrip("/") + "/api/v1/agents/stream"


class Agent:
    def __init__(self, settings: AgentSettings, drivers: Mapping[str, Driver]) -> None:
        self.settings = settings
        self.drivers = drivers
        self.boot = uuid.uuid4().hex
        self.spool = Spool(max_bytes=settings.spool_max_bytes, directory=settings.spool_dir)
        self.jobs = JobRunner(drivers, self._owned)
        self.scheduler = Scheduler(
            drivers,
            self._collect,
            max_in_flight=settings.max_in_flight,
            may_poll=lambda: time.monotonic() < self._fence_at,
        )
        self.connected = asyncio.Event()
        self.welcomed = 0  # how many welcomes so far (tests wait on it)
        self._samples: list[f.Sample] = []
        self._events: list[f.Event] = []
        self._flushed = asyncio.Event()
        self._fence_at = float("inf")  # monotonic time polling must stop by
        self._fence_changed = asyncio.Event()
        self._spooled = asyncio.Event()
        self._link: _Link | None = None
        self._acked = asyncio.Event()

    def _owned(self, target: int) -> f.TargetSpec | None:
        owned = self.scheduler.targets.get(target)
        return owned.spec if owned is not None else None

    # --- results into reports ---

    def _collect(self, samples: list[f.Sample], events: list[f.Event]) -> None:
        self._samples.extend(samples)
        self._events.extend(events)
        if len(self._samples) >= self.settings.batch_samples:
            self.flush()

    def flush(self) -> None:
        """Turn what was collected into reports (at most `batch_samples` samples each)."""
        size = self.settings.batch_samples
        while self._samples or self._events:
            samples, self._samples = self._samples[:size], self._samples[size:]
            events, self._events = self._events[:size], self._events[size:]
            self._spool(samples, events)
        self._spooled.set()

    def _spool(self, samples: list[f.Sample], events: list[f.Event]) -> None:
        """One report, or several when one would exceed the frame limit (a big OLT's
        inventory beside a batch of samples); an event too big for any frame is replaced
        by one that says so, rather than stopping every report behind it."""
        try:
            self.spool.add(samples, events)
            return
        except f.FrameError:
            if samples and events:
                self._spool(samples, [])
                self._spool([], events)
                return
            if len(samples) > 1 or len(events) > 1:
                half_s, half_e = len(samples) // 2, len(events) // 2
                self._spool(samples[:half_s], events[:half_e])
                self._spool(samples[half_s:], events[half_e:])
                return
        (event,) = events  # one sample always fits
        log.error(
            "event too large for a report frame: dropped",
            extra={"target_id": event.target, "kind": event.kind},
        )
        detail = {"kind": event.kind, "limit_bytes": f.MAX_FRAME_BYTES}
        self.spool.add([], [f.Event(event.target, "event_too_large", event.ts_ms, detail)])

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            self.flush()

    # --- fencing ---

    def _extend_fence(self, sent_at: float, lease_s: float, heartbeat_s: float) -> None:
        """A heartbeat sent at `sent_at` was answered: the lease holds until then + lease."""
        fence_at = sent_at + lease_s - max(heartbeat_s, lease_s / 6)
        if self._fence_at == float("inf") or fence_at > self._fence_at:
            self._fence_at = fence_at
            self._fence_changed.set()

    async def _fence(self) -> None:
        """Stop every poll when the lease may be about to run out."""
        while True:
            self._fence_changed.clear()
            wait = self._fence_at - time.monotonic()
            if wait <= 0:
                # Jobs first: a running job holds its target's session, which the
                # scheduler's stop waits to close.
                await self.jobs.cancel_all()
                if self.scheduler.targets:
                    FENCED.inc()
                    log.warning(
                        "lease at risk: stopping every poll",
                        extra={"targets": len(self.scheduler.targets)},
                    )
                    await self.scheduler.drop_all()
                self._fence_at = float("inf")
                if self._link is not None:
                    # The controller still thinks we poll them: start afresh.
                    await self._link.ws.close()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, 0.01), 3600)):
                    await self._fence_changed.wait()

    # --- the process ---

    async def run(self) -> None:
        """Poll and stream until cancelled; then stop polls and say goodbye."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.scheduler.run())
            group.create_task(self._flusher())
            group.create_task(self._fence())
            group.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        attempt = 0
        headers = {"Authorization": f"Bearer {self.settings.token}"}
        timeout = aiohttp.ClientWSTimeout(ws_close=5)
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                retry_after = 0.0
                try:
                    async with http.ws_connect(
                        self.settings.stream_url,
                        timeout=timeout,
                        max_msg_size=f.MAX_FRAME_BYTES,
                        autoping=True,
                    ) as ws:
                        await self._session(ws)
                        attempt = 0
                except StreamEnded as exc:
                    retry_after = exc.retry_after
                    log.warning("stream ended", extra={"reason": str(exc)})
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    RECONNECTS.labels("failed").inc()
                    log.warning(
                        "controller unreachable",
                        extra={"url": self.settings.stream_url, "error": repr(exc)},
                    )
                finally:
                    CONNECTED.set(0)
                    self.connected.clear()
                attempt += 1
                backoff = min(
                    self.settings.backoff_max, self.settings.backoff_min * 2 ** (attempt - 1)
                )
                await asyncio.sleep(max(retry_after, backoff * random.uniform(0.5, 1.0)))

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        hello_at = time.monotonic()
        hello = f.Hello(
            agent=self.settings.agent_id,
            boot=self.boot,
            version=f.VERSION,
            labels=self.settings.labels,
            capacity=self.settings.capacity,
            kinds=tuple(sorted(self.drivers)),
            software=SOFTWARE,
        )
        await ws.send_bytes(f.encode(hello))
        welcome = await self._receive(ws, 15)
        if not isinstance(welcome, f.Welcome):
            raise StreamEnded(f"expected welcome, got {welcome.TYPE}")
        lease_s, heartbeat_s = welcome.lease_ms / 1000, welcome.heartbeat_ms / 1000
        self._extend_fence(hello_at, lease_s, heartbeat_s)
        self.spool.ack_through(welcome.acked)
        RECONNECTS.labels("ok").inc()
        CONNECTED.set(1)
        self.connected.set()
        self.welcomed += 1
        log.info(
            "connected",
            extra={
                "controller": welcome.controller,
                "lease_ms": welcome.lease_ms,
                "pending": len(self.spool),
            },
        )
        self._link = _Link(self, ws, lease_s, heartbeat_s)
        try:
            await self.jobs.connected(self._link.send)
            await self._link.run()
        finally:
            self.jobs.disconnected()
            self._link = None

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, wait: float) -> f.Frame:
        msg = await ws.receive(timeout=wait)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            raise StreamEnded("the controller closed the stream")
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise StreamEnded(f"stream error: {ws.exception()!r}")
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise StreamEnded("the controller sent a non-binary message")
        try:
            frame = f.decode(msg.data)
        except f.FrameError as exc:
            raise StreamEnded(f"bad frame from the controller: {exc}") from None
        if isinstance(frame, f.Error):
            wait = 0.0
            if frame.code == "AGENT_ID_IN_USE":
                wait = 1.0
            raise StreamEnded(f"{frame.code}: {frame.message}", retry_after=wait)
        return frame

    async def shutdown(self, drain: float = 5.0) -> None:
        """Stop polling, deliver what is spooled (for up to `drain` seconds), say goodbye so
        the targets move at once. The caller cancels `run` afterwards."""
        # Running jobs get up to `drain` to finish (they hold sessions the scheduler's
        # stop closes), then the rest is cancelled.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain):
                for target in list(self.jobs.targets_busy()):
                    await self.jobs.stop_target(target)
        await self.jobs.cancel_all()
        await self.scheduler.drop_all()
        self.flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain):
                while len(self.spool) and self._link is not None:
                    self._acked.clear()
                    await self._acked.wait()
        if self._link is not None:
            with contextlib.suppress(Exception):
                await self._link.send(f.Bye())
                await self._link.ws.close()
        log.info("agent stopped", extra={"undelivered_reports": len(self.spool)})


class _Link:
    """One welcomed connection: heartbeats, reports out, frames in."""

    def __init__(
        self, agent: Agent, ws: aiohttp.ClientWebSocketResponse, lease_s: float, heartbeat_s: float
    ) -> None:
        self.agent = agent
        self.ws = ws
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.beats: dict[int, float] = {}  # heartbeat number -> when it was sent
        self.sent_through = 0  # the highest report seq sent on this connection
        self.outstanding: set[int] = set()
        self._window = asyncio.Event()
        self._lock = asyncio.Lock()
        self._aside: set[asyncio.Task[None]] = set()

    async def send(self, frame: f.Frame | bytes) -> None:
        data = frame if isinstance(frame, bytes) else f.encode(frame)
        async with self._lock:
            await self.ws.send_bytes(data)

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._reports()),
            asyncio.create_task(self._frames()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Revocations under way (self._aside) go on: cut short, they could leave a
            # session open that the fence no longer knows of.
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        raise StreamEnded("the stream ended")

    async def _heartbeats(self) -> None:
        n = 0
        while True:
            n += 1
            self.beats[n] = time.monotonic()
            await self.send(f.Heartbeat(n))
            if len(self.beats) * self.heartbeat_s > 2 * self.lease_s:
                raise StreamEnded("heartbeats unanswered for two leases")
            await asyncio.sleep(self.heartbeat_s)

    async def _reports(self) -> None:
        spool = self.agent.spool
        while True:
            if len(self.outstanding) < self.agent.settings.window:
                seq = spool.first_after(self.sent_through)
                if seq is not None:
                    await self.send(spool.frame(seq))
                    self.sent_through = seq
                    self.outstanding.add(seq)
                    continue
            self.agent._spooled.clear()
            self._window.clear()
            waiters = [
                asyncio.create_task(self.agent._spooled.wait()),
                asyncio.create_task(self._window.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def _frames(self) -> None:
        while True:
            frame = await self.agent._receive(self.ws, 2 * self.lease_s)
            handler = self.HANDLERS.get(type(frame))
            if handler is None:
                raise StreamEnded(f"a controller does not send {frame.TYPE} frames")
            await handler(self, frame)

    async def on_heartbeat(self, frame: f.Heartbeat) -> None:
        sent_at = self.beats.get(frame.n)
        if sent_at is None:
            return
        for n in [k for k in self.beats if k <= frame.n]:
            del self.beats[n]
        self.agent._extend_fence(sent_at, self.lease_s, self.heartbeat_s)

    async def on_assign(self, frame: f.Assign) -> None:
        if frame.full:
            keep = {t.id for t in frame.targets}
            for target_id, target in list(self.agent.scheduler.targets.items()):
                if target_id not in keep:
                    await self.agent.scheduler.revoke(target_id, target.spec.epoch)
        for spec in frame.targets:
            self.agent.scheduler.assign(spec)

    async def on_revoke(self, frame: f.Revoke) -> None:
        # A revoked target's running job may take a while to finish (and its session to
        # close): meanwhile heartbeats must still be answered, so this runs aside.
        task = asyncio.create_task(self._revoke(frame), name="revoke")
        self._aside.add(task)
        task.add_done_callback(self._aside.discard)

    async def _revoke(self, frame: f.Revoke) -> None:
        for target_id, epoch in frame.targets:
            # Unowned from here on (queued jobs fail); returns once its driver closed the
            # target's sessions, which waits for a running job to let go of them.
            await self.agent.scheduler.revoke(target_id, epoch)
            await self.agent.jobs.stop_target(target_id)
        with contextlib.suppress(Exception):
            await self.send(f.Revoked(frame.targets))

    async def on_ack(self, frame: f.Ack) -> None:
        self.agent.spool.ack(frame.seq)
        self.outstanding.discard(frame.seq)
        self._window.set()
        self.agent._acked.set()

    async def on_job(self, frame: f.Job) -> None:
        self.agent.jobs.submit(frame)

    HANDLERS = {
        f.Heartbeat: on_heartbeat,
        f.Assign: on_assign,
        f.Revoke: on_revoke,
        f.Ack: on_ack,
        f.Job: on_job,
    }
