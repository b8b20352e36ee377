"""Live events for operators: `GET /api/v1/events`, a WebSocket of JSON messages.

Whatever happens that an operator watches (job progress and results, inventory changes,
ONTs found by autofind) is published with `publish()`: a `pg_notify` on
`chronos_events`, sent when the publishing transaction commits, so every controller
hears it and nobody hears of something that was rolled back. Each controller has one
LISTEN connection and fans events out to its WebSocket clients.

A client may filter by type: `/api/v1/events?types=job,inventory`. A client that reads
too slowly loses the oldest events and is told so (`{"type": "lagged", "dropped": N}`)
rather than holding the controller's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web

log = logging.getLogger("chronos.events")

EVENTS_CHANNEL = "chronos_events"
_NOTIFY_LIMIT = 7900  # pg_notify payloads stay under 8000 bytes
QUEUE = 1000  # events one client may have waiting
NOTIFY = f"SELECT pg_notify('{EVENTS_CHANNEL}', $1)"


async def publish(conn: asyncpg.Connection | asyncpg.Pool, kind: str, /, **fields: Any) -> None:
    """Publish one event (delivered when the caller's transaction commits)."""
    payload = json.dumps({"type": kind, **fields}, default=str, separators=(",", ":"))
    if len(payload.encode()) > _NOTIFY_LIMIT:
        # Too big to carry: say what it is about; clients fetch the rest over the API.
        small = {k: v for k, v in fields.items() if isinstance(v, int | str | bool | None)}
        payload = json.dumps({"type": kind, **small, "truncated": True}, default=str)
    await conn.execute(NOTIFY, payload)


class _Client:
    def __init__(self, ws: web.WebSocketResponse, types: frozenset[str] | None) -> None:
        self.ws = ws
        self.types = types
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE)
        self.dropped = 0

    def offer(self, kind: str, payload: str) -> None:
        if self.types is not None and kind not in self.types:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(payload)


class EventHub:
    """This controller's event listeners and the LISTEN connection feeding them."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.clients: set[_Client] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="events-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            kind = json.loads(payload).get("type", "")
        except (ValueError, AttributeError):
            return
        for client in self.clients:
            client.offer(kind, payload)

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                await conn.add_listener(EVENTS_CHANNEL, self._notified)
                self.listening.set()
                while True:
                    await asyncio.sleep(5)
                    await conn.fetchval("SELECT 1", timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event listener: database unavailable", extra={"error": repr(exc)})
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(1)

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        raw = request.query.get("types", "")
        types = frozenset(t for t in raw.split(",") if t) or None
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        client = _Client(ws, types)
        self.clients.add(client)
        reader = asyncio.create_task(self._drain_incoming(ws))
        try:
            while not ws.closed:
                getter = asyncio.create_task(client.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                if client.dropped:
                    await ws.send_str(json.dumps({"type": "lagged", "dropped": client.dropped}))
                    client.dropped = 0
                await ws.send_str(getter.result())
        except (ConnectionResetError, RuntimeError):
            pass  # the client went away mid-send
        finally:
            self.clients.discard(client)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()
        return ws

    async def _drain_incoming(self, ws: web.WebSocketResponse) -> None:
        """Clients only listen; returning ends the stream (close or error)."""
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                return

    async def close_all(self) -> None:
        """End every client's stream (aiohttp waits for open WebSockets at shutdown)."""
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001, message=b"controller stopping")


EVENTS = web.AppKey("event_hub", EventHub)


async def _events(request: web.Request) -> web.WebSocketResponse:
    return await request.app[EVENTS].serve(request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[EVENTS].start()
    yield
    await app[EVENTS].stop()


async def _shutdown(app: web.Application) -> None:
    await app[EVENTS].close_all()


def add_routes(app: web.Application, dsn: str) -> None:
    app[EVENTS] = EventHub(dsn)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_shutdown)
    app.router.add_get("/api/v1/events", _events)
