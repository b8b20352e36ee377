"""Waiting for task outcomes: PostgreSQL LISTEN on the channel the ACS notifies.

Any ACS process that finishes or faults a task sends `pg_notify('chronos_task',
'<id>:<status>')` in the same transaction, so an API process learns of it the moment it
commits, whichever process ran the session. One listening connection per API process,
re-opened if it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import asyncpg

log = logging.getLogger("chronos.notify")

CHANNEL = "chronos_task"


class TaskWaiter:
    """Futures for task outcomes, resolved by notifications."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._waiting: dict[int, list[asyncio.Future[str]]] = defaultdict(list)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-waiter")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()

    async def _run(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("listen connection failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(2)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(CHANNEL, self._notified)
                self._conn = conn
                self._connected.set()
                await lost.wait()
                log.warning("listen connection lost; reconnecting")
            finally:
                self._connected.clear()
                self._conn = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        task_id, _, status = payload.partition(":")
        if not task_id.isdigit():
            return
        for future in self._waiting.pop(int(task_id), []):
            if not future.done():
                future.set_result(status)

    def expect(self, task_id: int) -> asyncio.Future[str]:
        """A future for the task's next outcome; take it before checking the database."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[task_id].append(future)
        return future

    def forget(self, task_id: int, future: asyncio.Future[str]) -> None:
        futures = self._waiting.get(task_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiting[task_id]
