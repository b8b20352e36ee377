"""One leader among controllers: a PostgreSQL advisory lock held on a connection of our own.

The lock belongs to the backend of that connection, so it is released the moment the
backend goes: the process died, the network cut it, PostgreSQL restarted. TCP keepalives
on the connection (set server-side) make a vanished leader host noticed within seconds.
While the lock is held, `lead(conn, lost)` runs; it must use `conn` at least every few
seconds (that is how a dead connection is noticed) and return once `lost` is set. A
leader that wants its writes fenced makes them on `conn`: once the backend is gone they
cannot commit, so a deposed leader cannot write after its successor started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("chronos.leadership")

Lead = Callable[[asyncpg.Connection, asyncio.Event], Awaitable[None]]

# Server-side keepalives: a silent peer is dropped after idle + interval * count seconds.
KEEPALIVES = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
}


class Leadership:
    """Try for the lock every `retry` seconds; run `lead` while it is ours."""

    def __init__(self, dsn: str, key: int, name: str, lead: Lead, *, retry: float = 1.0) -> None:
        self.dsn = dsn
        self.key = key
        self.name = name
        self.retry = retry
        self.leading = False
        self._lead = lead
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"leadership-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _acquire(self, conn: asyncpg.Connection) -> None:
        """Return once the lock is ours (asking every `retry` seconds)."""
        while True:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key, timeout=10):
                return
            await asyncio.sleep(self.retry)

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                settings = {**KEEPALIVES, "application_name": f"chronos-{self.name}-leader"}
                conn = await asyncpg.connect(self.dsn, timeout=10, server_settings=settings)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await self._acquire(conn)
                self.leading = True
                log.info("leading", extra={"role": self.name})
                await self._lead(conn, lost)
                log.warning("leadership lost", extra={"role": self.name})
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "leadership: database unavailable",
                    extra={"role": self.name, "error": repr(exc)},
                )
            except Exception:
                # A bug in `lead` must not end this process's bid for good: log, retry.
                log.exception("leadership: leader failed", extra={"role": self.name})
            finally:
                self.leading = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(self.retry)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()
